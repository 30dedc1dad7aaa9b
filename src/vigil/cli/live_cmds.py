"""Live commands: watch, deployments, alerts."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vigil.cli.common import CursorOpt, JsonOpt, LimitOpt, console, emit, emit_page
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
                          f"(alert {payload['id']})")
            if payload.get("lookalike_warning"):
                console.print(f"  [yellow]{escape(payload['lookalike_warning'])}[/]")
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
            if payload.get("fell_behind"):
                console.print(f"[yellow]Fell behind real time on {', '.join(payload['fell_behind'])}: "
                              f"{payload['frames_dropped']} of {payload['frames']} frames were not looked at, so "
                              "faces may have been missed. A recorded file is processed completely with --fast.[/]")

    def close(self) -> None:
        pass


def run_deployment(vigil, actor, deployment_id: int, *, fast: bool, as_json: bool, webhook: str | None,
                   max_seconds: float | None) -> dict:
    from vigil.services.live_runs import DeploymentRunner, JsonLinesSink, RunOptions, WebhookSink

    sinks = [JsonLinesSink() if as_json else _HumanSink()]
    if webhook:
        sinks.append(WebhookSink(webhook))
    runner = DeploymentRunner(vigil, actor, deployment_id, sinks, RunOptions(fast=fast, max_seconds=max_seconds))
    previous = signal.getsignal(signal.SIGINT)

    def _stop(signum, frame):
        runner.stop(f"stopped by signal {signal.Signals(signum).name}")

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
    camera: list[str] = typer.Option(None, "--camera", help="A registered camera's name, or for a local trial a "
                                     "video file, folder of frames or webcam index (URLs must be registered: "
                                     "vigil camera add); repeat for several."),
    source: list[str] = typer.Option(None, "--source", hidden=True, help="The earlier name of --camera."),
    deployment: str = typer.Option(None, "--deployment", help="Run this authorised deployment."),
    fast: bool = typer.Option(False, "--fast", help="Process files as fast as possible, not at their frame rate."),
    false_alert_rate: float = typer.Option(1e-4, "--false-alert-rate", help="Accepted false alerts per face (trial)."),
    webhook: str = typer.Option(None, "--webhook", help="Also POST each alert as JSON to this URL."),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Stop after this many seconds."),
    clip_seconds: float = typer.Option(None, "--evidence-clips",
                                       help="Record an evidence clip of this many seconds before and after "
                                            "each alert (everything but the alerted face washed out; encrypted)."),
    as_json: bool = JsonOpt,
) -> None:
    """Live recognition: every face in the stream against the watchlist; alerts for a human to decide."""
    from vigil.services.deployments import create_deployment
    from vigil.services.live_runs import start_deployment
    from vigil.timeutil import utcnow

    vigil, actor = ctx()
    if clip_seconds is not None:
        vigil.settings.live.evidence_clip_seconds = clip_seconds
    if deployment:
        dep = start_deployment(vigil, actor, deployment)
    else:
        cameras = list(camera or []) + list(source or [])
        if not watchlist or not cameras:
            raise VigilError("name --watchlist and --camera (or --deployment ID)")
        sources = [{"camera": f"cam{i + 1}", "source": s} for i, s in enumerate(cameras)]
        now = utcnow()
        hours = (max_seconds / 3600 if max_seconds else 4.0) + 0.1
        created = create_deployment(vigil, actor, name=f"trial {now:%Y-%m-%d %H:%M}", location="trial",
                                    sources=sources, watchlists=list(watchlist), window_start=now,
                                    window_end=now + timedelta(hours=hours), purpose="trial run (vigil watch)",
                                    false_alert_rate=false_alert_rate, trial=True, local_trial=True)
        dep = start_deployment(vigil, actor, created["id"])
    run_deployment(vigil, actor, dep["id"], fast=fast, as_json=as_json, webhook=webhook, max_seconds=max_seconds)


@deployment_app.command("create")
def deployment_create(
    name: str = typer.Option(..., "--name", help="The deployment's name, as published."),
    location: str = typer.Option(..., "--location", help="Where it takes place, as published."),
    watchlist: list[str] = typer.Option(..., "--watchlist", help="An authorised watchlist (repeatable)."),
    camera: list[str] = typer.Option(..., "--camera", help="A registered camera's name (vigil camera list), "
                                     "repeatable."),
    start: str = typer.Option(..., "--start", help="Window start (YYYY-MM-DDTHH:MM, UTC)."),
    end: str = typer.Option(..., "--end", help="Window end."),
    legal_basis: str = typer.Option(..., "--legal-basis", help="The legal basis, as published."),
    purpose: str = typer.Option("", "--purpose", help="Why it is needed, as published."),
    false_alert_rate: float = typer.Option(1e-4, "--false-alert-rate", help="Accepted false alerts per face seen."),
    category_rate: list[str] = typer.Option(None, "--category-rate", help="CATEGORY=RATE, e.g. missing=0.001."),
    as_json: bool = JsonOpt,
) -> None:
    """Plan a deployment; a supervisor must authorise it before it can run."""
    from vigil.services.deployments import create_deployment
    from vigil.timeutil import parse_when

    vigil, actor = ctx()
    sources = []
    for item in camera:
        cam, _, src = item.partition("=")  # NAME, or NAME=SOURCE repeating the registered source
        sources.append({"camera": cam.strip(), "source": src.strip()})
    rates = {}
    for item in category_rate or []:
        cat, _, rate = item.partition("=")
        try:
            rates[cat.strip()] = float(rate)
        except ValueError:
            raise VigilError(f"--category-rate takes CATEGORY=RATE, got {item!r}") from None
    data = create_deployment(vigil, actor, name=name, location=location, sources=sources, watchlists=list(watchlist),
                             window_start=parse_when(start), window_end=parse_when(end, end_of_day=True), legal_basis=legal_basis,
                             purpose=purpose, false_alert_rate=false_alert_rate, category_rates=rates)
    emit(data, as_json, _created)


def _created(d: dict) -> None:
    console.print(f"Deployment {d['id']} ({d['name']}) created: awaiting authorisation")
    for check in d["source_checks"]:
        if not check["checked"]:
            console.print(f"[yellow]camera {check['camera']}: not checked[/]: {check['why']}")


@deployment_app.command("authorise")
def deployment_authorise(deployment: str,
                         note: str = typer.Option("", "--note", help="Recorded with the authorisation."),
                         as_json: bool = JsonOpt) -> None:
    """Authorise a planned deployment (a supervisor); see 'deployment review' first."""
    from vigil.services.deployments import authorise_deployment

    vigil, actor = ctx()
    data = authorise_deployment(vigil, actor, deployment, note)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} authorised by {d['authorised_by']}"))


@deployment_app.command("run")
def deployment_run(deployment: str,
                   fast: bool = typer.Option(False, "--fast", help="Recorded video as fast as possible."),
                   webhook: str = typer.Option(None, "--webhook", help="Also POST each alert as JSON here."),
                   max_seconds: float = typer.Option(None, "--max-seconds", help="Stop after this long."),
                   as_json: bool = JsonOpt) -> None:
    """Start an authorised deployment and run it until its sources end, its window closes, or Ctrl-C."""
    from vigil.services.live_runs import start_deployment

    vigil, actor = ctx()
    dep = start_deployment(vigil, actor, deployment)
    if dep.get("placement", "local") != "local":  # its cameras run on cluster nodes, not here
        emit({**dep, "started_on": "cluster"}, as_json, lambda d: console.print(
            f"Deployment {d['id']} ({escape(d['name'])}) started on the cluster ({d['placement']}): vigil node "
            f"processes run its cameras; see 'vigil deployment status {d['id']}', stop it with "
            f"'vigil deployment stop {d['id']}'", highlight=False))
        return
    run_deployment(vigil, actor, dep["id"], fast=fast, as_json=as_json, webhook=webhook, max_seconds=max_seconds)


@deployment_app.command("list")
def deployment_list(waiting: bool = typer.Option(False, "--waiting", help="Only plans waiting for authorisation."),
                    status: str = typer.Option(None, "--status", help="Only this state (draft, authorised, running, "
                                               "ended, failed, cancelled)."),
                    limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Deployments, newest first."""
    from vigil.services.deployments import list_deployments

    vigil, actor = ctx()
    status = "draft" if waiting else status
    page = list_deployments(vigil, actor, status, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title="Deployments")
        for col in ("id", "name", "location", "status", "trial", "authorised by", "window"):
            table.add_column(col)
        for r in rs:
            status = r["status"] + (" [red](runner silent)[/]" if r["runner_stale"] else "")
            table.add_row(str(r["id"]), r["name"], r["location"], status, "yes" if r["trial"] else "",
                          r["authorised_by"] or "-", f"{r['window_start']} .. {r['window_end']}")
        console.print(table)

    emit_page(page, as_json, human, "vigil deployment list" + (f" --status {status}" if status else ""))


@deployment_app.command("show")
def deployment_show(deployment: str, as_json: bool = JsonOpt) -> None:
    """The deployment's record: the published figures."""
    from vigil.services.deployments import get_deployment_record

    vigil, actor = ctx()
    data = get_deployment_record(vigil, actor, deployment)
    emit(data, as_json, lambda d: console.print_json(json.dumps(d)))


@deployment_app.command("review")
def deployment_review(deployment: str, as_json: bool = JsonOpt) -> None:
    """What authorising this plan means, in numbers: watchlists and their sizes, the threshold,
    expected false alerts and misses, window, cameras, legal basis (for the supervisor)."""
    from vigil.services.authorisation_view import authorisation_view

    vigil, actor = ctx()
    data = authorisation_view(vigil, actor, deployment)

    def human(d):
        console.print(f"[bold]Deployment {d['id']}: {escape(d['name'])}[/] at {escape(d['location'])} "
                      f"({d['status']}), planned by {d['created_by']}")
        console.print(f"  legal basis: {escape(d['legal_basis'] or '-')}; purpose: {escape(d['purpose'] or '-')}")
        console.print(f"  window: {d['window_start'] or 'now'} to {d['window_end'] or 'open'}; "
                      f"cameras: {', '.join(c['camera'] for c in d['cameras'])}")
        for w in d["watchlists_detail"]:
            state = "authorised" if w["authorised"] else "[red]not authorised[/]"
            people = "1 person" if w["subjects"] == 1 else f"{w['subjects']} people"
            photos = ", ".join(f"{n} from {k} photo{'s' if k != '1' else ''}"
                               for k, n in w["subjects_by_photos"].items())
            console.print(f"  watchlist {escape(w['name'])}: {people} ({photos or 'no templates'}), "
                          f"category {w['category']}, "
                          f"{state}, expires {w['expires_at'] or 'never'}" + (" [red](expired)[/]" if w["expired"]
                                                                               else ""))
        for key, t in d["thresholds"].items():
            miss = "unknown" if t["expected_miss_rate"] is None else f"{t['expected_miss_rate']:.1%}"
            console.print(f"  {key}: {t['accepted_false_alerts_per_10000_faces']:g} false alert(s) per 10,000 faces "
                          f"accepted over {d['watchlist_entries']} entries -> threshold {t['threshold']:.3f}, "
                          f"expected misses {miss} (calibration: {escape(d['calibration'])})")
            for k, b in (t.get("by_photos") or {}).items():
                miss_k = "unknown" if b["expected_miss_rate"] is None else f"{b['expected_miss_rate']:.1%}"
                console.print(f"    entries averaging {k} photos: threshold {b['threshold']:.3f}, "
                              f"expected misses {miss_k}")
        for p in d["problems"]:
            console.print(f"  [red]{escape(p)}[/]")
        console.print("Authorise with 'vigil deployment authorise ID', or reject with "
                      "'vigil deployment reject ID --reason ...'.")

    emit(data, as_json, human)


@deployment_app.command("reject")
def deployment_reject(deployment: str, reason: str = typer.Option(..., "--reason", help="Why (the planner reads it)."),
                      as_json: bool = JsonOpt) -> None:
    """Turn down a plan with a reason (a supervisor); it ends as cancelled, recorded as rejected."""
    from vigil.services.deployments import reject_deployment

    vigil, actor = ctx()
    data = reject_deployment(vigil, actor, deployment, reason)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} ({d['name']}) rejected: {escape(reason)}"))


@deployment_app.command("stop")
def deployment_stop(deployment: str, wait: float = typer.Option(20.0, "--wait", help="Seconds to wait for it to stop."),
                    as_json: bool = JsonOpt) -> None:
    """Stop a running deployment, wherever it runs (it stops at its runner's next heartbeat); one
    whose process died is marked failed and its frozen watchlist erased."""
    from vigil.services.live_runs import stop_deployment

    vigil, actor = ctx()
    data = stop_deployment(vigil, actor, deployment, wait_seconds=wait)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} ({d['name']}): {d['status']} ({d['stop']})"))


@deployment_app.command("cancel")
def deployment_cancel(deployment: str,
                      reason: str = typer.Option("", "--reason", help="Why (recorded)."),
                      as_json: bool = JsonOpt) -> None:
    """Withdraw a draft or authorised deployment (a supervisor, or the user who created it)."""
    from vigil.services.deployments import cancel_deployment

    vigil, actor = ctx()
    data = cancel_deployment(vigil, actor, deployment, reason)
    emit(data, as_json, lambda d: console.print(f"Deployment {d['id']} ({d['name']}) cancelled"))


@deployment_app.command("outcomes")
def deployment_outcomes(deployment: str,
                        engagements: int = typer.Option(None, "--engagements", help="People engaged after alerts."),
                        arrests: int = typer.Option(None, "--arrests", help="Arrests after alerts."),
                        as_json: bool = JsonOpt) -> None:
    """Enter engagements and arrests for the deployment record."""
    from vigil.services.deployments import record_outcomes

    vigil, actor = ctx()
    data = record_outcomes(vigil, actor, deployment, engagements=engagements, arrests=arrests)
    emit(data, as_json, lambda d: console.print_json(json.dumps(d)))


@alert_app.command("list")
def alert_list(deployment: str = typer.Option(None, "--deployment", help="Only this deployment's alerts."),
               subject: str = typer.Option(None, "--subject", help="Only this subject's alerts (their history)."),
               undecided: bool = typer.Option(False, "--undecided", help="Only alerts awaiting a decision."),
               decision: str = typer.Option(None, "--decision", help="Only alerts with this decision: confirmed, "
                                            "false_alert or unverified."),
               limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Alerts, newest first, with their decision."""
    from vigil.services.alerts import list_alerts

    vigil, actor = ctx()
    page = list_alerts(vigil, actor, deployment_id=deployment, subject_id=subject, undecided_only=undecided,
                       decision=decision, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title="Alerts")
        for col in ("id", "deployment", "utc", "camera", "subject", "score", "decision", "outcome"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["id"]), str(r["deployment_id"]), r["utc"], r["camera"],
                          f"{r['name']} ({r['subject_id']})", f"{r['score']:.3f}",
                          r["decision"] or "[yellow]UNDECIDED[/]", r["outcome"] or "-")
        console.print(table)

    more = "".join(f" {flag} {value}" for flag, value in (("--deployment", deployment), ("--subject", subject),
                                                           ("--decision", decision)) if value)
    emit_page(page, as_json, human, "vigil alert list" + more + (" --undecided" if undecided else ""))


@alert_app.command("decide")
def alert_decide(
    alert_id: int,
    decision: str = typer.Option(..., "--decision", help="confirmed | false_alert | unverified"),
    outcome: str = typer.Option("no_action", "--outcome", help="no_action | engaged | arrested"),
    notes: str = typer.Option("", "--notes", help="What the operator saw and did."),
    case: str = typer.Option("", "--case", help="Case reference (keeps a confirmed alert beyond default retention)."),
    reason: str = typer.Option("", "--reason", help="Why an earlier decision is changed (needed to revise one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Record the operator's decision on an alert. Decisions are kept: changing one appends a
    revision (supervisor or admin, with --reason)."""
    from vigil.services.alerts import decide

    vigil, actor = ctx()
    data = decide(vigil, actor, alert_id, decision=decision, outcome=outcome, notes=notes, case_ref=case,
                  reason=reason)
    emit(data, as_json, lambda d: console.print(
        f"Alert {d['id']}: {d['decision']}, {d['outcome']}"
        + (f" (revision {len(d['history']) - 1} of the first decision)" if len(d["history"]) > 1 else "")))


@alert_app.command("show")
def alert_show(alert_id: int, as_json: bool = JsonOpt) -> None:
    """One alert with every decision recorded on it."""
    from vigil.services.alerts import show_alert

    vigil, actor = ctx()
    data = show_alert(vigil, actor, alert_id)

    def human(d):
        console.print(f"Alert {d['id']} ({d['deployment']}): {d['name']} ({d['subject_id']}) on {d['camera']} "
                      f"at {d['utc']}, score {d['score']:.3f}")
        for h in d["history"] or [{"seq": "-", "decision": "UNDECIDED"}]:
            console.print(f"  {h['seq']}. {h['decision']} {h.get('outcome') or ''} by {h.get('decided_by') or '-'} "
                          f"{h.get('decided_at') or ''}" + (f" (reason: {h['reason']})" if h.get("reason") else ""))

    emit(data, as_json, human)


@alert_app.command("clip")
def alert_clip(alert_id: int, out: Path = typer.Option(..., "--out", help="File to write (.avi)."),
               as_json: bool = JsonOpt) -> None:
    """Export an alert's evidence clip, every other face blurred (an audited export)."""
    from vigil.services.alerts import export_clip

    vigil, actor = ctx()
    data = export_clip(vigil, actor, alert_id, out)
    emit(data, as_json, lambda d: console.print(f"Evidence clip of alert {alert_id} written to {d['path']}"))
