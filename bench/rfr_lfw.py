#!/usr/bin/env python
"""Retrospective search on LFW through the product's own path (gallery, enrolment, search).

    python bench/rfr_lfw.py [--data ../shared/data/lfw] [--packs sface,fusion] [--raw-labels] [--json]

Gallery: the ``_0001`` image of each of LFW's 5,749 people, enrolled with the quality gate
bypassed (a custody collection is imported as it is; quality is still recorded). Probes:
the ``_0002`` image of each of the 1,680 people who have one, each searched with a case
reference and a reason like any investigator's search. Reported per pack: rank-1, rank-5,
rank-10 (identification accuracy: the mate is the top / within the top k candidates),
failures, enrolment images/s and search latency.

Labels: corrected by ``lfw_errata.json`` by default (aliases merged, misfiled images dropped:
5,731 people, 1,682 probes), written to ``rfr_lfw.json``; ``--raw-labels`` takes them as
published (5,749 and 1,680), written to ``rfr_lfw_raw_labels.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import lfw_root, skip, write_result
from vigil.config import Settings
from vigil.progress import progress_bar


def run_pack(home: Path, root: Path, pack: str, *, raw_labels: bool = False) -> dict:
    from vigil.evaluation.lfw_data import LFW
    from vigil.errors import NotFoundError
    from vigil.services import get_vigil
    from vigil.services.collections import create_collection, show_collection
    from vigil.services.enrolment import EnrolItem, enrol_files
    from vigil.services.search import run_search

    vigil = get_vigil(Settings(home=home))
    actor = vigil.cli_actor()
    engine = vigil.engine(pack)
    lfw = LFW(root)
    people = lfw.identities(clean=not raw_labels)
    name = f"lfw-{pack}" + ("-raw" if raw_labels else "")
    try:
        show_collection(vigil, actor, "gallery", name)
    except NotFoundError:
        create_collection(vigil, actor, "gallery", name, pack=pack)
    items = [(files[0], EnrolItem(str(files[0]), person)) for person, files in people.items()]
    t0 = time.perf_counter()
    report = enrol_files(vigil, actor, "gallery", name, items, quality_gate=False, with_outcomes=True)
    enrol_s = time.perf_counter() - t0
    subject_of = {o["source"]: o.get("subject_id") for o in report["outcomes"]}
    mate = {person: subject_of.get(str(files[0])) for person, files in people.items()}
    probes = [(person, files[1]) for person, files in people.items() if len(files) > 1]
    ranks, latencies, no_face = [], [], 0
    with progress_bar(f"Searching ({pack})", len(probes)) as advance:
        for person, path in probes:
            t1 = time.perf_counter()
            result = run_search(vigil, actor, "gallery", name, case_ref="BENCH-LFW",
                                reason="benchmark of rank-1 accuracy", top=10, path=path, keep_probe=False)
            latencies.append(time.perf_counter() - t1)
            faces = result["faces"]
            if not faces:
                no_face += 1
                ranks.append(None)
            else:
                # the probe's main face: the largest (LFW centres its subject)
                face = max(faces, key=lambda f: f["box"][2] * f["box"][3])
                ids = [c["subject_id"] for c in face["candidates"]]
                ranks.append(ids.index(mate[person]) + 1 if mate[person] in ids else None)
            advance()
    n = len(probes)

    def rank_k(k):
        return sum(1 for r in ranks if r is not None and r <= k) / n

    return {"pack": pack, "model_id": engine.model_id, "gallery_size": report["enrolled"] + report["skipped"],
            "gallery_rejected": len(report["rejected"]), "probes": n,
            "probes_without_face": no_face, "rank1": rank_k(1), "rank5": rank_k(5), "rank10": rank_k(10),
            "enrol_images_per_second": report["enrolled"] / enrol_s if report["enrolled"] else None,
            "search_latency_ms_p50": statistics.median(latencies) * 1000,
            "search_latency_ms_p95": sorted(latencies)[int(0.95 * (n - 1))] * 1000}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--packs", default="sface,fusion")
    parser.add_argument("--home", type=Path, help="data directory to use (kept; reruns resume)")
    parser.add_argument("--raw-labels", action="store_true",
                        help="LFW's labels as published (5,749 people, 1,680 probes), without lfw_errata.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = lfw_root(args.data)
    if root is None:
        skip("LFW not found (../shared/data/lfw); pass --data")
    home = args.home or Path(tempfile.mkdtemp(prefix="vigil-rfr-"))
    results = [run_pack(home, root, p, raw_labels=args.raw_labels) for p in args.packs.split(",")]
    labels = ("as published" if args.raw_labels else
              "corrected by lfw_errata.json (aliases of one person merged, misfiled images dropped)")
    path = write_result("rfr_lfw_raw_labels" if args.raw_labels else "rfr_lfw",
                        {"protocol": __doc__.strip().splitlines()[3:8], "labels": labels, "results": results})
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['pack']:7s} gallery {r['gallery_size']}  probes {r['probes']}  rank-1 {r['rank1'] * 100:.2f}%  "
                  f"rank-5 {r['rank5'] * 100:.2f}%  rank-10 {r['rank10'] * 100:.2f}%  "
                  f"search p50 {r['search_latency_ms_p50']:.0f} ms")
        print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
