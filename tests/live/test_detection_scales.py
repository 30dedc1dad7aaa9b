"""The live pipeline's detection scales: a reduced full-frame pass plus rotating full-resolution
detail tiles, so that the smallest face the pipeline compares (``min_eye_distance``) is still
found; and the best-shot rule that skips embeddings that would weigh next to nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import demo_bytes
from vigil.config import LiveSettings, QualitySettings
from vigil.engine.faces import Face
from vigil.engine.images import decode_image
from vigil.engine.yunet import YuNetDetector
from vigil.live import pipeline as pipeline_module
from vigil.live.pipeline import CameraPipeline
from vigil.live.sources import Frame
from vigil.live.tracker import Track


@pytest.mark.parametrize("shape", [(1080, 1920), (720, 1280), (2160, 3840), (1080, 1440)])
def test_detail_tiles_cover_the_frame_in_one_shape_with_overlap(shape):
    tiles = YuNetDetector.tile_grid(shape, 640)
    h, w = shape
    covered = np.zeros(shape, bool)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles}
    assert len(sizes) == 1  # one input shape: ONNX Runtime keeps one memory plan
    tw, th = sizes.pop()
    assert (tw % 32 == 0 or tw == w) and (th % 32 == 0 or th == h)
    xs = sorted({x0 for x0, *_ in tiles})
    ys = sorted({y0 for _, y0, *_ in tiles})
    assert all(b - a <= tw - 64 for a, b in zip(xs, xs[1:]))  # neighbours overlap by 64 px or more
    assert all(b - a <= th - 64 for a, b in zip(ys, ys[1:]))


def _small_face_frame(face_width: float, at=(1300, 700)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Obama's face pasted into a plain 1080p frame with a face box about ``face_width`` px wide."""
    photo = decode_image(demo_bytes("obama.jpg"))
    scale = face_width / 170.0  # the photo's face box is about 170 px wide
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((1080, 1920, 3), (90, 100, 110), np.uint8)
    x, y = at
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    return frame, (x, y, small.shape[1], small.shape[0])


def _inside(face: Face, region) -> bool:
    x, y, w, h = region
    cx, cy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
    return x <= cx <= x + w and y <= cy <= y + h


def test_a_small_face_missed_by_the_reduced_pass_is_tracked_and_compared_via_a_detail_tile(engine):
    live = LiveSettings()
    assert live.detect_max_side < 1920 and live.detail_tile > 0  # the defaults this test is about
    frame, region = _small_face_frame(18)
    # the reduced full-frame pass alone does not see it, not even as a weak detection
    reduced = engine.pack.detector.detect_scales(frame, [live.detect_max_side / 1920], threshold=0.45)
    assert not [f for f in reduced if _inside(f, region)]

    pipe = CameraPipeline("c", engine, matcher=None, live=live, quality=QualitySettings())
    pipe._embed_and_match = lambda image, t, matched, **kw: []  # detection and tracking only
    tiles = engine.pack.detector.tile_grid(frame.shape, live.detail_tile)
    found = None
    for i in range(len(tiles) * live.detect_every):  # one full rotation of the detail tiles
        pipe.process(Frame(frame, i / 25, i, "c", 0.0))
        if pipe.tracker.tracks:
            found = pipe.tracker.tracks[0]
            break
    assert found is not None, "the detail tiles never found the small face"
    assert _inside(found.last_face, region)
    # small as it is, it is large enough to be compared with the watchlist
    assert live.min_eye_distance <= found.last_face.eye_distance < 12
    assert found.last_face.score >= live.min_detection_score
    # and once tracked, the regions of interest (full resolution, upscaled) follow it on the frames between
    roi_before = pipe.stats.roi_detections
    for j in range(i + 1, i + 1 + live.detect_every):
        pipe.process(Frame(frame, j / 25, j, "c", 0.0))
    assert pipe.stats.roi_detections > roi_before
    assert pipe.tracker.tracks and pipe.tracker.tracks[0].id == found.id and pipe.tracker.tracks[0].hits >= 2
    assert pipe.stats.detail_tiles == pipe.stats.full_detections


def test_detail_tiles_rotate_and_stop_when_the_full_pass_is_already_full_resolution(engine):
    pipe = CameraPipeline("c", engine, matcher=None, live=LiveSettings(), quality=QualitySettings())
    tiles = engine.pack.detector.tile_grid((1080, 1920), 640)
    seen = [pipe.detail_regions((1080, 1920, 3))[0] for _ in range(2 * len(tiles))]
    assert seen == tiles + tiles
    assert pipe.detail_regions((540, 960, 3)) == []  # the reduced pass is the full resolution already
    assert pipe.full_scale((720, 1280, 3)) == 1.0 and pipe.detail_regions((720, 1280, 3)) == []  # 720p: full
    assert pipe.full_scale((2160, 3840, 3)) == 0.25 and len(pipe.detail_regions((2160, 3840, 3))) == 1
    full = CameraPipeline("c", engine, matcher=None, live=LiveSettings(detect_max_side=1920), quality=QualitySettings())
    assert full.detail_regions((1080, 1920, 3)) == []
    off = CameraPipeline("c", engine, matcher=None, live=LiveSettings(detail_tile=0), quality=QualitySettings())
    assert off.detail_regions((1080, 1920, 3)) == []


def test_a_reduced_full_frame_pass_gives_first_shots_only_and_the_regions_of_interest_the_rest(engine, monkeypatch):
    frame, _ = _small_face_frame(80, at=(600, 300))
    face = engine.detect(frame)[0]
    pipe = CameraPipeline("c", engine, matcher=None, live=LiveSettings(), quality=QualitySettings())
    quality = {"q": 0.5}

    class Assessed:
        @property
        def score(self):
            return quality["q"]

    monkeypatch.setattr(pipeline_module, "assess", lambda face, crop, settings: Assessed())
    track = Track(1, face.box.astype(np.float64), np.zeros(4), 0.0, 0.0)
    assert pipe._wants_shot(frame, track, face, 0.0, reduced=True)[0]  # a new track: its first shot at once
    track.data["shots"] = [pipeline_module.Shot(0.5, None, 0.0)]
    quality["q"] = 0.9  # an apparent gain, measured at the reduced scale: wait for a region of interest
    assert not pipe._wants_shot(frame, track, face, 0.5, reduced=True)[0]
    assert pipe._wants_shot(frame, track, face, 0.5, reduced=False)[0]
    assert not pipe._wants_shot(frame, track, face, 0.1, reduced=False)[0]  # too soon after the last shot

    # the pipeline says "reduced" for 1080p full-frame passes only, never for regions of interest or 720p
    calls = []
    pipe._embed_and_match = lambda image, t, matched, reduced=False, **kw: calls.append(reduced) or []
    for i in range(4):
        pipe.process(Frame(frame, i / 25, i, "c", 0.0))
    small = cv2.resize(frame, (1280, 720))
    pipe720 = CameraPipeline("c", engine, matcher=None, live=LiveSettings(), quality=QualitySettings())
    pipe720._embed_and_match = pipe._embed_and_match
    pipe720.process(Frame(small, 0.0, 0, "c", 0.0))
    assert calls == [True, False, False, True, False]


def test_the_detector_input_is_the_padded_frame_channel_first_whatever_the_layout_in_memory():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (1080, 1920, 3), np.uint8)
    for image in (frame[100:640, 50:1010], rng.integers(0, 256, (160, 160, 3), np.uint8), frame[:113, :77]):
        want = np.stack([YuNetDetector._pad_to_32(image)]).astype(np.float32).transpose(0, 3, 1, 2)
        got = YuNetDetector._blob([image])
        assert got.shape == want.shape and got.dtype == np.float32 and np.array_equal(got, want)


def test_live_and_behind_real_time_locating_comes_first_and_embeddings_wait(engine):
    live = LiveSettings()
    pipe = CameraPipeline("c", engine, matcher=None, live=live, quality=QualitySettings())
    old = [(Track(i, np.zeros(4), np.zeros(4), 0.0, 0.0, data={"shots": [1]}), None, 0.9, None) for i in (1, 2)]
    new = [(Track(i, np.zeros(4), np.zeros(4), t0, t0), None, 0.5, None) for i, t0 in ((3, 0.0), (4, 0.9))]
    todo = new + old  # as the pipeline sorts them: new tracks first
    t = 1.0
    assert pipe._budget(todo, t, live=False, backlog=0) == todo[: live.embed_budget]  # files: as many as allowed
    assert pipe._budget(todo, t, live=True, backlog=0) == todo[: live.live_embed_budget]  # live, on time
    assert pipe._budget(todo, t, live=True, backlog=1) == new[:1]  # behind: one first shot
    assert pipe._budget(old, t, live=True, backlog=1) == []  # re-embeddings wait for time to spare
    # two frames waiting: only a track that has waited first_shot_wait gets its first shot
    assert pipe._budget(new[::-1], t, live=True, backlog=2) == [new[0]]
    assert pipe._budget(new[1:], t, live=True, backlog=2) == []
    assert pipe._budget(new[1:], 0.91 + live.first_shot_wait, live=True, backlog=2) == new[1:]


def test_a_live_reader_says_how_many_newer_frames_wait(tmp_path):
    from vigil.live.sources import CameraReader, FolderSource

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    reader = CameraReader(FolderSource(tmp_path, "c", fps=1000, realtime=False), keep_latest=True, buffer=3).start()
    reader.join(timeout=10)
    taken = [reader.take(0.1) for _ in range(3)]
    assert [f.backlog for f in taken] == [2, 1, 0] and all(f.live for f in taken)
    fast = CameraReader(FolderSource(tmp_path, "c", fps=1000, realtime=False), keep_latest=False).start()
    frame = fast.take(2.0)
    assert frame is not None and not frame.live and frame.backlog == 0
    fast.stop()
