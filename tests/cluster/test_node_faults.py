"""What an operator sees when the cluster cannot do what was asked (issue #14): a node started
against an unreachable NATS says so and retries with backoff; a camera no node can take (every
node at capacity, no node of its site) is reported, with the reason, in ``vigil deployment
status`` and the audit trail; a node without a measured capacity refuses to guess one."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli_run import run_cli
from tests.cluster.node_cluster import (
    NatsCluster, Process, cluster_deployment, free_port, need_nats_server, node_ready, start_node, start_recorder,
    wait_until)
from tests.services.live_helpers import audit_entries
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)


def test_an_unreachable_nats_is_said_and_retried_with_backoff_then_given_up(home):
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    node = Process(["node", "--nats", url, "--cameras", "1", "--connect-attempts", "3", "--json"])
    assert node.proc.wait(60) == 1
    retries = node.of("node", "unreachable")
    assert [e["retry_in_s"] for e in retries] == [0.5, 1.0]  # backoff between the three attempts
    assert all(url in e["message"] and "retrying in" in e["message"] for e in retries)
    err = "".join(node.stderr)
    assert f"NATS at {url} is unreachable after 3 attempt(s)" in err and "Traceback" not in err


def test_without_a_limit_a_node_keeps_retrying_and_says_so_in_words(home):
    url = f"nats://127.0.0.1:{free_port()}"
    node = Process(["node", "--nats", url, "--cameras", "1"])
    try:
        wait_until(lambda: sum("retrying in" in line for line in node.stderr) >= 3, 30, "three retries said")
        assert node.proc.poll() is None  # still trying
        said = "".join(node.stderr)
        assert f"NATS at {url} is unreachable" in said and "Traceback" not in said
        assert "retrying in 0.5 s" in said and "retrying in 1.0 s" in said and "retrying in 2.0 s" in said
    finally:
        node.stop(10)


def test_a_node_without_a_calibration_or_cameras_refuses_to_guess(home):
    need_nats_server()
    out = run_cli(home, "node", "--nats", "nats://127.0.0.1:4222")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "no measured capacity" in out.stderr and "vigil node calibrate" in out.stderr


def test_bad_names_and_urls_are_refused_in_words(home):
    out = run_cli(home, "node", "--nats", "http://example", "--cameras", "1")
    assert out.returncode != 0 and "a NATS URL starts with nats://" in out.stderr
    out = run_cli(home, "deployment", "place", "1", "somewhere")
    assert out.returncode != 0 and "use local (one process), any (any cluster node) or site:LABEL" in out.stderr


@pytest.mark.slow
def test_cameras_beyond_the_nodes_capacity_are_reported_unplaced(vigil, admin, home, tmp_path):
    from vigil.services.deployments import place_deployment
    from vigil.services.live_runs import start_deployment

    cluster = NatsCluster(tmp_path / "nats", 3).start()
    busy = cluster_deployment(vigil, admin, {"north-1": 40.0, "north-2": 40.0, "north-3": 40.0})
    remote = cluster_deployment(vigil, admin, {"quay": 40.0}, placement="local")
    placed = place_deployment(vigil, admin, remote["id"], "site:harbour")
    assert placed["placement"] == "site:harbour"
    nodes = [start_node(cluster.urls, "node-a", 1), start_node(cluster.urls, "node-b", 1)]
    recorder = start_recorder(cluster.urls)
    try:
        for node in nodes:
            node_ready(node)
        start_deployment(vigil, admin, busy["id"])
        start_deployment(vigil, admin, remote["id"])

        def reported(dep_id, camera_count):
            out = run_cli(home, "deployment", "status", str(dep_id), "--json")
            assert out.returncode == 0, out.stderr
            data = json.loads(out.stdout)
            return data if data["reported_at"] and len(data["cameras"]) == camera_count else None

        # back-pressure: each node holds its one camera and claims no more; the third is unplaced
        # (the recorder's view is rebuilt every beat: wait for one that has seen both nodes at capacity)
        data = wait_until(lambda: (d := reported(busy["id"], 3)) and sum(c["state"] == "running"
                                                                         for c in d["cameras"]) == 2
                          and any("at capacity" in (c["reason"] or "") for c in d["cameras"]) and d, 60,
                          "two cameras running, the third unplaced at capacity")
        (left,) = data["unplaced"]
        row = next(c for c in data["cameras"] if c["camera"] == left)
        assert row["reason"] == "every node that may run it is at capacity (node-a 1/1, node-b 1/1)"
        assert {c["node"] for c in data["cameras"] if c["state"] == "running"} == {"node-a", "node-b"}
        # a deployment placed on a site no node serves
        data = wait_until(lambda: reported(remote["id"], 1), 30, "the harbour deployment reported")
        assert data["unplaced"] == ["quay"]
        assert data["cameras"][0]["reason"] == "no node of site harbour is running (2 node(s) of other sites)"
        # said once in the audit trail, after a lease period without a node
        wait_until(lambda: audit_entries(vigil, "deployment.camera_unplaced", busy["id"]), 30, "the audit entry")
        time.sleep(4.0)
        entries = audit_entries(vigil, "deployment.camera_unplaced", busy["id"])
        assert [e["camera"] for e in entries] == [left] and "at capacity" in entries[0]["reason"]
        human = run_cli(home, "deployment", "status", str(busy["id"]))
        assert f"camera {left} is not running on any node" in human.stdout
    finally:
        recorder.stop()
        for node in nodes:
            node.stop()
        cluster.stop()


def test_a_deployment_placed_on_the_cluster_never_runs_in_one_process(vigil, admin, home):
    """`vigil deployment run` starts it and says where it runs; the API server's registry runs
    nothing; the one-process runner refuses it."""
    from vigil.api.live_registry import LiveRegistry
    from vigil.errors import VigilError
    from vigil.services.live_runs import DeploymentRunner, RunOptions

    dep = cluster_deployment(vigil, admin, {"lobby": 5.0})
    out = run_cli(home, "deployment", "run", str(dep["id"]), "--json")
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout)
    assert started["status"] == "running" and started["placement"] == "any" and started["started_on"] == "cluster"
    registry = LiveRegistry()
    registry.start(vigil, admin, dep["id"], fast=True, max_seconds=1)
    assert registry.running == {}
    with pytest.raises(VigilError, match="placed on the cluster"):
        DeploymentRunner(vigil, admin, dep["id"], [], RunOptions(fast=True))
    out = run_cli(home, "deployment", "place", str(dep["id"]), "local")
    assert out.returncode != 0 and "it is running (stop it first)" in out.stderr


def test_the_nats_servers_and_credentials_come_from_the_settings_too(home, tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"
    out = run_cli(home, "node", "--cameras", "1", "--connect-attempts", "1", env={"VIGIL_CLUSTER__NATS": url})
    assert out.returncode == 1 and f"NATS at {url} is unreachable after 1 attempt(s)" in out.stderr
    out = run_cli(home, "recorder", "--connect-attempts", "1",
                  env={"VIGIL_CLUSTER__NATS": url, "VIGIL_CLUSTER__CREDENTIALS": str(tmp_path / "none.creds")})
    assert out.returncode != 0 and "cluster.credentials" in out.stderr and "no such file" in out.stderr
    out = run_cli(home, "node", "--cameras", "1")
    assert out.returncode != 0 and "name the NATS servers" in out.stderr and "Traceback" not in out.stderr
