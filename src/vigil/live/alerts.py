"""Alert evidence and alert fan-out, in memory: the runtime half of an alert.

When a track matches, the runtime builds an :class:`AlertEvidence` (the probe crop and a frame
thumbnail in which everything but the alerted face is washed out, see
:func:`vigil.live.evidence.redact_except`; the subject, score, threshold, calibrated
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

from vigil.engine.images import crop_around, encode_jpeg
from vigil.live.evidence import METHOD, redact_except
from vigil.live.matcher import LOOKALIKE_MARGIN, WatchlistEntry
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
    redaction: dict  # what was done to the stored images (for the audit entry)
    runner_up: dict | None = None  # the closest other subject, and whether it is a look-alike
    box: list | None = None  # the alerted face in the frame, in the frame's pixels (x, y, w, h)


def thumbnail(redacted: np.ndarray, width: int) -> np.ndarray:
    """The already redacted frame, scaled down to ``width`` at most."""
    scale = min(1.0, width / redacted.shape[1])
    if scale < 1.0:
        return cv2.resize(redacted, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return redacted


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


def runner_up_record(event: MatchEvent, entries: list[WatchlistEntry]) -> dict | None:
    """The runner-up as the alert keeps it: who, the score, its threshold, and ``lookalike``
    when it scored within ``LOOKALIKE_MARGIN`` of its own threshold (it nearly alerted too)."""
    if event.runner_up is None:
        return None
    index, score, threshold = event.runner_up
    other = entries[index]
    return {"subject_id": other.subject_id, "name": other.name, "category": other.category,
            "score": round(score, 5), "threshold": round(threshold, 5),
            "lookalike": bool(score >= threshold - LOOKALIKE_MARGIN)}


def alert_evidence(event: MatchEvent, entry: WatchlistEntry, fmr: float, thumbnail_width: int,
                   runner_up: dict | None = None) -> AlertEvidence:
    """The evidence of one match, encoded here, in memory. The frame is redacted first, whole:
    the probe crop and the thumbnail are cut from the redacted frame, so nothing outside the
    alerted face's region survives in either (no other face is looked for)."""
    redacted = redact_except(event.frame, event.face.box, outline=(0, 0, 255))
    probe = encode_jpeg(crop_around(redacted, event.face.box, 0.3))
    thumb = encode_jpeg(thumbnail(redacted, thumbnail_width), quality=80)
    return AlertEvidence(event.camera, event.time, event.track_id, entry, event.score, event.threshold, fmr,
                         probe, thumb, {"method": METHOD, "images": ["probe", "thumbnail"]}, runner_up,
                         event.face.box_list())
