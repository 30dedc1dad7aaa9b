"""A cluster node (``vigil node``): a worker process per machine that runs cameras of running
deployments placed on the cluster.

The node is a Vigil installation like the server (the same database and key files): it reads
which deployments run on the cluster and their frozen watchlists from the database, and
writes nothing there. Every second (one *tick*) it

1. renews the lease of every camera it runs (:mod:`vigil.cluster.leases`); a lease taken by
   another node stops that camera at once, and one it cannot renew (NATS out of reach) stops
   the camera before the lease could have run out on the server;
2. while it holds fewer cameras than its capacity (``--cameras``, or its measured calibration:
   :mod:`vigil.cluster.calibration`), claims one camera nobody holds: the back-pressure is
   that a full node claims nothing, so a camera no node can take stays unplaced, and the
   recorder reports it;
3. publishes each camera's status (health, lag, dropped frames, counts) and its own record
   (site, capacity, cameras held).

Each camera runs the existing live pipeline, one :class:`~vigil.live.runner.LiveRunner` per
camera in its own thread. A file standing in for a camera starts where a live camera would
be now (seconds since the deployment started), so a camera taken over continues rather than
starting again. An alert is checked against the cluster's one-alert-per-person record (the
camera waits for that, at most 1.5 s), then sealed with Vigil's keys and published to the
alert stream (:mod:`vigil.cluster.alert_stream`) in the background until the stream
acknowledges it; frames, crops and templates of everybody else stay in this process's memory
and are dropped with their tracks.

A node killed loses its leases when they run out (the lease period, 6 s by default), and
another node claims its cameras.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vigil.cluster import alert_stream as stream
from vigil.cluster import leases
from vigil.cluster.connection import (
    ClusterUnavailable, connect, connect_with_options, not_ready_reporter, stop_on_signals,
)
from vigil.cluster.sealing import Sealer
from vigil.engine.model_files import provider_notes
from vigil.errors import VigilError
from vigil.live.alerts import AlertEvidence
from vigil.live.runner import LiveRunner, RunOptions
from vigil.services.live_runs import camera_run_setup, cluster_work, placement_admits

log = logging.getLogger("vigil.cluster")

TICK = 1.0
FAILED_RETRY_SECONDS = 30.0  # a camera that failed here is left to other nodes this long
DEFER_TICKS = 3  # a node leaves unclaimed work to a less loaded node for at most this many ticks
PERSON_WAIT = 1.5  # the live loop waits at most this long for the one-alert-per-person check
FINAL = ("ended", "stopped", "failed")


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass
class NodeOptions:
    servers: list[str]
    name: str
    capacity: int
    site: str | None = None
    lease_seconds: float = leases.DEFAULT_LEASE_SECONDS
    replicas: int | None = None  # None: as many as the cluster has servers, at most 3
    calibration: dict | None = None
    connect_attempts: int | None = None  # None: retry forever
    heartbeat_every: float = 1.0
    credentials: str | None = None  # a NATS .creds file


class CameraRunner(LiveRunner):
    """The live runtime for one camera, remembering how old each frame was when the pipeline
    took it (the camera's lag) and when that frame was captured (the alert's frame time).
    Before each frame it asks ``may_run()`` (the lease still ours): a process that was frozen
    (a pause, a swapped-out machine) past its lease looks at no frame once it wakes."""

    frame_wall: float | None = None
    frame_width: int | None = None
    lag_s: float | None = None
    may_run: Callable[[], bool] = staticmethod(lambda: True)

    def _process(self, frame) -> None:
        if not self.may_run():
            self.stop("its lease may have run out")
            return
        now = time.monotonic()
        self.frame_wall, self.lag_s, self.frame_width = frame.wall, now - frame.wall, frame.image.shape[1]
        super()._process(frame)


@dataclass
class CameraWork:
    deployment_id: int
    deployment_name: str
    camera: str
    key: str
    lease: leases.Lease
    started_at: datetime | None  # the deployment's start: where a file camera is now
    carried: dict = field(default_factory=dict)  # counts from the nodes that ran it before
    state: str = "starting"  # starting | running | ended | stopped | failed
    why: str | None = None
    lost: bool = False  # the lease went to another node (not released by us)
    thread: threading.Thread | None = None
    runner: CameraRunner | None = None
    must_stop: threading.Event = field(default_factory=threading.Event)
    alerts: int = 0
    suppressed: int = 0
    thresholds: dict | None = None
    model_id: str | None = None

    def counts(self) -> dict:
        runner = self.runner
        own = {"frames": 0, "dropped": 0, "faces_seen": 0, "alerts": self.alerts}
        if runner is not None and runner.readers:
            reader = runner.readers[0]
            processed = sum(p.stats.frames_processed for p in runner.pipelines.values())
            own.update(frames=reader.frames_read, dropped=max(0, reader.frames_read - processed),
                       faces_seen=sum(p.stats.faces_compared for p in runner.pipelines.values()))
        return {k: own[k] + int(self.carried.get(k, 0)) for k in own}


class NodeRecorder:
    """The runtime's recorder on a node: alerts and clips go to the alert stream, sealed; the
    heartbeat says whether the camera may go on (its lease held, its deployment running)."""

    def __init__(self, node: "Node", work: CameraWork, dedup_seconds: float):
        self.node, self.work, self.dedup_seconds = node, work, dedup_seconds

    def on_alert(self, ev: AlertEvidence) -> dict | None:
        """The cluster's one-alert-per-person check, then the alert sealed and published in the
        background until the stream acknowledges it: a leader election never stalls the camera.
        The live loop waits for the check at most ``PERSON_WAIT``; when NATS cannot answer by
        then (an election, an outage), the alert goes on provisionally and the check is retried
        until it is answered: published if it was the person's first, dropped (with its clip)
        if another node alerted the same person first. Never published unchecked."""
        work, runner = self.work, self.work.runner
        uid = str(uuid.uuid4())
        raised = time.time()
        frame_at = raised - (time.monotonic() - runner.frame_wall) if runner and runner.frame_wall else raised
        decided: concurrent.futures.Future = concurrent.futures.Future()
        self.node.submit(self.node.raise_alert(work, ev, uid, raised, frame_at, self.dedup_seconds, decided))
        try:
            first = decided.result(timeout=PERSON_WAIT + 0.5)
        except TimeoutError:  # still asking: provisionally raised, decided in the background
            try:
                decided.set_result(None)
                first = None
            except concurrent.futures.InvalidStateError:  # the answer came this very moment
                first = decided.result()
        if first is False:
            work.suppressed += 1
            return None
        work.alerts += 1
        return {"type": "alert", "id": uid, "deployment_id": work.deployment_id,
                "deployment": work.deployment_name, "camera": ev.camera, "subject_id": ev.entry.subject_id,
                "name": ev.entry.name, "category": ev.entry.category, "score": round(ev.score, 5),
                "time": round(ev.source_time, 3), "utc": _iso(raised), "track_id": ev.track_id}

    def on_clip(self, alert_id, data: bytes, frames: int, redaction: dict) -> None:
        self.node.submit(self.node.publish_clip(self.work, str(alert_id), data, frames, redaction))

    def heartbeat(self) -> bool:
        return not self.work.must_stop.is_set()


class Node:
    def __init__(self, vigil, options: NodeOptions, say: Callable[[dict], None] | None = None):
        self.vigil, self.options = vigil, options
        self.name = leases.check_name(options.name)
        if options.capacity < 0:
            raise VigilError("a node's capacity (--cameras) is 0 or more cameras")
        if options.site is not None:
            leases.check_name(options.site, "site label")
        self.say = say or (lambda event: log.info("%s", event))
        self.instance = uuid.uuid4().hex[:12]
        self.held: dict[str, CameraWork] = {}
        self.failed_here: dict[str, float] = {}
        self.ended: set[str] = set()
        self.work: list[dict] = []
        self.work_error: str | None = None
        self.pending: set[asyncio.Future] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.started = time.time()
        self.published = 0
        self.deferred = 0
        self.settled: dict[str, bool] = {}  # alert id -> published (True) or dropped as the person's second
        self.sealer = Sealer(vigil.store.keyring)

    # -- from any thread -----------------------------------------------------------------
    def submit(self, coro):
        """Run ``coro`` in the node's event loop; returns a concurrent future."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future

    def request_stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    # -- the node's life -----------------------------------------------------------------
    def run(self) -> dict:
        """Connect (retrying with backoff), run until SIGINT/SIGTERM or :meth:`request_stop`,
        then stop every camera, hand its lease back and say so. Returns a summary."""
        return asyncio.run(self._main())

    async def _main(self) -> dict:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        stop_on_signals(self.loop, self.stopping)
        who = {"type": "node", "node": self.name}
        self.nc = await connect_with_options(self.options, name=f"vigil-node-{self.name}", who=who, say=self.say)
        try:
            self.js = self.nc.jetstream(timeout=2.0)
            replicas = self.options.replicas or min(3, stream.cluster_size(self.nc))

            async def setup():
                await stream.ensure_stream(self.js, replicas)
                return await leases.open_buckets(self.js, lease_seconds=self.options.lease_seconds,
                                                 replicas=replicas)

            self.buckets = await leases.until_ready(setup, not_ready_reporter(self.say, who))
            self.period = self.buckets.lease_seconds
            if self.options.capacity:  # the models load once, now: what they run on is said at start
                await asyncio.to_thread(self.vigil.engine, None)
            await self._register()
            self.say({"type": "node", "event": "started", "node": self.name, "instance": self.instance,
                      "site": self.options.site, "capacity": self.options.capacity, "lease_seconds": self.period,
                      "servers": self.options.servers, "inference": provider_notes()})
            tasks = [asyncio.create_task(self._poll_work()), asyncio.create_task(self._fence())]
            try:
                while not self.stopping.is_set():
                    started = time.monotonic()
                    await self._tick()
                    try:
                        await asyncio.wait_for(self.stopping.wait(), max(0.05, TICK - (time.monotonic() - started)))
                    except TimeoutError:
                        pass
            finally:
                for task in tasks:
                    task.cancel()
                await self._shutdown()
        finally:
            try:
                await self.nc.close()
            except Exception:  # noqa: BLE001 - closing a connection that is already gone
                pass
        return {"node": self.name, "alerts_published": self.published}

    async def _register(self) -> None:
        """The node's record; a node of the same name still alive is an error (its record of a
        node that died expires within a lease period, so a restart waits that long at most)."""
        deadline = time.monotonic() + self.period + 1.0
        while True:
            try:
                self.node_lease = await leases.claim(self.buckets.nodes, self.name, self._record(), self.period)
            except Exception as exc:  # noqa: BLE001 - a cluster electing leaders, or NATS away for a moment
                if time.monotonic() > deadline + 30.0:
                    raise VigilError(f"cannot register node {self.name!r} with NATS: {exc or type(exc).__name__}")
                await asyncio.sleep(0.5)
                continue
            if self.node_lease is not None:
                return
            other, _ = await leases.get(self.buckets.nodes, self.name)
            if time.monotonic() > deadline:
                where = f" on {other.get('host')} (pid {other.get('pid')})" if other else ""
                raise VigilError(f"a node named {self.name!r} is already running{where}; give this one another "
                                 "--name")
            await asyncio.sleep(0.5)

    def _record(self) -> dict:
        return {"name": self.name, "instance": self.instance, "host": socket.gethostname(), "pid": os.getpid(),
                "site": self.options.site, "capacity": self.options.capacity, "held": len(self.held),
                "cameras": [{"deployment_id": w.deployment_id, "camera": w.camera} for w in self.held.values()],
                "calibration": self.options.calibration, "inference": provider_notes(),
                "started_at": _iso(self.started), "beat_at": _iso(time.time())}

    async def _poll_work(self) -> None:
        """Which running deployments this node may serve, read from the database every 2 s
        (in a thread: a slow database never delays lease renewal)."""
        while True:
            try:
                self.work = await asyncio.to_thread(cluster_work, self.vigil, self.options.site)
                self.work_error = None
            except Exception as exc:  # noqa: BLE001 - the database away: keep the last view, say so once
                if self.work_error is None:
                    self.say({"type": "node", "event": "database_unreachable", "node": self.name,
                              "message": f"cannot read the running deployments: {exc}"})
                self.work_error = str(exc)
            await asyncio.sleep(2.0)

    async def _fence(self) -> None:
        """Stop a camera the moment its lease may have run out on the server (every 0.2 s)."""
        while True:
            now = time.monotonic()
            for work in list(self.held.values()):
                if work.state not in FINAL and not work.must_stop.is_set() and work.lease.expired_locally(now):
                    self._stop_camera(work, "its lease could not be renewed (NATS out of reach): another node "
                                            "may take it")
            await asyncio.sleep(0.2)

    async def _tick(self) -> None:
        for work in [w for w in self.held.values() if w.thread is not None and not w.thread.is_alive()]:
            await self._finish(work)
        await asyncio.gather(*(self._renew(w) for w in list(self.held.values())))
        running = {d["id"]: d for d in self.work}
        for work in list(self.held.values()):
            dep = running.get(work.deployment_id)
            if self.work_error is None and (dep is None or dep["stop_requested"]):
                self._stop_camera(work, "its deployment was stopped" if dep else "its deployment is no longer running")
        if not self.stopping.is_set():
            await self._claim_one(running)
        await self._beat()
        await asyncio.gather(*(self._publish_status(w) for w in list(self.held.values())), return_exceptions=True)

    async def _beat(self) -> None:
        """The node's own record, renewed like a lease (so that a clean stop can remove it)."""
        try:
            await leases.renew(self.buckets.nodes, self.node_lease, self._record())
        except leases.LeaseLost:  # it expired (NATS away for a lease period): register again
            lease = await leases.claim(self.buckets.nodes, self.name, self._record(), self.period)
            if lease is None:
                self.say({"type": "node", "event": "name_taken", "node": self.name,
                          "message": f"another node registered as {self.name!r} while this one was cut off"})
            else:
                self.node_lease = lease
        except Exception:  # noqa: BLE001 - NATS away: the record expires and the recorder says so
            pass

    async def _renew(self, work: CameraWork) -> None:
        if work.lost:
            return
        try:
            await leases.renew(self.buckets.leases, work.lease, self._lease_value(work))
        except leases.LeaseLost:
            work.lost = True
            self._stop_camera(work, "another node holds its lease now")
        except Exception:  # noqa: BLE001 - NATS away: _fence stops it before the lease runs out
            pass

    def _lease_value(self, work: CameraWork) -> dict:
        return {"node": self.name, "instance": self.instance, "site": self.options.site,
                "deployment_id": work.deployment_id, "camera": work.camera,
                "since": _iso(work.lease.acquired_wall)}

    async def _claim_one(self, running: dict[int, dict]) -> None:
        """Claim at most one camera per tick (so that idle nodes share new work), and only
        while under capacity."""
        if len(self.held) >= self.options.capacity:
            return
        now = time.monotonic()
        candidates = []
        for dep in running.values():
            if dep["stop_requested"] or (dep["window_end"] and dep["window_end"] <= datetime.now(UTC)):
                continue
            for camera in dep["cameras"]:
                key = leases.camera_key(dep["id"], camera)
                failed_here = now - self.failed_here.get(key, -1e9) < FAILED_RETRY_SECONDS
                if key in self.held or key in self.ended or failed_here:
                    continue
                candidates.append((dep, camera, key))
        if not candidates:
            return
        if self.held and self.deferred < DEFER_TICKS and await self._lighter_node(candidates):
            self.deferred += 1  # a node running fewer cameras may take it: give it a tick or three
            return
        self.deferred = 0
        random.shuffle(candidates)
        for dep, camera, key in candidates:
            previous, _ = await leases.get(self.buckets.status, key)
            if previous and previous.get("state") == "ended":
                self.ended.add(key)
                continue
            lease = await leases.claim(self.buckets.leases, key, {
                "node": self.name, "instance": self.instance, "site": self.options.site, "deployment_id": dep["id"],
                "camera": camera, "since": _iso(time.time())}, self.period)
            if lease is None:
                continue
            carried = {}
            if previous and previous.get("instance") != self.instance:
                carried = {k: int(previous.get(k) or 0) for k in ("frames", "dropped", "faces_seen", "alerts")}
            work = CameraWork(dep["id"], dep["name"], camera, key, lease, dep["started_at"], carried)
            self.held[key] = work
            self.say({"type": "camera", "event": "claimed", "node": self.name, "deployment_id": dep["id"],
                      "camera": camera, "taken_from": (previous or {}).get("node") if carried else None})
            work.thread = threading.Thread(target=self._run_camera, args=(work,), daemon=True,
                                           name=f"camera-{dep['id']}-{camera}")
            work.thread.start()
            return

    async def _lighter_node(self, candidates: list) -> bool:
        """Whether another live node that may run one of these cameras holds fewer cameras
        than this one and has room: new work spreads over the nodes instead of filling the
        first one to look."""
        try:
            records = await leases.all_values(self.buckets.nodes)
        except Exception:  # noqa: BLE001 - cannot tell: claim
            return False
        placements = {dep["placement"] for dep, _, _ in candidates}
        return any(r.get("instance") != self.instance and "capacity" in r
                   and int(r.get("held") or 0) < min(len(self.held), int(r["capacity"]))
                   and any(placement_admits(p, r.get("site")) for p in placements)
                   for r in records.values())

    def _run_camera(self, work: CameraWork) -> None:
        """The camera's thread: build its runtime (frozen watchlist, engine, source) and run it
        until its source ends, its window closes, or the node stops it."""
        try:
            setup = camera_run_setup(self.vigil, work.deployment_id, work.camera)
            offset = max(0.0, time.time() - work.started_at.timestamp()) if work.started_at else 0.0
            setup.sources = [{**s, "start_at": offset} for s in setup.sources]
            recorder = NodeRecorder(self, work, self.vigil.settings.live.dedup_seconds)
            runner = CameraRunner(setup, recorder, [_Events(self, work)],
                                  RunOptions(heartbeat_every=self.options.heartbeat_every, health_every=5.0))
            runner.may_run = lambda: not work.must_stop.is_set() and not work.lease.expired_locally()
            work.thresholds, work.model_id = setup.matcher.thresholds(), setup.engine.model_id
            work.runner = runner
            if work.must_stop.is_set():
                return
            work.state = "running"
            self.say({"type": "camera", "event": "started", "node": self.name, "deployment_id": work.deployment_id,
                      "camera": work.camera, "start_at_s": round(offset, 2)})
            summary = runner.run().summary
            if runner.stopped_because:
                work.state, work.why = "stopped", work.why or runner.stopped_because
            elif summary["all_cameras_failed"]:
                work.state, work.why = "failed", "; ".join(c["error"] or c["status"] for c in summary["cameras"])
            else:
                work.state, work.why = "ended", "its source ended or its window closed"
        except Exception as exc:  # noqa: BLE001 - the camera fails here; another node may try it
            work.state, work.why = "failed", f"{exc.__class__.__name__}: {exc}"

    def _stop_camera(self, work: CameraWork, why: str) -> None:
        if work.must_stop.is_set():
            return
        work.why = why
        work.must_stop.set()
        if work.runner is not None:
            work.runner.stop(why)
        self.say({"type": "camera", "event": "stopping", "node": self.name, "deployment_id": work.deployment_id,
                  "camera": work.camera, "why": why})

    async def _finish(self, work: CameraWork) -> None:
        """A camera's thread is over: its last status, its lease handed back (unless another
        node holds it already), an ended camera marked so nobody starts it again."""
        if work.state not in FINAL:
            work.state = "stopped"
        if work.state == "failed":
            self.failed_here[work.key] = time.monotonic()
        if work.state == "ended":
            self.ended.add(work.key)
        if not work.lost:  # (a lease that ran down here may be another node's by now: release is a no-op then)
            await self._publish_status(work)
            await leases.release(self.buckets.leases, work.lease)
        self.held.pop(work.key, None)
        self.say({"type": "camera", "event": work.state, "node": self.name, "deployment_id": work.deployment_id,
                  "camera": work.camera, "why": work.why, **work.counts()})

    async def _publish_status(self, work: CameraWork) -> None:
        if work.lost or work.lease.expired_locally():  # no longer ours to speak for: the new holder does
            return
        runner = work.runner
        health = runner.readers[0].health() if runner is not None and runner.readers else {}
        value = {"deployment_id": work.deployment_id, "camera": work.camera, "node": self.name,
                 "instance": self.instance, "site": self.options.site, "state": work.state, "why": work.why,
                 "health": health.get("status") if work.state == "running" else work.state,
                 "lag_s": None if runner is None or runner.lag_s is None else round(runner.lag_s, 3),
                 "seconds_since_frame": health.get("seconds_since_frame"), "warning": health.get("warning"),
                 "suppressed_duplicates": work.suppressed, "since": _iso(work.lease.acquired_wall),
                 "heartbeat_at": _iso(time.time()), "thresholds": work.thresholds, "model_id": work.model_id,
                 **work.counts()}
        try:
            await self.buckets.status.put(work.key, leases.dumps(value))
        except Exception:  # noqa: BLE001 - NATS away: the next tick says it again
            pass

    async def _shutdown(self) -> None:
        for work in self.held.values():
            self._stop_camera(work, "its node is stopping")
        for work in list(self.held.values()):
            if work.thread is not None:
                await asyncio.to_thread(work.thread.join, 15.0)
            await self._finish(work)
        waiting = [asyncio.wrap_future(f) for f in list(self.pending)]
        if waiting:  # alerts and clips not yet acknowledged by the stream
            await asyncio.wait(waiting, timeout=30.0)
        unsent = sum(1 for f in waiting if not f.done())
        await leases.release(self.buckets.nodes, self.node_lease)
        self.say({"type": "node", "event": "stopped", "node": self.name, "alerts_published": self.published,
                  **({"unpublished": unsent, "message": f"{unsent} alert(s) or clip part(s) were never acknowledged "
                                                        "by the stream (NATS out of reach)"} if unsent else {})})

    # -- alerts (in the event loop) ----------------------------------------------------------
    async def raise_alert(self, work: CameraWork, ev: AlertEvidence, uid: str, raised: float, frame_at: float,
                          window: float, decided: concurrent.futures.Future) -> None:
        """Ask the cluster whether this is the person's first alert in the window (the same
        question, with the alert's own time, until NATS answers it), say the answer to the
        waiting camera, then publish the alert if it was the first."""
        key = leases.person_key(work.deployment_id, ev.entry.subject_id)
        wait, first = 0.5, None
        while first is None:
            try:
                first = await asyncio.wait_for(leases.first_alert_of_person(
                    self.buckets.people, key, window, {"alert_uid": uid, "node": self.name, "camera": work.camera},
                    now=raised), PERSON_WAIT)
            except Exception:  # noqa: BLE001 - NATS away, or a leader election: ask again
                await asyncio.sleep(wait)
                wait = min(5.0, wait * 2)
        try:
            decided.set_result(first)
            late = False
        except concurrent.futures.InvalidStateError:  # the camera went on without the answer
            late = True
        self.settled[uid] = first
        if not first:
            if late:  # the camera counted it provisionally
                work.alerts -= 1
                work.suppressed += 1
            self.say({"type": "alert_suppressed", "node": self.name, "deployment_id": work.deployment_id,
                      "camera": work.camera, "subject_id": ev.entry.subject_id, "alert_uid": uid, "late": late,
                      "why": f"alerted within {window:g} s on this or another node (one alert per person)"})
            return
        await self.publish_alert(work, ev, uid, raised, frame_at, checked_late=late)

    async def publish_alert(self, work: CameraWork, ev: AlertEvidence, uid: str, raised: float, frame_at: float,
                            *, checked_late: bool) -> None:
        """One alert, sealed and published until the stream acknowledges it (retried under the
        same id: stored once)."""
        entry = ev.entry
        header = {"alert_uid": uid, "deployment_id": work.deployment_id, "deployment": work.deployment_name,
                  "camera": ev.camera, "source_time": ev.source_time, "track_id": ev.track_id,
                  "subject_id": entry.subject_id, "name": entry.name, "category": entry.category,
                  "watchlist_id": entry.watchlist_id, "image_blob_id": entry.image_blob_id, "score": ev.score,
                  "threshold": ev.threshold, "fmr": ev.fmr, "redaction": ev.redaction, "runner_up": ev.runner_up,
                  "node": self.name, "raised_at": raised, "frame_at": frame_at, "person_checked_late": checked_late,
                  "box": ev.box, "frame_width": work.runner.frame_width if work.runner else None}
        body = stream.seal(self.sealer, "alert", uid, header, [ev.probe_jpeg, ev.frame_jpeg])
        ack = await stream.publish(self.js, stream.alert_subject(work.deployment_id), body, uid,
                                   {"Vigil-Alert-Id": uid, "Vigil-Kind": "alert"})
        self.published += 1
        self.say({"type": "alert_published", "node": self.name, "alert_uid": uid, "deployment_id": work.deployment_id,
                  "camera": work.camera, "subject_id": entry.subject_id, "raised_at": _iso(raised),
                  "frame_at": _iso(frame_at), "published_at": _iso(time.time()), "stream_seq": ack.seq,
                  "duplicate": bool(ack.duplicate), "person_checked_late": checked_late})

    async def publish_clip(self, work: CameraWork, uid: str, data: bytes, frames: int, redaction: dict) -> None:
        while uid not in self.settled:  # its alert still waits for the one-alert-per-person answer
            await asyncio.sleep(0.5)
        if not self.settled.pop(uid):  # its alert was dropped: neither leaves this process
            return
        size = min(stream.CHUNK_BYTES, max(4096, (self.nc.max_payload or 1 << 20) - 8192))
        parts = stream.chunks(data, size)
        for i, part in enumerate(parts):
            header = {"alert_uid": uid, "part": i, "of": len(parts), "frames": frames, "redaction": redaction,
                      "deployment_id": work.deployment_id}
            body = stream.seal(self.sealer, "clip", uid, header, [part], part=i)
            await stream.publish(self.js, stream.clip_subject(work.deployment_id), body, f"{uid}.clip.{i}",
                                 {"Vigil-Alert-Id": uid, "Vigil-Kind": "clip", "Vigil-Part": f"{i}/{len(parts)}"})
        self.say({"type": "clip_published", "node": self.name, "alert_uid": uid, "parts": len(parts),
                  "bytes": len(data)})


class _Events:
    """The runtime's sink on a node: camera notices (falling behind, a stream gone) become node
    events; alerts are said by :meth:`Node.publish_alert` once the stream has them."""

    def __init__(self, node: Node, work: CameraWork):
        self.node, self.work = node, work

    def send(self, payload: dict) -> None:
        if payload.get("type") == "notice":
            self.node.say({"type": "camera", "event": "notice", "node": self.node.name,
                           "deployment_id": self.work.deployment_id, "camera": self.work.camera,
                           "message": payload.get("message")})

    def close(self) -> None:
        pass


def list_nodes(servers: list[str], credentials=None) -> list[dict]:
    """The live nodes' records (``vigil node list``)."""
    from nats.js.errors import BucketNotFoundError, NotFoundError

    async def main() -> list[dict]:
        nc = await connect(servers, name="vigil-node-list", attempts=3,
                           credentials=str(credentials) if credentials else None)
        try:
            try:
                kv = await nc.jetstream(timeout=2.0).key_value(leases.NODES)
            except (BucketNotFoundError, NotFoundError):
                return []
            values = await leases.all_values(kv)
            return sorted((v for v in values.values() if "capacity" in v), key=lambda v: v["name"])
        finally:
            await nc.close()

    return asyncio.run(main())


def run_node(vigil, options: NodeOptions, say: Callable[[dict], None] | None = None) -> dict:
    """``vigil node``: run until stopped. Raises :class:`ClusterUnavailable` when NATS stays
    out of reach for ``connect_attempts`` attempts."""
    return Node(vigil, options, say).run()


__all__ = ["ClusterUnavailable", "Node", "NodeOptions", "list_nodes", "run_node"]
