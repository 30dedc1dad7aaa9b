"""A gallery of a million subjects stays usable: keyset pages cost the same deep in the list.

Writes 1,000,000 subject rows (and their memberships) into a fresh data directory's SQLite
database, then times, through the service layer and through the API:
- the first page of the gallery's subject list (100 rows, newest first);
- a page reached by a cursor 900,000 rows deep;
- the same deep page as an OFFSET query (the baseline pagination Vigil does not use);
- a search by name (``q``) and the gallery's description (its subject count);
- the console's gallery page (its HTML shell and the first page of JSON it loads).

``python -m bench.pages [--subjects N]`` -> ``bench/results/pages.json``. No face is enrolled:
what is measured is listing, not enrolment (``bench.bulk_enrol_lfw`` measures that).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from rich.progress import Progress

from bench.common import write_result


def _median_ms(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def _fill(vigil, gallery_id: int, n: int, progress: Progress) -> None:
    from sqlalchemy import insert

    from vigil.store.schema import Membership, Subject

    task = progress.add_task("Writing subject rows", total=n)
    batch = 20_000
    with vigil.store.session() as session:
        for start in range(0, n, batch):
            ids = [f"S{secrets.token_hex(8)}" for _ in range(min(batch, n - start))]
            session.execute(insert(Subject), [
                {"id": sid, "display_name": f"Person {secrets.randbelow(10**7):07d}", "category": "reference",
                 "reference": f"REF-{start + i:07d}", "notes": "", "created_by": "bench"} for i, sid in enumerate(ids)])
            session.execute(insert(Membership), [{"collection_id": gallery_id, "subject_id": sid, "added_by": "bench"}
                                                 for sid in ids])
            progress.advance(task, len(ids))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=1_000_000)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vigil-pages-"))
    os.environ["VIGIL_HOME"] = str(home)
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from vigil.config import Settings
    from vigil.server import create_app
    from vigil.services.accounts import create_token
    from vigil.services.collections import collection_members, create_collection, show_collection
    from vigil.store.schema import Membership, Subject

    settings = Settings(home=home)
    app = create_app(settings, retention_every=None)
    vigil = app.state.vigil
    admin = vigil.cli_actor()
    gallery = create_collection(vigil, admin, "gallery", "custody", purpose="benchmark")
    with Progress() as progress:
        t0 = time.perf_counter()
        _fill(vigil, gallery["id"], args.subjects, progress)
        fill_s = time.perf_counter() - t0

    first = lambda: collection_members(vigil, admin, "gallery", "custody", limit=100)  # noqa: E731
    page = first()
    deep_at = int(args.subjects * 0.9)
    # the cursor of row deep_at: walk there with pages of 1,000 once (what a person paging would reach)
    cursor = None
    t0 = time.perf_counter()
    for _ in range(deep_at // 1000):
        cursor = collection_members(vigil, admin, "gallery", "custody", cursor=cursor, limit=1000).next_cursor
    walk_s = time.perf_counter() - t0
    deep = lambda: collection_members(vigil, admin, "gallery", "custody", cursor=cursor, limit=100)  # noqa: E731

    def offset_page():
        with vigil.store.session() as session:
            query = select(Subject).join(Membership, Membership.subject_id == Subject.id) \
                .where(Membership.collection_id == gallery["id"]) \
                .order_by(Membership.added_at.desc(), Membership.subject_id.desc())
            return list(session.scalars(query.offset(deep_at).limit(100)))

    assert [s.id for s in offset_page()] == [s["id"] for s in deep().items], "keyset and offset pages disagree"
    token = create_token(vigil, admin, name="bench")["token"]
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token}"}
    api_first = lambda: client.get("/api/galleries/custody/subjects", headers=headers, params={"limit": 100})  # noqa: E731
    api_deep = lambda: client.get("/api/galleries/custody/subjects", headers=headers,  # noqa: E731
                                  params={"limit": 100, "cursor": cursor})
    first_body = api_first()
    assert first_body.status_code == 200 and len(first_body.json()["items"]) == 100
    result = {
        "subjects": args.subjects, "page_size": 100, "deep_row": deep_at, "fill_s": round(fill_s, 1),
        "walk_to_deep_row_s": round(walk_s, 1),
        "first_page_ms": _median_ms(first), "deep_page_ms": _median_ms(deep),
        "deep_page_offset_baseline_ms": _median_ms(offset_page, 3),
        "search_by_name_ms": _median_ms(lambda: collection_members(vigil, admin, "gallery", "custody",
                                                                   q=page.items[0]["name"][-5:], limit=100), 3),
        "describe_gallery_ms": _median_ms(lambda: show_collection(vigil, admin, "gallery", "custody"), 3),
        "api_first_page_ms": _median_ms(api_first), "api_deep_page_ms": _median_ms(api_deep),
        "api_page_bytes": len(first_body.content),
    }
    result["deep_over_first"] = round(result["deep_page_ms"] / result["first_page_ms"], 2)
    result["offset_over_keyset_deep"] = round(result["deep_page_offset_baseline_ms"] / result["deep_page_ms"], 1)
    result["load_average"] = os.getloadavg()
    path = write_result("pages", result)
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
