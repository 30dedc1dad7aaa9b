"""One alert per person across nodes (issue #14): the compare-and-set on the cluster's person
record lets exactly one of several nodes that see the same person at once raise the alert; and
when NATS cannot answer in time (a leader election), the camera goes on and the question is
asked again until it is answered: the alert is then published, or dropped with its clip if
another node had alerted the person first. It is never published unchecked."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.cluster.node_cluster import NatsCluster


def test_of_nodes_racing_for_one_person_exactly_one_wins(tmp_path):
    from vigil.cluster import leases
    from vigil.cluster.connection import connect

    cluster = NatsCluster(tmp_path / "nats", 1).start()

    async def race():
        clients = [await connect(cluster.urls, name=f"node-{i}", attempts=3) for i in range(4)]
        try:
            buckets = [await leases.open_buckets(nc.jetstream(timeout=5)) for nc in clients]
            now = time.time()
            wins = await asyncio.gather(*(leases.first_alert_of_person(
                b.people, leases.person_key(7, "S123"), 10.0, {"node": i}, now=now + i * 0.01)
                for i, b in enumerate(buckets)))
            later = await leases.first_alert_of_person(buckets[0].people, leases.person_key(7, "S123"), 10.0, {},
                                                       now=now + 11.0)
            other = await leases.first_alert_of_person(buckets[1].people, leases.person_key(7, "S999"), 10.0, {},
                                                       now=now)
            return wins, later, other
        finally:
            for nc in clients:
                await nc.close()

    try:
        wins, later, other = asyncio.run(race())
    finally:
        cluster.stop()
    assert sorted(wins) == [False, False, False, True]
    assert later is True  # the window has passed: a new alert of the same person
    assert other is True  # another person


class _Work:
    """What NodeRecorder needs of a camera's work."""

    def __init__(self):
        self.deployment_id, self.deployment_name, self.camera = 3, "dep", "gate"
        self.runner, self.alerts, self.suppressed = None, 0, 0


@pytest.fixture()
def node_loop():
    """A node with its event loop in a thread and no NATS: the person check and the publish
    are replaced by fakes."""
    from vigil.cluster.node import Node

    node = Node.__new__(Node)
    node.name, node.settled, node.pending, node.events = "node-x", {}, set(), []
    node.say = node.events.append
    node.buckets = type("B", (), {"people": None})()
    node.loop = asyncio.new_event_loop()
    thread = threading.Thread(target=node.loop.run_forever, daemon=True)
    thread.start()
    node.published = []

    async def publish_alert(work, ev, uid, raised, frame_at, *, checked_late):
        node.published.append((uid, checked_late))

    node.publish_alert = publish_alert
    yield node
    node.loop.call_soon_threadsafe(node.loop.stop)
    thread.join(5)


def _evidence():
    from vigil.live.alerts import AlertEvidence
    from vigil.live.matcher import WatchlistEntry

    return AlertEvidence("gate", 1.0, 1, WatchlistEntry("S1", "Someone", "wanted", 1, None), 0.7, 0.6, 1e-6,
                         b"probe", b"frame", {}, None, [1, 2, 3, 4])


def _answers(monkeypatch, *answers):
    """The person check fails (NATS busy) for each None, then answers."""
    from vigil.cluster import leases

    queue = list(answers)

    async def first_alert_of_person(kv, key, window, value, now=None):
        answer = queue.pop(0) if queue else True
        if answer is None:
            raise TimeoutError("no leader")
        return answer

    monkeypatch.setattr(leases, "first_alert_of_person", first_alert_of_person)


def test_an_answer_in_time_decides_at_once(node_loop, monkeypatch):
    from vigil.cluster.node import NodeRecorder

    _answers(monkeypatch, True, False)
    work = _Work()
    recorder = NodeRecorder(node_loop, work, 10.0)
    first = recorder.on_alert(_evidence())
    second = recorder.on_alert(_evidence())
    assert first is not None and second is None
    time.sleep(0.2)
    assert [checked_late for _, checked_late in node_loop.published] == [False]
    assert (work.alerts, work.suppressed) == (1, 1)


def test_a_late_answer_that_the_person_was_alerted_elsewhere_drops_the_alert_and_its_clip(node_loop, monkeypatch):
    from vigil.cluster.node import NodeRecorder

    _answers(monkeypatch, None, None, None, False)  # an election: 0.5 + 1 + 2 s, then "not the first"
    work = _Work()
    recorder = NodeRecorder(node_loop, work, 10.0)
    started = time.monotonic()
    payload = recorder.on_alert(_evidence())
    assert time.monotonic() - started < 2.5  # the camera did not wait for the election
    assert payload is not None and work.alerts == 1  # provisionally raised
    recorder.on_clip(payload["id"], b"clip", 10, {})
    deadline = time.monotonic() + 10
    while not node_loop.events and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    (said,) = [e for e in node_loop.events if e["type"] == "alert_suppressed"]
    assert said["late"] is True and said["alert_uid"] == payload["id"]
    assert node_loop.published == []  # never published
    assert (work.alerts, work.suppressed) == (0, 1)
    assert payload["id"] not in node_loop.settled  # the clip was looked at and dropped too


def test_a_late_answer_that_it_is_the_first_publishes_it_once(node_loop, monkeypatch):
    from vigil.cluster.node import NodeRecorder

    _answers(monkeypatch, None, None, None, True)
    work = _Work()
    payload = NodeRecorder(node_loop, work, 10.0).on_alert(_evidence())
    deadline = time.monotonic() + 10
    while not node_loop.published and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node_loop.published == [(payload["id"], True)]
    assert (work.alerts, work.suppressed) == (1, 0)
