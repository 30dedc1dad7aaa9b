"""Transparency reports (permission ``report.view``): one deployment's published record, the
year's summary, and writing either to a file the user names (recorded as an export).

Viewing a report is not audited (it was not before the service layer: reports hold
aggregate figures only); writing one to a file is, as every export is. Rendering (CSV,
HTML with charts, PNG) is in :mod:`vigil.governance.reports`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from vigil.errors import VigilError
from vigil.governance import reports
from vigil.governance.permissions import Actor
from vigil.services.exports import record_export
from vigil.services.unit import use_case
from vigil.store.deployments import all_deployments, deployment_record, get_deployment
from vigil.store.exports import check_target
from vigil.timeutil import as_utc

TOTALS = ("faces_seen", "alerts", "true_alerts", "false_alerts", "unverified_alerts", "undecided_alerts",
          "engagements", "arrests")


def deployment_report(vigil, actor: Actor, deployment_id) -> dict:
    """The published record of one deployment (by id or name)."""
    with use_case(vigil, actor, "report.view") as uow:
        return deployment_record(uow.session, get_deployment(uow.session, deployment_id))


def annual_report(vigil, actor: Actor, year: int, *, include_trials: bool = False) -> dict:
    """Every deployment that started in ``year`` (trials only if asked), with totals."""
    with use_case(vigil, actor, "report.view") as uow:
        if not 2000 <= int(year) <= 2100:
            raise VigilError("year out of range (2000-2100)")
        start, end = datetime(year, 1, 1), datetime(year + 1, 1, 1)
        deps = sorted((d for d in all_deployments(uow.session) if d.started_at is not None
                       and start <= as_utc(d.started_at).replace(tzinfo=None) < end),
                      key=lambda d: (as_utc(d.started_at), d.id))
        records = [deployment_record(uow.session, d) for d in deps if include_trials or not d.is_trial]
    totals: dict = {k: sum((r.get(k) or 0) for r in records) for k in TOTALS}
    totals["deployments"] = len(records)
    totals["false_alert_rate"] = totals["false_alerts"] / totals["faces_seen"] if totals["faces_seen"] else None
    return {"year": year, "includes_trials": include_trials, "totals": totals, "deployments": records}


def write_report(vigil, actor: Actor, text: str, out: Path, kind: str, details: dict) -> dict:
    """Write a rendered report to ``out`` (a new or existing file, not a folder) and record the
    export. The file is written inside the transaction, so a failed write leaves no record."""
    target = check_target(out, directory=False)
    with use_case(vigil, actor, "report.view") as uow:
        record_export(uow, kind, target, details)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return {"path": str(target), "kind": kind}


def render(report: dict, fmt: str, title: str) -> str:
    """A report as ``json``, ``csv`` or ``html`` text (for the front ends)."""
    return reports.render(report, fmt, title)


def chart_png(report: dict) -> bytes:
    """The report's alerts-and-faces chart as PNG."""
    return reports.chart_png(report["deployments"] if "deployments" in report else [report])
