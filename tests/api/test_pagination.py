"""Every list is paged the same way (``limit`` and ``cursor`` in; ``items`` and ``next_cursor``
out), reads stay correct while rows come and go, and a cursor from elsewhere is refused.

The 2,500-subject gallery: three subjects are enrolled through the API from real photos; the
other 2,497 are written as subject and membership rows. Enrolling 2,500 faces costs about a
minute of CPU on the 2-core CI machine and tests nothing about pages (the enrolment tests do
that); what is tested here is the paging over a list of that size.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cli_run import run_cli
from tests.conftest import demo_bytes
from tests.services.live_helpers import api_client
from tests.store.conftest import admin, vigil  # noqa: F401 (shared fixtures)
from vigil.errors import VigilError
from vigil.services.collections import create_collection
from vigil.services.pages import BadCursor, decode_cursor, encode_cursor
from vigil.store.schema import Membership, Subject

SUBJECTS = 2_500


def _bulk_subjects(vigil, collection: str, n: int) -> None:  # noqa: F811
    """``n`` subject rows in the gallery, added in one transaction (many share an ``added_at``, so the
    (added_at, id) key's tie-break is exercised)."""
    from vigil.store.collections import get_collection

    with vigil.store.session() as session:
        coll = get_collection(session, "gallery", collection)
        ids = ["S" + secrets.token_hex(8) for _ in range(n)]
        session.add_all(Subject(id=sid, display_name=f"Person {(i * 7919) % 1000:04d}", category="reference",
                                reference=f"REF-{i:05d}") for i, sid in enumerate(ids))
        session.flush()
        session.add_all(Membership(collection_id=coll.id, subject_id=sid) for sid in ids)


def _walk(client, headers, url, limit, **params):
    seen, cursor, pages = [], None, 0
    while True:
        r = client.get(url, headers=headers, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_a_gallery_of_2500_subjects_pages_through_every_one_once(vigil, admin, settings):  # noqa: F811
    create_collection(vigil, admin, "gallery", "custody", purpose="custody images")
    client, headers = api_client(vigil, settings, admin, roles=("investigator",))
    for name, photo in (("Barack Obama", "obama.jpg"), ("Joe Biden", "biden.jpg"), ("Obama Standing", "obama_standing.jpg")):
        r = client.post("/api/galleries/custody/enrol", headers=headers["investigator"],
                        files={"image": (photo, demo_bytes(photo), "image/jpeg")},
                        data={"subject_name": name, "reference": "CASE-1"})
        assert r.status_code == 201, r.text
    _bulk_subjects(vigil, "custody", SUBJECTS - 3)
    url = "/api/galleries/custody/subjects"
    seen, pages = _walk(client, headers["investigator"], url, 100)
    assert pages == 25 and len(seen) == SUBJECTS
    assert len({s["id"] for s in seen}) == SUBJECTS  # none skipped, none repeated
    keys = [(s["added_at"], s["id"]) for s in seen]
    assert keys == sorted(keys, reverse=True)  # newest first, then by id, across page boundaries
    assert {s["name"] for s in seen[-3:]} == {"Barack Obama", "Joe Biden", "Obama Standing"}  # enrolled first
    # the largest page and the search box
    big, _ = _walk(client, headers["investigator"], url, 1000)
    assert [s["id"] for s in big] == [s["id"] for s in seen]
    found, _ = _walk(client, headers["investigator"], url, 100, q="obama")
    assert sorted(s["name"] for s in found) == ["Barack Obama", "Obama Standing"]
    refs = sorted(s["reference"] for s in _walk(client, headers["investigator"], url, 3, q="ref-0249")[0])
    assert refs == [f"REF-0249{d}" for d in range(7)]  # rows 2,490 to 2,496, over three pages
    assert _walk(client, headers["investigator"], url, 100, q="100%")[0] == []  # % is a character, not a wildcard


def test_rows_added_or_removed_between_pages_never_shift_the_next_page(vigil, admin, settings):  # noqa: F811
    from vigil.services.collections import list_collections

    for i in range(5):
        create_collection(vigil, admin, "watchlist", f"w{i}", purpose="test")
    first = list_collections(vigil, admin, "watchlist", limit=2)
    assert [c["name"] for c in first.items] == ["w0", "w1"] and first.next_cursor
    create_collection(vigil, admin, "watchlist", "a-new-first", purpose="test")  # sorts before the cursor
    second = list_collections(vigil, admin, "watchlist", cursor=first.next_cursor, limit=2)
    assert [c["name"] for c in second.items] == ["w2", "w3"]


def test_every_list_endpoint_answers_a_page(vigil, admin, settings):  # noqa: F811
    create_collection(vigil, admin, "gallery", "custody")
    client, headers = api_client(vigil, settings, admin, roles=("auditor",))
    from vigil.services.accounts import create_token
    token = create_token(vigil, admin, name="for the lists")["token"]
    root = {"Authorization": f"Bearer {token}"}
    for url in ("/api/alerts", "/api/deployments", "/api/watchlists", "/api/galleries", "/api/galleries/custody/subjects",
                "/api/audit", "/api/searches", "/api/tokens", "/api/users", "/api/cameras", "/api/me/sessions",
                "/api/me/tokens"):
        r = client.get(url, headers=root, params={"limit": 1})
        assert r.status_code == 200, (url, r.text)
        assert set(r.json()) == {"items", "next_cursor"} and len(r.json()["items"]) <= 1, url
    # the audit log has many entries: walk it one by one, newest first, and meet every entry once
    entries, _ = _walk(client, headers["auditor"], "/api/audit", 7)
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) and seqs[-1] == 1


def test_a_cursor_from_another_list_or_altered_is_refused_clearly(vigil, admin, settings):  # noqa: F811
    from vigil.services.accounts import create_token

    client, headers = api_client(vigil, settings, admin, roles=("auditor",))
    root = {"Authorization": f"Bearer {create_token(vigil, admin, name='lists')['token']}"}
    for i in range(3):
        create_collection(vigil, admin, "gallery", f"g{i}")
    audit_cursor = client.get("/api/audit", headers=headers["auditor"], params={"limit": 1}).json()["next_cursor"]
    r = client.get("/api/galleries", headers=root, params={"cursor": audit_cursor})
    assert r.status_code == 400 and "not one this list (galleries) gave out" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    for bad in ("eyJub3QiOiJqc29uIn0", "AAAA", encode_cursor("audit", ("x", 1))):
        r = client.get("/api/audit", headers=headers["auditor"], params={"cursor": bad})
        assert r.status_code == 400 and "Traceback" not in r.text, r.text
    with pytest.raises(BadCursor):
        decode_cursor("audit", encode_cursor("audit", (True,)), 1)  # a flag is not a sequence number
    with pytest.raises(VigilError, match="between 1 and 1000"):
        from vigil.services.collections import list_collections
        list_collections(vigil, admin, "gallery", limit=0)


def test_the_cli_prints_the_command_for_the_next_page(vigil, admin, settings):  # noqa: F811
    for i in range(3):
        create_collection(vigil, admin, "gallery", f"g{i}")
    out = run_cli(settings.home, "gallery", "list", "--limit", "2")
    assert out.returncode == 0, out.stderr
    assert "More rows follow: vigil gallery list --cursor " in out.stdout
    cursor = out.stdout.rsplit("--cursor ", 1)[1].split()[0]
    rest = json.loads(run_cli(settings.home, "gallery", "list", "--limit", "2", "--cursor", cursor, "--json").stdout)
    assert [g["name"] for g in rest["items"]] == ["g2"] and rest["next_cursor"] is None
    bad = run_cli(settings.home, "gallery", "list", "--cursor", "nonsense")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "cursor" in bad.stderr
