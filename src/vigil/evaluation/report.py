"""The evaluation report: every study in one self-contained HTML file (figures embedded as
PNG data URIs, no scripts, no web fonts, no CDN) plus the JSON it was drawn from.

An auditor should be able to read, from the report alone, what was measured, how, on
what data, what the data cannot show, and how to reproduce it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from vigil.evaluation import plots
from vigil.evaluation.fairness import ALL, evaluate_fairness
from vigil.evaluation.protocol import EvalData
from vigil.evaluation.suite import calibration_for, calibration_summary, fmr_thresholds, identification
from vigil.evaluation.threshold_advice import advise
from vigil.evaluation.verification import evaluate_all_pairs

ADVICE_SCENARIOS = ((100, 10_000, 1), (1000, 10_000, 1), (1000, 60_000, 1), (5000, 10_000, 1))


def run_all(data: EvalData, engine, *, seed: int = 0, splits: int = 10, replicates: int = 1000,
            show_progress: bool = True) -> dict:
    cal = calibration_for(engine, data, show_progress=show_progress)
    verification, _ = evaluate_all_pairs(data, show_progress=show_progress)
    ident, pooled = identification(data, cal, seed=seed, splits=splits, skip_infeasible=True,
                                   show_progress=show_progress)
    grid, operating = fmr_thresholds(cal)
    fair = evaluate_fairness(data, grid, operating, seed=seed, replicates=replicates, show_progress=show_progress)
    advice = [advise(cal, n, f, x, openset=pooled.get(n)) for n, f, x in ADVICE_SCENARIOS]
    return {"seed": seed, "model_id": data.model_id, "dataset": data.description,
            "calibration": calibration_summary(cal), "verification": verification,
            "identification": ident, "fairness": fair, "advice": advice}


def write_report(result: dict, out_dir: Path, *, machine: dict | None = None, command: str = "") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    page = render(result, machine=machine or {}, command=command)
    target = out_dir / "report.html"
    target.write_text(page)
    return target


# ---------------------------------------------------------------------------------- HTML

CSS = """body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4em .8em}.small{color:#666;font-size:13px}
.sig{color:#b00;font-weight:bold}img{max-width:100%}h2{border-bottom:1px solid #ddd;margin-top:2em}"""


def _e(x) -> str:
    return html.escape(str(x))


def _pct(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _num(x, fmt: str = ".3g") -> str:
    return "n/a" if x is None else format(x, fmt)


def _ci(m: dict, as_pct: bool = True) -> str:
    ci = m.get("ci95")
    if not ci:
        return "n/a"
    f = (lambda v: _pct(v, 3)) if as_pct else _num
    return f"{f(ci[0])} – {f(ci[1])}"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(head: list[str], rows: list[list]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def render(r: dict, *, machine: dict, command: str) -> str:
    ver, ident, fair, cal, ds = r["verification"], r["identification"], r["fairness"], r["calibration"], r["dataset"]
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>Vigil evaluation: {_e(r['model_id'])}</title>"
             f"<style>{CSS}</style><h1>Accuracy and fairness evaluation</h1>",
             f"<p>Model <b>{_e(r['model_id'])}</b> on <b>{_e(ds.get('name', 'data'))}</b>, seed {r['seed']}. "
             "All figures below are measured on this data by <code>vigil eval</code>; none is copied from "
             "elsewhere.</p>"]
    parts += _summary(r)
    parts += _data_section(ds, cal)
    parts += _method_section(ident, fair)
    parts += _verification_section(ver)
    parts += _identification_section(ident)
    parts += _fairness_section(fair)
    parts += _advice_section(r["advice"])
    parts.append("<h2>Reproduce</h2>")
    parts.append(f"<pre>{_e(command or 'vigil eval report --data DIR --out DIR --seed ' + str(r['seed']))}</pre>")
    if machine:
        parts.append("<p class=small>Machine: " + _e(", ".join(f"{k} {v}" for k, v in machine.items())) + "</p>")
    parts.append("</html>")
    return "\n".join(parts)


def _summary(r: dict) -> list[str]:
    ident, fair = r["identification"], r["fairness"]
    out = ["<h2>Summary</h2><ul>"]
    n1k = ident["by_watchlist_size"].get("1000")
    if n1k:
        d = n1k["fpir_detail"].get("0.001", {})
        out.append(f"<li>Watchlist of 1,000: FNIR at FPIR 0.001 = <b>{_pct(d.get('fnir'))}</b> (threshold "
                   f"{_num(d.get('threshold'), '.4f')}, per-split range {_pct(d['per_split']['fnir_spread']['min'])}"
                   f"–{_pct(d['per_split']['fnir_spread']['max'])}); closed-set rank-1 {_pct(n1k['rank1'])}; "
                   f"smallest FPIR the data supports {_num(n1k['smallest_supportable_fpir'])} "
                   f"({n1k['nonmated_searches_per_split'][0]:,} non-mated searches per split).</li>")
    sex = fair["attributes"].get("sex")
    if sex:
        t = fair["operating_threshold"]
        cells = []
        for name in ("female", "male"):
            g = sex["groups"].get(name)
            if g:
                cells.append(f"{name}: FMR {_pct(g['fmr']['value'], 4)} ({_ci(g['fmr'])}), "
                             f"FNMR {_pct(g['fnmr']['value'])} ({_ci(g['fnmr'])})")
        out.append(f"<li>At the operating threshold {t} (calibration FMR 1e-4): " + "; ".join(cells) +
                   f". Worst-to-best FMR ratio: {_e(sex['worst_to_best_fmr_ratio']['statement'])}.</li>")
    main = next((a for a in r["advice"] if a["watchlist_size"] == 1000 and a["faces_per_deployment"] == 10_000), None)
    if main:
        m = main.get("measured", {})
        loose = next((x for x in main["alternatives"] if x["max_false_alerts"] > main["max_false_alerts"]), None)
        extra = (f" Allowing 10 false alerts per 10,000 faces: threshold {loose['threshold']}, FNIR "
                 f"{_pct(loose.get('measured', {}).get('fnir'))}." if loose else "")
        data_t = m.get("data_threshold_at_target")
        data_txt = (f" The open-set searches themselves put the threshold for that FPIR at {data_t} (FNIR "
                    f"{_pct(m.get('fnir_at_data_threshold'))})." if data_t is not None else "")
        out.append(f"<li>For at most 1 false alert per 10,000 faces with 1,000 people on the watchlist: threshold "
                   f"<b>{main['threshold']}</b> (per-comparison FMR {_num(main['per_comparison_fmr'])}, resting on "
                   f"{main['calibration_impostor_pairs_above']:,} calibration impostor pairs); it misses "
                   f"{_pct(m.get('fnir'))} of watchlisted people walking past (measured FNIR).{data_txt}{extra} "
                   "On LFW the pairs that set such strict thresholds are mostly label errors and duplicated "
                   "photographs (listed under Verification), so this is pessimistic: a force should recalibrate on "
                   "clean data of its own.</li>")
    if n1k:
        n = n1k["nonmated_searches_per_split"][0]
        out.append(f"<li>What the data cannot show: with n non-mated searches and no false positive the 95% upper "
                   f"bound on FPIR is about 3/n. Confirming 1 false alert in 60,000 searches (the NPL's figure for "
                   f"a 1,000-person watchlist) needs at least 180,000 non-mated searches of distinct faces; this data "
                   f"gives {n:,} per split ({n1k['nonmated_images_distinct']:,} distinct images "
                   f"over all splits), so its smallest supportable FPIR is {_num(n1k['smallest_supportable_fpir'])}."
                   "</li>")
    out.append("</ul>")
    return out


def _data_section(ds: dict, cal: dict) -> list[str]:
    rows = [[_e(k.replace("_", " ")), _e(f"{v:,}" if isinstance(v, int) else v)] for k, v in ds.items()
            if k not in ("notes", "root")]
    notes = "".join(f"<li>{_e(n)}</li>" for n in ds.get("notes", []))
    return ["<h2>Data set and its limits</h2>", _table(["", ""], rows), f"<ul>{notes}</ul>",
            f"<p class=warn>Calibration table: {_e(cal['dataset'])} (source: {_e(cal['source'])}, "
            f"{cal['impostor_pairs']:,} impostor pairs). When that is the same data as this evaluation, the "
            "thresholds are tuned on the test data: real deployments should rebuild the calibration on their own "
            "labelled images (<code>vigil calibrate</code>) and rerun this report.</p>"]


def _method_section(ident: dict, fair: dict) -> list[str]:
    rules = fair["rules"]
    return ["<h2>Method and definitions</h2><ul>",
            "<li><b>FMR / FNMR</b> (one-to-one): share of impostor pairs scoring at or above the threshold / "
            "share of genuine pairs scoring below it. Images without a template are failures to enrol, counted "
            "separately.</li>",
            f"<li><b>Open-set identification</b> ({ident['splits']} random splits, seed {ident['seed']}): N people "
            "enrolled with one image each (an image that passes the quality gate); mated probes are their other "
            "images, non-mated probes are everyone else's images. <b>FPIR</b>: non-mated searches whose top score "
            "is at or above the threshold. <b>FNIR</b>: mated searches where the mate is not the top candidate "
            "at or above the threshold (a probe with no template is a miss). Rank-k: closed-set, no threshold.</li>",
            "<li><b>Smallest supportable rate</b>: with n trials and no error the exact 95% upper bound is "
            "1 − 0.05<sup>1/n</sup> ≈ 3/n; rates below 3/n are not reported.</li>",
            f"<li><b>Confidence intervals</b>: {_e(rules['ci'])}.</li>",
            f"<li><b>Significance</b>: {_e(rules['significance'])}. <b>Too small to conclude</b>: fewer than "
            f"{rules['min_identities']} identities, or fewer than {rules['min_expected_false_matches']} false "
            "matches expected at the overall rate. Within-group FMR uses impostor pairs with both images in "
            "the group.</li>",
            "<li>Scores are rounded to 1e-5 before any threshold or ranking, so results do not depend on the "
            "number of threads.</li></ul>"]


def _verification_section(v: dict) -> list[str]:
    rows = [[k, _pct(x["tar"]), _num(x["threshold"], ".4f") if x["threshold"] is not None else "n/a",
             "yes" if x["supported"] else "no"] for k, x in v["tar_at_far"].items()]
    return ["<h2>Verification (one-to-one)</h2>",
            f"<p>{v['genuine_pairs']:,} genuine and {v['impostor_pairs']:,} impostor pairs (every pair of images). "
            f"EER {_pct(v['eer'])} at {v['eer_threshold']}. {_pct(v['genuine_pairs_from_top_10_people'], 1)} of "
            "the genuine pairs come from the 10 most photographed people.</p>",
            _table(["FAR", "TAR", "threshold", "supported"], rows),
            "<p>The highest-scoring impostor pairs. On LFW these are mostly label errors (one person filed under "
            "two spellings, the same photograph filed under two names, a photograph of someone else) or twins; they set the "
            "far tail of the impostor distribution and so the thresholds at the smallest rates. Check them before "
            "trusting any figure below 1e-5.</p>",
            _table(["score", "image A", "image B"], [[p["score"], _e(p["a"]), _e(p["b"])]
                                                     for p in v.get("highest_impostor_pairs", [])[:15]]),
            _img(plots.roc(v), "ROC"), _img(plots.det(v), "DET")]


def _identification_section(ident: dict) -> list[str]:
    head = ["N", "mated / non-mated per split", "FNIR@FPIR 0.1", "FNIR@0.01", "FNIR@0.001", "FNIR@0.0001",
            "threshold@0.001", "rank-1", "rank-5", "rank-10", "smallest FPIR"]
    rows = []
    notes = []
    for n, r in ident["by_watchlist_size"].items():
        f = r["fnir_at_fpir"]
        rows.append([f"{int(n):,}", f"{r['mated_searches_per_split'][0]:,} / {r['nonmated_searches_per_split'][0]:,}",
                     *(_pct(f.get(k)) for k in ("0.1", "0.01", "0.001", "0.0001")),
                     _num(r["threshold_at_fpir"].get("0.001"), ".4f") if r["threshold_at_fpir"].get("0.001")
                     else "n/a", _pct(r["rank1"]), _pct(r["rank5"]), _pct(r["rank10"]),
                     _num(r["smallest_supportable_fpir"])])
        if r.get("note"):
            notes.append(f"<p class=warn>N = {int(n):,}: {_e(r['note'])}.</p>")
    return ["<h2>Open-set identification (the live use)</h2>",
            f"<p>{ident['people_with_2_or_more_enrolable']:,} people have an enrolable image and a second image; "
            f"{ident['people_with_1_enrolable']:,} have a single enrolable image. n/a: not supported by the number of "
            "non-mated searches.</p>", _table(head, rows), *notes, *_live_settings_table(ident),
            _img(plots.fnir_vs_fpir(ident), "FNIR vs FPIR"),
            _img(plots.rates_vs_threshold(ident), "rates vs threshold")]


def _live_settings_table(ident: dict) -> list[str]:
    """What deployments would do: their threshold rule applied to every pooled search."""
    rows = []
    for n, r in ident["by_watchlist_size"].items():
        for rate, x in (r.get("at_live_settings") or {}).items():
            per = 1e4
            rows.append([f"{int(n):,}", rate, _num(x["threshold"], ".4f"),
                         f"{x['false_alerts']:,} / {x['nonmated_searches']:,}",
                         f"{_num(x['false_alerts_per_face'] * per)} ({_num(x['false_alerts_per_face_upper95'] * per)})",
                         f"{x['false_alert_probe_images_distinct']:,}: {_e(', '.join(x.get('false_alert_probe_images', [])[:4]))}"
                         if x["false_alert_probe_images_distinct"] else "0", _pct(x["fnir"])])
    if not rows:
        return []
    return ["<h3>At the thresholds live deployments set</h3>",
            "<p>A deployment accepting a false alert rate per face on a watchlist of N people sets its threshold at "
            "the per-comparison FMR rate / N. Applied to every non-mated search pooled over the splits (the same "
            "photos recur across splits, so the exact 95% upper bound is optimistic):</p>",
            _table(["N", "accepted per face", "threshold", "false alerts / non-mated searches",
                    "per 10,000 faces (95% upper)", "distinct probe photos behind them", "FNIR"], rows)]


def _fairness_section(fair: dict) -> list[str]:
    out = ["<h2>Demographic differentials</h2>",
           f"<p>Operating threshold {fair['operating_threshold']} (calibration FMR 1e-4 per comparison over all of "
           f"the calibration data). {fair['bootstrap_replicates']:,} bootstrap replicates over identities.</p>"]
    for attr, res in fair["attributes"].items():
        out.append(f"<h3>{_e(attr)}</h3>")
        rows = []
        for name, g in res["groups"].items():
            rows.append([_e(name), f"{g['identities']:,}", f"{g['images']:,}", f"{g['impostor_pairs']:,}",
                         _pct(g["fmr"]["value"], 4), _ci(g["fmr"]), _e(g["fmr"].get("verdict", "")),
                         f"{g['identities_with_genuine_pairs']:,}", f"{g['genuine_pairs']:,}", _pct(g["fnmr"]["value"]),
                         _ci(g["fnmr"]), _pct(g["fnmr_per_identity"]["value"]), _ci(g["fnmr_per_identity"]),
                         _e(g["fnmr"].get("verdict", ""))])
        out.append(_table(["group", "identities", "images", "impostor pairs", "FMR", "95% CI", "FMR verdict",
                           "ids with pairs", "genuine pairs", "FNMR", "95% CI", "FNMR per identity", "95% CI",
                           "FNMR verdict"], rows))
        out.append("<p class=small>FNMR counts genuine pairs, so people with many photographs weigh in with the "
                   "square of their image count; FNMR per identity averages each person's own FNMR instead.</p>")
        wb = res["worst_to_best_fmr_ratio"]
        ci = (f" (95% CI {_num(wb['ci95'][0])} – {'unbounded' if wb['ci95'][1] is None else _num(wb['ci95'][1])})"
              if wb.get("ci95") else "")
        out.append(f"<p>Worst-to-best FMR ratio at the operating threshold: <b>{_num(wb.get('value'))}</b>{ci}. "
                   f"{_e(wb['statement'])}."
                   + (f" Too small to conclude: {_e(', '.join(wb['too_small']))}." if wb.get("too_small") else "")
                   + "</p>")
        sig_rows = []
        for metric in ("fmr", "fnmr", "fnmr_per_identity"):
            for row in res["significance"][metric]:
                tests = "; ".join(_test_cell(t) for t in row["tests"]) or "no two groups large enough to compare"
                flag = '<span class=sig>significant</span>' if row["significant"] else "not significant"
                label = metric.upper().replace("_PER_IDENTITY", " per identity")
                sig_rows.append([label, row["threshold"], flag, _e(tests),
                                 _e(", ".join(row["too_small"]) or "-")])
        out.append(_table(["metric", "threshold", "difference", "tests (Bonferroni-corrected)", "too small"],
                          sig_rows))
        out.append(_img(plots.group_rates(res, "fmr"), f"FMR by {attr}"))
        out.append(_img(plots.group_rates(res, "fnmr"), f"FNMR by {attr}"))
        erows = [[_e(n), f"{g['images']:,}", _pct(g["failure_to_enrol"]["value"]), _ci(g["failure_to_enrol"]),
                  _pct(g["quality_gate_rejection"]["value"]), _ci(g["quality_gate_rejection"]),
                  _e(", ".join(f"{k} {v}" for k, v in list(g["gate_reasons"].items())[:3]) or "-"),
                  _e(g["quality_gate_rejection"].get("verdict", ""))]
                 for n, g in res["groups"].items()]
        out.append("<p>Failure to enrol and quality-gate rejections (a gate that refuses one group's faces more "
                   "often is a bias of its own):</p>")
        out.append(_table(["group", "images", "FTE", "95% CI", "gate rejections", "95% CI", "top reasons",
                           "verdict"], erows))
        for metric in ("failure_to_enrol", "quality_gate_rejection"):
            s = res["significance"][metric]
            txt = "; ".join(t["statement"] for t in s["tests"]) or "no two groups large enough to compare"
            out.append(f"<p class=small>{_e(metric.replace('_', ' '))}: {_e(txt)}.</p>")
        out.append(_img(plots.enrolment_rates(res), f"enrolment failures by {attr}"))
    small = sorted({n for a in fair["attributes"].values() for n, g in a["groups"].items()
                    if n != ALL and g["fmr"].get("verdict") != "ok" and g["fnmr"].get("verdict") != "ok"})
    if small:
        out.append(f"<p class=warn>Too small to conclude anything at the operating threshold: {_e(', '.join(small))}. "
                   "For these groups the data can neither show a difference nor its absence.</p>")
    return out


def _test_cell(t: dict) -> str:
    a, b = t["groups"]
    ci = t.get("ratio_ci")
    ci_txt = f" (CI {_num(ci[0])} – {'unbounded' if ci[1] is None else _num(ci[1])})" if ci else ""
    return f"{a}/{b} {_num(t['ratio']) if t['ratio'] is not None else 'unbounded'}{ci_txt}"


def _advice_section(advice: list[dict]) -> list[str]:
    rows = []
    for a in advice:
        m = a.get("measured", {})
        rows.append([f"{a['watchlist_size']:,}", f"{a['faces_per_deployment']:,.0f}", _num(a["max_false_alerts"]),
                     f"<b>{a['threshold']}</b>", _num(a["per_comparison_fmr"]),
                     f"{a['calibration_impostor_pairs_above']:,}", _num(a["expected_false_alerts"]),
                     _pct(m.get("fnir")), f"{m.get('false_positives', 'n/a')} / {m.get('nonmated_searches', 'n/a'):,}"
                     if m else "n/a", "yes" if a["supported_by_calibration"] else "<b>no</b>",
                     "yes" if m.get("target_fpir_measurable") else "no"])
    return ["<h2>Threshold advice</h2>",
            "<p>Expected false alerts per deployment ≈ faces × FPIR(t, N), FPIR ≈ 1 − (1 − FMR(t))<sup>N</sup>. The "
            "threshold is the calibration's score for that per-comparison FMR, rounded up; the cost is the FNIR "
            "measured at that threshold with a watchlist of the same size (pooled over splits).</p>",
            _table(["N", "faces", "max false alerts", "threshold", "FMR per comparison",
                    "calibration impostor pairs above", "expected false alerts",
                    "FNIR (missed)", "measured false positives", "calibration supports", "target measurable here"],
                   rows),
            "<p class=small>'Target measurable here' is no when a split has fewer than 3/target non-mated "
            "searches: the data then cannot confirm the false-alert rate, only the calibration predicts it. "
            "'Calibration supports' is no when the per-comparison FMR needed is below 3 / calibration impostor "
            "pairs. A threshold resting on a handful of calibration pairs is only as good as those pairs' labels: "
            "see the highest-scoring impostor pairs above.</p>",
            *[f"<p class=warn>N = {a['watchlist_size']:,}, {a['faces_per_deployment']:,.0f} faces: "
              f"{_e(a['warning'])}.</p>" for a in advice if a.get("warning")]]
