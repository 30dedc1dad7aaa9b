"""A node's capacity is measured, not guessed (issue #14): ``vigil node calibrate`` plays a
synthetic crowd as k cameras at once and keeps the largest k every camera of which keeps up
in real time; ``vigil node`` takes its capacity from that file."""

from __future__ import annotations

import json

import pytest

from tests.cli_run import run_cli
from tests.cluster.node_cluster import NatsCluster, Process
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)


def test_the_search_steps_from_the_estimate_to_the_largest_sustained_count(vigil, monkeypatch, tmp_path):
    """A machine that sustains exactly 3 cameras, though one camera alone runs 5x real time."""
    from vigil.cluster import calibration

    tried = []

    def trial(_vigil, _video, k, _seconds, _pack):
        tried.append(k)
        share = 0.01 if k <= 3 else 0.2
        return {"cameras": k, "worst_dropped_share": share, "frames": 100 * k, "dropped": int(share * 100 * k),
                "sustained": share <= calibration.MAX_DROPPED}

    monkeypatch.setattr(calibration, "_fast_fps", lambda *_: (125.0, 25.0))
    monkeypatch.setattr(calibration, "_trial", trial)
    clip = tmp_path / "clip.mp4"
    from tests.live.conftest import two_people_video

    two_people_video(clip, seconds=1.0)
    result = calibration.measure_capacity(vigil, clip, seconds=3)
    assert tried == [5, 4, 3] and result["cameras"] == 3  # down from the estimate until one holds
    assert result["resolution"] == "800x480" and json.loads(calibration.calibration_path(vigil).read_text())[
        "cameras"] == 3


@pytest.mark.slow
def test_calibrate_measures_and_the_node_runs_at_that_capacity(home, tmp_path):
    out = run_cli(home, "node", "calibrate", "--width", "320", "--height", "240", "--fps", "5", "--seconds", "4",
                  "--max-cameras", "2", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["resolution"] == "320x240" and result["fps"] == 5.0
    assert result["trials"] and all(t["frames"] > 0 for t in result["trials"])
    assert result["cameras"] == max([t["cameras"] for t in result["trials"] if t["sustained"]], default=0)
    assert result["one_camera_fast_fps"] > 5.0
    saved = json.loads((home / "node-calibration.json").read_text())
    assert saved["cameras"] == result["cameras"]
    cluster = NatsCluster(tmp_path / "nats", 1).start()
    try:
        node = Process(["node", "--nats", cluster.urls[0], "--name", "calibrated", "--json"])
        _, started = node.wait_for(lambda e: e.get("event") == "started", 90, "node start")
        assert started["capacity"] == result["cameras"]
        assert any("CPU" in note for note in started["inference"])  # what it runs on, said at start
        node.stop()
    finally:
        cluster.stop()
