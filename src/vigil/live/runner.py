"""The live runtime: camera readers, one inference loop shared by all cameras, alert fan-out,
cross-camera de-duplication, stream health, heartbeats, and the final summary.

One decode thread per camera; the models are shared and run in this loop, which visits the
cameras in turn and always takes each one's newest frame (live mode) so that processing that
falls behind drops frames (counted) instead of building up latency.

The runtime touches no database and checks no permission. What must outlive a run (alerts,
evidence clips, the heartbeat that tells other processes this run is alive) goes through a
:class:`RunRecorder` the caller supplies (``vigil.services.live_runs`` implements it with the
store and the audit log).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from vigil.config import LiveSettings, QualitySettings
from vigil.engine.face_engine import FaceEngine
from vigil.live.alerts import AlertEvidence, AlertSink, alert_evidence, runner_up_record
from vigil.live.matcher import WatchlistMatcher
from vigil.live.pipeline import CameraPipeline
from vigil.live.shot_embedding import ShotEmbedder
from vigil.live.sources import CameraReader, FolderSource, VideoFileSource, open_source
from vigil.timeutil import utcnow

BEHIND_SHARE = 0.2  # a camera dropping more than this share of its frames over a health period is behind


class RunRecorder(Protocol):
    """Where a run's lasting results go."""

    def on_alert(self, evidence: AlertEvidence) -> dict | None:
        """Store the alert; return its payload (with its ``id``) for the sinks, or None when
        the same person was alerted elsewhere within the de-duplication window (another
        process's camera: a cluster node asks the cluster first)."""

    def on_clip(self, alert_id: int, data: bytes, frames: int, redaction: dict) -> None:
        """Store an alert's evidence clip; ``redaction`` says what was done to its frames."""

    def heartbeat(self) -> bool:
        """Say the run is alive; False when it must stop (a stop was requested elsewhere)."""


@dataclass
class RunOptions:
    fast: bool = False  # files as fast as possible (no pacing, no drops)
    max_seconds: float | None = None  # stop after this much wall time
    record_located: bool = False  # keep per-frame located boxes (benchmarks)
    health_every: float = 5.0
    heartbeat_every: float = 5.0  # how often the recorder hears the run is alive


@dataclass
class RunResult:
    summary: dict
    alerts: list[dict] = field(default_factory=list)
    pipelines: dict = field(default_factory=dict)


@dataclass
class RunSetup:
    """Everything the runtime needs, already loaded by the caller."""

    deployment_id: int
    deployment_name: str
    sources: list[dict]  # [{"camera": name, "source": spec}]
    engine: FaceEngine
    matcher: WatchlistMatcher
    shots: ShotEmbedder
    live: LiveSettings
    quality: QualitySettings
    window_end: datetime | None = None


class LiveRunner:
    """Opens the sources at once (a missing file or a bad URL raises here, before any frame)."""

    def __init__(self, setup: RunSetup, recorder: RunRecorder, sinks: list[AlertSink], options: RunOptions):
        self.setup, self.recorder, self.sinks, self.options = setup, recorder, sinks, options
        self.deployment_id, self.deployment_name = setup.deployment_id, setup.deployment_name
        self.engine, self.matcher, self.live = setup.engine, setup.matcher, setup.live
        self.window_end = setup.window_end
        self.stop_event = threading.Event()
        self.readers = [CameraReader(open_source(s["source"], s["camera"], realtime=not options.fast,
                                                 start_at=float(s.get("start_at") or 0.0)),
                                     keep_latest=not options.fast, buffer=self.live.frame_buffer)
                        for s in setup.sources]
        # In real time the fusion cascade's dlib half runs in its own process (it holds the GIL);
        # as fast as possible (files, benchmarks) it runs in line, which keeps runs repeatable.
        self.worker = None
        if setup.shots.cascade and not options.fast:
            from vigil.live.second_model_worker import SecondModelWorker

            self.worker = SecondModelWorker(flip=setup.shots.second.flip)
        self.pipelines = {r.camera: CameraPipeline(r.camera, self.engine, self.matcher, self.live, setup.quality,
                                                   record_located=options.record_located, worker=self.worker)
                          for r in self.readers}
        self.evidence = None
        if self.live.evidence_clip_seconds > 0:
            from vigil.live.evidence import EvidenceRecorder

            fps = max((getattr(r.source, "fps", 25.0) for r in self.readers), default=25.0)
            detector = self.engine.pack.detector

            def find_faces(crop):
                return [f.box for f in detector.detect(crop, threshold=0.3)]

            self.evidence = EvidenceRecorder(self.live.evidence_clip_seconds, self.live.evidence_clip_width, fps,
                                             find_faces=find_faces)
        self._recent: dict[str, tuple[float, int]] = {}  # subject -> (source time, alert id) of its last alert
        self.duplicates = 0
        self.alerts: list[dict] = []
        self.latencies: list[float] = []
        self.stopped_because: str | None = None
        self.behind_cameras: set[str] = set()
        self._behind_marks: dict[str, tuple[int, int]] = {}

    def stop(self, because: str = "stopped") -> None:
        self.stopped_because = self.stopped_because or because
        self.stop_event.set()

    def run(self) -> RunResult:
        """Run until the sources end, the window closes, ``max_seconds`` pass or a stop; an
        exception from the loop propagates (the caller records the failure)."""
        start_wall = time.monotonic()
        for reader in self.readers:
            reader.start()
        next_health = start_wall + self.options.health_every
        next_beat = start_wall + self.options.heartbeat_every
        try:
            while not self.stop_event.is_set():
                if all(r.finished for r in self.readers):
                    break
                if self.options.max_seconds and time.monotonic() - start_wall > self.options.max_seconds:
                    break
                if self.window_end and utcnow() >= self.window_end:
                    self._send({"type": "notice", "message": "deployment window closed: stopping"})
                    break
                took = False
                for reader in self.readers:
                    frame = reader.take(timeout=0.0 if took else 0.02)
                    if frame is None:
                        continue
                    took = True
                    self._process(frame)
                for reader in self.readers:  # a camera that cannot be reached is said at once
                    for message in reader.pop_warnings():
                        self._send({"type": "notice", "camera": reader.camera, "message": message})
                now = time.monotonic()
                if now >= next_health:
                    next_health += self.options.health_every
                    self._send({"type": "health", "cameras": [r.health() for r in self.readers]})
                    self._say_if_behind()
                if now >= next_beat:
                    next_beat = now + self.options.heartbeat_every
                    if not self.recorder.heartbeat():
                        self.stop("a stop was requested")
                        self._send({"type": "notice", "message": "stop requested: stopping"})
        finally:
            self._say_if_behind()  # the last period too: a short run that fell behind says so
            for reader in self.readers:
                reader.stop()
            for reader in self.readers:
                reader.join(timeout=2.0)
            if self.worker:
                self.worker.close()
        wall = time.monotonic() - start_wall
        if self.evidence:
            for camera in self.pipelines:
                self._store_clips(self.evidence.finished(camera, 0.0, flush=True))
        for pipe in self.pipelines.values():
            pipe.finish()
        return RunResult(self._summary(wall), self.alerts, self.pipelines)

    def _say_if_behind(self) -> None:
        """Live mode drops frames rather than lag; when a camera drops more than
        ``BEHIND_SHARE`` of its frames over a health period, say so while it runs, with what
        to do (a file: --fast; a camera: fewer cameras per process or a faster machine)."""
        for reader in self.readers:
            read, dropped = reader.frames_read, reader.frames_dropped
            last_read, last_dropped = self._behind_marks.get(reader.camera, (0, 0))
            self._behind_marks[reader.camera] = (read, dropped)
            new_read, new_dropped = read - last_read, dropped - last_dropped
            if not reader.keep_latest or new_read < 5 or new_dropped <= BEHIND_SHARE * new_read:
                continue
            self.behind_cameras.add(reader.camera)
            recorded = isinstance(reader.source, (VideoFileSource, FolderSource))
            advice = ("a recorded file is processed completely with --fast" if recorded
                      else "run fewer cameras in this process, or on a faster machine")
            self._send({"type": "notice", "camera": reader.camera, "behind": True,
                        "message": f"camera {reader.camera}: falling behind real time: {new_dropped} of {new_read} "
                                   f"frames dropped in the last {self.options.health_every:g} s, so faces may be "
                                   f"missed; {advice}"})

    def announce(self, payload: dict) -> None:
        """Send a payload (the final summary) to every sink, then close them."""
        self._send(payload)
        for sink in self.sinks:
            sink.close()

    def _process(self, frame) -> None:
        pipe = self.pipelines[frame.camera]
        events, _ = pipe.process(frame)
        if self.evidence:  # the boxes of the tracks detected on this very frame (none predicted)
            detected = [(tr.id, tr.box) for tr in pipe.tracker.tracks if tr.last_time == frame.time]
            self.evidence.observe(frame.camera, frame.image, frame.time, detected)
        for event in events:
            entry = self.matcher.entries[event.entry_index]
            last = self._recent.get(entry.subject_id)
            # source time, not wall time: a run faster or slower than real time (--fast, a
            # loaded machine) de-duplicates exactly as the scene unfolded
            if last and abs(event.time - last[0]) < self.live.dedup_seconds:
                self.duplicates += 1  # the same person again (another camera, a new track): one alert
                continue
            fmr, _ = self.engine.pack.calibration.fmr_at(event.score)
            runner = runner_up_record(event, self.matcher.entries)
            payload = self.recorder.on_alert(alert_evidence(event, entry, fmr, self.live.thumbnail_width, runner))
            if payload is None:  # alerted on another node's camera within the window: one alert
                self.duplicates += 1
                continue
            self._recent[entry.subject_id] = (event.time, payload["id"])
            payload["first_seen"] = round(event.first_seen, 3)
            payload["box"] = event.face.box_list()
            payload["latency_ms"] = round((time.monotonic() - frame.wall) * 1000, 1)
            self.latencies.append(payload["latency_ms"])
            self.alerts.append(payload)
            self._send(payload)
            if self.evidence:
                self.evidence.start(frame.camera, payload["id"], event.track_id, event.time)
        if self.evidence:
            self._store_clips(self.evidence.finished(frame.camera, frame.time))

    def _store_clips(self, clips) -> None:
        for clip in clips:
            encoded = self.evidence.encode(clip)
            if encoded:
                self.recorder.on_clip(clip.alert_id, encoded.data, encoded.frames, encoded.redaction)

    def _send(self, payload: dict) -> None:
        for sink in self.sinks:
            sink.send(payload)

    def _summary(self, wall: float) -> dict:
        frames = sum(r.frames_read for r in self.readers)
        processed = sum(p.stats.frames_processed for p in self.pipelines.values())
        faces_seen = sum(p.stats.faces_compared for p in self.pipelines.values())
        src_fps = sum(getattr(r.source, "fps", 0.0) for r in self.readers)
        cameras = [r.health() for r in self.readers]
        return {
            "type": "summary", "deployment_id": self.deployment_id, "frames": frames,
            "frames_processed": processed, "frames_dropped": frames - processed,
            "faces_seen": faces_seen, "tracks": sum(p.stats.tracks for p in self.pipelines.values()),
            "embeddings": sum(p.stats.embeddings for p in self.pipelines.values()),
            "second_model_embeddings": sum(p.stats.second_embeddings for p in self.pipelines.values()),
            "second_model_worker_failed": any(p.stats.second_model_worker_failed for p in self.pipelines.values()),
            "alerts": len(self.alerts), "duplicates_suppressed": self.duplicates,
            "fps": round(processed / wall, 2) if wall else 0.0, "source_fps": src_fps,
            "realtime_factor": round((processed / wall) / src_fps, 3) if wall and src_fps else None,
            "wall_seconds": round(wall, 2),
            "alert_latency_ms_max": max(self.latencies) if self.latencies else None,
            "cameras": cameras, "all_cameras_failed": bool(cameras) and all(c["status"] == "failed" for c in cameras),
            "stopped_because": self.stopped_because,
            "thresholds": self.matcher.thresholds(), "watchlist_entries": self.matcher.size,
            "fell_behind": sorted(self.behind_cameras),
        }
