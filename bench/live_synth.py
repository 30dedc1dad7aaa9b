#!/usr/bin/env python
"""Live recognition on a synthetic crowd with a 1,000-person watchlist (LFW faces).

    python bench/live_synth.py [--data ../shared/data/lfw] [--false-alert-rate 1e-4] [--pack sface] [--json]

1. ``vigil synth crowd``: 720p, 25 fps; 1,000 LFW people on the watchlist, each enrolled from
   up to 3 photos where LFW has them (``--references``; a deployment averages them into one
   mean template), some of them walking through the scene in a *different* photo, among
   people who are not on the list; faces 20-80 px wide.
2. The watchlist is enrolled from the generated CSV (``--allow-low-quality``: the list holds
   exactly 1,000 people); a deployment runs on the video at its real frame rate (2 cores),
   with an accepted false alert rate of 1 in 10,000 faces (``--false-alert-rate``), on the
   watchlist's pack (``--pack``: ``sface``, or ``fusion``, whose dlib half runs as a cascade).
3. Scored against the truth file:
   - a watchlisted person's face is *usable* from the first frame where it passes the
     engine's quality gate (checked on the frame itself, every 5th frame);
   - a true alert names a watchlisted person whose truth box overlaps the alerted box at the
     alert's frame; time to alert = alert time - first usable time (0 if earlier);
   - every other alert is false; false alerts per 10,000 faces seen (face tracks compared);
   - the same in fast mode (every frame processed), the pipeline's ceiling when real time
     costs dropped frames (``fast_mode_usable_alerted``), and the capacity it ran at;
   - small faces: watchlisted people who never show a usable face, alerted with evidence
     aggregated along the track (6 best shots) versus a single best shot (``max_shots=1``),
     both in fast mode over the same video.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench.common import lfw_root, skip, write_result
from vigil.config import Settings


def usable_from(truth: dict, video: Path, engine, step: int = 5) -> dict[str, float]:
    """person -> first time (s) their face passes the quality gate."""
    fps = truth["video"]["fps"]
    wanted = {p["person_id"]: {b[0]: b for b in p["boxes"]} for p in truth["people"] if p["watchlisted"]}
    first: dict[str, float] = {}
    cap = cv2.VideoCapture(str(video))
    index = 0
    while True:
        ok = cap.grab()
        if not ok:
            break
        if index % step == 0:
            todo = [(name, boxes[index]) for name, boxes in wanted.items() if index in boxes and name not in first]
            if todo:
                _, frame = cap.retrieve()
                for name, (_, x, y, w, h, *rest) in todo:
                    m = int(max(w, h) * 0.8)
                    crop = frame[max(0, y - m): y + h + m, max(0, x - m): x + w + m]
                    found = engine.analyse(crop) if crop.size else []
                    if any(f.quality.passed for f in found):
                        first[name] = index / fps
        index += 1
    cap.release()
    return first


def score_alerts(alerts: list[dict], truth: dict) -> tuple[dict, list, list]:
    fps = truth["video"]["fps"]
    # where each person's face is, fully or partly visible (an alert on a half-hidden face is still true)
    boxes = {p["person_id"]: {b[0]: b[1:5] for b in p["boxes"] + p.get("partial", [])} for p in truth["people"]}
    listed = {p["person_id"] for p in truth["people"] if p["watchlisted"]}
    first_alert: dict[str, float] = {}
    false = []
    for a in alerts:
        frame = int(round(a["time"] * fps))
        box = a.get("box")
        ok = False
        if a["name"] in listed and box:
            for f in range(frame - 2, frame + 3):
                gt = boxes.get(a["name"], {}).get(f)
                if gt:
                    ax, ay, aw, ah = box
                    gx, gy, gw, gh = gt
                    ix = max(0, min(ax + aw, gx + gw) - max(ax, gx))
                    iy = max(0, min(ay + ah, gy + gh) - max(ay, gy))
                    if ix * iy > 0.1 * min(aw * ah, gw * gh):
                        ok = True
                        break
        if ok:
            first_alert.setdefault(a["name"], a["time"])
        else:
            false.append(a)
    return first_alert, false, sorted(listed)


SIZE_BINS = ((0, 20), (20, 30), (30, 40), (40, 60), (60, 10_000))


def recall_by_face_size(truth: dict, alerted: dict) -> list[dict]:
    """Watchlisted walkers by the widest face they show (px), and how many of each were alerted."""
    widest = {p["person_id"]: max((b[3] for b in p["boxes"]), default=0)
              for p in truth["people"] if p["watchlisted"]}
    out = []
    for lo, hi in SIZE_BINS:
        names = [n for n, w in widest.items() if lo <= w < hi]
        out.append({"widest_face_px": f"{lo}-{hi - 1}" if hi < 10_000 else f">={lo}", "people": len(names),
                    "alerted": sum(n in alerted for n in names)})
    return out


def reachable_at_full_resolution(truth: dict, manifest: Path, engine, usable: dict, threshold: float) -> list[str]:
    """The usable listed walkers whose crowd photo, at its own full resolution before any
    pasting, scores at least ``threshold`` against their entry (the mean template of their
    enrolment photos, as the snapshot makes it): the most the live pipeline could alert."""
    import csv

    from vigil.engine.calibration import mean_template
    from vigil.engine.fusion import template_split
    from vigil.engine.images import read_image_file

    photos: dict[str, list[Path]] = {}
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            photos.setdefault(row["name"], []).append(Path(row["path"]))

    def best(path: Path):
        faces = engine.analyse(read_image_file(path))
        return max(faces, key=lambda f: f.quality.score) if faces else None

    out = []
    for person in truth["people"]:
        if person["person_id"] not in usable:
            continue
        refs = sorted((f for f in map(best, photos.get(person["person_id"], [])) if f is not None),
                      key=lambda f: -f.quality.score)[:3]
        crowd = best(Path(person["crowd_image"]))
        if refs and crowd is not None:
            entry = mean_template(np.stack([f.vector for f in refs]), template_split(engine.pack.embedder))
            if float(crowd.vector @ entry) >= threshold:
                out.append(person["person_id"])
    return sorted(out)


def run(vigil, actor, video: Path, *, fast: bool, rate: float, max_shots: int | None = None) -> dict:
    from vigil.services.deployments import create_deployment
    from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment

    if max_shots is not None:
        vigil.settings.live.max_shots = max_shots
    dep = create_deployment(vigil, actor, name="synthetic crowd", location="bench",
                            sources=[{"camera": "c1", "source": str(video)}], watchlists=["bench-1000"],
                            window_start=None, window_end=None, trial=True, false_alert_rate=rate,
                            local_trial=True)  # a local trial, as `vigil watch --source FILE`
    start_deployment(vigil, actor, dep["id"])
    result = DeploymentRunner(vigil, actor, dep["id"], [], RunOptions(fast=fast)).run()
    return {"summary": result.summary, "alerts": result.alerts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--appear", type=int, default=40)
    parser.add_argument("--others", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--false-alert-rate", type=float, default=1e-4,
                        help="accepted false alerts per face seen (default 1e-4, the issue's budget); "
                             "another rate writes live_synth_1000_rate<R>.json")
    parser.add_argument("--pack", default="sface", choices=["sface", "fusion"],
                        help="the watchlist's recogniser (another pack writes live_synth_1000_<pack>*.json)")
    parser.add_argument("--references", type=int, default=3, choices=[1, 2, 3],
                        help="enrolment photos per listed person where LFW has them (default 3: a deployment "
                             "averages up to 3 into one mean template; 1 writes live_synth_1000_refs1*.json)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = lfw_root(args.data)
    if root is None:
        skip("LFW not found (../shared/data/lfw); pass --data")
    from vigil.synth import CrowdOptions, generate_crowd
    from vigil.retro.manifests import items_from_csv
    from vigil.services.enrolment import enrol_files
    from vigil.services import get_vigil
    from vigil.services.collections import create_collection

    work = Path(tempfile.mkdtemp(prefix="vigil-live-synth-"))
    vigil = get_vigil(Settings(home=work / "home"))
    actor = vigil.cli_actor()
    engine = vigil.engine()
    crowd = generate_crowd(CrowdOptions(out=work / "crowd.mp4", people_dir=root, watchlist_size=1000, appear=args.appear,
                                        others=args.others, width=1280, height=720, fps=25, seconds=args.seconds,
                                        min_face=20, max_face=80, density=8, seed=args.seed,
                                        manifest=work / "watchlist.csv", references=args.references), engine=engine)
    video = Path(crowd["video"])
    truth = json.loads(Path(crowd["truth"]).read_text())
    listed_engine = vigil.engine(args.pack)
    create_collection(vigil, actor, "watchlist", "bench-1000", pack=args.pack, purpose="benchmark",
                      category="wanted")
    report = enrol_files(vigil, actor, "watchlist", "bench-1000", items_from_csv(work / "watchlist.csv"),
                         quality_gate=False)
    usable = usable_from(truth, video, engine)
    rate = args.false_alert_rate
    live = run(vigil, actor, video, fast=False, rate=rate)
    first_alert, false, listed = score_alerts(live["alerts"], truth)
    appearing = [p["person_id"] for p in truth["people"] if p["watchlisted"]]
    latencies = {n: max(0.0, first_alert[n] - usable[n]) for n in usable if n in first_alert}
    missed_usable = sorted(n for n in usable if n not in first_alert)
    faces = live["summary"]["faces_seen"]
    small = [n for n in appearing if n not in usable]
    aggregated = run(vigil, actor, video, fast=True, rate=rate, max_shots=6)
    single = run(vigil, actor, video, fast=True, rate=rate, max_shots=1)
    agg_hits, _, _ = score_alerts(aggregated["alerts"], truth)
    one_hits, _, _ = score_alerts(single["alerts"], truth)
    result = {
        "crowd": crowd, "pack": args.pack, "model_id": listed_engine.model_id,
        "watchlist_enrolled": report["enrolled"], "watchlist_subjects": len(report["subjects"]),
        "references_per_person_at_most": args.references, "false_alert_rate_accepted": rate,
        "realtime": {k: live["summary"][k] for k in ("frames", "frames_processed", "frames_dropped", "fps",
                                                     "source_fps", "realtime_factor", "faces_seen", "tracks",
                                                     "alerts", "thresholds", "embeddings",
                                                     "second_model_embeddings")},
        "watchlisted_appearing": len(appearing), "with_usable_face": len(usable),
        "usable_alerted": len(latencies), "usable_alerted_within_1s": sum(v <= 1.0 for v in latencies.values()),
        "usable_missed": missed_usable,
        "usable_reachable_at_full_resolution": reachable_at_full_resolution(
            truth, work / "watchlist.csv", listed_engine, usable, live["summary"]["thresholds"]["default"]),
        "time_to_alert_s": {"median": float(np.median(list(latencies.values()))) if latencies else None,
                            "max": max(latencies.values()) if latencies else None},
        "false_alerts": len(false), "faces_seen": faces,
        "false_alerts_per_10000_faces": (len(false) / faces * 1e4) if faces else None,
        "false_alert_rate_95pct_upper_bound_per_10000": (3.0 / faces * 1e4) if faces and not false else None,
        "false_alert_details": [{k: a[k] for k in ("name", "score", "time")} for a in false],
        "recall_by_face_size": recall_by_face_size(truth, first_alert),
        "fast_mode_usable_alerted": sum(n in agg_hits for n in usable),  # no frame dropped: the pipeline's ceiling
        "fast_mode_capacity": {k: aggregated["summary"][k] for k in ("fps", "realtime_factor", "wall_seconds")},
        "small_faces": {"watchlisted_never_usable": len(small),
                        "alerted_with_track_aggregation": sum(n in agg_hits for n in small),
                        "alerted_with_single_best_shot": sum(n in one_hits for n in small)},
    }
    name = "live_synth_1000" + (f"_{args.pack}" if args.pack != "sface" else "") + \
        (f"_refs{args.references}" if args.references != 3 else "")
    path = write_result(name if rate == 1e-4 else f"{name}_rate{rate:.0e}", result)
    if args.json:
        print(json.dumps(result))
    else:
        r = result
        print(f"real time: {r['realtime']['fps']} fps of {r['realtime']['source_fps']} "
              f"(x{r['realtime']['realtime_factor']}), {r['realtime']['frames_dropped']} frames dropped")
        print(f"watchlisted people walking by: {r['watchlisted_appearing']}, with a usable face {r['with_usable_face']}, "
              f"alerted {r['usable_alerted']} ({r['usable_alerted_within_1s']} within 1 s; "
              f"median {r['time_to_alert_s']['median']} s)")
        print(f"false alerts: {r['false_alerts']} over {r['faces_seen']} faces seen")
        print(f"small faces never usable: {r['small_faces']}")
        print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
