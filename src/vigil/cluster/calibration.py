"""A node's capacity, measured (``vigil node calibrate``): how many cameras of a given
resolution and frame rate this machine runs at real time, the way a node runs them (one live
runtime per camera, each in its own thread, sharing the cores and the models).

The measure plays a synthetic crowd clip (``vigil synth crowd``, rendered by the command) as
``k`` live cameras at once, each paced at the clip's frame rate, for ``seconds``; ``k``
cameras are sustained when every one of them processes at least ``1 - MAX_DROPPED`` of its
frames (the live reader drops what the loop could not take in time). It starts from the
estimate one camera as fast as possible gives (processed frames per second over the clip's
frame rate), then steps up while ``k`` holds and down while it does not. The result is
written to ``$VIGIL_HOME/node-calibration.json``; ``vigil node`` reads its capacity from there.
"""

from __future__ import annotations

import json
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vigil.engine.model_files import provider_notes
from vigil.errors import VigilError
from vigil.live.matcher import WatchlistMatcher
from vigil.live.runner import LiveRunner, RunOptions, RunSetup
from vigil.live.shot_embedding import ShotEmbedder

CALIBRATION_FILE = "node-calibration.json"
MAX_DROPPED = 0.05


def calibration_path(vigil) -> Path:
    return Path(vigil.settings.home) / CALIBRATION_FILE


def load_calibration(vigil) -> dict | None:
    path = calibration_path(vigil)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VigilError(f"{path}: unreadable calibration ({exc}); run `vigil node calibrate` again") from None


class _NoRecorder:
    """Calibration runs on an empty watchlist: nothing to record, never asked to stop."""

    def on_alert(self, evidence):
        return None

    def on_clip(self, alert_id, data, frames, redaction) -> None:
        pass

    def heartbeat(self) -> bool:
        return True


def _setup(vigil, video: Path, cameras: int, pack: str | None) -> RunSetup:
    engine = vigil.engine(pack)
    shots = ShotEmbedder(engine.pack)
    matcher = WatchlistMatcher([], np.zeros((0, engine.pack.embedder.dim), np.float32), engine.pack.calibration,
                               false_alert_rate=1e-4, split=shots.split)
    sources = [{"camera": f"calibration-{i + 1}", "source": str(video)} for i in range(cameras)]
    return RunSetup(0, "calibration", sources, engine, matcher, shots, vigil.settings.live, vigil.settings.quality)


def _fast_fps(vigil, video: Path, pack: str | None) -> tuple[float, float]:
    """Processed frames per second of one camera as fast as possible, and the clip's frame rate."""
    runner = LiveRunner(_setup(vigil, video, 1, pack), _NoRecorder(), [], RunOptions(fast=True))
    summary = runner.run().summary
    return float(summary["fps"]), float(summary["source_fps"])


def _trial(vigil, video: Path, k: int, seconds: float, pack: str | None) -> dict:
    """``k`` cameras at once, one runtime each in its own thread, as a node runs them."""
    setup = _setup(vigil, video, k, pack)
    runners = []
    for source in setup.sources:
        one = RunSetup(**{**setup.__dict__, "sources": [source]})
        runners.append(LiveRunner(one, _NoRecorder(), [], RunOptions(max_seconds=seconds)))
    summaries: list[dict] = [{} for _ in runners]

    def run(i):
        summaries[i] = runners[i].run().summary

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shares = [(s["frames_dropped"] / s["frames"]) if s.get("frames") else 1.0 for s in summaries]
    worst = max(shares)
    return {"cameras": k, "worst_dropped_share": round(worst, 4), "frames": sum(s.get("frames", 0) for s in summaries),
            "dropped": sum(s.get("frames_dropped", 0) for s in summaries), "sustained": worst <= MAX_DROPPED}


def measure_capacity(vigil, video: Path, *, seconds: float = 15.0, max_cameras: int = 32, pack: str | None = None,
                     say: Callable[[str], None] | None = None) -> dict:
    """Measure and write this node's calibration; returns it."""
    say = say or (lambda message: None)
    import cv2

    cap = cv2.VideoCapture(str(video))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    if not width:
        raise VigilError(f"{video}: cannot read the calibration clip")
    started = time.monotonic()
    fast, src_fps = _fast_fps(vigil, video, pack)
    estimate = max(1, min(max_cameras, math.floor(fast / src_fps))) if src_fps else 1
    say(f"one camera as fast as possible: {fast:.1f} fps against {src_fps:g} fps real time; trying {estimate} "
        f"camera(s) at real time")
    trials: dict[int, dict] = {}
    k = estimate
    while 0 < k <= max_cameras and k not in trials:
        trials[k] = _trial(vigil, video, k, seconds, pack)
        t = trials[k]
        say(f"{k} camera(s): worst camera dropped {t['worst_dropped_share']:.1%} of its frames -> "
            + ("sustained" if t["sustained"] else "not sustained"))
        k = k + 1 if t["sustained"] else k - 1
    sustained = [k for k, t in trials.items() if t["sustained"]]
    cameras = max(sustained) if sustained else 0
    result = {"cameras": cameras, "resolution": f"{width}x{height}", "fps": src_fps,
              "one_camera_fast_fps": round(fast, 2), "max_dropped_share": MAX_DROPPED, "trial_seconds": seconds,
              "trials": [trials[k] for k in sorted(trials)],
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.node()}: {platform.processor() or platform.machine()}, "
                         f"{len(os.sched_getaffinity(0))} cores",
              "inference": provider_notes(), "measure_seconds": round(time.monotonic() - started, 1)}
    path = calibration_path(vigil)
    path.write_text(json.dumps(result, indent=1) + "\n")
    result["path"] = str(path)
    return result
