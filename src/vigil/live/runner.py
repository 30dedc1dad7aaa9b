"""Running a deployment: camera readers, one inference loop shared by all cameras, alert
fan-out, cross-camera de-duplication, stream health, and the final summary.

One decode thread per camera; the models are shared and run in this loop, which visits the
cameras in turn and always takes each one's newest frame (live mode) so that processing that
falls behind drops frames (counted) instead of building up latency.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from vigil.errors import VigilError
from vigil.governance.permissions import Actor, require
from vigil.live.alerts import AlertRecorder, AlertSink, alert_payload
from vigil.live.deployments import end_deployment, get_deployment
from vigil.live.matcher import WatchlistMatcher
from vigil.live.pipeline import CameraPipeline
from vigil.live.shot_embedding import ShotEmbedder
from vigil.live.snapshots import load_entries
from vigil.live.sources import CameraReader, open_source
from vigil.store.schema import Collection
from vigil.timeutil import as_utc, utcnow


@dataclass
class RunOptions:
    fast: bool = False  # files as fast as possible (no pacing, no drops)
    max_seconds: float | None = None  # stop after this much wall time
    record_located: bool = False  # keep per-frame located boxes (benchmarks)
    health_every: float = 5.0


@dataclass
class RunResult:
    summary: dict
    alerts: list[dict] = field(default_factory=list)
    pipelines: dict = field(default_factory=dict)


class LiveRunner:
    def __init__(self, vigil, actor: Actor, deployment_id: int, sinks: list[AlertSink], options: RunOptions):
        require(actor, "deployment.run")
        self.vigil, self.actor, self.options = vigil, actor, options
        self.sinks = sinks
        self.stop_event = threading.Event()
        with vigil.store.session() as session:
            dep = get_deployment(session, deployment_id)
            if dep.status != "running":
                raise VigilError(f"deployment {dep.id} is {dep.status}, not running")
            self.deployment_id, self.deployment_name = dep.id, dep.name
            self.window_end = as_utc(dep.window_end)
            coll = session.get(Collection, dep.watchlist_ids[0])
            entries, vectors = load_entries(vigil.store, session, dep.snapshot_ids)
            self.sources_spec = list(dep.sources)
            false_alert_rate, category_rates = dep.false_alert_rate, dict(dep.category_rates or {})
        self.engine = vigil.engine(coll.pack)
        shots = ShotEmbedder(self.engine.pack)
        self.matcher = WatchlistMatcher(entries, vectors, self.engine.pack.calibration,
                                        false_alert_rate=false_alert_rate, category_rates=category_rates,
                                        split=shots.split)
        with vigil.store.session() as session:
            dep = get_deployment(session, self.deployment_id)
            dep.record = {**(dep.record or {}), "thresholds": self.matcher.thresholds(),
                          "model_id": self.engine.model_id, "entries": self.matcher.size}
        live = vigil.settings.live
        self.live = live
        self.recorder = AlertRecorder(vigil, self.deployment_id, live.thumbnail_width)
        self.readers = [CameraReader(open_source(s["source"], s["camera"], realtime=not options.fast),
                                     keep_latest=not options.fast, buffer=live.frame_buffer)
                        for s in self.sources_spec]
        # In real time the fusion cascade's dlib half runs in its own process (it holds the GIL);
        # as fast as possible (files, benchmarks) it runs in line, which keeps runs repeatable.
        self.worker = None
        if shots.cascade and not options.fast:
            from vigil.live.second_model_worker import SecondModelWorker

            self.worker = SecondModelWorker(flip=shots.second.flip)
        self.pipelines = {r.camera: CameraPipeline(r.camera, self.engine, self.matcher, live, vigil.settings.quality,
                                                   record_located=options.record_located, worker=self.worker)
                          for r in self.readers}
        self.evidence = None
        if live.evidence_clip_seconds > 0:
            from vigil.live.evidence import EvidenceRecorder

            fps = max((getattr(r.source, "fps", 25.0) for r in self.readers), default=25.0)
            self.evidence = EvidenceRecorder(live.evidence_clip_seconds, live.evidence_clip_width, fps)
        self._recent: dict[str, tuple[float, int]] = {}
        self.duplicates = 0
        self.alerts: list[dict] = []
        self.latencies: list[float] = []

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> RunResult:
        start_wall = time.monotonic()
        for reader in self.readers:
            reader.start()
        next_health = start_wall + self.options.health_every
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
                if time.monotonic() >= next_health:
                    next_health += self.options.health_every
                    self._send({"type": "health", "cameras": [r.health() for r in self.readers]})
        finally:
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
        summary = self._summary(wall)
        end_deployment(self.vigil, self.actor, self.deployment_id, summary)
        self._send(summary)
        for sink in self.sinks:
            sink.close()
        return RunResult(summary, self.alerts, self.pipelines)

    def _process(self, frame) -> None:
        pipe = self.pipelines[frame.camera]
        events, _ = pipe.process(frame)
        if self.evidence:
            tracks = [(tr.id, box) for tr, box in pipe.tracker.located(frame.time)]
            self.evidence.observe(frame.camera, frame.image, frame.time, tracks)
        for event in events:
            entry = self.matcher.entries[event.entry_index]
            last = self._recent.get(entry.subject_id)
            now = time.monotonic()
            if last and now - last[0] < self.live.dedup_seconds:
                self.duplicates += 1  # the same person on another camera at the same moment: one alert
                continue
            fmr, _ = self.engine.pack.calibration.fmr_at(event.score)
            alert = self.recorder.record(event, entry, fmr)
            self._recent[entry.subject_id] = (now, alert.id)
            payload = alert_payload(alert, self.deployment_name)
            payload["first_seen"] = round(event.first_seen, 3)
            payload["box"] = event.face.box_list()
            payload["latency_ms"] = round((time.monotonic() - frame.wall) * 1000, 1)
            self.latencies.append(payload["latency_ms"])
            self.alerts.append(payload)
            self._send(payload)
            if self.evidence:
                self.evidence.start(frame.camera, alert.id, event.track_id, event.time)
        if self.evidence:
            self._store_clips(self.evidence.finished(frame.camera, frame.time))

    def _store_clips(self, clips) -> None:
        from vigil.store.schema import Alert

        for clip in clips:
            data = self.evidence.encode(clip)
            if not data:
                continue
            with self.vigil.store.session() as session:
                alert = session.get(Alert, clip.alert_id)
                if alert is None:
                    continue
                alert.clip_blob_id = self.vigil.store.blobs.put(session, "alert_clip", data)
                self.vigil.store.audit.record(session, "system", "alert.clip_recorded", "alert", alert.id,
                                              {"frames": len(clip.frames), "other_faces_blurred": True})

    def _send(self, payload: dict) -> None:
        for sink in self.sinks:
            sink.send(payload)

    def _summary(self, wall: float) -> dict:
        frames = sum(r.frames_read for r in self.readers)
        processed = sum(p.stats.frames_processed for p in self.pipelines.values())
        faces_seen = sum(p.stats.faces_compared for p in self.pipelines.values())
        src_fps = sum(getattr(r.source, "fps", 0.0) for r in self.readers)
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
            "cameras": [r.health() for r in self.readers],
            "thresholds": self.matcher.thresholds(), "watchlist_entries": self.matcher.size,
        }
