"""The cluster's recorder (``vigil recorder``): the alert stream into the database, and the
nodes' view of each camera into the deployment.

Alerts. A durable pull consumer (``VIGIL_RECORDER``, explicit acknowledgement) takes each
sealed alert from the stream, opens it, stores it through the service layer
(:class:`vigil.services.live_runs.StoreRecorder`: the encrypted blobs, the row keyed by the
alert id its node gave it, the audit entry, one transaction) and acknowledges it only after
that transaction has committed. A recorder that dies before committing leaves the message
unacknowledged and it is delivered again; one that dies between commit and acknowledgement
gets it again too, and the alert id, unique in the database, makes that a no-op. So the
database stays the record, and a crash anywhere loses nothing and duplicates nothing. Clips
arrive in chunks after their alert; they are stored once every chunk is in and the alert is,
then acknowledged together. Several recorders may share the consumer (the API server and
``vigil recorder``): each message goes to one of them.

Cameras. One recorder at a time (a lease, ``recorder.control``, in the nodes bucket) looks
every couple of seconds at each running cluster deployment's cameras: which node holds each
one, its health, lag, dropped frames and last heartbeat (the nodes' status bucket), or why
none does (no node of its site, every node at capacity, it failed, its node stopped
renewing). That view goes into the deployment (``vigil deployment status``, the API's
deployment detail) with the heartbeat that says the deployment is alive; a camera left
unplaced, placed again or taken over by another node is audited. The deployment ends when
every camera's source has ended, or once a stop was requested (or its window closed) and no
node holds any of its cameras.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vigil.cluster import alert_stream as stream
from vigil.cluster import leases
from vigil.cluster.connection import connect_with_options, not_ready_reporter, stop_on_signals
from vigil.cluster.sealing import SealError, Sealer
from vigil.live.alerts import AlertEvidence
from vigil.live.matcher import WatchlistEntry
from vigil.services.live_runs import StoreRecorder, cluster_work, end_deployment, placement_admits

log = logging.getLogger("vigil.cluster")

CONTROL_KEY = "recorder.control"
ORPHAN_CLIP_DELIVERIES = 60  # a clip whose alert is still not recorded after this many deliveries (2 s apart)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass
class RecorderOptions:
    servers: list[str]
    name: str = field(default_factory=lambda: f"recorder-{socket.gethostname()}-{os.getpid()}")
    replicas: int | None = None
    beat_seconds: float = 2.0
    ack_wait: float = 30.0  # an unacknowledged alert is delivered again after this long
    batch: int = 32
    connect_attempts: int | None = None
    control: bool = True  # also keep the deployments' camera view (one recorder at a time does)
    credentials: str | None = None  # a NATS .creds file


class Recorder:
    def __init__(self, vigil, options: RecorderOptions, say: Callable[[dict], None] | None = None,
                 before_ack: Callable[[dict], None] | None = None):
        """``before_ack(event)`` runs after an alert's transaction has committed and before it is
        acknowledged (the tests crash the recorder there)."""
        self.vigil, self.options = vigil, options
        self.say = say or (lambda event: log.info("%s", event))
        self.before_ack = before_ack
        self.sealer = Sealer(vigil.store.keyring)
        self.recorders: dict[int, StoreRecorder] = {}
        self.clips: dict[str, dict] = {}
        self.cameras: dict[tuple[int, str], dict] = {}
        self.recorded = 0
        self.already = 0
        self.stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> dict:
        return asyncio.run(self._main())

    def request_stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    async def _main(self) -> dict:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        stop_on_signals(self.loop, self.stopping)
        who = {"type": "recorder"}
        self.nc = await connect_with_options(self.options, name=f"vigil-{self.options.name}", who=who, say=self.say)
        try:
            self.js = self.nc.jetstream(timeout=5.0)
            replicas = self.options.replicas or min(3, stream.cluster_size(self.nc))

            async def setup():
                await stream.ensure_stream(self.js, replicas)
                self.buckets = await leases.open_buckets(self.js, replicas=replicas)
                self.sub = await self.js.pull_subscribe(
                    stream.SUBJECTS, durable=stream.CONSUMER, stream=stream.STREAM,
                    config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.options.ack_wait,
                                          max_deliver=-1, max_ack_pending=10_000, deliver_policy=DeliverPolicy.ALL))

            await leases.until_ready(setup, not_ready_reporter(self.say, who))
            self.say({"type": "recorder", "event": "started", "name": self.options.name,
                      "servers": self.options.servers})
            tasks = [asyncio.create_task(self._consume())]
            if self.options.control:
                tasks.append(asyncio.create_task(self._control()))
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks + [stop]:
                task.cancel()
            for task in done:  # a task that failed (the before_ack hook, a bug) ends the recorder with it
                if task is not stop and task.exception() is not None:
                    raise task.exception()
        finally:
            try:
                await self.nc.close()
            except Exception:  # noqa: BLE001
                pass
        self.say({"type": "recorder", "event": "stopped", "recorded": self.recorded,
                  "already_recorded": self.already})
        return {"recorded": self.recorded, "already_recorded": self.already}

    # -- alerts ------------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            try:
                msgs = await self.sub.fetch(self.options.batch, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - nothing waiting (a timeout), or NATS away for a moment
                await asyncio.sleep(0.05)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg) -> None:
        headers = msg.headers or {}
        kind, uid = headers.get("Vigil-Kind"), headers.get("Vigil-Alert-Id", "")
        try:
            if kind == "alert":
                header, (probe, frame) = stream.unseal(self.sealer, "alert", uid, msg.data)
            elif kind == "clip":
                part = int(headers.get("Vigil-Part", "0/1").split("/")[0])
                header, (data,) = stream.unseal(self.sealer, "clip", uid, msg.data, part)
            else:
                raise SealError(f"unknown message kind {kind!r}")
        except (SealError, ValueError) as exc:
            # another site's message, or keys rotated without a restart: never dropped, left for a
            # recorder that holds the key (and said, so the operator can act)
            self.say({"type": "recorder", "event": "cannot_open", "alert_uid": uid, "subject": msg.subject,
                      "message": f"cannot open {kind or 'a message'} {uid}: {exc}"})
            await msg.nak(delay=30)
            return
        if kind == "alert":
            await self._record_alert(msg, header, probe, frame)
        else:
            await self._collect_clip(msg, header, data)

    def _recorder(self, header: dict) -> StoreRecorder:
        dep = int(header["deployment_id"])
        if dep not in self.recorders:  # it keeps the watchlist photographs it read
            self.recorders[dep] = StoreRecorder(self.vigil, dep, header.get("deployment", ""))
        return self.recorders[dep]

    async def _record_alert(self, msg, header: dict, probe: bytes, frame: bytes) -> None:
        entry = WatchlistEntry(header["subject_id"], header["name"], header["category"], header["watchlist_id"],
                               header.get("image_blob_id"))
        evidence = AlertEvidence(header["camera"], float(header["source_time"]), int(header["track_id"]), entry,
                                 float(header["score"]), float(header["threshold"]), float(header["fmr"]), probe,
                                 frame, header.get("redaction") or {}, header.get("runner_up"))
        raised = datetime.fromtimestamp(float(header["raised_at"]), UTC)
        try:
            payload = await asyncio.to_thread(self._recorder(header).on_alert, evidence,
                                              alert_uid=header["alert_uid"], raised_at=raised, node=header.get("node"))
        except Exception as exc:  # noqa: BLE001 - the database away: not acknowledged, so delivered again
            self.say({"type": "recorder", "event": "not_recorded", "alert_uid": header["alert_uid"],
                      "message": f"alert {header['alert_uid']} not recorded yet ({exc.__class__.__name__}: {exc}); "
                                 "it stays on the stream"})
            await msg.nak(delay=2)
            return
        already = bool(payload.get("already_recorded"))
        event = {"type": "alert_recorded", "alert_uid": header["alert_uid"], "alert_id": payload["id"],
                 "deployment_id": header["deployment_id"], "camera": header["camera"], "node": header.get("node"),
                 "subject_id": header["subject_id"], "raised_at": _iso(float(header["raised_at"])),
                 "frame_at": _iso(float(header.get("frame_at") or header["raised_at"])),
                 "recorded_at": _iso(time.time()), "already_recorded": already,
                 "delivery": msg.metadata.num_delivered if msg.metadata else None}
        if self.before_ack is not None:
            self.before_ack(event)
        await msg.ack()
        if already:
            self.already += 1
        else:
            self.recorded += 1
        self.say(event)

    async def _collect_clip(self, msg, header: dict, data: bytes) -> None:
        uid = header["alert_uid"]
        clip = self.clips.setdefault(uid, {"of": int(header["of"]), "parts": {}, "msgs": {}})
        clip["parts"][int(header["part"])] = data
        clip["msgs"][int(header["part"])] = msg
        if len(clip["parts"]) < clip["of"]:
            return
        del self.clips[uid]
        whole = b"".join(clip["parts"][i] for i in range(clip["of"]))
        try:
            stored = await asyncio.to_thread(self._recorder(header).on_clip, uid, whole, int(header["frames"]),
                                             header.get("redaction") or {})
        except Exception as exc:  # noqa: BLE001 - delivered again later
            stored, why = False, f"{exc.__class__.__name__}: {exc}"
        else:
            why = "its alert is not recorded yet"
        if not stored:
            tries = max((m.metadata.num_delivered or 1) for m in clip["msgs"].values())
            if tries >= ORPHAN_CLIP_DELIVERIES:  # its alert never reached the stream (its node died first)
                self.say({"type": "recorder", "event": "clip_dropped", "alert_uid": uid,
                          "message": f"clip of alert {uid} dropped after {tries} deliveries: {why}"})
                for part in clip["msgs"].values():
                    await part.term()
                return
            self.say({"type": "recorder", "event": "clip_waiting", "alert_uid": uid, "message": why})
            for part in clip["msgs"].values():
                await part.nak(delay=2)
            return
        for part in clip["msgs"].values():
            await part.ack()
        self.say({"type": "clip_recorded", "alert_uid": uid, "bytes": len(whole), "parts": clip["of"]})

    # -- cameras -----------------------------------------------------------------------------
    async def _control(self) -> None:
        lease = None
        while True:
            try:
                if lease is None:
                    lease = await leases.claim(self.buckets.nodes, CONTROL_KEY, {"recorder": self.options.name},
                                               self.buckets.lease_seconds)
                else:
                    await leases.renew(self.buckets.nodes, lease, {"recorder": self.options.name})
                if lease is not None and not lease.expired_locally():
                    await self._beat()
            except asyncio.CancelledError:
                raise
            except leases.LeaseLost:
                lease = None
            except Exception as exc:  # noqa: BLE001 - NATS or the database away for a moment: next beat
                log.info("recorder beat failed: %s", exc)
            await asyncio.sleep(self.options.beat_seconds)

    async def _beat(self) -> None:
        deployments = await asyncio.to_thread(cluster_work, self.vigil, None, every_site=True)
        nodes = await self._nodes()
        if not nodes and deployments and await leases.all_values(self.buckets.leases):
            # cameras are held, so nodes run: an empty read of their records (nats-py's key listing
            # can come back empty while the server is busy) is read again rather than reported
            await asyncio.sleep(0.5)
            nodes = await self._nodes()
        node_rows = [{"name": n["name"], "site": n.get("site"), "capacity": n.get("capacity"), "held": n.get("held"),
                      "host": n.get("host"), "beat_at": n.get("beat_at")} for n in nodes.values()]
        now = time.time()
        for dep in deployments:
            rows, events = [], []
            for camera in dep["cameras"]:
                key = leases.camera_key(dep["id"], camera)
                holder, _ = await leases.get(self.buckets.leases, key)
                status, _ = await leases.get(self.buckets.status, key)
                row = self._row(dep, camera, holder, status, nodes)
                events += self._transitions(dep, row, now)
                rows.append(row)
            first = next((r for r in rows if r.get("thresholds")), None)
            record = {"heartbeat_every": self.options.beat_seconds, "cluster": True}
            if first:
                record.update(thresholds=first["thresholds"], model_id=first.get("model_id"))
            view = {"updated_at": _iso(now), "recorder": self.options.name, "nodes": node_rows,
                    "cameras": [{k: v for k, v in r.items() if k not in ("thresholds", "model_id")} for r in rows]}
            recorder = self._recorder({"deployment_id": dep["id"], "deployment": dep["name"]})
            state = await asyncio.to_thread(recorder.cluster_heartbeat, view, record=record,
                                            events=[(a, d) for a, d in events if a.startswith("deployment.")])
            for action, details in events:
                self.say({"type": action.removeprefix("deployment."), "deployment_id": dep["id"], **details})
            if state["status"] != "running":
                continue
            held = [r for r in rows if r["state"] in ("running", "starting")]
            closed = dep["window_end"] is not None and dep["window_end"] <= datetime.now(UTC)
            if rows and all(r["state"] == "ended" for r in rows):
                await self._end(dep, rows, node_rows, "")
            elif (state["stop_requested_by"] or closed) and not held:
                await self._end(dep, rows, node_rows, "" if state["stop_requested_by"] else "its window closed")

    async def _nodes(self) -> dict[str, dict]:
        """The live nodes' records (name, site, capacity, cameras held)."""
        return {k: v for k, v in (await leases.all_values(self.buckets.nodes)).items() if "capacity" in v}

    def _row(self, dep: dict, camera: str, holder: dict | None, status: dict | None, nodes: dict) -> dict:
        status = status or {}
        counts = {k: status.get(k) for k in ("frames", "dropped", "faces_seen", "alerts")}
        row = {"camera": camera, "node": None, "site": None, "state": None, "since": None, "health": None,
               "lag_s": None, "heartbeat_at": None, "reason": None, **counts}
        if holder:
            mine = status if status.get("instance") == holder.get("instance") else {}
            row.update(node=holder.get("node"), site=holder.get("site"), since=holder.get("since"),
                       state=mine.get("state") or "starting", health=mine.get("health") or "starting",
                       lag_s=mine.get("lag_s"), heartbeat_at=mine.get("heartbeat_at"),
                       thresholds=mine.get("thresholds"), model_id=mine.get("model_id"),
                       suppressed_duplicates=mine.get("suppressed_duplicates"))
            if mine.get("warning"):
                row["reason"] = mine["warning"]
            return row
        if status.get("state") == "ended":
            row.update(node=status.get("node"), state="ended", health="ended", heartbeat_at=status.get("heartbeat_at"),
                       reason=status.get("why"))
            return row
        if dep["stop_requested"]:  # handed back on the stop: not a camera left without a node
            row.update(state="stopped", health="stopped", last_node=status.get("node"),
                       heartbeat_at=status.get("heartbeat_at"), reason="a stop was requested")
            return row
        row.update(state="unplaced", reason=self._why_unplaced(dep, status, nodes), last_node=status.get("node"),
                   heartbeat_at=status.get("heartbeat_at"))
        return row

    @staticmethod
    def _why_unplaced(dep: dict, status: dict, nodes: dict) -> str:
        placement = dep["placement"]
        admitting = [n for n in nodes.values() if placement_admits(placement, n.get("site"))]
        if not nodes:
            return "no node is running (start one with `vigil node`)"
        if not admitting:
            return (f"no node of site {placement.removeprefix('site:')} is running "
                    f"({len(nodes)} node(s) of other sites)")
        if all(int(n.get("held") or 0) >= int(n.get("capacity") or 0) for n in admitting):
            loads = ", ".join(f"{n['name']} {n.get('held')}/{n.get('capacity')}"
                              for n in sorted(admitting, key=lambda n: n["name"]))
            return f"every node that may run it is at capacity ({loads})"
        if status.get("state") == "failed":
            return f"it failed on {status.get('node')}: {status.get('why')}; another node may try"
        if status.get("state") == "running":
            return f"its node {status.get('node')} stopped renewing its lease; waiting for another node to take it"
        return "waiting for a node to claim it"

    def _transitions(self, dep: dict, row: dict, now: float) -> list[tuple[str, dict]]:
        """What changed for a camera since the last beat, as audit actions: left unplaced for
        longer than a lease period, placed again, taken over by another node."""
        key = (dep["id"], row["camera"])
        last = self.cameras.get(key, {"node": None, "unplaced_since": None, "said_unplaced": False})
        out = []
        placed = row["state"] in ("running", "starting")
        if placed:
            if last["said_unplaced"]:
                out.append(("deployment.camera_placed", {"camera": row["camera"], "node": row["node"],
                                                         "unplaced_s": round(now - last["unplaced_since"], 1)}))
            elif last["node"] and last["node"] != row["node"]:
                gap = now - last["unplaced_since"] if last["unplaced_since"] else 0.0
                out.append(("deployment.camera_taken_over", {"camera": row["camera"], "from": last["node"],
                                                             "to": row["node"], "gap_s": round(gap, 1)}))
            last = {"node": row["node"], "unplaced_since": None, "said_unplaced": False}
        elif row["state"] == "unplaced":
            since = last["unplaced_since"] or now
            said = last["said_unplaced"]
            if not said and now - since >= self.buckets.lease_seconds:
                out.append(("deployment.camera_unplaced", {"camera": row["camera"], "reason": row["reason"],
                                                           "last_node": last["node"] or row.get("last_node")}))
                said = True
            last = {"node": last["node"], "unplaced_since": since, "said_unplaced": said}
        self.cameras[key] = last
        return out

    async def _end(self, dep: dict, rows: list[dict], node_rows: list[dict], because: str) -> None:
        summary = {"type": "summary", "frames": sum(int(r.get("frames") or 0) for r in rows),
                   "frames_dropped": sum(int(r.get("dropped") or 0) for r in rows),
                   "faces_seen": sum(int(r.get("faces_seen") or 0) for r in rows),
                   "alerts": sum(int(r.get("alerts") or 0) for r in rows),
                   "cameras": [{"camera": r["camera"], "status": r["state"], "frames": r.get("frames"),
                                "dropped": r.get("dropped"), "node": r.get("node") or r.get("last_node")}
                               for r in rows],
                   "nodes": sorted({r.get("node") or r.get("last_node") for r in rows} - {None}), "cluster": True}
        record = await asyncio.to_thread(end_deployment, self.vigil, "cluster recorder", dep["id"], summary, because)
        self.say({"type": "deployment_ended", "deployment_id": dep["id"], "status": record["status"],
                  "because": record.get("ended_because"), "frames": summary["frames"], "alerts": summary["alerts"]})
        for camera in dep["cameras"]:  # the deployment is over: its cameras' status goes with it
            try:
                await self.buckets.status.purge(leases.camera_key(dep["id"], camera))
            except Exception:  # noqa: BLE001
                pass


def run_recorder(vigil, options: RecorderOptions, say: Callable[[dict], None] | None = None) -> dict:
    """``vigil recorder``: run until stopped."""
    return Recorder(vigil, options, say).run()
