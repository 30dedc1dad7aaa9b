"""Alert evidence and alert fan-out, in memory: the runtime half of an alert.

When a track matches, the runtime builds an :class:`AlertEvidence` (the probe crop, a frame
thumbnail in which every other face is blurred, the subject, score, threshold, calibrated
false match rate, camera, source time and track id) and hands it to its recorder (see
:class:`vigil.live.runner.RunRecorder`), which stores it encrypted and returns the alert's
payload; the payload is then fanned out to the sinks below (JSON lines, a webhook, the
server's stream). This module touches no database: persistence is the service layer's.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from vigil.engine.images import encode_jpeg
from vigil.live.matcher import WatchlistEntry
from vigil.live.pipeline import MatchEvent


@dataclass
class AlertEvidence:
    """What the runtime knows about one alert; the recorder turns it into a stored alert."""

    camera: str
    source_time: float
    track_id: int
    entry: WatchlistEntry
    score: float
    threshold: float
    fmr: float
    probe_jpeg: bytes
    frame_jpeg: bytes


def crop_around(image: np.ndarray, box, margin: float = 0.3) -> np.ndarray:
    x, y, w, h = [float(v) for v in box]
    mx, my = w * margin, h * margin
    x0, y0 = int(max(0, x - mx)), int(max(0, y - my))
    x1, y1 = int(min(image.shape[1], x + w + mx)), int(min(image.shape[0], y + h + my))
    return image[y0:y1, x0:x1].copy()


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


def alert_evidence(event: MatchEvent, entry: WatchlistEntry, fmr: float, thumbnail_width: int) -> AlertEvidence:
    """The evidence of one match: encoded here, in memory; nothing of the other faces survives
    but their blurred outlines in the thumbnail."""
    probe = encode_jpeg(crop_around(event.frame, event.face.box, 0.3))
    thumb = encode_jpeg(thumbnail(event.frame, event, thumbnail_width), quality=80)
    return AlertEvidence(event.camera, event.time, event.track_id, entry, event.score, event.threshold, fmr,
                         probe, thumb)
