"""Alerts: recorded (encrypted images, database row, audit entry) and fanned out to sinks.

An alert carries the probe crop and a frame thumbnail in which every other face is blurred,
a private copy of the watchlist image (so its lifetime follows the alert, not the watchlist),
the subject, score, threshold, calibrated false match rate, camera, source time, UTC time and
track id. Decision fields start empty: a person adjudicates every alert.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import urllib.request
from typing import Protocol

import cv2
import numpy as np

from vigil.engine.images import encode_jpeg
from vigil.live.matcher import WatchlistEntry
from vigil.live.pipeline import MatchEvent
from vigil.retro.probes import crop_of
from vigil.store.schema import Alert
from vigil.timeutil import iso, utcnow


def blur_boxes(image: np.ndarray, boxes: list[np.ndarray], pad: float = 0.2) -> np.ndarray:
    out = image.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x, y, bw, bh = [float(v) for v in box]
        x0, y0 = int(max(0, x - bw * pad)), int(max(0, y - bh * pad))
        x1, y1 = int(min(w, x + bw * (1 + pad))), int(min(h, y + bh * (1 + pad)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        region = out[y0:y1, x0:x1]
        k = max(3, (max(x1 - x0, y1 - y0) // 3) | 1)
        small = cv2.resize(region, (max(1, (x1 - x0) // 8), max(1, (y1 - y0) // 8)), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(cv2.resize(small, (x1 - x0, y1 - y0)), (k, k), 0)
    return out


def thumbnail(frame: np.ndarray, event: MatchEvent, width: int) -> np.ndarray:
    blurred = blur_boxes(frame, event.other_boxes)
    x, y, bw, bh = [int(v) for v in event.face.box]
    cv2.rectangle(blurred, (x, y), (x + bw, y + bh), (0, 0, 255), max(2, frame.shape[1] // 400))
    scale = min(1.0, width / frame.shape[1])
    if scale < 1.0:
        blurred = cv2.resize(blurred, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return blurred


def alert_payload(alert: Alert, deployment_name: str = "") -> dict:
    return {"type": "alert", "alert_id": alert.id, "deployment_id": alert.deployment_id,
            "deployment": deployment_name, "subject_id": alert.subject_id, "name": alert.subject_name,
            "category": alert.category, "score": round(alert.score, 5), "threshold": round(alert.threshold, 5),
            "fmr": alert.fmr, "camera": alert.camera, "time": round(alert.source_time, 3),
            "utc": iso(alert.created_at), "track_id": alert.track_id, "decision": alert.decision,
            "outcome": alert.outcome, "decided_by": alert.decided_by, "notes": alert.notes or None}


class AlertSink(Protocol):
    def send(self, payload: dict) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, payload: dict) -> None:
        with self._lock:
            self.stream.write(json.dumps(payload) + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class WebhookSink:
    """POSTs each alert as JSON from a background thread, retrying with backoff; the live
    loop never waits for the network."""

    def __init__(self, url: str, *, retries: int = 4, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http(s)")
        self.url, self.retries, self.timeout = url, retries, timeout
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def send(self, payload: dict) -> None:
        self._queue.put(payload)

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            body = json.dumps(payload).encode()
            for attempt in range(self.retries + 1):
                try:
                    req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                        if resp.status < 300:
                            self.sent += 1
                            break
                except Exception as exc:  # noqa: BLE001 - any failure is retried, then counted
                    self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:  # back off between attempts, not after the last one
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
            else:
                self.failed += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout * (self.retries + 2))


class AlertRecorder:
    """Writes alerts to the store: encrypted images, the row, and the audit entry."""

    def __init__(self, vigil, deployment_id: int, thumbnail_width: int = 640):
        self.vigil = vigil
        self.deployment_id = deployment_id
        self.thumbnail_width = thumbnail_width
        self._watchlist_images: dict[str, bytes] = {}

    def record(self, event: MatchEvent, entry: WatchlistEntry, fmr: float) -> Alert:
        store = self.vigil.store
        probe = encode_jpeg(crop_of(event.frame, event.face.box, 0.3))
        thumb = encode_jpeg(thumbnail(event.frame, event, self.thumbnail_width), quality=80)
        wl_image = self._watchlist_image(entry)
        with store.session() as session:
            alert = Alert(deployment_id=self.deployment_id, created_at=utcnow(), camera=event.camera,
                          source_time=event.time, track_id=event.track_id, subject_id=entry.subject_id,
                          subject_name=entry.name, category=entry.category, watchlist_id=entry.watchlist_id,
                          score=event.score, threshold=event.threshold, fmr=fmr,
                          probe_blob_id=store.blobs.put(session, "alert_probe", probe),
                          frame_blob_id=store.blobs.put(session, "alert_frame", thumb),
                          watchlist_blob_id=store.blobs.put(session, "alert_watchlist_image", wl_image)
                          if wl_image else None)
            session.add(alert)
            session.flush()
            store.audit.record(session, "system", "alert.raised", "alert", alert.id,
                               {"deployment_id": self.deployment_id, "subject_id": entry.subject_id,
                                "score": round(event.score, 4), "camera": event.camera, "track_id": event.track_id})
        return alert

    def _watchlist_image(self, entry: WatchlistEntry) -> bytes | None:
        if not entry.image_blob_id:
            return None
        if entry.image_blob_id not in self._watchlist_images:
            try:
                self._watchlist_images[entry.image_blob_id] = self.vigil.store.blobs.get(entry.image_blob_id)
            except Exception:
                return None
        return self._watchlist_images[entry.image_blob_id]
