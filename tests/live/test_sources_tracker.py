"""Sources (files, folders, streams that fail), frame dropping, and the tracker."""

from __future__ import annotations

import time

import cv2
import numpy as np

from vigil.engine.faces import Face
from vigil.live.sources import CameraReader, FolderSource, StreamSource, VideoFileSource
from vigil.live.tracker import Tracker


def _video(path, frames=40, fps=20):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), i * 5 % 255, np.uint8))
    writer.release()
    return path


def test_fast_mode_reads_every_frame(tmp_path):
    reader = CameraReader(VideoFileSource(_video(tmp_path / "v.mp4"), "c", realtime=False), keep_latest=False).start()
    got = []
    while not reader.finished:
        frame = reader.take(0.1)
        if frame is not None:
            got.append(frame.index)
    assert got == list(range(40)) and reader.frames_dropped == 0


def test_live_mode_drops_instead_of_lagging(tmp_path):
    reader = CameraReader(VideoFileSource(_video(tmp_path / "v.mp4", frames=60, fps=50), "c", realtime=True),
                          keep_latest=True, buffer=2).start()
    taken = []
    while not reader.finished:
        frame = reader.take(0.1)
        if frame is not None:
            taken.append(frame)
            time.sleep(0.06)  # a consumer three times slower than the source
    assert reader.frames_read == 60
    assert reader.frames_dropped > 20 and len(taken) + reader.frames_dropped == 60
    lags = [f.wall - (taken[0].wall - taken[0].time) - f.time for f in taken]
    assert max(lags) < 0.2  # at most two frames wait: latency stays bounded


def test_folder_source_skips_a_broken_frame(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((64, 64, 3), 50 * i, np.uint8))
    (tmp_path / "002.png").write_bytes(b"not a png")
    source = FolderSource(tmp_path, "c", fps=100, realtime=False)
    reader = CameraReader(source, keep_latest=False).start()
    frames = []
    while not reader.finished:
        f = reader.take(0.1)
        if f is not None:
            frames.append(f.index)
    assert frames == [0, 1, 3] and len(source.skipped) == 1 and reader.error is None


def test_lost_stream_reconnects_with_backoff_then_reports_lost():
    source = StreamSource("rtsp://127.0.0.1:9/nothing-here", "gate", max_backoff=0.2, give_up_after=1.0)
    reader = CameraReader(source, keep_latest=True).start()
    reader.join(timeout=20)
    health = reader.health()
    assert source.reconnects >= 2 and health["status"] in ("ended", "lost")
    assert source.status == "lost" and reader.frames_read == 0


def _face(x, y, w=40, score=0.9):
    box = np.array([x, y, w, w], np.float32)
    lm = np.array([[x + 0.3 * w, y + 0.4 * w], [x + 0.7 * w, y + 0.4 * w], [x + 0.5 * w, y + 0.6 * w],
                   [x + 0.35 * w, y + 0.8 * w], [x + 0.65 * w, y + 0.8 * w]], np.float32)
    return Face(box, lm, score)


def test_tracker_follows_motion_through_gaps_and_keeps_identities():
    tracker = Tracker(max_gap=0.5)
    ids = {}
    for i in range(20):
        t = i * 0.04
        faces = [_face(10 + 12 * i, 50), _face(400 - 12 * i, 52)]  # two faces crossing paths
        if i % 3:
            faces = []  # detection every third frame only
        matched, _ = tracker.update(faces, t)
        for track, face in matched:
            ids.setdefault(track.id, []).append(float(face.box[0]))
    assert len(ids) == 2
    for xs in ids.values():
        assert all(b > a for a, b in zip(xs, xs[1:])) or all(b < a for a, b in zip(xs, xs[1:]))
    located = tracker.located(0.8)
    assert len(located) == 2


def test_weak_detections_extend_tracks_but_never_start_them():
    tracker = Tracker(high_score=0.7)
    matched, _ = tracker.update([_face(10, 10, score=0.5)], 0.0)
    assert not matched and not tracker.tracks
    tracker.update([_face(10, 10, score=0.9)], 0.0)
    matched, _ = tracker.update([_face(14, 10, score=0.5)], 0.04)
    assert len(matched) == 1 and matched[0][0].hits == 2


def test_tracks_end_after_the_gap():
    tracker = Tracker(max_gap=0.3)
    tracker.update([_face(10, 10)], 0.0)
    _, ended = tracker.update([], 0.5)
    assert len(ended) == 1 and not tracker.tracks
