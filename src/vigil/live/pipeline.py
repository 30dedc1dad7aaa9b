"""The per-camera pipeline: detect, track, embed the best shots, aggregate, match.

Detection runs on the full frame every ``detect_every`` processed frames: whole at full
resolution up to ``detect_full_side`` (720p); larger frames at ``detect_max_side`` (960 px)
plus one full-resolution detail tile per pass, in turn, which finds the small faces the
reduced pass misses (down to ``min_eye_distance``). Between those, each live track is
re-detected inside a small region of interest around its predicted position, all regions
batched into one network call at a fixed size (small faces are upscaled there, which also
steadies their landmarks). New faces are therefore picked up within ``detect_every`` frames
and known faces are followed on every frame for a fraction of the cost.

Evidence is aggregated along each track: the best-quality shots (up to ``max_shots``,
re-embedded when quality improves) are averaged into one template, which is what is
compared with the watchlist. Faces too small for a single frame to be reliable gain most.
With the fusion pack each model's part is averaged on its own and the costlier model is
consulted only when it could change the outcome (:mod:`vigil.live.shot_embedding`); in real
time it runs in a worker process and its answer is matched on a later frame
(:mod:`vigil.live.second_model_worker`).

Privacy: a track's crops and templates live only in the ``Track.data`` dict in memory;
when a track ends they are dropped with it. Only counts survive, and alerts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import cv2
import numpy as np

from vigil.config import LiveSettings, QualitySettings
from vigil.engine.align import align_face
from vigil.engine.face_engine import FaceEngine
from vigil.engine.faces import Face
from vigil.engine.nms import iou_matrix
from vigil.engine.quality import assess
from vigil.live.matcher import WatchlistMatcher
from vigil.live.shot_embedding import ShotEmbedder, ShotVectors, weighted_template
from vigil.live.sources import Frame
from vigil.live.tracker import Track, Tracker

WARM_ROI_BATCH = 8  # regions of interest batch sizes run once before the first frame
_warmed: "weakref.WeakSet" = weakref.WeakSet()  # recognisers (one per loaded pack) already warmed up


@dataclass
class Shot:
    quality: float
    vectors: ShotVectors
    time: float


@dataclass
class MatchEvent:
    """A track's aggregated template passed an entry's threshold: an alert candidate."""

    camera: str
    track_id: int
    entry_index: int
    score: float
    threshold: float
    time: float  # source seconds
    frame: np.ndarray  # the frame at the moment of the match (memory only)
    face: Face  # the alerted face: the only region the stored evidence keeps (live/evidence.py)
    first_seen: float
    runner_up: tuple[int, float, float] | None = None  # the closest other subject (index, score, threshold)


@dataclass
class CameraStats:
    frames_processed: int = 0
    full_detections: int = 0
    roi_detections: int = 0
    detail_tiles: int = 0  # full-resolution detail tiles run with the full-frame detections
    tracks: int = 0
    faces_compared: int = 0  # tracks that reached the watchlist at least once ("faces seen")
    embeddings: int = 0
    second_embeddings: int = 0  # fusion pack: shots the second (costlier) model embedded
    second_model_worker_failed: bool = False
    located_per_frame: list = field(default_factory=list)


class CameraPipeline:
    def __init__(self, camera: str, engine: FaceEngine, matcher: WatchlistMatcher, live: LiveSettings,
                 quality: QualitySettings, *, record_located: bool = False, worker=None):
        self.camera = camera
        self.engine = engine
        self.detector = engine.pack.detector
        self.embedder = ShotEmbedder(engine.pack)
        self.worker = worker if self.embedder.cascade else None
        self.matcher = matcher
        self.live = live
        self.quality = quality
        self.tracker = Tracker(max_gap=live.track_max_gap, high_score=live.min_detection_score, camera=camera)
        self.stats = CameraStats()
        self.record_located = record_located
        self._frame_no = 0
        self._tiles = None  # (frame shape, detail tiles)
        self._next_tile = 0
        self._warm_up()

    def _warm_up(self) -> None:
        """Run the networks once at each batch size the first frames will ask for, before any
        frame (once per loaded model): ONNX Runtime's first run at an input shape plans its
        memory and costs up to 1.5x a later one (SFace on four faces: 210 ms against 147), and
        on the street clip those first runs, all on the first frames, dropped frames 1-5."""
        if self.embedder.first in _warmed:
            return
        _warmed.add(self.embedder.first)
        blank = np.zeros((self.live.roi_size, self.live.roi_size, 3), np.uint8)
        for n in range(1, WARM_ROI_BATCH + 1):
            self.detector.detect_raw([blank] * n, 1.0)
        frame = np.zeros((1080, 1920, 3), np.uint8)  # the usual camera: its full-frame pass and detail tile
        self.detector.detect_scales(frame, [self.full_scale(frame.shape)], threshold=1.0,
                                    regions=self.detail_regions(frame.shape)[:1])
        self._next_tile = 0
        if self.embedder.first.size == 112:
            crop = np.zeros((112, 112, 3), np.uint8)
            for n in range(1, self.live.embed_budget + 1):
                self.embedder.first.embed_aligned([crop] * n)

    # -- detection ------------------------------------------------------------------------------
    def full_scale(self, shape: tuple[int, ...]) -> float:
        """The full-frame pass's scale: 1 up to ``detect_full_side``, ``detect_max_side`` above."""
        longest = max(shape[:2])
        if longest <= self.live.detect_full_side:
            return 1.0
        return min(1.0, self.live.detect_max_side / longest)

    def detail_regions(self, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """The full-resolution detail tile(s) for this full-frame detection: one per pass, in
        turn, when the full-frame pass runs downscaled (none otherwise)."""
        if self.live.detail_tile <= 0 or self.full_scale(shape) >= 1.0:
            return []
        if self._tiles is None or self._tiles[0] != shape[:2]:
            self._tiles = (shape[:2], self.detector.tile_grid(shape, self.live.detail_tile))
        tiles = self._tiles[1]
        tile = tiles[self._next_tile % len(tiles)]
        self._next_tile += 1
        return [tile]

    def _full_detect(self, image: np.ndarray) -> list[Face]:
        scale = self.full_scale(image.shape)
        regions = self.detail_regions(image.shape)
        self.stats.full_detections += 1
        self.stats.detail_tiles += len(regions)
        return self.detector.detect_scales(image, [scale], threshold=self.live.track_detection_score,
                                           regions=regions)

    def _roi_detect(self, image: np.ndarray, t: float) -> list[Face]:
        live = self.tracker.located(t)
        if not live:
            return []
        h, w = image.shape[:2]
        size = self.live.roi_size
        crops, origins = [], []
        for _, box in live:
            side = max(box[2], box[3]) * 2.2 + 16
            cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
            x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            crop = image[y0:y1, x0:x1]
            sx, sy = (x1 - x0) / size, (y1 - y0) / size
            crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))
            origins.append((x0, y0, sx, sy))
        if not crops:
            return []
        self.stats.roi_detections += 1
        raw = self.detector.detect_raw(crops, self.live.track_detection_score)
        found: list[Face] = []
        for (boxes, lms, scores), (x0, y0, sx, sy) in zip(raw, origins):
            if len(scores) == 0:
                continue
            i = int(np.argmax(scores))
            box = boxes[i] * np.array([sx, sy, sx, sy], np.float32) + np.array([x0, y0, 0, 0], np.float32)
            lm = lms[i] * np.array([sx, sy], np.float32) + np.array([x0, y0], np.float32)
            found.append(Face(box=box.astype(np.float32), landmarks=lm.astype(np.float32), score=float(scores[i])))
        if len(found) > 1:  # two regions may have caught the same face
            keep = []
            for face in sorted(found, key=lambda f: -f.score):
                if not keep or iou_matrix(face.box[None], np.stack([k.box for k in keep])).max() < 0.4:
                    keep.append(face)
            found = keep
        return found

    # -- per frame --------------------------------------------------------------------------------
    def process(self, frame: Frame) -> tuple[list[MatchEvent], list[Track]]:
        """Returns (match events, tracks that ended on this frame)."""
        image, t = frame.image, frame.time
        full = self._frame_no % max(1, self.live.detect_every) == 0
        self._frame_no += 1
        self.stats.frames_processed += 1
        faces = self._full_detect(image) if full else self._roi_detect(image, t)
        matched, ended = self.tracker.update(faces, t)  # weak detections only extend tracks
        self.stats.tracks = self.tracker.created
        if self.record_located:
            self.stats.located_per_frame.append(
                (frame.index, [b.tolist() for _, b in self.tracker.located(t)]))
        events = self._embed_and_match(image, t, matched, reduced=full and self.full_scale(image.shape) < 1.0,
                                       live=frame.live, backlog=frame.backlog)
        for track in ended:
            self._end(track)
        return events, ended

    def _wants_shot(self, image: np.ndarray, track: Track, face: Face, t: float, reduced: bool = False):
        """(embed this face?, quality, aligned crop). Cheap checks first; quality is measured
        only when a shot is possible. ``reduced``: the face comes from a downscaled full-frame
        pass; a track that already has a shot waits for the regions of interest, where it is
        measured at full resolution or more (its score and landmarks from the reduced pass made
        apparent quality gains that bought nothing: 12 of 35 re-embeddings on the street clip)."""
        if face.eye_distance < self.live.min_eye_distance or face.score < self.live.min_detection_score:
            return False, 0.0, None
        shots: list[Shot] = track.data.get("shots", [])
        if shots and (reduced or len(shots) >= self.live.max_shots or t - max(s.time for s in shots) < 0.2):
            return False, 0.0, None
        crop = align_face(image, face.landmarks)
        q = assess(face, crop, self.quality).score
        if not shots:
            return True, q, crop
        if q > max(s.quality for s in shots) + self.live.reembed_gain:
            return True, q, crop
        if len(shots) < 2 and t - track.first_time > 0.3:
            return True, q, crop  # a second look soon after the first steadies the average
        return False, q, crop

    def _embed_and_match(self, image: np.ndarray, t: float, matched: list[tuple[Track, Face]],
                         reduced: bool = False, live: bool = False, backlog: int = 0) -> list[MatchEvent]:
        events = self._answered(image, t, matched)
        todo = []
        for track, face in matched:
            if backlog and track.data.get("shots"):
                continue  # behind real time: re-embeddings wait (see _budget)
            want, q, crop = self._wants_shot(image, track, face, t, reduced)
            if want:
                todo.append((track, face, q, crop))
        todo.sort(key=lambda x: (len(x[0].data.get("shots", [])), -x[2]))  # new tracks first
        todo = self._budget(todo, t, live, backlog)
        if not todo:
            return events
        vectors = self.embedder.embed(image, [f for _, f, _, _ in todo], [c for *_, c in todo])
        self.stats.embeddings += len(todo)
        for (track, face, q, _), vec in zip(todo, vectors):
            shots = track.data.setdefault("shots", [])
            shots.append(Shot(q, vec, t))
            shots.sort(key=lambda s: -s.quality)
            del shots[self.live.max_shots:]
            if not track.data.get("compared"):
                track.data["compared"] = True
                self.stats.faces_compared += 1
            track.data["best_crop"] = (q, face) if q >= track.data.get("best_crop", (-1, None))[0] else \
                track.data["best_crop"]
            event = self._decide(track, face, image, t)
            if event:
                events.append(event)
        return events

    def _budget(self, todo: list, t: float, live: bool, backlog: int) -> list:
        """The shots embedded on this frame (``todo`` is sorted, new tracks first). A file as fast
        as possible: up to ``embed_budget``. Live, on time (no newer frame waiting): up to
        ``live_embed_budget``. Live and behind (``backlog`` newer frames waiting; one more arrival
        and the oldest is dropped): locating faces on every frame comes first, so only first
        shots, one per frame, and with two or more frames waiting only for a track that has
        waited ``first_shot_wait`` seconds; re-embeddings wait for a frame with time to spare.
        A crowd arriving at once then costs alert latency, not frames (on the street clip the
        first frame's 9 new faces took 250 ms to embed four at once: 5 frames dropped)."""
        if not live:
            return todo[: self.live.embed_budget]
        if not backlog:
            return todo[: self.live.live_embed_budget]
        todo = [x for x in todo if not x[0].data.get("shots")]
        if backlog >= 2:
            todo = [x for x in todo if t - x[0].first_time >= self.live.first_shot_wait]
        return todo[:1]

    def _answered(self, image: np.ndarray, t: float, matched: list[tuple[Track, Face]]) -> list[MatchEvent]:
        """Tracks located in this frame whose second-model answer has arrived: match them again."""
        events = []
        if self.worker is None:
            return events
        if not self.worker.alive:  # the worker died: carry on in line (slower) rather than go blind
            self.worker = None
            self.stats.second_model_worker_failed = True
            return events
        for track, face in matched:
            pending = track.data.get("pending")
            if not pending:
                continue
            vectors = self.worker.take(pending[0])
            if vectors is None:
                continue
            for shot, vector in zip(pending[1], vectors):
                shot.secondary = vector
            del track.data["pending"]
            event = self._decide(track, face, image, t, new_shot=False)
            if event:
                events.append(event)
        return events

    def _decide(self, track: Track, face: Face, image: np.ndarray, t: float,
                new_shot: bool = True) -> MatchEvent | None:
        """Match the track's template; an event if it passes (once per track and subject).
        A decision on a second-model answer revises the latest shot's vote instead of adding one."""
        found = self._match(track)
        history = track.data.setdefault("history", [])
        if history and not new_shot:
            history.pop()
        if found is None:  # waiting for the second model: a "no" until its answer revises it
            history.append(False)
            del history[: -max(1, self.live.confirm_n)]
            return None
        idx, score, threshold = found
        history.append(score >= threshold)
        del history[: -max(1, self.live.confirm_n)]
        alerted: set = track.data.setdefault("alerted", set())
        subject = self.matcher.entries[idx].subject_id if idx >= 0 else None
        if idx >= 0 and score >= threshold and sum(history) >= self.live.confirm_m and subject not in alerted:
            alerted.add(subject)  # once per track and subject
            return MatchEvent(self.camera, track.id, idx, score, threshold, t, image, face, track.first_time,
                              self._runner_up(track, idx))
        return None

    def _runner_up(self, track: Track, best_index: int) -> tuple[int, float, float] | None:
        """The closest other watchlist subject for the track's template (single-model
        watchlists; a fused cascade reports none)."""
        if self.embedder.cascade:
            return None
        shots: list[Shot] = track.data["shots"]
        weights = np.array([max(s.quality, 0.05) for s in shots], np.float32)
        return self.matcher.runner_up(weighted_template([s.vectors.primary for s in shots], weights), best_index)

    def _match(self, track: Track) -> tuple[int, float, float] | None:
        shots: list[Shot] = track.data["shots"]
        weights = np.array([max(s.quality, 0.05) for s in shots], np.float32)
        first = weighted_template([s.vectors.primary for s in shots], weights)
        if not self.embedder.cascade:
            return self.matcher.best(first)

        def second() -> np.ndarray | None:
            missing = [s.vectors for s in shots if s.vectors.secondary is None]
            if missing and self.worker is not None:
                # real time: ask the worker (one request out per track at a time) and decide now on
                # the shots it has already answered for, if any; its answer triggers a new decision
                if "pending" not in track.data:
                    track.data["pending"] = (self.worker.submit([m.chip for m in missing]), missing)
                    self.stats.second_embeddings += len(missing)
                answered = [i for i, s in enumerate(shots) if s.vectors.secondary is not None]
                if not answered:
                    return None
                return weighted_template([shots[i].vectors.secondary for i in answered], weights[answered])
            self.stats.second_embeddings += self.embedder.complete(missing)
            return weighted_template([s.vectors.secondary for s in shots], weights)

        return self.matcher.best_fused(first, second)

    def _end(self, track: Track) -> None:
        """Forget everything about a track: its shots, crops and templates live nowhere else
        (a second-model request still out is forgotten too, its answer dropped on arrival)."""
        pending = track.data.get("pending")
        if pending and self.worker is not None:
            self.worker.forget(pending[0])
        track.data.clear()
        track.last_face = None

    def finish(self) -> list[Track]:
        ended = self.tracker.finish()
        for track in ended:
            self._end(track)
        return ended
