"""Video sources and the per-camera reader thread.

A source yields decoded frames; a :class:`CameraReader` runs it in its own thread (OpenCV
releases the GIL while decoding) and hands frames to the inference loop:
- live mode (cameras, or a file played at its real frame rate): the newest ``buffer`` frames
  (3, about 120 ms at 25 fps) are kept; when a fourth arrives the oldest is dropped and
  counted, so a burst of work (many new faces at once) is absorbed while latency stays
  bounded;
- fast mode (a file as fast as possible): a small blocking queue, nothing dropped.
Streams that fail reconnect with exponential backoff; the first failure is said at once (a
warning the runtime passes on) and carried in the camera's health until frames flow.

Every capture is opened through :func:`open_capture`, which forces the FFmpeg backend and
restricts the protocols FFmpeg may use to the ones the source's kind needs (``file`` for
files; tcp/udp/rtp/tls for RTSP; http/https/tcp/tls for HTTP): ``concat:``, ``subfile``,
``file:`` inside a network playlist and the like are refused by FFmpeg itself.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

from vigil.engine.images import IMAGE_SUFFIXES, read_image_file
from vigil.live.capture import STREAM_SCHEMES, open_capture, source_kind  # noqa: F401 (re-exported)
from vigil.errors import ImageError, VigilError

STALL_SECONDS = 2.0
@dataclass
class Frame:
    image: np.ndarray
    time: float  # seconds since the source started (file position for files)
    index: int  # source frame number
    camera: str
    wall: float  # time.monotonic() when decoded
    live: bool = False  # taken from a live reader (newest frames kept, older ones dropped)
    backlog: int = 0  # live mode: newer frames already waiting when this one was taken (the loop is behind)


class Source(Protocol):
    camera: str
    fps: float
    realtime: bool

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, float, int]]:
        """Yield (BGR image, seconds since start, frame index) until the source ends or ``stop`` is set."""
        ...


class VideoFileSource:
    """A video file; ``start_at`` seconds in, a file standing in for a live camera starts where
    that camera would be now (a cluster node taking over a camera another node ran)."""

    def __init__(self, path: Path, camera: str, *, realtime: bool = True, start_at: float = 0.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise VigilError(f"{self.path}: video file not found")
        self.camera = camera
        self.realtime = realtime
        cap = open_capture(str(self.path))
        if not cap.isOpened():
            raise VigilError(f"{self.path}: cannot open as video")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        self.first_index = max(0, int(round(start_at * self.fps)))

    def frames(self, stop):
        cap = open_capture(str(self.path))
        index = self.first_index
        if index:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        start = time.monotonic() - index / self.fps
        try:
            while not stop.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    return
                t = index / self.fps
                if self.realtime:  # pace to the file's frame rate
                    delay = start + t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield image, t, index
                index += 1
        finally:
            cap.release()


class StreamSource:
    """RTSP/HTTP streams and webcams; reconnects with backoff when the stream drops or never
    answers. The first failure is reported at once (:meth:`pop_warnings`, ``warning``), not
    after the retries run out."""

    def __init__(self, uri: str | int, camera: str, *, max_backoff: float = 30.0, give_up_after: float = 600.0):
        source_kind(uri)
        self.uri = uri
        self.camera = camera
        self.fps = 25.0
        self.realtime = True
        self.max_backoff = max_backoff
        self.give_up_after = give_up_after
        self.reconnects = 0
        self.status = "connecting"
        self.warning: str | None = None
        self._warnings: deque[str] = deque()

    def _warn(self, message: str) -> None:
        self.warning = message
        self._warnings.append(message)

    def pop_warnings(self) -> list[str]:
        out = []
        while self._warnings:
            out.append(self._warnings.popleft())
        return out

    def _what(self) -> str:
        return f"webcam {self.uri}" if isinstance(self.uri, int) else "the stream"

    def frames(self, stop):
        start = time.monotonic()
        index, backoff, down_since, ever_opened = 0, 0.5, None, False
        while not stop.is_set():
            cap = open_capture(self.uri)
            if cap.isOpened():
                self.fps = cap.get(cv2.CAP_PROP_FPS) or self.fps
                if self.warning:
                    self._warnings.append(f"camera {self.camera}: {self._what()} is back")
                self.status, backoff, down_since, ever_opened, self.warning = "ok", 0.5, None, True, None
                while not stop.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    yield image, time.monotonic() - start, index
                    index += 1
            cap.release()
            if stop.is_set():
                return
            now = time.monotonic()
            if down_since is None:
                down_since = now
                why = ("cannot be opened (nothing answers, the device is missing or the connection is refused)"
                       if not ever_opened else "stopped sending frames")
                self._warn(f"camera {self.camera}: {self._what()} {why}; retrying with backoff for up to "
                           f"{self.give_up_after:.0f} s")
            if now - down_since > self.give_up_after:
                self.status = "lost"
                self._warn(f"camera {self.camera}: {self._what()} gave nothing for {self.give_up_after:.0f} s; "
                           "giving up")
                return
            self.status = "unreachable" if not ever_opened else "reconnecting"
            self.reconnects += 1
            stop.wait(backoff)
            backoff = min(self.max_backoff, backoff * 2)


class FolderSource:
    def __init__(self, folder: Path, camera: str, *, fps: float = 5.0, realtime: bool = True):
        self.folder = Path(folder)
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise VigilError(f"{self.folder}: no image frames found")
        self.camera, self.fps, self.realtime = camera, fps, realtime
        self.skipped: list[str] = []

    def frames(self, stop):
        start = time.monotonic()
        for index, path in enumerate(self.files):
            if stop.is_set():
                return
            try:
                image = read_image_file(path)
            except ImageError as exc:  # a broken frame is skipped, not fatal
                self.skipped.append(str(exc))
                continue
            t = index / self.fps
            if self.realtime:
                delay = start + t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield image, t, index


def open_source(spec: str, camera: str, *, realtime: bool = True, start_at: float = 0.0) -> Source:
    """``spec``: a video file, a folder of frames, ``rtsp(s)://``/``http(s)://`` URL, or a webcam
    index. Which specs a deployment may use at all is the services' decision (registered cameras).
    ``start_at``: seconds into a video file to start from (streams are always live)."""
    kind = source_kind(spec)
    if kind == "webcam":
        return StreamSource(int(spec), camera)
    if kind != "file":
        return StreamSource(spec, camera)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, camera, realtime=realtime)
    return VideoFileSource(path, camera, realtime=realtime, start_at=start_at)


class CameraReader:
    """Decodes one source in a thread; the inference loop takes frames with :meth:`take`."""

    def __init__(self, source: Source, *, keep_latest: bool, buffer: int = 3):
        self.source = source
        self.camera = source.camera
        self.keep_latest = keep_latest
        self._slot: deque[Frame] = deque()
        self.buffer = max(1, buffer)
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.ended = threading.Event()
        self.frames_read = 0
        self.frames_dropped = 0
        self.last_frame_wall: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.camera}", daemon=True)

    def start(self) -> "CameraReader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def pop_warnings(self) -> list[str]:
        """What the source said went wrong since the last call (said once, at once)."""
        pop = getattr(self.source, "pop_warnings", None)
        return pop() if pop else []

    def _run(self) -> None:
        try:
            for image, t, index in self.source.frames(self._stop):
                frame = Frame(image, t, index, self.camera, time.monotonic())
                self.frames_read += 1
                self.last_frame_wall = frame.wall
                if self.keep_latest:
                    with self._cond:
                        if len(self._slot) >= self.buffer:
                            self._slot.popleft()
                            self.frames_dropped += 1
                        self._slot.append(frame)
                        self._cond.notify_all()
                else:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(frame, timeout=0.2)
                            break
                        except queue.Full:  # fast mode: the reader waits for the loop, it is not stalled
                            self.last_frame_wall = time.monotonic()
                            continue
        except Exception as exc:  # a broken stream ends this camera, not the deployment
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self.ended.set()
            with self._cond:
                self._cond.notify_all()

    def take(self, timeout: float = 0.05) -> Frame | None:
        if self.keep_latest:
            with self._cond:
                if not self._slot and not self.ended.is_set():
                    self._cond.wait(timeout)
                if not self._slot:
                    return None
                frame = self._slot.popleft()
                frame.live, frame.backlog = True, len(self._slot)
                return frame
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def finished(self) -> bool:
        return self.ended.is_set() and not self._slot and self._queue.empty()

    def health(self) -> dict:
        now = time.monotonic()
        if self.error:
            status = "failed"
        elif self.ended.is_set():  # a stream that ended while unreachable or lost says so
            status = self.source.status if getattr(self.source, "warning", None) else "ended"
        elif self.last_frame_wall is None:
            status = getattr(self.source, "status", "starting")
        elif now - self.last_frame_wall > STALL_SECONDS:
            status = "stalled"
        else:
            status = getattr(self.source, "status", "ok") if isinstance(self.source, StreamSource) else "ok"
        return {"camera": self.camera, "status": status, "frames": self.frames_read,
                "dropped": self.frames_dropped, "error": self.error,
                "seconds_since_frame": None if self.last_frame_wall is None else round(now - self.last_frame_wall, 2),
                "reconnects": getattr(self.source, "reconnects", 0),
                "warning": getattr(self.source, "warning", None)}
