"""Evaluation commands (``vigil eval ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vigil.cli.common import JsonOpt, PackOpt, console, emit, settings

eval_app = typer.Typer(help="Measure accuracy, speed and fairness on labelled data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("lfw")
def eval_lfw(
    data: Path = typer.Option(..., "--data", help="Folder holding pairs.txt and lfw/."),
    pack: str = PackOpt,
    out: Path = typer.Option(None, "--out", help="Also write the JSON result to this file."),
    as_json: bool = JsonOpt,
) -> None:
    """LFW View 2: 10-fold accuracy, TAR at FAR 1e-3, EER, failures to enrol, speed."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.evaluation.lfw import evaluate_lfw

    engine = FaceEngine.from_settings(settings(), pack)
    result = evaluate_lfw(engine, data, show_progress=not as_json)
    _write(out, result)

    def human(r):
        console.print(f"[bold]LFW ({r['pack']}, {r['model_id']})[/]")
        console.print(f"accuracy {r['accuracy'] * 100:.2f}% ± {r['accuracy_std'] * 100:.2f}  "
                      f"TAR@FAR1e-3 {r['tar_at_far_1e-3'] * 100:.2f}%  EER {r['eer'] * 100:.2f}%")
        console.print(f"failures to enrol {r['failures_to_enrol']} of {r['images']} images; "
                      f"quality-gate rejections {r['quality_gate_rejections']}; "
                      f"{r['images_per_second']:.1f} images/s (detect + align + embed)")

    emit(result, as_json, human)


# --------------------------------------------------------------------------- eval suite
# verification / identification / fairness / advise / report: see docs/evaluation.md.

DataOpt = typer.Option(..., "--data", help="Labelled images: an LFW root (lfw/<Name>/*.jpg, labels/).")
SeedOpt = typer.Option(0, "--seed", help="Seed of every random split and bootstrap.")
SplitsOpt = typer.Option(10, "--splits", help="Random watchlist splits per watchlist size.")
BootOpt = typer.Option(1000, "--bootstrap", help="Bootstrap replicates over identities.")
OutFileOpt = typer.Option(None, "--out", help="Also write the JSON result to this file.")


def _load(data: Path, pack: str | None, quiet: bool):
    """Engine and templates of every image (extracted once, then read from the template cache)."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.evaluation.protocol import load_lfw

    s = settings()
    engine = FaceEngine.from_settings(s, pack)
    return engine, load_lfw(s, engine, data, show_progress=not quiet)


def _write(out: Path | None, result: dict) -> None:
    """The result file records the machine it was measured on; the printed JSON stays free of
    it, so that the same seed and data print the same bytes anywhere."""
    from vigil.evaluation.lfw import machine_description

    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**result, "machine": result.get("machine") or machine_description()},
                                  indent=1) + "\n")


@eval_app.command("verification")
def eval_verification(
    data: Path = DataOpt,
    pairs: str = typer.Option(None, "--pairs", help="Score only the pairs of this file in DATA (e.g. pairs.txt) "
                                                    "instead of every pair of images."),
    pack: str = PackOpt,
    out: Path = OutFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """ROC, DET, EER and TAR at FAR 1e-2/1e-3/1e-4 (and lower where the data supports it)."""
    from vigil.evaluation.lfw_data import LFW
    from vigil.evaluation.verification import evaluate_all_pairs, evaluate_pairs_file

    engine, d = _load(data, pack, as_json)
    if pairs:
        lfw = LFW(data)
        index = {(nm.rsplit("_", 1)[0], int(nm.rsplit("_", 1)[1][:-4])): i for i, nm in enumerate(d.names)}
        result, _ = evaluate_pairs_file(d, lfw.pairs(pairs), index)
        result["pairs_file"] = pairs
    else:
        result, _ = evaluate_all_pairs(d, show_progress=not as_json)
    result = {"model_id": engine.model_id, **result}
    _write(out, result)

    def human(r):
        console.print(f"[bold]Verification ({r['model_id']})[/]: {r['genuine_pairs']:,} genuine, "
                      f"{r['impostor_pairs']:,} impostor pairs; EER {r['eer'] * 100:.2f}% at {r['eer_threshold']}")
        for far, x in r["tar_at_far"].items():
            tar = f"{x['tar'] * 100:.2f}% at threshold {x['threshold']}" if x["supported"] else "not supported"
            console.print(f"  TAR at FAR {far}: {tar}")

    emit(result, as_json, human)


@eval_app.command("identification")
def eval_identification(
    data: Path = DataOpt,
    watchlist_size: list[int] = typer.Option(None, "--watchlist-size", help="Watchlist size N (repeatable; "
                                             "default 100, 1000 and 5000 with 1000 at the top level)."),
    seed: int = SeedOpt,
    splits: int = SplitsOpt,
    pack: str = PackOpt,
    score_norm: str = typer.Option("none", "--score-norm", help="Cohort score normalisation: none, symmetric "
                                   "(adaptive S-norm) or entry (the watchlist entry's side only)."),
    references: int = typer.Option(None, "--references", min=1, max=3, help="Reference photos per listed person "
                                   "(default: what a deployment on the pack averages, live.references as far as "
                                   "the pack has mean-template tables; 3 for sface)."),
    reference_rule: str = typer.Option("mean", "--reference-rule", help="How several references score: mean (one "
                                       "mean template, as deployments do) or max (held-out protocol only)."),
    heldout: bool = typer.Option(False, "--heldout", help="Calibrate the live threshold on held-out people "
                                 "(implied by --score-norm and --references 2 or 3)."),
    cohort_size: int = typer.Option(1000, "--cohort-size", help="Cohort people (held-out protocol)."),
    fuse_with: str = typer.Option(None, "--fuse-with", help="Fuse --pack's scores with this pack's (held-out "
                                  "protocol; weight fitted on the calibration half)."),
    out: Path = OutFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Open-set identification: FNIR at FPIR, thresholds, rank-k, over seeded random watchlists."""
    from vigil.evaluation.suite import calibration_for, identification, with_primary

    sizes = tuple(watchlist_size) if watchlist_size else (100, 1000, 5000)
    primary = watchlist_size[0] if watchlist_size else 1000
    if heldout or score_norm != "none" or reference_rule != "mean" or fuse_with:
        _heldout_identification(data, pack, fuse_with, score_norm, references or 1, reference_rule, cohort_size,
                                primary, seed, splits, out, as_json)
        return
    engine, d = _load(data, pack, as_json)
    if references is None:
        references = engine.pack.supported_references(settings().live.references)
    cal = calibration_for(engine, d, show_progress=not as_json)
    res, _ = identification(d, cal, sizes=sizes, seed=seed, splits=splits, references=references,
                            calibration_for=engine.pack.calibration_for, show_progress=not as_json)
    result = with_primary(res, primary)
    _write(out, result)

    def human(r):
        console.print(f"[bold]Open-set identification ({r['model_id']})[/], seed {r['seed']}, {r['splits']} splits, "
                      f"{r['references']} reference photo(s) per listed person at most ({r['reference_rule']})")
        for n, x in r["by_watchlist_size"].items():
            f = ", ".join(f"{k}: {'n/a' if v is None else f'{v * 100:.2f}%'}" for k, v in x["fnir_at_fpir"].items())
            console.print(f"N={int(n):,}: FNIR at FPIR {{{f}}}; rank-1 {x['rank1'] * 100:.2f}%; smallest "
                          f"supportable FPIR {x['smallest_supportable_fpir']:.2g}")
            for rate, live in x.get("at_live_settings", {}).items():
                console.print(f"  live, {rate} false alerts per face accepted: FNIR {live['fnir'] * 100:.1f}%, "
                              f"{live['false_alerts']} false alerts in {live['nonmated_searches']:,} faces")

    emit(result, as_json, human)


def _heldout_identification(data, pack, fuse_with, score_norm, references, rule, cohort_size, size, seed, splits,
                            out, as_json) -> None:
    from vigil.errors import VigilError
    from vigil.evaluation.heldout import Variant, evaluate_heldout

    try:
        variant = Variant(score_norm=None if score_norm == "none" else score_norm, references=references,
                          rule=rule, cohort_people=cohort_size)
        _, d = _load(data, pack, as_json)
        other = _load(data, fuse_with, as_json)[1] if fuse_with else None
        result = evaluate_heldout(d, variant, size=size, seed=seed, splits=splits, second=other,
                                  show_progress=not as_json)
    except ValueError as exc:
        raise VigilError(str(exc)) from exc
    _write(out, result)

    def human(r):
        console.print(f"[bold]Open-set identification, held-out calibration ({r['model_id']})[/], "
                      f"{r['variant']}", highlight=False)
        for rate, x in r["at_live_settings"].items():
            console.print(f"  {rate} per face: FNIR {x['fnir'] * 100:.1f}%, {x['false_alerts']} false alerts in "
                          f"{x['nonmated_searches']:,} faces ({x['false_alerts_per_face']:.2g} per face)")

    emit(result, as_json, human)


@eval_app.command("fairness")
def eval_fairness(
    data: Path = DataOpt,
    seed: int = SeedOpt,
    bootstrap: int = BootOpt,
    threshold: float = typer.Option(None, "--threshold", help="Operating threshold (default: the calibration's "
                                                              "threshold at FMR 1e-4)."),
    pack: str = PackOpt,
    out: Path = OutFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """FMR/FNMR, failure to enrol and gate rejections per sex and race group, with 95% CIs."""
    from vigil.evaluation.fairness import evaluate_fairness
    from vigil.evaluation.suite import calibration_for, calibration_summary, fmr_thresholds

    engine, d = _load(data, pack, as_json)
    cal = calibration_for(engine, d, show_progress=not as_json)
    grid, operating = fmr_thresholds(cal)
    result = evaluate_fairness(d, grid, threshold if threshold is not None else operating, seed=seed,
                               replicates=bootstrap, show_progress=not as_json)
    result["calibration"] = calibration_summary(cal)
    result["dataset"] = d.description
    _write(out, result)

    def human(r):
        console.print(f"[bold]Demographic differentials ({r['model_id']})[/] at threshold {r['operating_threshold']}")
        for name, g in r["groups"].items():
            fm, fn = g["fmr"], g["fnmr"]
            ci = lambda m: f"[{m['ci95'][0]:.3g}, {m['ci95'][1]:.3g}]" if m.get("ci95") else ""  # noqa: E731
            console.print(f"  {name:<24} FMR {fm['value'] if fm['value'] is not None else 'n/a'} {ci(fm)} "
                          f"({fm.get('verdict')}); FNMR {fn['value'] if fn['value'] is not None else 'n/a'} "
                          f"{ci(fn)} ({fn.get('verdict')})", highlight=False)
        for attr, wb in r["worst_to_best_fmr_ratio"].items():
            console.print(f"  worst/best FMR by {attr}: {wb['statement']}", highlight=False)

    emit(result, as_json, human)


@eval_app.command("advise")
def eval_advise(
    watchlist_size: int = typer.Option(..., "--watchlist-size", help="People on the watchlist (N)."),
    faces_per_deployment: float = typer.Option(..., "--faces-per-deployment", help="Faces the cameras will see."),
    max_false_alerts: float = typer.Option(1.0, "--max-false-alerts", help="False alerts tolerated per deployment."),
    data: Path = typer.Option(None, "--data", help="Also measure the cost (FNIR) on this labelled data."),
    seed: int = SeedOpt,
    splits: int = SplitsOpt,
    pack: str = PackOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The lowest threshold keeping expected false alerts under a budget, and what it misses."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.evaluation.suite import calibration_for, identification
    from vigil.evaluation.threshold_advice import advise

    try:
        if data:
            engine, d = _load(data, pack, as_json)
            cal = calibration_for(engine, d, show_progress=not as_json)
            _, pooled = identification(d, cal, sizes=(watchlist_size,), seed=seed, splits=splits,
                                       show_progress=not as_json)
            result = advise(cal, watchlist_size, faces_per_deployment, max_false_alerts,
                            openset=pooled[watchlist_size])
            result["seed"], result["splits"] = seed, splits
        else:
            engine = FaceEngine.from_settings(settings(), pack)
            result = advise(engine.pack.calibration, watchlist_size, faces_per_deployment, max_false_alerts)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    def human(r):
        console.print(f"[bold]Threshold {r['threshold']}[/] for at most {r['max_false_alerts']:g} false alert(s) in "
                      f"{r['faces_per_deployment']:,.0f} faces against {r['watchlist_size']:,} people "
                      f"(per-comparison FMR {r['per_comparison_fmr']:.3g}; expected false alerts "
                      f"{r['expected_false_alerts']:.3g})")
        if r.get("warning"):
            console.print(f"[yellow]warning:[/] {r['warning']}")
        m = r.get("measured")
        if m:
            console.print(f"measured: misses {m['fnir'] * 100:.2f}% of watchlisted passers (FNIR); "
                          f"{m['false_positives']} false positives in {m['nonmated_searches']:,} non-mated searches")
        else:
            console.print(f"calibration FNMR at this threshold: {r['calibration_fnmr']}")

    emit(result, as_json, human)


@eval_app.command("report")
def eval_report(
    data: Path = DataOpt,
    out: Path = typer.Option(..., "--out", help="Folder for report.html and report.json."),
    seed: int = SeedOpt,
    splits: int = SplitsOpt,
    bootstrap: int = BootOpt,
    pack: str = PackOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every study (verification, identification, fairness, advice) in one HTML report."""
    import shlex
    import sys

    from vigil.evaluation.lfw import machine_description
    from vigil.evaluation.report import run_all, write_report

    engine, d = _load(data, pack, as_json)
    result = run_all(d, engine, seed=seed, splits=splits, replicates=bootstrap, show_progress=not as_json)
    command = "vigil " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    machine = {**machine_description(), "threads": settings().engine.threads or "all cores"}
    path = write_report(result, out, machine=machine, command=command)
    summary = {"report": str(path), "json": str(path.with_name("report.json"))}
    emit(summary, as_json, lambda r: console.print(f"report written to {r['report']}"))
