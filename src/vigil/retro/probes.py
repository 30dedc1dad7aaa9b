"""Turning a probe (image or video) into the faces to search.

Video probes are sampled (``sample_fps`` frames per second), faces are tracked, and each
track contributes one template: the average of its best-quality shots. Uploaded video bytes
are decoded from an anonymous in-memory file (``memfd``), never written to disk.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vigil.engine.face_engine import FaceEngine
from vigil.engine.images import crop_around, decode_image, validate_array
from vigil.engine.onnx_embedder import l2_normalise
from vigil.engine.quality import QualityReport
from vigil.errors import ImageError, VigilError
from vigil.progress import progress_bar

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
VIDEO_MAGIC = (b"\x1aE\xdf\xa3", b"RIFF", b"\x00\x00\x00\x18ftyp", b"\x00\x00\x00\x1cftyp", b"\x00\x00\x00 ftyp")


@dataclass
class ProbeFace:
    box: list[int]
    quality: QualityReport
    vector: np.ndarray
    crop: np.ndarray  # BGR crop for contact sheets (memory only)
    time: float | None = None
    track_id: int | None = None
    shots: int = 1


def looks_like_video(data: bytes, name: str = "") -> bool:
    if Path(name).suffix.lower() in VIDEO_EXTS:
        return True
    head = data[:12]
    return head[4:8] == b"ftyp" or head.startswith(b"\x1aE\xdf\xa3") or (head.startswith(b"RIFF") and data[8:12] == b"AVI ")


def image_probe_faces(engine: FaceEngine, data: bytes, name: str, max_pixels: int) -> list[ProbeFace]:
    image = decode_image(data, max_pixels=max_pixels, name=name)
    return [ProbeFace(f.face.box_list(), f.quality, f.vector, crop_around(image, f.face.box)) for f in engine.analyse(image)]


@contextmanager
def video_capture(data: bytes | None = None, path: Path | None = None):
    fd = None
    try:
        if path is not None:
            cap = cv2.VideoCapture(str(path))
        else:
            fd = os.memfd_create("vigil-probe", 0)
            os.write(fd, data)
            cap = cv2.VideoCapture(f"/proc/self/fd/{fd}")
        if not cap.isOpened():
            raise ImageError("the video could not be opened (unsupported codec, or not a video)")
        yield cap
    finally:
        if "cap" in locals():
            cap.release()
        if fd is not None:
            os.close(fd)


def video_probe_faces(engine: FaceEngine, make_tracker, *, data: bytes | None = None, path: Path | None = None,
                      sample_fps: float = 5.0, max_seconds: float = 600.0, best_shots: int = 3,
                      show_progress: bool = False) -> list[ProbeFace]:
    """``make_tracker(max_gap=seconds)`` builds the face tracker (the live runtime's, handed in
    by the caller, so that retro needs no import of it). ``show_progress`` draws a progress bar
    over the video's frames on stderr."""
    with video_capture(data, path) as cap, \
            progress_bar("Reading the video", int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None,
                         enabled=show_progress) as advance:
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        step = max(1, int(round(fps / sample_fps)))
        tracker = make_tracker(max_gap=2.5 / sample_fps + 0.2)
        shots: dict[int, list[tuple[float, float, ProbeFace]]] = {}
        index, read_any = 0, False
        while True:
            ok = cap.grab()
            if not ok:
                break
            advance()
            read_any = True
            t = index / fps
            if t > max_seconds:
                raise VigilError(f"video probes are limited to {max_seconds:.0f} s; cut the clip first")
            if index % step == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    frame = validate_array(frame)
                    analysed = engine.analyse(frame, engine.detect(frame, still=False))
                    pairs, _ = tracker.update([a.face for a in analysed], t)
                    by_face = {id(a.face): a for a in analysed}
                    for track, face in pairs:
                        a = by_face[id(face)]
                        pf = ProbeFace(a.face.box_list(), a.quality, a.vector, crop_around(frame, a.face.box), t, track.id)
                        shots.setdefault(track.id, []).append((a.quality.score, t, pf))
            index += 1
        if not read_any:
            raise ImageError("the video holds no readable frames (empty or corrupt)")
    faces = []
    for track_id, items in shots.items():
        items.sort(key=lambda s: -s[0])
        top = [s[2] for s in items[:best_shots]]
        vector = l2_normalise(np.mean([p.vector for p in top], axis=0))
        best = top[0]
        faces.append(ProbeFace(best.box, best.quality, vector, best.crop, best.time, track_id, len(items)))
    faces.sort(key=lambda f: (f.time or 0.0, f.track_id or 0))
    return faces
