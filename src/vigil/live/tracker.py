"""A face tracker: constant-velocity prediction with greedy IoU association.

ByteTrack-style in spirit: confident detections are matched first, weak ones (below
``high_score``) only extend tracks that already exist, never start new ones. A track whose
predicted box overlaps no detection still counts as located for ``max_gap`` seconds, so
frames where detection is skipped keep their faces. When IoU is 0 (small faces moving a
few widths between detections) a detection whose centre falls within
``centre_gate + max_speed * dt`` face-widths of the prediction (dt: time since the track was
last seen; a new track has no velocity yet) and has a similar size is accepted, nearest first.

Measured choices are in ``bench/live_crowd.py`` and docs/live.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vigil.engine.faces import Face
from vigil.engine.nms import iou_matrix


@dataclass
class Track:
    id: int
    box: np.ndarray  # x, y, w, h at last_time
    velocity: np.ndarray  # per second, for x, y, w, h
    first_time: float
    last_time: float
    camera: str = ""
    hits: int = 1
    last_face: Face | None = None
    data: dict = field(default_factory=dict)  # the pipeline's per-track state (in memory only)

    def predicted(self, t: float) -> np.ndarray:
        dt = max(0.0, t - self.last_time)
        box = self.box + self.velocity * dt
        box[2:] = np.maximum(box[2:], 2.0)
        return box

    @property
    def age(self) -> float:
        return self.last_time - self.first_time


class Tracker:
    def __init__(self, *, iou_threshold: float = 0.25, high_score: float = 0.7, max_gap: float = 0.6,
                 centre_gate: float = 0.8, max_speed: float = 8.0, smoothing: float = 0.6, camera: str = ""):
        self.iou_threshold = iou_threshold
        self.high_score = high_score
        self.max_gap = max_gap
        self.centre_gate = centre_gate
        self.max_speed = max_speed  # face widths per second a face may move beyond its prediction
        self.smoothing = smoothing
        self.camera = camera
        self.tracks: list[Track] = []
        self._next_id = 1

    @property
    def created(self) -> int:
        return self._next_id - 1

    def _new_id(self) -> int:
        tid = self._next_id
        self._next_id += 1
        return tid

    def update(self, faces: list[Face], t: float) -> tuple[list[tuple[Track, Face]], list[Track]]:
        """Associate detections at time ``t``. Returns (matched (track, face) pairs incl. new tracks,
        tracks that ended: no detection for ``max_gap`` seconds)."""
        matched: list[tuple[Track, Face]] = []
        remaining = list(range(len(faces)))
        live = list(self.tracks)
        for stage in ("high", "low"):
            cand = [i for i in remaining if (faces[i].score >= self.high_score) == (stage == "high")]
            if not cand or not live:
                continue
            pairs = self._associate(live, [faces[i] for i in cand], t)
            used_tracks, used_faces = set(), set()
            for ti, fi in pairs:
                track, face = live[ti], faces[cand[fi]]
                self._correct(track, face, t)
                matched.append((track, face))
                used_tracks.add(ti)
                used_faces.add(cand[fi])
            live = [tr for k, tr in enumerate(live) if k not in used_tracks]
            remaining = [i for i in remaining if i not in used_faces]
        for i in remaining:
            if faces[i].score >= self.high_score:
                track = Track(self._new_id(), faces[i].box.astype(np.float64).copy(), np.zeros(4), t, t,
                              camera=self.camera, last_face=faces[i])
                self.tracks.append(track)
                matched.append((track, faces[i]))
        ended = self.expire(t)
        return matched, ended

    def expire(self, t: float) -> list[Track]:
        ended = [tr for tr in self.tracks if t - tr.last_time > self.max_gap]
        if ended:
            self.tracks = [tr for tr in self.tracks if t - tr.last_time <= self.max_gap]
        return ended

    def finish(self) -> list[Track]:
        ended, self.tracks = self.tracks, []
        return ended

    def located(self, t: float) -> list[tuple[Track, np.ndarray]]:
        """Every live track with its predicted box at time t (what 'tracked' means)."""
        return [(tr, tr.predicted(t)) for tr in self.tracks if t - tr.last_time <= self.max_gap]

    def _associate(self, tracks: list[Track], faces: list[Face], t: float) -> list[tuple[int, int]]:
        pred = np.stack([tr.predicted(t) for tr in tracks])
        boxes = np.stack([f.box for f in faces]).astype(np.float64)
        iou = iou_matrix(pred, boxes)
        # centre-distance fallback for small/fast faces
        pc = pred[:, :2] + pred[:, 2:] / 2
        bc = boxes[:, :2] + boxes[:, 2:] / 2
        scale = np.maximum(pred[:, None, 2], boxes[None, :, 2])
        dist = np.linalg.norm(pc[:, None, :] - bc[None, :, :], axis=2) / np.maximum(scale, 1.0)
        size_ratio = np.maximum(pred[:, None, 2], boxes[None, :, 2]) / np.maximum(
            np.minimum(pred[:, None, 2], boxes[None, :, 2]), 1.0)
        dt = np.array([max(0.0, t - tr.last_time) for tr in tracks])[:, None]
        gate = self.centre_gate + self.max_speed * dt
        fallback = (dist < gate) & (size_ratio < 1.6)
        affinity = np.where(iou >= self.iou_threshold, 1.0 + iou, np.where(fallback, 1.0 - dist / (2 * gate), 0.0))
        pairs = []
        while True:
            k = int(np.argmax(affinity))
            ti, fi = divmod(k, affinity.shape[1])
            if affinity[ti, fi] <= 0:
                break
            pairs.append((ti, fi))
            affinity[ti, :] = 0
            affinity[:, fi] = 0
        return pairs

    def _correct(self, track: Track, face: Face, t: float) -> None:
        dt = t - track.last_time
        new_box = face.box.astype(np.float64)
        if dt > 1e-6:
            observed = (new_box - track.box) / dt
            track.velocity = self.smoothing * observed + (1 - self.smoothing) * track.velocity
        track.box = new_box
        track.last_time = t
        track.hits += 1
        track.last_face = face
