"""Real Vigil nodes (``vigil node`` subprocesses) and recorders for the node and recorder tests,
on a real NATS cluster (tests/cluster/conftest.py's ``LocalNatsCluster``: 3 ``nats-server``
processes with JetStream); synthetic cameras are short crowd clips (tests/live/conftest.py)
registered under the media root."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from tests.cluster.conftest import LocalNatsCluster as NatsCluster  # noqa: F401 (the tests take it from here)
from tests.cluster.conftest import free_port, need_nats_server  # noqa: F401 (the tests take them from here)

ROOT = Path(__file__).resolve().parents[2]


def run_async(coro):
    return asyncio.run(coro)


class Process:
    """A ``vigil`` subprocess printing JSON lines; every line is kept with its arrival time."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "vigil", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                                     cwd=ROOT)
        self.events: list[tuple[float, dict]] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()

    def _read(self, stream, is_stdout: bool) -> None:
        for line in stream:
            with self._cond:
                if is_stdout:
                    try:
                        self.events.append((time.monotonic(), json.loads(line)))
                    except ValueError:
                        self.stderr.append(line)
                else:
                    self.stderr.append(line)
                self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "an event") -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for at, event in self.events[seen:]:
                    if predicate(event):
                        return at, event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and seen == len(self.events)):
                    raise AssertionError(f"vigil {' '.join(self.args[:1])}: no {what} in {timeout} s "
                                         f"(exit {self.proc.poll()}); stderr: {''.join(self.stderr)[-3000:]}; "
                                         f"events: {[e for _, e in self.events][-15:]}")
                self._cond.wait(min(left, 0.5))

    def of(self, kind: str, event: str | None = None) -> list[dict]:
        with self._cond:
            return [e for _, e in self.events if e.get("type") == kind and (event is None or e.get("event") == event)]

    def kill(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        self.proc.wait(10)
        return at

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_node(urls: list[str], name: str, cameras: int, *extra: str) -> Process:
    return Process(["node", "--nats", ",".join(urls), "--name", name, "--cameras", str(cameras), "--json", *extra])


def start_recorder(urls: list[str], *extra: str) -> Process:
    return Process(["recorder", "--nats", ",".join(urls), "--json", *extra])


def node_ready(proc: Process, timeout: float = 90.0) -> None:
    proc.wait_for(lambda e: e.get("type") == "node" and e.get("event") == "started", timeout, "node start")


def camera_video(vigil, name: str, seconds: float = 12.0) -> Path:
    """A short street clip (Obama, on the watchlist, and Biden, not on it) under the media root."""
    from tests.live.conftest import two_people_video
    from vigil.services.cameras import media_root

    root = media_root(vigil.settings)
    root.mkdir(parents=True, exist_ok=True)
    return two_people_video(root / f"{name}.mp4", seconds=seconds, fps=10, size=(640, 400))


def cluster_deployment(vigil, admin, cameras: dict[str, float], placement: str = "any") -> dict:
    """An authorised deployment of the "wanted" watchlist (Obama) on registered cameras, each a
    clip of the given length, placed on the cluster; not yet started."""
    from tests.live.conftest import obama_watchlist
    from vigil.services.cameras import register_camera
    from vigil.services.deployments import authorise_deployment, create_deployment
    from vigil.timeutil import utcnow

    try:
        obama_watchlist(vigil, admin)
    except Exception:  # noqa: BLE001 - already made for an earlier deployment of the test
        pass
    for name, seconds in cameras.items():
        register_camera(vigil, admin, name, str(camera_video(vigil, name, seconds)))
    now = utcnow()
    dep = create_deployment(vigil, admin, name="cluster test", location="test site",
                            sources=[{"camera": c} for c in cameras], watchlists=["wanted"], window_start=now,
                            window_end=now + timedelta(hours=1), legal_basis="test", placement=placement)
    authorise_deployment(vigil, admin, dep["id"])
    return dep


def alert_rows(vigil, deployment_id: int) -> list[dict]:
    from sqlalchemy import select

    from vigil.store.schema import Alert

    with vigil.store.session() as s:
        return [{"id": a.id, "uid": a.alert_uid, "camera": a.camera, "subject_id": a.subject_id,
                 "probe": a.probe_blob_id, "frame": a.frame_blob_id, "created_at": a.created_at}
                for a in s.scalars(select(Alert).where(Alert.deployment_id == deployment_id).order_by(Alert.id))]


def wait_until(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
