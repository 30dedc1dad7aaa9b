"""Camera leases between real nodes (issue #14): a node killed loses its camera to the other
within the bound; a node frozen past its lease (split brain: alive but cut off) finds another
node running its camera when it wakes and stops at once, so two nodes never run one camera for
longer than a lease period."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime

import pytest

from tests.cluster.node_cluster import (
    NatsCluster, cluster_deployment, node_ready, start_node, start_recorder, wait_until)
from tests.services.live_helpers import audit_entries
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.slow

LEASE = 6.0  # the default lease period; the bound for a takeover is 10 s


@pytest.fixture()
def cluster(tmp_path):
    nats = NatsCluster(tmp_path / "nats", 3).start()
    yield nats
    nats.stop()


def _running(nodes):
    return wait_until(lambda: [n for n in nodes if n.of("camera", "started")], 60, "a node to run the camera")


def _camera(event: str):
    return lambda e: e.get("type") == "camera" and e.get("event") == event


def _name(node) -> str:
    return node.args[node.args.index("--name") + 1]


def test_a_killed_nodes_camera_is_taken_over_within_the_bound(vigil, admin, cluster):
    from vigil.services.deployments import deployment_status
    from vigil.services.live_runs import start_deployment, stop_deployment

    dep = cluster_deployment(vigil, admin, {"gate": 60.0})
    nodes = [start_node(cluster.urls, "node-a", 1), start_node(cluster.urls, "node-b", 1)]
    recorder = start_recorder(cluster.urls)
    try:
        for node in nodes:
            node_ready(node)
        start_deployment(vigil, admin, dep["id"])
        (first,) = _running(nodes)
        other = next(n for n in nodes if n is not first)
        time.sleep(3.0)  # a few renewals and status reports
        killed_at = first.kill()
        claimed_at, claim = other.wait_for(_camera("claimed"), 20, "the takeover")
        takeover = claimed_at - killed_at
        assert takeover <= 10.0, f"takeover took {takeover:.1f} s"
        assert takeover >= LEASE - 2.0, "claimed before the dead node's lease could have run out"
        assert claim["taken_from"] == _name(first)  # its counts carried over
        _, started = other.wait_for(_camera("started"), 30, "the camera restarted")
        assert started["start_at_s"] > 3.0  # the file camera continues where a live camera would be
        camera = wait_until(lambda: (c := deployment_status(vigil, admin, dep["id"])["cameras"][0])["node"]
                            == _name(other) and c["state"] == "running" and c, 20, "the status to name the new node")
        assert camera["frames"] > 0 and camera["heartbeat_age_s"] < 5
        moved = audit_entries(vigil, "deployment.camera_taken_over", dep["id"]) + \
            audit_entries(vigil, "deployment.camera_placed", dep["id"])
        assert moved, "the takeover was not audited"
        stopped = stop_deployment(vigil, admin, dep["id"], wait_seconds=30)
        assert stopped["status"] == "ended", stopped
    finally:
        recorder.stop()
        for node in nodes:
            node.stop()


def test_a_node_frozen_past_its_lease_stops_the_camera_the_moment_it_wakes(vigil, admin, cluster):
    from vigil.services.live_runs import start_deployment

    dep = cluster_deployment(vigil, admin, {"hall": 60.0})
    nodes = [start_node(cluster.urls, "node-a", 1), start_node(cluster.urls, "node-b", 1)]
    try:
        for node in nodes:
            node_ready(node)
        start_deployment(vigil, admin, dep["id"])
        (frozen,) = _running(nodes)
        other = next(n for n in nodes if n is not frozen)
        time.sleep(2.0)
        os.kill(frozen.proc.pid, signal.SIGSTOP)  # alive, but hears nothing and says nothing
        frozen_at = time.monotonic()
        claimed_at, _ = other.wait_for(_camera("claimed"), 20, "the other node's claim")
        assert LEASE - 2.0 <= claimed_at - frozen_at <= 10.0
        time.sleep(2.0)  # both now believe they run it: the other one rightly
        woke_at, woke_wall = time.monotonic(), time.time()
        os.kill(frozen.proc.pid, signal.SIGCONT)
        # the runtime looks at no frame once the lease may have run out; the node says so
        stopped_at, stopping = frozen.wait_for(
            lambda e: e.get("type") == "camera" and e.get("event") in ("stopping", "stopped"), 10,
            "the woken node to stop its camera")
        assert stopped_at - woke_at < 2.0, "the woken node went on with a camera it no longer holds"
        assert "lease" in stopping["why"]
        frozen.wait_for(_camera("stopped"), 20, "its camera stopped")
        time.sleep(2.0)
        assert other.of("camera", "stopping") == [], "the rightful node lost the camera"
        late = [e for e in frozen.of("alert_published")
                if datetime.fromisoformat(e["raised_at"]).timestamp() > woke_wall]
        assert late == [], "the woken node raised an alert on a camera it no longer held"
    finally:
        try:
            os.kill(nodes[0].proc.pid, signal.SIGCONT)
            os.kill(nodes[1].proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        for node in nodes:
            node.stop()
