#!/usr/bin/env python
"""Live pipeline on a real crowd video: real-time factor, faces located, and the peer.

    python bench/live_crowd.py [--video ../shared/data/samples/crowd/street_crowd_1080p.mp4] [--json]

1. Ground truth: YuNet at full resolution on *every* frame, offline (no time limit).
2. Vigil's live pipeline pinned to 1 core and to 2 cores (``sched_setaffinity``, ONNX
   Runtime and OpenCV threads set to match), twice each:
   - as fast as it can go (no pacing, nothing dropped): processed frames per second over the
     source's rate is the real-time factor (decoding included);
   - paced at the file's real frame rate, as a camera would deliver it (frames it cannot keep
     up with are dropped and locate nothing): frames dropped, and the share of ground-truth
     faces located (detected or tracked: a located box with IoU >= 0.3, or the face's centre
     inside it), counted over every source frame.
3. The face_recognition library's per-frame approach (HOG detection + encodings on every
   frame) on the first ``--peer-frames`` frames, in the same run, as a speed ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED, import_face_recognition, skip, write_result

IOU_MATCH = 0.3


def ground_truth(video: Path) -> list[list[list[float]]]:
    from vigil.config import Settings
    from vigil.engine.face_engine import FaceEngine

    engine = FaceEngine.from_settings(Settings())
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        faces = engine.pack.detector.detect_scales(image, [1.0])
        frames.append([f.box.tolist() for f in faces if f.score >= 0.6])
    cap.release()
    return frames


def located_share(truth: list, located: dict[int, list]) -> tuple[float, int, int]:
    from vigil.engine.nms import iou_matrix

    hit = total = 0
    for index, gt in enumerate(truth):
        total += len(gt)
        boxes = located.get(index)
        if not gt or not boxes:
            continue
        g, b = np.array(gt), np.array(boxes)
        iou = iou_matrix(g, b)
        centres = g[:, :2] + g[:, 2:] / 2
        inside = ((centres[:, None, 0] >= b[None, :, 0]) & (centres[:, None, 0] <= b[None, :, 0] + b[None, :, 2]) &
                  (centres[:, None, 1] >= b[None, :, 1]) & (centres[:, None, 1] <= b[None, :, 1] + b[None, :, 3]))
        hit += int(((iou >= IOU_MATCH) | inside).any(axis=1).sum())
    return (hit / total if total else 1.0), hit, total


def worker(video: str, cores: int, out: str, fast: bool = False) -> None:
    """Runs in a subprocess pinned to ``cores`` CPUs."""
    os.sched_setaffinity(0, set(range(cores)))
    cv2.setNumThreads(cores)
    os.environ["VIGIL_ENGINE__THREADS"] = str(cores)
    from importlib import resources

    from vigil.config import Settings
    from vigil.services.deployments import create_deployment
    from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment
    from vigil.services import get_vigil
    from vigil.services.collections import create_collection
    from vigil.services.enrolment import EnrolItem, enrol_image

    home = Path(tempfile.mkdtemp(prefix="vigil-live-bench-"))
    settings = Settings(home=home, engine={"threads": cores})
    vigil = get_vigil(settings)
    actor = vigil.cli_actor()
    engine = vigil.engine()
    create_collection(vigil, actor, "watchlist", "bench", pack="sface", purpose="benchmark")
    enrol_image(vigil, actor, "watchlist", "bench",
                (resources.files("vigil") / "demo_data" / "obama.jpg").read_bytes(), EnrolItem("x", "Barack Obama"))
    dep = create_deployment(vigil, actor, name="bench", location="bench", sources=[{"camera": "c", "source": video}],
                            watchlists=["bench"], window_start=None, window_end=None, trial=True,
                            local_trial=True)  # a local trial, as `vigil watch --camera FILE`
    start_deployment(vigil, actor, dep["id"])
    engine.detect(np.zeros((64, 64, 3), np.uint8))  # models loaded before the clock starts
    result = DeploymentRunner(vigil, actor, dep["id"], [], RunOptions(fast=fast, record_located=True)).run()
    pipe = result.pipelines["c"]
    Path(out).write_text(json.dumps({"summary": result.summary,
                                     "located": {str(i): b for i, b in pipe.stats.located_per_frame},
                                     "stats": {"full": pipe.stats.full_detections, "roi": pipe.stats.roi_detections,
                                               "detail_tiles": pipe.stats.detail_tiles,
                                               "embeddings": pipe.stats.embeddings}}))


def run_pinned(video: Path, cores: int, fast: bool) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    subprocess.run([sys.executable, "-m", "bench.live_crowd", "--worker", str(video), str(cores), str(out),
                    "fast" if fast else "paced"], check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.read_text())


def peer_fps(video: Path, frames: int) -> float | None:
    try:
        fr = import_face_recognition()
    except ImportError:
        return None
    cap = cv2.VideoCapture(str(video))
    done, seconds = 0, 0.0
    while done < frames:
        ok, image = cap.read()
        if not ok:
            break
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        t0 = time.perf_counter()
        boxes = fr.face_locations(rgb, number_of_times_to_upsample=1, model="hog")
        fr.face_encodings(rgb, boxes)
        seconds += time.perf_counter() - t0
        done += 1
    cap.release()
    return done / seconds if seconds else None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        worker(argv[1], int(argv[2]), argv[3], fast=argv[4] == "fast")
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=SHARED / "samples" / "crowd" / "street_crowd_1080p.mp4")
    parser.add_argument("--peer-frames", type=int, default=25)
    parser.add_argument("--name", default="live_crowd_street")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        skip(f"{args.video} not found")
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # "machine" holds it at the end, our own load included
    cap = cv2.VideoCapture(str(args.video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    truth = ground_truth(args.video)
    runs = {}
    for cores in (1, 2):
        fast = run_pinned(args.video, cores, fast=True)["summary"]
        raw = run_pinned(args.video, cores, fast=False)
        located = {int(k): v for k, v in raw["located"].items()}
        share, hit, total = located_share(truth, located)
        s = raw["summary"]
        runs[f"{cores}_core{'s' if cores > 1 else ''}"] = {
            "capacity_fps": fast["fps"], "source_fps": s["source_fps"],
            "realtime_factor": round(fast["fps"] / s["source_fps"], 3),
            "paced": {"processed_fps": s["fps"], "frames": s["frames"], "frames_processed": s["frames_processed"],
                      "frames_dropped": s["frames_dropped"], "faces_located_share": share, "faces_located": hit,
                      "faces_in_truth": total, "faces_compared": s["faces_seen"], "tracks": s["tracks"],
                      **raw["stats"]}}
    peer = peer_fps(args.video, args.peer_frames)
    best = runs["2_cores"]
    result = {
        "video": str(args.video.name), "resolution": size, "source_fps": fps, "frames": len(truth),
        "truth_faces_per_frame": float(np.mean([len(t) for t in truth])),
        "truth_face_width_px_median": float(np.median([b[2] for t in truth for b in t])) if truth else None,
        "load_average_at_start_1_5_15_min": load_at_start,
        "runs": runs,
        "face_recognition_per_frame_fps": peer,
        "speed_ratio_vigil_2_cores_over_peer": (best["capacity_fps"] / peer) if peer else None,
        "method": __doc__.strip().splitlines()[3:12],
    }
    path = write_result(args.name, result)
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in runs.items():
            p = r["paced"]
            print(f"{name}: capacity {r['capacity_fps']:.1f} fps of {r['source_fps']:.0f} (x{r['realtime_factor']:.2f}); "
                  f"paced: {p['frames_dropped']} dropped, faces located {p['faces_located_share'] * 100:.1f}% "
                  f"({p['faces_located']}/{p['faces_in_truth']})")
        if peer:
            print(f"face_recognition per frame: {peer:.2f} fps -> Vigil is {result['speed_ratio_vigil_2_cores_over_peer']:.0f}x")
        print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
