"""Evidence clips: a few seconds around an alert, every face but the alerted one blurred.

Off unless ``live.evidence_clip_seconds`` > 0. Each camera then keeps a ring of its most
recent frames, downscaled to ``evidence_clip_width``, with the boxes of every tracked face,
in memory only. When an alert fires, frames keep being collected for the same number of
seconds after it; then every face box except the alerted track's is blurred, the clip is
encoded (MJPEG into an in-memory file, never on disk in the clear) and stored encrypted as the
alert's ``clip_blob_id``. ``vigil alert clip ID --out FILE`` exports it (audited).
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from vigil.live.alerts import blur_boxes


@dataclass
class ClipFrame:
    image: np.ndarray
    time: float
    boxes: dict[int, np.ndarray]  # track id -> box, in the downscaled frame's coordinates


@dataclass
class PendingClip:
    alert_id: int
    track_id: int
    until: float
    frames: list[ClipFrame] = field(default_factory=list)


class EvidenceRecorder:
    def __init__(self, seconds: float, width: int, fps: float):
        self.seconds = seconds
        self.width = width
        self.fps = fps or 25.0
        self.rings: dict[str, deque] = {}
        self.pending: dict[str, list[PendingClip]] = {}

    def observe(self, camera: str, image: np.ndarray, t: float, tracks: list[tuple[int, np.ndarray]]) -> None:
        scale = min(1.0, self.width / image.shape[1])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
        frame = ClipFrame(small, t, {tid: np.asarray(box, np.float32) * scale for tid, box in tracks})
        ring = self.rings.setdefault(camera, deque(maxlen=max(1, int(self.seconds * self.fps) + 1)))
        ring.append(frame)
        for clip in self.pending.get(camera, []):
            clip.frames.append(frame)

    def start(self, camera: str, alert_id: int, track_id: int, t: float) -> None:
        clip = PendingClip(alert_id, track_id, t + self.seconds, list(self.rings.get(camera, [])))
        self.pending.setdefault(camera, []).append(clip)

    def finished(self, camera: str, t: float, *, flush: bool = False) -> list[PendingClip]:
        done = [c for c in self.pending.get(camera, []) if flush or t >= c.until]
        if done:
            self.pending[camera] = [c for c in self.pending[camera] if c not in done]
        return done

    def encode(self, clip: PendingClip) -> bytes | None:
        """MJPEG AVI bytes with every face but the alerted track's blurred; None if empty."""
        if not clip.frames:
            return None
        h, w = clip.frames[0].image.shape[:2]
        fd = os.memfd_create("vigil-clip", 0)
        # OpenCV picks the container from the file name: a private ``clip.avi`` link to the
        # in-memory file gives it one, and the frames go to memory, never to disk.
        folder = tempfile.mkdtemp(prefix="vigil-clip-")
        link = os.path.join(folder, "clip.avi")
        os.symlink(f"/proc/self/fd/{fd}", link)
        try:
            writer = cv2.VideoWriter(link, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (w, h))
            if not writer.isOpened():
                return None
            for f in clip.frames:
                others = [box for tid, box in f.boxes.items() if tid != clip.track_id]
                image = blur_boxes(f.image, others) if others else f.image
                if image.shape[:2] != (h, w):
                    image = cv2.resize(image, (w, h))
                writer.write(image)
            writer.release()
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.unlink(link)
            os.rmdir(folder)
            os.close(fd)
