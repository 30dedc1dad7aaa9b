"""Rendering transparency reports: per-deployment records and the annual summary as JSON,
CSV and HTML with charts, in the shape of the records the Metropolitan Police publishes.
Gathering them (and who may) is ``vigil.services.reports``."""

from __future__ import annotations

import base64
import csv
import html
import io

from vigil.errors import VigilError

CSV_FIELDS = ["deployment_id", "date", "name", "location", "trial", "start", "end", "duration_minutes",
              "watchlist_size", "faces_seen", "alerts", "true_alerts", "false_alerts", "unverified_alerts",
              "undecided_alerts", "false_alert_rate", "engagements", "arrests", "threshold", "authorised_by",
              "legal_basis"]


def to_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    return buf.getvalue()


def chart_png(records: list[dict]) -> bytes:
    return base64.b64decode(_chart(records))


def _chart(records: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = [str(r["deployment_id"]) for r in records]
    true = [r["true_alerts"] for r in records]
    false = [r["false_alerts"] for r in records]
    other = [r["unverified_alerts"] + r["undecided_alerts"] for r in records]
    axes[0].bar(labels, true, label="confirmed", color="#1b7837")
    axes[0].bar(labels, false, bottom=true, label="false", color="#c51b7d")
    axes[0].bar(labels, other, bottom=[a + b for a, b in zip(true, false)], label="unverified/undecided", color="#999")
    axes[0].set_title("Alerts per deployment")
    axes[0].set_xlabel("deployment")
    axes[0].legend(fontsize=8)
    axes[1].bar(labels, [r["faces_seen"] for r in records], color="#2166ac")
    axes[1].set_title("Faces seen per deployment")
    axes[1].set_xlabel("deployment")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def to_html(report: dict, title: str) -> str:
    records = report["deployments"]
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(f, '')))}</td>" for f in CSV_FIELDS) + "</tr>"
                   for r in records)
    head = "".join(f"<th scope='col'>{html.escape(f.replace('_', ' '))}</th>" for f in CSV_FIELDS)
    totals = report.get("totals", {})
    total_items = "".join(f"<li>{html.escape(k.replace('_', ' '))}: {html.escape(str(v))}</li>"
                          for k, v in totals.items())
    chart = f"<img alt='Alerts and faces seen per deployment' src='data:image/png;base64,{_chart(records)}'>" \
        if records else "<p>No deployments in this period.</p>"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse;font-size:.8em}td,th{border:1px solid #ccc;padding:.3em}</style>"
            f"</head><body><main><h1>{html.escape(title)}</h1><h2>Totals</h2><ul>{total_items}</ul>"
            f"<h2>Charts</h2>{chart}<h2>Deployments</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table><p>False alert rate = false alerts / faces seen. Faces seen are "
            "unique face tracks compared with the watchlist; their images were discarded at once.</p>"
            "</main></body></html>")


def render(report: dict, fmt: str, title: str) -> str:
    import json

    if fmt == "json":
        return json.dumps(report, indent=1, default=str)
    if fmt == "csv":
        return to_csv(report["deployments"] if "deployments" in report else [report])
    if fmt == "html":
        return to_html(report if "deployments" in report else {"deployments": [report], "totals": {}}, title)
    raise VigilError("format must be json, csv, html (or png for the chart)")
