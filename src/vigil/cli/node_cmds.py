"""Cluster commands: ``vigil node`` (a worker that runs cameras of deployments placed on the
cluster), ``vigil node calibrate`` and ``vigil node list``, ``vigil recorder`` (the alert
stream into the database), and ``vigil deployment status`` / ``vigil deployment place``."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vigil.cli.common import JsonOpt, console, emit, err_console, print_json, settings
from vigil.cli.common_ctx import ctx
from vigil.cli.live_cmds import deployment_app
from vigil.errors import VigilError

node_app = typer.Typer(help="A cluster node: runs cameras of deployments placed on the cluster (docs/cluster.md).",
                       invoke_without_command=True)
NatsOpt = typer.Option(None, "--nats", envvar="VIGIL_NATS", help="NATS server URL(s), comma-separated (a cluster's "
                       "seeds); default $VIGIL_NATS, else the settings' cluster.nats.")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
    app.command("recorder")(recorder)


def _servers(nats: str | None) -> list[str]:
    """--nats (or $VIGIL_NATS), else the settings' cluster.nats (docs/cluster.md)."""
    urls = [u.strip() for u in (nats or "").split(",") if u.strip()] or settings().cluster.servers()
    if not urls:
        raise VigilError("name the NATS servers: --nats nats://HOST:4222 (or VIGIL_NATS, or cluster.nats in the "
                         "settings)")
    for url in urls:
        if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise VigilError(f"--nats {url!r}: a NATS URL starts with nats:// or tls://")
    return urls


def _credentials(vigil) -> str | None:
    """The settings' cluster.credentials (a NATS .creds file), checked."""
    path = vigil.settings.cluster.credentials
    if path is not None and not Path(path).expanduser().is_file():
        raise VigilError(f"cluster.credentials {path}: no such file")
    return str(Path(path).expanduser()) if path is not None else None


def _say(as_json: bool):
    def say(event: dict) -> None:
        if as_json:
            print_json(event)
            return
        kind, what = event.get("type"), event.get("event")
        if what in ("unreachable", "database_unreachable", "cannot_open", "not_recorded"):
            err_console.print(f"[yellow]{escape(event['message'])}[/]", highlight=False)
        elif kind == "node" and what == "started":
            console.print(f"node {event['node']} started: capacity {event['capacity']} camera(s)"
                          + (f", site {event['site']}" if event.get("site") else "")
                          + f", lease {event['lease_seconds']:g} s"
                          + "".join(f"; {note}" for note in event["inference"]), highlight=False)
        elif kind == "camera":
            detail = event.get("why") or event.get("message") or ""
            console.print(f"deployment {event['deployment_id']} camera {escape(event['camera'])}: {what}"
                          + (f" ({escape(str(detail))})" if detail else ""), highlight=False)
        elif kind == "alert_published":
            console.print(f"alert {event['alert_uid']} (deployment {event['deployment_id']}, camera "
                          f"{escape(event['camera'])}) on the stream", highlight=False)
        elif kind == "alert_recorded":
            console.print(f"alert {event['alert_uid']} recorded as {event['alert_id']}"
                          + (" (already recorded: acknowledged again)" if event["already_recorded"] else ""),
                          highlight=False)
        elif kind in ("camera_unplaced", "camera_placed", "camera_taken_over", "deployment_ended"):
            console.print(" ".join(f"{k}={v}" for k, v in event.items()), highlight=False, markup=False)
        elif what in ("stopped",):
            console.print(" ".join(f"{k}={v}" for k, v in event.items() if k != "type"), highlight=False,
                          markup=False)
    return say


@node_app.callback()
def node(typer_ctx: typer.Context,
         nats: str = NatsOpt,
         name: str = typer.Option(None, "--name", help="This node's name (default: the host name); unique in the "
                                  "cluster."),
         cameras: int = typer.Option(None, "--cameras", min=0, help="Cameras this node runs at most (default: its "
                                     "calibration, see 'vigil node calibrate')."),
         site: str = typer.Option(None, "--site", help="This node's site label: it also runs deployments placed "
                                  "on site:LABEL."),
         shards: list[str] = typer.Option(None, "--shards", help="Also serve these gallery shards, GALLERY:I/N, "
                                          "comma-separated or repeated (see 'Sharded gallery' in docs/cluster.md)."),
         lease_seconds: float = typer.Option(6.0, "--lease-seconds", min=2.0, help="Camera lease period when this "
                                             "node creates the cluster's buckets (else the cluster's)."),
         connect_attempts: int = typer.Option(None, "--connect-attempts", min=1, help="Give up after this many "
                                              "attempts to reach NATS (default: retry forever, with backoff)."),
         as_json: bool = JsonOpt) -> None:
    """Run a cluster node until Ctrl-C: claim cameras of running deployments while under capacity,
    run the live pipeline on them, publish their alerts (sealed) to the stream."""
    if typer_ctx.invoked_subcommand is not None:
        return
    import threading

    from vigil.cluster.calibration import load_calibration
    from vigil.cluster.node import NodeOptions, run_node

    servers = _servers(nats)
    shards = [s.strip() for item in shards or [] for s in item.split(",") if s.strip()]
    vigil, _actor = ctx()
    calibration = load_calibration(vigil)
    if cameras is None:
        if calibration is not None:
            cameras = int(calibration["cameras"])
        elif shards:
            cameras = 0
        else:
            raise VigilError("this node has no measured capacity: run 'vigil node calibrate' (it measures how many "
                             "cameras this machine runs at real time), or give --cameras K")
    name = name or "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:64]
    stop = threading.Event()
    shard_thread = None
    if shards:
        from vigil.cluster.shards import serve_shards

        def serve():
            try:
                serve_shards(vigil, servers, list(shards), stop,
                             on_ready=lambda s: _say(as_json)({"type": "node", "event": "shards_ready",
                                                               "shards": list(shards)}))
            except VigilError as exc:
                err_console.print(f"[bold red]error:[/] gallery shards: {escape(str(exc))}", highlight=False)

        shard_thread = threading.Thread(target=serve, name="gallery-shards", daemon=True)
        shard_thread.start()
    options = NodeOptions(servers=servers, name=name, capacity=cameras, site=site, lease_seconds=lease_seconds,
                          calibration={k: calibration[k] for k in ("cameras", "resolution", "fps", "measured_at")}
                          if calibration else None, connect_attempts=connect_attempts,
                          credentials=_credentials(vigil))
    try:
        run_node(vigil, options, _say(as_json))
    finally:
        stop.set()
        if shard_thread is not None:
            shard_thread.join(timeout=10)


@node_app.command("calibrate")
def node_calibrate(width: int = typer.Option(1280, "--width", min=64, help="Camera frame width (pixels)."),
                   height: int = typer.Option(720, "--height", min=64, help="Camera frame height (pixels)."),
                   fps: float = typer.Option(25.0, "--fps", min=1.0, help="Camera frame rate."),
                   seconds: float = typer.Option(15.0, "--seconds", min=3.0, help="How long each trial runs."),
                   max_cameras: int = typer.Option(32, "--max-cameras", min=1, help="Try at most this many cameras."),
                   as_json: bool = JsonOpt) -> None:
    """Measure how many cameras of this resolution this machine runs at real time (a synthetic
    crowd played as k cameras at once); 'vigil node' takes its capacity from it."""
    from vigil.cluster.calibration import measure_capacity
    from vigil.engine.face_engine import FaceEngine
    from vigil.progress import progress_bar
    from vigil.synth import CrowdOptions, generate_crowd

    vigil, _actor = ctx()
    with tempfile.TemporaryDirectory(prefix="vigil-calibration-") as tmp:
        clip = Path(tmp) / "crowd.mp4"
        frames = max(1, int(round((seconds + 1) * fps)))
        engine = FaceEngine.from_settings(vigil.settings, "sface")
        with progress_bar("rendering the calibration crowd", frames, enabled=not as_json) as advance:
            generate_crowd(CrowdOptions(out=clip, width=width, height=height, fps=fps, seconds=seconds + 1,
                                        watchlist_size=2, seed=14), engine=engine,
                           on_frame=lambda done, total: advance())
        say = (lambda message: None) if as_json else (lambda message: console.print(message, highlight=False))
        result = measure_capacity(vigil, clip, seconds=seconds, max_cameras=max_cameras, say=say)
    emit(result, as_json, lambda r: console.print(
        f"This node runs [bold]{r['cameras']}[/] camera(s) of {r['resolution']} at {r['fps']:g} fps in real time "
        f"(written to {r['path']}; 'vigil node' uses it)"))


@node_app.command("list")
def node_list(nats: str = NatsOpt, as_json: bool = JsonOpt) -> None:
    """The live nodes: site, capacity, cameras held."""
    from vigil.cluster.node import list_nodes

    rows = list_nodes(_servers(nats), settings().cluster.credentials)

    def human(rs):
        table = Table(title="Nodes")
        for col in ("name", "site", "cameras", "capacity", "host", "inference", "last beat"):
            table.add_column(col)
        for r in rs:
            table.add_row(r["name"], r.get("site") or "-", str(r.get("held")), str(r.get("capacity")),
                          r.get("host") or "", "; ".join(r.get("inference") or []) or "-", r.get("beat_at") or "")
        console.print(table)

    emit(rows, as_json, human)


def recorder(nats: str = NatsOpt,
             name: str = typer.Option(None, "--name", help="This recorder's name (default: host and process id)."),
             connect_attempts: int = typer.Option(None, "--connect-attempts", min=1, help="Give up after this many "
                                                  "attempts to reach NATS (default: retry forever, with backoff)."),
             as_json: bool = JsonOpt) -> None:
    """Record the cluster's alerts in the database (acknowledged only once committed) and report
    each cluster deployment's cameras; runs until Ctrl-C."""
    from vigil.cluster.recorder import RecorderOptions, run_recorder

    servers = _servers(nats)
    vigil, _actor = ctx()
    options = RecorderOptions(servers=servers, connect_attempts=connect_attempts, credentials=_credentials(vigil))
    if name:
        options.name = name
    run_recorder(vigil, options, _say(as_json))


@deployment_app.command("status")
def deployment_status(deployment: str, as_json: bool = JsonOpt) -> None:
    """Where each camera runs and how it is doing: node, health, lag, dropped frames, last heartbeat,
    or why no node runs it."""
    from vigil.services.deployments import deployment_status as status

    vigil, actor = ctx()
    data = status(vigil, actor, deployment)

    def human(d):
        console.print(f"Deployment {d['id']} ({escape(d['name'])}): {d['status']}, placement {d['placement']}"
                      + (f", reported {d['reported_at']}" if d.get("reported_at") else "")
                      + (" [red](no recent heartbeat)[/]" if d.get("runner_stale") else ""), highlight=False)
        table = Table()
        for col in ("camera", "node", "state", "health", "lag s", "frames", "dropped", "heartbeat age s", "note"):
            table.add_column(col)
        for c in d["cameras"]:
            table.add_row(escape(c["camera"]), c.get("node") or "-", c.get("state") or "-", c.get("health") or "-",
                          "-" if c.get("lag_s") is None else f"{c['lag_s']:.2f}", str(c.get("frames") or "-"),
                          str(c.get("dropped") if c.get("dropped") is not None else "-"),
                          "-" if c.get("heartbeat_age_s") is None else f"{c['heartbeat_age_s']:g}",
                          escape(c.get("reason") or ""))
        console.print(table)
        for name in d["unplaced"]:
            console.print(f"[yellow]camera {escape(name)} is not running on any node[/]", highlight=False)

    emit(data, as_json, human)


@deployment_app.command("place")
def deployment_place(deployment: str,
                     placement: str = typer.Argument(..., help="local (one process), any (any cluster node) or "
                                                     "site:LABEL (the nodes of that site)."),
                     as_json: bool = JsonOpt) -> None:
    """Say where a planned deployment's cameras run: in one process, or on cluster nodes."""
    from vigil.services.deployments import place_deployment

    vigil, actor = ctx()
    data = place_deployment(vigil, actor, deployment, placement)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} ({escape(d['name'])}) placed: "
                                                f"{d['placement']}", highlight=False))
