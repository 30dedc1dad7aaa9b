"""Alert evidence images: everything but the alerted person's face is redacted.

The rule is inverted on purpose: nothing here detects, tracks or even looks for the other
people in a frame. Every stored image (the alert thumbnail, the probe crop, each evidence-clip
frame) is first reduced as a whole to a coarse grey wash (:func:`redact_except`: the long side
shrunk to ``WASH_CELLS`` cells, smoothed, blended towards grey), and only the alerted face's
region (its box plus ``KEEP_PAD`` of its size) is put back sharp. A bystander who was never
detected, was detected weakly, or whose track expired is redacted exactly like one who was.
Inside the kept region alone, other faces are cut out: those of known tracks, and those the
detector finds on the clip frame itself (:func:`faces_in_kept_region`).

Evidence clips are off unless ``live.evidence_clip_seconds`` > 0. Each camera then keeps, in
memory only, its frames of the last ``seconds`` of *source* time (downscaled to
``evidence_clip_width``) with the boxes of the tracks detected on each. When an alert fires at
source time t, the clip is the frames in [t - seconds, t + seconds]: a frame later than the
window (after a stall in real time) is never taken. In each clip frame the alerted track's face
is kept: its detected box on that frame, or the box interpolated between its detections on
either side; a frame with neither (before the track began, after it ended) is redacted whole.

A kept box must be the alerted person's, not merely the track's (:func:`alerted_boxes`):

- *continuity*: the track's detections are followed outwards from the one the alert fired on;
  each next detection must be where the track's own motion puts it (centre within
  ``JUMP_WIDTHS`` face widths plus ``JUMP_PER_SECOND`` widths per second of the gap, ``FIRST_SPEED``
  while the motion is unknown) and of a like size (``SIZE_RATIO``). The first detection that
  is not, and every one beyond it, is taken for a hand-over of the track to someone else: those
  frames are redacted whole, and nothing is interpolated across the break;
- *no one else in the kept region*: an interpolated frame on which another track's detected
  face has more than ``OTHER_FACE_MAX`` of its box inside the kept region is redacted whole (a
  passer-by crossing in front: the alerted face is not detected because it is hidden, and its
  interpolated box would keep the passer-by's face). On any kept frame, other detected faces
  reaching into the kept region (a passer-by right beside the alerted face) are cut out of it:
  their box + ``KEEP_PAD`` stays washed.

These checks only ever redact more; the wash still needs no detection of anyone else.
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
# the kept box must be the alerted person's (see the module docstring)
JUMP_WIDTHS = 0.6  # a detection may lie this many face widths from where the track's motion puts it ...
JUMP_PER_SECOND = 3.0  # ... plus this many widths per second since the previous one (turns, speed changes)
FIRST_SPEED = 10.0  # widths per second allowed while the track's motion is not yet known
SIZE_RATIO = 1.35  # face width change allowed between two consecutive detections (+ 1.0 per second)
OTHER_FACE_MAX = 0.1  # share of another detected face's box inside an interpolated kept region that voids it


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


def redact_except(image: np.ndarray, keep_box=None, *, outline: tuple[int, int, int] | None = None,
                  cut=()) -> np.ndarray:
    """A copy of ``image`` in which only ``keep_box``'s region (x, y, w, h) is left as it was;
    everything else is washed out. ``outline`` draws a frame of that colour just outside the
    kept region (on the redacted part, so the face itself stays untouched). ``cut``: boxes of
    other faces next to the kept one; their regions (box + ``KEEP_PAD``) stay washed even
    inside the kept region."""
    out = wash(image)
    region = kept_region(keep_box, image.shape) if keep_box is not None else None
    if region is None:
        return out
    x0, y0, x1, y1 = region
    if outline is not None:
        t = max(2, image.shape[1] // 400)
        cv2.rectangle(out, (x0 - t, y0 - t), (x1 + t - 1, y1 + t - 1), outline, t)
    washed = out[y0:y1, x0:x1].copy()
    out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    for box in cut:
        other = kept_region(box, image.shape)
        if other is None:
            continue
        cx0, cy0, cx1, cy1 = max(x0, other[0]), max(y0, other[1]), min(x1, other[2]), min(y1, other[3])
        if cx1 > cx0 and cy1 > cy0:
            out[cy0:cy1, cx0:cx1] = washed[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
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


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])


def confirmed_chain(seen: list[tuple[int, float, np.ndarray]], anchor: int) -> set[int]:
    """Positions in ``seen`` ((frame, time, box) of the track's detections, in time order) that
    continue the detection at ``anchor`` (the alerted face) without a jump in place or size:
    followed outwards both ways, each step judged against the motion of the confirmed steps so
    far; the first that fails ends the chain on that side."""
    ok = {anchor}
    for step in (1, -1):
        chain = [anchor]
        k = anchor + step
        while 0 <= k < len(seen):
            _, t_prev, prev = seen[chain[-1]]
            _, t_cur, cur = seen[k]
            dt = abs(t_cur - t_prev)
            width = (prev[2] + cur[2]) / 2
            ratio = max(prev[2], cur[2]) / max(1e-6, min(prev[2], cur[2]))
            if width <= 0 or ratio > SIZE_RATIO + dt:
                break
            back = [i for i in chain[-5:] if abs(seen[i][1] - t_prev) > 1e-9]
            if back:  # the track's own velocity over its last confirmed detections
                _, t_old, old = seen[back[0]]
                velocity = (_centre(prev) - _centre(old)) / (t_prev - t_old)
                allowed = JUMP_WIDTHS + JUMP_PER_SECOND * dt
            else:
                velocity, allowed = np.zeros(2), JUMP_WIDTHS + FIRST_SPEED * dt
            if np.linalg.norm(_centre(cur) - (_centre(prev) + velocity * (t_cur - t_prev))) > allowed * width:
                break
            ok.add(k)
            chain.append(k)
            k += step
    return ok


def _share_inside(region: tuple[int, int, int, int], box: np.ndarray) -> float:
    """The share of ``box`` (x, y, w, h) that lies inside ``region`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = region
    x, y, w, h = box
    inside = max(0.0, min(x1, x + w) - max(x0, x)) * max(0.0, min(y1, y + h) - max(y0, y))
    return inside / (w * h) if w > 0 and h > 0 else 0.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def alerted_boxes(frames: list[ClipFrame], track_id: int, alert_time: float | None = None
                  ) -> tuple[list[np.ndarray | None], list[str], list[list[np.ndarray]]]:
    """The alerted person's box on each frame, or None (the frame is redacted whole); how each
    was found; and the boxes of other faces to keep washed inside the kept region.

    How: "detected" there, "interpolated" linearly in source time between two confirmed
    detections; "redacted whole" outside the track; "track jumped" from where the track's
    detections stop continuing the alerted face (:func:`confirmed_chain`, from the detection
    nearest ``alert_time``) to the track's end (or back to its start); "other face" for an
    interpolated frame (the alerted face was not detected: hidden?) with another track's face
    in its kept region. On a detected frame such a face (beside the alerted one) is cut out of
    the kept region instead; a second detection of the alerted face itself (IoU >= 0.5 with
    its box on that frame) is not another face."""
    seen = [(i, f.time, f.detected[track_id]) for i, f in enumerate(frames) if track_id in f.detected]
    boxes: list[np.ndarray | None] = [None] * len(frames)
    how = ["redacted whole"] * len(frames)
    cuts: list[list[np.ndarray]] = [[] for _ in frames]
    if not seen:
        return boxes, how, cuts
    at = frames[-1].time if alert_time is None else alert_time
    anchor = min(range(len(seen)), key=lambda k: abs(seen[k][1] - at))
    good = confirmed_chain(seen, anchor)
    first, last = seen[min(good)][0], seen[max(good)][0]
    for j in range(seen[0][0], first):  # the track before the chain: someone else, maybe
        how[j] = "track jumped"
    for j in range(last + 1, seen[-1][0] + 1):
        how[j] = "track jumped"
    for k in sorted(good):
        if k + 1 in good:
            (i, t0, b0), (j, t1, b1) = seen[k], seen[k + 1]
            for m in range(i + 1, j):
                a = 0.0 if t1 <= t0 else (frames[m].time - t0) / (t1 - t0)
                boxes[m], how[m] = (1 - a) * b0 + a * b1, "interpolated"
        i, _, box = seen[k]
        boxes[i], how[i] = box, "detected"
    for j, f in enumerate(frames):
        if boxes[j] is None:
            continue
        region = kept_region(boxes[j], f.image.shape)
        if region is None:
            boxes[j], how[j] = None, "redacted whole"
            continue
        others = [b for tid, b in f.detected.items() if tid != track_id and _share_inside(region, b) > 0]
        if how[j] == "detected":
            cuts[j] = [b for b in others if _iou(b, boxes[j]) < 0.5]
        elif any(_share_inside(region, b) > OTHER_FACE_MAX for b in others):
            boxes[j], how[j] = None, "other face"
        else:
            cuts[j] = others
    return boxes, how, cuts


def faces_in_kept_region(image: np.ndarray, box, find_faces, *, upscale: float = 2.0) -> list[np.ndarray]:
    """Other faces inside the alerted face's kept region, looked for on the clip frame itself
    (boxes in frame coordinates). A belt to the braces of the tracks: a face the live pipeline
    never tracked (too small, at the frame's edge, between two detection passes) can sit inside
    the padded region and would stay sharp. ``find_faces(crop)`` returns boxes (x, y, w, h) in
    the crop; the crop is upscaled so that small faces are found. The alerted face itself
    (IoU >= 0.3 with its box) is not returned."""
    region = kept_region(box, image.shape)
    if region is None:
        return []
    x0, y0, x1, y1 = region
    crop = cv2.resize(image[y0:y1, x0:x1], None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    alerted = np.asarray(box, np.float64)
    others = []
    for found in find_faces(crop):
        fx, fy, fw, fh = (float(v) / upscale for v in found)
        candidate = np.array([fx + x0, fy + y0, fw, fh], np.float64)
        if _iou(candidate, alerted) < 0.3:
            others.append(candidate)
    return others


class EvidenceRecorder:
    def __init__(self, seconds: float, width: int, fps: float, find_faces=None):
        """``find_faces(image) -> boxes``: the detector, to cut faces out of the kept region
        that no track knew (:func:`faces_in_kept_region`); None: tracks only."""
        self.find_faces = find_faces
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
        boxes, how, cuts = alerted_boxes(clip.frames, clip.track_id, clip.alert_time)
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
            untracked = 0
            for f, box, cut in zip(clip.frames, boxes, cuts):
                image = f.image if f.image.shape[:2] == (h, w) else cv2.resize(f.image, (w, h))
                if box is not None and self.find_faces is not None:
                    found = faces_in_kept_region(image, box, self.find_faces)
                    untracked += bool(found)
                    cut = list(cut) + found
                writer.write(redact_except(image, box, cut=cut))
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
                     "frames_redacted_whole": len(how) - how.count("detected") - how.count("interpolated"),
                     # of those, frames whose kept face could not be confirmed as the alerted person's
                     "frames_redacted_whole_track_jumped": how.count("track jumped"),
                     "frames_redacted_whole_other_face_in_kept_region": how.count("other face"),
                     "frames_other_face_cut_from_kept_region": sum(1 for c in cuts if c),
                     # of all frames, those where the detector found a face no track knew in the kept region
                     "frames_untracked_face_cut_from_kept_region": untracked}
        return EncodedClip(b"".join(chunks), len(clip.frames), redaction)
