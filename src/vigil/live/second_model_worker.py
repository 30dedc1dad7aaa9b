"""The fusion cascade's second model (dlib) in a process of its own, for real-time runs.

dlib's ResNet holds Python's global interpreter lock for the whole of a descriptor (about
0.15 s per face here). Run in the inference loop it stalls everything else, decoding
included, so a camera paced in real time drops the frames that arrive meanwhile even when
the average load fits. In its own process it runs beside the loop on the other core; the
loop hands it 150x150 chips and picks the descriptors up on a later frame.

Privacy: chips and descriptors exist only in the two processes' memory. A request whose
track ends before its answer arrives is forgotten, and its answer is dropped on arrival.
"""

from __future__ import annotations

import multiprocessing
import queue
import time

import numpy as np

from vigil.errors import ModelError

READY_TIMEOUT = 120.0


def _serve(flip: bool, requests, results) -> None:  # runs in the worker process
    from vigil.engine.dlib_pack import DlibEmbedder

    try:
        embedder = DlibEmbedder(flip=flip)
        embedder.load()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses to start
        results.put(("error", f"{exc.__class__.__name__}: {exc}"))
        return
    results.put(("ready", None))
    while True:
        item = requests.get()
        if item is None:
            return
        request_id, chips = item
        results.put((request_id, embedder.embed_chips(chips)))


class SecondModelWorker:
    def __init__(self, flip: bool):
        self._next = 0
        self._done: dict[int, np.ndarray] = {}
        self._forgotten: set[int] = set()
        self.pending = 0
        # spawn, not fork: the parent runs reader and inference threads whose locks a fork would copy
        ctx = multiprocessing.get_context("spawn")
        self._requests = ctx.Queue()
        self._results = ctx.Queue()
        self._process = ctx.Process(target=_serve, args=(flip, self._requests, self._results),
                                    name="vigil-second-model", daemon=True)
        self._process.start()
        kind, message = self._wait_ready()
        if kind != "ready":
            self.close()
            raise ModelError(f"the second-model worker could not start: {message}")

    def _wait_ready(self) -> tuple[str, str | None]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return self._results.get(timeout=0.2)
            except queue.Empty:
                if not self._process.is_alive():
                    return "error", f"the process exited with code {self._process.exitcode}"
        return "error", f"not ready after {READY_TIMEOUT:.0f} s"

    def submit(self, chips: list[np.ndarray]) -> int:
        self._next += 1
        self._requests.put((self._next, [np.ascontiguousarray(c) for c in chips]))
        self.pending += 1
        return self._next

    def _drain(self) -> None:
        while True:
            try:
                request_id, vectors = self._results.get_nowait()
            except queue.Empty:
                return
            self.pending -= 1
            if request_id in self._forgotten:
                self._forgotten.discard(request_id)
            else:
                self._done[request_id] = vectors

    def take(self, request_id: int) -> np.ndarray | None:
        """The descriptors of a request, once (None while it is still being computed)."""
        if request_id not in self._done:
            self._drain()
        return self._done.pop(request_id, None)

    def forget(self, request_id: int) -> None:
        """The request's track has ended: drop its answer, now or when it arrives."""
        self._drain()
        if self._done.pop(request_id, None) is None:
            self._forgotten.add(request_id)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._requests.put(None)  # ask it to stop; terminated below if it does not
            except (OSError, ValueError):  # queue already closed: nothing to ask, terminate below
                pass
            deadline = time.monotonic() + 5
            while self._process.is_alive() and time.monotonic() < deadline:
                self._drain()  # unread answers would keep the worker from exiting
                self._process.join(timeout=0.05)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
        self._requests.cancel_join_thread()  # never block this process's exit on a dead worker
        self._done.clear()
        self._forgotten.clear()
