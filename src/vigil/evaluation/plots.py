"""Figures for the evaluation report, as small PNGs (matplotlib, Agg: no display needed).

Every function takes the JSON-ready result dicts (not live objects), so a report can be
redrawn from a saved ``report.json``.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 80
SIZE = (6.4, 4.0)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _pos(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and x > 0 and y > 0]
    return [p[0] for p in pts], [p[1] for p in pts]


def _omitted(fig, names: list[str]) -> None:
    """Groups too small to conclude anything are named, not drawn: their intervals would
    swamp the plot and invite reading a difference into noise."""
    if names:
        fig.text(0.01, 0.005, "too small to conclude, not drawn: " + ", ".join(names), fontsize=7, color="#555")


def roc(verification: dict) -> bytes:
    r = verification["roc"]
    fig, ax = plt.subplots(figsize=SIZE)
    x, y = _pos(r["far"], [1 - v for v in r["frr"]])
    ax.plot(x, y, lw=2)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (FAR, per comparison)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("ROC, every pair of images")
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)


def det(verification: dict) -> bytes:
    r = verification["roc"]
    fig, ax = plt.subplots(figsize=SIZE)
    x, y = _pos(r["far"], r["frr"])
    ax.plot(x, y, lw=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title("DET, every pair of images")
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)


def fnir_vs_fpir(identification: dict) -> bytes:
    fig, ax = plt.subplots(figsize=SIZE)
    for size, r in identification["by_watchlist_size"].items():
        x, y = _pos(r["det"]["fpir"], r["det"]["fnir"])
        line, = ax.plot(x, y, lw=2, label=f"N = {int(size):,}")
        floor = r["smallest_supportable_fpir"]
        if floor:
            ax.axvline(floor, color=line.get_color(), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (non-mated searches raising an alert)")
    ax.set_ylabel("FNIR (mated searches with no alert on the mate)")
    ax.set_title("Open-set identification (dotted: smallest supportable FPIR per split)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _png(fig)


def rates_vs_threshold(identification: dict) -> bytes:
    fig, ax = plt.subplots(figsize=SIZE)
    for size, r in identification["by_watchlist_size"].items():
        v = r["vs_threshold"]
        line, = ax.plot(v["threshold"], v["fnir"], lw=2, label=f"FNIR, N = {int(size):,}")
        ax.plot(v["threshold"], [max(p or 0, 1e-6) for p in v["fpir"]], lw=1.5, ls="--", color=line.get_color(),
                label=f"FPIR, N = {int(size):,}")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.05)
    ax.set_xlabel("threshold (cosine score)")
    ax.set_ylabel("rate")
    ax.set_title("FNIR and FPIR against threshold (pooled over splits)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def group_rates(attribute_result: dict, metric: str) -> bytes:
    """Per-group FMR or FNMR against threshold, with 95% intervals as error bars."""
    fig, ax = plt.subplots(figsize=SIZE)
    groups = attribute_result["groups"]
    names = [n for n in groups if any(r[metric].get("verdict") == "ok" for r in groups[n]["across_thresholds"])]
    _omitted(fig, [n for n in groups if n not in names])
    for k, name in enumerate(names):
        rows = groups[name]["across_thresholds"]
        xs, ys, lo, hi, small, zx, zy = [], [], [], [], [], [], []
        for row in rows:
            m = row[metric]
            if m.get("value") is None or m.get("ci95") is None:
                continue
            x = row["threshold"] + (k - len(names) / 2) * 0.0015
            if m["value"] == 0:  # nothing observed: show the 95% upper bound only
                zx.append(x)
                zy.append(m["ci95"][1])
                continue
            xs.append(x)
            ys.append(m["value"])
            lo.append(m["value"] - max(m["ci95"][0], m["value"] / 30))  # a zero lower bound cannot be drawn
            hi.append(m["ci95"][1] - m["value"])
            small.append(m["verdict"] != "ok")
        label = name if not small or not all(small) else f"{name} (too small)"
        style = dict(marker="o", ms=4, capsize=2, lw=1, label=label)
        if small and all(small):
            style.update(ls=":", alpha=0.5)
        color = None
        if xs:
            color = ax.errorbar(xs, ys, yerr=[lo, hi], **style)[0].get_color()
            hollow = [(x, y) for x, y, sm in zip(xs, ys, small) if sm]  # too small at that threshold
            if hollow:
                ax.scatter(*zip(*hollow), s=22, facecolors="white", edgecolors=color, zorder=3)
        if zx:
            ax.plot(zx, zy, "v", color=color, alpha=0.6, ms=5, label=None if xs else f"{name} (none observed)")
    ax.axvline(attribute_result["operating_threshold"], color="grey", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("threshold; dashed: operating threshold; hollow: too small to conclude there")
    ax.set_ylabel(metric.upper() + " within group (v: upper bound, none seen)")
    ax.set_title(f"{metric.upper()} by {attribute_result['attribute']} with 95% intervals")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return _png(fig)


def enrolment_rates(attribute_result: dict) -> bytes:
    """Failure to enrol and quality-gate rejection per group with 95% intervals."""
    groups = attribute_result["groups"]
    names = [n for n in groups if groups[n]["quality_gate_rejection"].get("verdict") == "ok"]
    fig, ax = plt.subplots(figsize=SIZE)
    _omitted(fig, [n for n in groups if n not in names])
    width = 0.38
    for off, metric, label in ((-width / 2, "failure_to_enrol", "failure to enrol"),
                               (width / 2, "quality_gate_rejection", "quality-gate rejection")):
        vals, lo, hi = [], [], []
        for n in names:
            m = groups[n][metric]
            v = m["value"] or 0.0
            ci = m.get("ci95") or [v, v]
            vals.append(v)
            lo.append(v - (ci[0] or 0.0))
            hi.append((ci[1] if ci[1] is not None else v) - v)
        ax.bar([i + off for i in range(len(names))], vals, width, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n({groups[n]['identities']} ids)" for n in names], fontsize=7)
    ax.set_ylabel("share of images")
    ax.set_title(f"Enrolment failures by {attribute_result['attribute']} (95% intervals)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)
