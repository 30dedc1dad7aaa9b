"""Alert evidence images: everything but the alerted person's face is redacted.

The rule is inverted on purpose: nothing here detects, tracks or even looks for the other
people in a frame. Every stored image (the alert thumbnail, the probe crop, each evidence-clip
frame) is first reduced as a whole to a coarse grey wash (:func:`redact_except`: the long side
shrunk to ``WASH_CELLS`` cells, smoothed, blended towards grey), and only the alerted face's
region (its box plus ``KEEP_PAD`` of its size) is put back sharp. A bystander who was never
detected, was detected weakly, or whose track expired is redacted exactly like one who was.

Evidence clips are off unless ``live.evidence_clip_seconds`` > 0. Each camera then keeps, in
memory only, its frames of the last ``seconds`` of *source* time (downscaled to
``evidence_clip_width``) with the boxes of the tracks detected on each. When an alert fires at
source time t, the clip is the frames in [t - seconds, t + seconds]: a frame later than the
window (after a stall in real time) is never taken. In each clip frame the alerted track's face
is kept: its detected box on that frame, or the box interpolated between its detections on
either side; a frame with neither (before the track began, after it ended) is redacted whole.
The clip is encoded (MJPEG into an in-memory file, never on disk in the clear) at the frame
rate its source times give, and stored encrypted as the alert's ``clip_blob_id`` with a
summary of what was redacted (:attr:`EncodedClip.redaction`, which the audit entry records).
``vigil alert clip ID --out FILE`` exports it (audited).
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

WASH_CELLS = 24  # the long side of a redacted image is this many cells: no face survives it
WASH_GREY = 0.4  # share of flat grey blended in, so a redacted area reads as redacted
KEEP_PAD = 0.15  # the alerted face's kept region: its box grown by this share of its size
METHOD = (f"everything but the alerted face (its box + {int(KEEP_PAD * 100)}%) reduced to a "
          f"{WASH_CELLS}-cell grey wash; no other face is detected or needed")


def kept_region(box, shape: tuple[int, ...], pad: float = KEEP_PAD) -> tuple[int, int, int, int] | None:
    """The alerted face's sharp region (x0, y0, x1, y1) in an image of ``shape``, or None."""
    x, y, w, h = [float(v) for v in box]
    x0, y0 = int(max(0, np.floor(x - w * pad))), int(max(0, np.floor(y - h * pad)))
    x1 = int(min(shape[1], np.ceil(x + w * (1 + pad))))
    y1 = int(min(shape[0], np.ceil(y + h * (1 + pad))))
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def wash(image: np.ndarray) -> np.ndarray:
    """The whole image reduced to ``WASH_CELLS`` cells on its long side, smoothed, greyed."""
    h, w = image.shape[:2]
    s = WASH_CELLS / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(out, 1 - WASH_GREY, np.full_like(out, 128), WASH_GREY, 0)


def redact_except(image: np.ndarray, keep_box=None, *, outline: tuple[int, int, int] | None = None) -> np.ndarray:
    """A copy of ``image`` in which only ``keep_box``'s region (x, y, w, h) is left as it was;
    everything else is washed out. ``outline`` draws a frame of that colour just outside the
    kept region (on the redacted part, so the face itself stays untouched)."""
    out = wash(image)
    region = kept_region(keep_box, image.shape) if keep_box is not None else None
    if region is None:
        return out
    x0, y0, x1, y1 = region
    if outline is not None:
        t = max(2, image.shape[1] // 400)
        cv2.rectangle(out, (x0 - t, y0 - t), (x1 + t - 1, y1 + t - 1), outline, t)
    out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return out


@dataclass
class ClipFrame:
    image: np.ndarray
    time: float  # source seconds
    detected: dict[int, np.ndarray]  # track id -> its box detected on this frame (downscaled coordinates)


@dataclass
class PendingClip:
    alert_id: int
    track_id: int
    alert_time: float
    start: float
    until: float
    frames: list[ClipFrame] = field(default_factory=list)


@dataclass
class EncodedClip:
    data: bytes
    frames: int
    redaction: dict  # what was done, for the audit entry


def alerted_boxes(frames: list[ClipFrame], track_id: int) -> tuple[list[np.ndarray | None], list[str]]:
    """The alerted track's box on each frame: detected there, or interpolated linearly in source
    time between its detections before and after; None outside them. Also how each was found."""
    seen = [(i, f.time, f.detected[track_id]) for i, f in enumerate(frames) if track_id in f.detected]
    boxes: list[np.ndarray | None] = [None] * len(frames)
    how = ["redacted whole"] * len(frames)
    for (i, t0, b0), (j, t1, b1) in zip(seen, seen[1:]):
        for k in range(i + 1, j):
            a = 0.0 if t1 <= t0 else (frames[k].time - t0) / (t1 - t0)
            boxes[k], how[k] = (1 - a) * b0 + a * b1, "interpolated"
    for i, _, box in seen:
        boxes[i], how[i] = box, "detected"
    return boxes, how


class EvidenceRecorder:
    def __init__(self, seconds: float, width: int, fps: float):
        self.seconds = seconds
        self.width = width
        self.fps = fps if fps and 0 < fps <= 240 else 25.0
        self.cap = int(self.seconds * self.fps * 2) + 2  # memory bound if source times misbehave
        self.rings: dict[str, deque] = {}
        self.pending: dict[str, list[PendingClip]] = {}

    def observe(self, camera: str, image: np.ndarray, t: float, detected: list[tuple[int, np.ndarray]]) -> None:
        """Keep a frame at source time ``t`` with the boxes of the tracks detected on it."""
        scale = min(1.0, self.width / image.shape[1])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
        frame = ClipFrame(small, t, {tid: np.asarray(box, np.float64) * scale for tid, box in detected})
        ring = self.rings.setdefault(camera, deque(maxlen=self.cap))
        ring.append(frame)
        while ring and ring[0].time < t - self.seconds:
            ring.popleft()
        for clip in self.pending.get(camera, []):
            if clip.start <= t <= clip.until:
                clip.frames.append(frame)

    def start(self, camera: str, alert_id: int, track_id: int, t: float) -> None:
        """A clip for an alert at source time ``t``: the ring's frames of its window so far."""
        start, until = t - self.seconds, t + self.seconds
        frames = [f for f in self.rings.get(camera, []) if start <= f.time <= t]
        self.pending.setdefault(camera, []).append(PendingClip(alert_id, track_id, t, start, until, frames))

    def finished(self, camera: str, t: float, *, flush: bool = False) -> list[PendingClip]:
        done = [c for c in self.pending.get(camera, []) if flush or t >= c.until]
        if done:
            self.pending[camera] = [c for c in self.pending[camera] if c not in done]
        return done

    def encode(self, clip: PendingClip) -> EncodedClip | None:
        """MJPEG AVI bytes in which only the alerted face is left; None if empty."""
        if not clip.frames:
            return None
        h, w = clip.frames[0].image.shape[:2]
        span = clip.frames[-1].time - clip.frames[0].time
        fps = (len(clip.frames) - 1) / span if span > 0 and len(clip.frames) > 1 else self.fps
        boxes, how = alerted_boxes(clip.frames, clip.track_id)
        fd = os.memfd_create("vigil-clip", 0)
        # OpenCV picks the container from the file name: a private ``clip.avi`` link to the
        # in-memory file gives it one, and the frames go to memory, never to disk.
        folder = tempfile.mkdtemp(prefix="vigil-clip-")
        link = os.path.join(folder, "clip.avi")
        os.symlink(f"/proc/self/fd/{fd}", link)
        try:
            writer = cv2.VideoWriter(link, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
            if not writer.isOpened():
                return None
            for f, box in zip(clip.frames, boxes):
                image = f.image if f.image.shape[:2] == (h, w) else cv2.resize(f.image, (w, h))
                writer.write(redact_except(image, box))
            writer.release()
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.unlink(link)
            os.rmdir(folder)
            os.close(fd)
        redaction = {"method": METHOD, "alert_source_time": round(clip.alert_time, 3),
                     "window_source_seconds": [round(clip.start, 3), round(clip.until, 3)],
                     "frames_source_seconds": [round(clip.frames[0].time, 3), round(clip.frames[-1].time, 3)],
                     "frames_alerted_face_detected": how.count("detected"),
                     "frames_alerted_face_interpolated": how.count("interpolated"),
                     "frames_redacted_whole": how.count("redacted whole")}
        return EncodedClip(b"".join(chunks), len(clip.frames), redaction)
