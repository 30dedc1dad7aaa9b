"""Opening a capture with FFmpeg held to the protocols a source's kind needs.

``file`` for files; tcp/udp/rtp(/tls) for RTSP; http/tcp(/tls) for HTTP. ``concat:``,
``subfile``, ``file:`` inside a network playlist and the like are then refused by FFmpeg itself.
The options reach OpenCV through ``OPENCV_FFMPEG_CAPTURE_OPTIONS``, read at each open, so opens
are serialised while the variable holds one kind's list.
"""

from __future__ import annotations

import os
import threading

import cv2

from vigil.errors import VigilError

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
OPEN_TIMEOUT_MS = 10_000  # a stream that does not answer within this is retried later
# What FFmpeg may open for each kind of source (its protocol_whitelist).
PROTOCOLS = {
    "file": "file",
    "rtsp": "rtsp,rtp,srtp,udp,tcp",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "http": "http,tcp",
    "https": "https,http,tcp,tls",
}
_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_open_lock = threading.Lock()  # the options travel in the environment: one open at a time


def source_kind(spec: str | int) -> str:
    """``webcam``, ``file`` (a path) or a stream scheme; anything else raises :class:`VigilError`."""
    if isinstance(spec, int) or str(spec).isdigit():
        return "webcam"
    spec = str(spec)
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in STREAM_SCHEMES:
            raise VigilError(f"source scheme {scheme!r} is not allowed (rtsp, rtsps, http or https)")
        return scheme
    if ":" in spec.split("/", 1)[0]:  # concat:, subfile:, data:, pipe: ... are FFmpeg protocols, not paths
        raise VigilError(f"{spec}: not a file path or an rtsp/http URL")
    return "file"


def open_capture(spec: str | int) -> cv2.VideoCapture:
    """A capture on ``spec`` with FFmpeg limited to the protocols its kind needs."""
    kind = source_kind(spec)
    if kind == "webcam":
        return cv2.VideoCapture(int(spec))
    params = [] if kind == "file" else [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
    with _open_lock:
        previous = os.environ.get(_FFMPEG_OPTIONS)
        os.environ[_FFMPEG_OPTIONS] = f"protocol_whitelist;{PROTOCOLS[kind]}"
        try:
            return cv2.VideoCapture(str(spec), cv2.CAP_FFMPEG, params)
        finally:
            if previous is None:
                os.environ.pop(_FFMPEG_OPTIONS, None)
            else:
                os.environ[_FFMPEG_OPTIONS] = previous
