"""Live commands: watch, deployments, alerts."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import JsonOpt, console, emit
from vigil.cli.common_ctx import ctx
from vigil.errors import VigilError

deployment_app = typer.Typer(help="Live deployments: create, authorise, run, record.", no_args_is_help=True)
alert_app = typer.Typer(help="Alerts: list, show, adjudicate.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(watch)
    app.add_typer(deployment_app, name="deployment")
    app.add_typer(alert_app, name="alert")


class _HumanSink:
    def send(self, payload: dict) -> None:
        kind = payload.get("type")
        if kind == "alert":
            console.print(f"[bold red]ALERT[/] {payload['utc']} camera {payload['camera']} t={payload['time']:.1f}s "
                          f"track {payload['track_id']}: {payload['name']} ({payload['subject_id']}, "
                          f"{payload['category']}) score {payload['score']:.3f} -> needs an operator's decision "
                          f"(alert {payload['alert_id']})")
        elif kind == "health":
            bad = [c for c in payload["cameras"] if c["status"] not in ("ok", "ended")]
            for c in bad:
                console.print(f"[yellow]camera {c['camera']}: {c['status']}[/] {c.get('error') or ''}")
        elif kind == "notice":
            console.print(f"[yellow]{payload['message']}[/]")
        elif kind == "summary":
            console.print(f"[bold]Summary[/]: {payload['frames']} frames ({payload['frames_dropped']} dropped), "
                          f"{payload['faces_seen']} faces compared, {payload['alerts']} alerts, "
                          f"{payload['fps']} fps processed in {payload['wall_seconds']} s "
                          f"(real-time factor {payload['realtime_factor']})")

    def close(self) -> None:
        pass


def run_deployment(vigil, actor, deployment_id: int, *, fast: bool, as_json: bool, webhook: str | None,
                   max_seconds: float | None) -> dict:
    from vigil.live.alerts import JsonLinesSink, WebhookSink
    from vigil.live.runner import LiveRunner, RunOptions

    sinks = [JsonLinesSink() if as_json else _HumanSink()]
    if webhook:
        sinks.append(WebhookSink(webhook))
    runner = LiveRunner(vigil, actor, deployment_id, sinks, RunOptions(fast=fast, max_seconds=max_seconds))
    previous = signal.getsignal(signal.SIGINT)

    def _stop(signum, frame):
        runner.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return runner.run().summary
    finally:
        signal.signal(signal.SIGINT, previous)
        for sink in sinks:
            if isinstance(sink, WebhookSink) and sink.failed:
                # stderr, so that --json output on stdout stays machine-readable
                typer.echo(f"warning: {sink.failed} alert(s) could not be delivered to the webhook "
                           f"after retries (last error: {sink.last_error}); they are in the store", err=True)


def watch(
    watchlist: list[str] = typer.Option(None, "--watchlist", help="Watchlist(s) for a trial deployment."),
    source: list[str] = typer.Option(None, "--source", help="Video file, folder of frames, rtsp/http URL or webcam index."),
    deployment: str = typer.Option(None, "--deployment", help="Run this authorised deployment."),
    fast: bool = typer.Option(False, "--fast", help="Process files as fast as possible, not at their frame rate."),
    false_alert_rate: float = typer.Option(1e-4, "--false-alert-rate", help="Accepted false alerts per face (trial)."),
    webhook: str = typer.Option(None, "--webhook", help="Also POST each alert as JSON to this URL."),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Stop after this many seconds."),
    clip_seconds: float = typer.Option(None, "--evidence-clips",
                                       help="Record an evidence clip of this many seconds before and after "
                                            "each alert (other faces blurred; encrypted)."),
    as_json: bool = JsonOpt,
) -> None:
    """Live recognition: every face in the stream against the watchlist; alerts for a human to decide."""
    from vigil.live.deployments import create_deployment, start_deployment
    from vigil.timeutil import utcnow

    vigil, actor = ctx()
    if clip_seconds is not None:
        vigil.settings.live.evidence_clip_seconds = clip_seconds
    if deployment:
        dep = start_deployment(vigil, actor, deployment)
    else:
        if not watchlist or not source:
            raise VigilError("name --watchlist and --source (or --deployment ID)")
        sources = [{"camera": f"cam{i + 1}", "source": s} for i, s in enumerate(source)]
        now = utcnow()
        hours = (max_seconds / 3600 if max_seconds else 4.0) + 0.1
        created = create_deployment(vigil, actor, name=f"trial {now:%Y-%m-%d %H:%M}", location="trial",
                                    sources=sources, watchlists=list(watchlist), window_start=now,
                                    window_end=now + timedelta(hours=hours), purpose="trial run (vigil watch)",
                                    false_alert_rate=false_alert_rate, trial=True)
        dep = start_deployment(vigil, actor, created["id"])
    run_deployment(vigil, actor, dep["id"], fast=fast, as_json=as_json, webhook=webhook, max_seconds=max_seconds)


@deployment_app.command("create")
def deployment_create(
    name: str = typer.Option(..., "--name"),
    location: str = typer.Option(..., "--location"),
    watchlist: list[str] = typer.Option(..., "--watchlist"),
    camera: list[str] = typer.Option(..., "--camera", help="NAME=SOURCE, repeatable."),
    start: str = typer.Option(..., "--start", help="Window start (YYYY-MM-DDTHH:MM, UTC)."),
    end: str = typer.Option(..., "--end", help="Window end."),
    legal_basis: str = typer.Option(..., "--legal-basis"),
    purpose: str = typer.Option("", "--purpose"),
    false_alert_rate: float = typer.Option(1e-4, "--false-alert-rate", help="Accepted false alerts per face seen."),
    category_rate: list[str] = typer.Option(None, "--category-rate", help="CATEGORY=RATE, e.g. missing=0.001."),
    as_json: bool = JsonOpt,
) -> None:
    """Plan a deployment; a supervisor must authorise it before it can run."""
    from vigil.live.deployments import create_deployment
    from vigil.timeutil import parse_when

    vigil, actor = ctx()
    sources = []
    for item in camera:
        if "=" not in item:
            raise VigilError(f"--camera takes NAME=SOURCE, got {item!r}")
        cam, src = item.split("=", 1)
        sources.append({"camera": cam.strip(), "source": src.strip()})
    rates = {}
    for item in category_rate or []:
        cat, _, rate = item.partition("=")
        try:
            rates[cat.strip()] = float(rate)
        except ValueError:
            raise VigilError(f"--category-rate takes CATEGORY=RATE, got {item!r}") from None
    data = create_deployment(vigil, actor, name=name, location=location, sources=sources, watchlists=list(watchlist),
                             window_start=parse_when(start), window_end=parse_when(end), legal_basis=legal_basis,
                             purpose=purpose, false_alert_rate=false_alert_rate, category_rates=rates)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} ({d['name']}) created: awaiting authorisation"))


@deployment_app.command("authorise")
def deployment_authorise(deployment: str, note: str = typer.Option("", "--note"), as_json: bool = JsonOpt) -> None:
    from vigil.live.deployments import authorise_deployment

    vigil, actor = ctx()
    data = authorise_deployment(vigil, actor, deployment, note)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} authorised by {d['authorised_by']}"))


@deployment_app.command("run")
def deployment_run(deployment: str, fast: bool = typer.Option(False, "--fast"),
                   webhook: str = typer.Option(None, "--webhook"),
                   max_seconds: float = typer.Option(None, "--max-seconds"), as_json: bool = JsonOpt) -> None:
    """Start an authorised deployment and run it until its sources end, its window closes, or Ctrl-C."""
    from vigil.live.deployments import start_deployment

    vigil, actor = ctx()
    dep = start_deployment(vigil, actor, deployment)
    run_deployment(vigil, actor, dep["id"], fast=fast, as_json=as_json, webhook=webhook, max_seconds=max_seconds)


@deployment_app.command("list")
def deployment_list(as_json: bool = JsonOpt) -> None:
    from vigil.live.deployments import list_deployments

    vigil, actor = ctx()
    rows = list_deployments(vigil, actor)

    def human(rs):
        table = Table(title="Deployments")
        for col in ("id", "name", "location", "status", "trial", "authorised by", "window"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["id"]), r["name"], r["location"], r["status"], "yes" if r["trial"] else "",
                          r["authorised_by"] or "-", f"{r['window_start']} .. {r['window_end']}")
        console.print(table)

    emit(rows, as_json, human)


@deployment_app.command("show")
def deployment_show(deployment: str, as_json: bool = JsonOpt) -> None:
    """The deployment's record: the published figures."""
    from vigil.governance.permissions import require
    from vigil.live.deployments import deployment_record, get_deployment

    vigil, actor = ctx()
    require(actor, "deployment.view")
    with vigil.store.session() as session:
        data = deployment_record(session, get_deployment(session, deployment))
    emit(data, as_json, lambda d: console.print_json(json.dumps(d)))


@deployment_app.command("outcomes")
def deployment_outcomes(deployment: str, engagements: int = typer.Option(None, "--engagements"),
                        arrests: int = typer.Option(None, "--arrests"), as_json: bool = JsonOpt) -> None:
    """Enter engagements and arrests for the deployment record."""
    from vigil.live.deployments import record_outcomes

    vigil, actor = ctx()
    data = record_outcomes(vigil, actor, deployment, engagements=engagements, arrests=arrests)
    emit(data, as_json, lambda d: console.print_json(json.dumps(d)))


@alert_app.command("list")
def alert_list(deployment: str = typer.Option(None, "--deployment"),
               undecided: bool = typer.Option(False, "--undecided"), as_json: bool = JsonOpt) -> None:
    from vigil.live.adjudication import list_alerts

    vigil, actor = ctx()
    rows = list_alerts(vigil, actor, deployment_id=deployment, undecided_only=undecided)

    def human(rs):
        table = Table(title="Alerts")
        for col in ("id", "deployment", "utc", "camera", "subject", "score", "decision", "outcome"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["alert_id"]), str(r["deployment_id"]), r["utc"], r["camera"],
                          f"{r['name']} ({r['subject_id']})", f"{r['score']:.3f}",
                          r["decision"] or "[yellow]UNDECIDED[/]", r["outcome"] or "-")
        console.print(table)

    emit(rows, as_json, human)


@alert_app.command("decide")
def alert_decide(
    alert_id: int,
    decision: str = typer.Option(..., "--decision", help="confirmed | false_alert | unverified"),
    outcome: str = typer.Option("no_action", "--outcome", help="no_action | engaged | arrested"),
    notes: str = typer.Option("", "--notes"),
    case: str = typer.Option("", "--case", help="Case reference (keeps a confirmed alert beyond default retention)."),
    as_json: bool = JsonOpt,
) -> None:
    """Record the operator's decision on an alert."""
    from vigil.live.adjudication import decide

    vigil, actor = ctx()
    data = decide(vigil, actor, alert_id, decision=decision, outcome=outcome, notes=notes, case_ref=case)
    emit(data, as_json, lambda d: console.print(f"Alert {d['alert_id']}: {d['decision']}, {d['outcome']}"))


@alert_app.command("clip")
def alert_clip(alert_id: int, out: Path = typer.Option(..., "--out", help="File to write (.avi)."),
               as_json: bool = JsonOpt) -> None:
    """Export an alert's evidence clip, every other face blurred (an audited export)."""
    from vigil.live.adjudication import export_clip

    vigil, actor = ctx()
    data = export_clip(vigil, actor, alert_id, out)
    emit(data, as_json, lambda d: console.print(f"Evidence clip of alert {alert_id} written to {d['path']}"))
