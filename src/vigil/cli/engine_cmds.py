"""Engine commands: verify, detect, calibrate, models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import JsonOpt, PackOpt, console, emit, settings


def register(app: typer.Typer) -> None:
    app.command()(verify)
    app.command()(detect)
    app.command()(calibrate)
    app.command()(models)


def verify(
    image_a: Path = typer.Argument(..., help="First image (its main face is used)."),
    image_b: Path = typer.Argument(..., help="Second image."),
    fmr: float = typer.Option(1e-4, "--fmr", help="Target false match rate per comparison."),
    pack: str = PackOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Are two photos of the same person? Score, decision, and what the threshold means."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.engine.images import read_image_file

    s = settings()
    engine = FaceEngine.from_settings(s, pack)
    a = read_image_file(image_a, max_pixels=s.max_image_pixels)
    b = read_image_file(image_b, max_pixels=s.max_image_pixels)
    result = engine.verify(a, b, target_fmr=fmr, names=(str(image_a), str(image_b)))

    def human(r):
        verdict = "[green]MATCH[/]" if r.match else "[yellow]NO MATCH[/]"
        bound = "at most " if r.fmr_bounded else ""
        console.print(f"{verdict}  score {r.score:.3f}  threshold {r.threshold:.3f} (FMR {r.target_fmr:g})")
        console.print(f"At this score about {bound}1 in {1 / r.fmr:,.0f} comparisons of different people "
                      f"would score as high (model {r.model_id}, calibration: {engine.pack.calibration.dataset}).")
        for label, q in (("A", r.quality_a), ("B", r.quality_b)):
            extra = "" if q.passed else "  [yellow]" + "; ".join(q.reasons) + "[/]"
            console.print(f"quality {label}: {q.score:.2f}{extra}")

    emit(result.to_dict() if as_json else result, as_json, human)


def detect(
    image: Path = typer.Argument(..., help="Image file."),
    pack: str = PackOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find faces in an image with landmarks and quality."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.engine.images import read_image_file

    s = settings()
    engine = FaceEngine.from_settings(s, pack)
    img = read_image_file(image, max_pixels=s.max_image_pixels)
    found = engine.analyse(img)
    data = {"image": str(image), "width": img.shape[1], "height": img.shape[0], "faces": [
        {"box": f.face.box_list(), "score": round(f.face.score, 4),
         "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in f.face.landmarks],
         "quality": f.quality.to_dict()} for f in found]}

    def human(d):
        table = Table(title=f"{len(d['faces'])} face(s) in {d['image']} ({d['width']}x{d['height']})")
        for col in ("box", "confidence", "quality", "issues"):
            table.add_column(col)
        for f in d["faces"]:
            table.add_row(str(f["box"]), f"{f['score']:.2f}", f"{f['quality']['score']:.2f}",
                          "; ".join(f["quality"]["reasons"]) or "-")
        console.print(table)

    emit(data, as_json, human)


def calibrate(
    data: Path = typer.Option(..., "--data", help="Folder with one sub-folder of images per person."),
    pack: str = PackOpt,
    out: Path = typer.Option(None, "--out", help="Write the table here instead of the site calibration folder."),
    dataset: str = typer.Option(None, "--dataset", help="Description of the data recorded in the table."),
    as_json: bool = JsonOpt,
) -> None:
    """Rebuild the score-to-false-match-rate table from a site's own labelled images."""
    from vigil.engine.calibration import calibration_filename, site_calibration_dir
    from vigil.engine.face_engine import FaceEngine
    from vigil.evaluation.calibrate import calibrate_folder

    s = settings()
    engine = FaceEngine.from_settings(s, pack)
    cal, stats = calibrate_folder(engine, data, dataset, show_progress=not as_json)
    target = out or site_calibration_dir(s.home) / calibration_filename(engine.model_id)
    cal.save(target)
    engine.pack.reload_calibration()
    _audit_config_change(s, "calibration.rebuilt", {"model_id": engine.model_id, "path": str(target), **stats})
    summary = {"path": str(target), "model_id": cal.model_id, "impostor_pairs": cal.impostor_pairs,
               "genuine_pairs": cal.genuine_pairs, "threshold_at_fmr_1e-4": cal.threshold_for(1e-4),
               "min_fmr": cal.min_fmr, **stats}
    emit(summary, as_json, lambda d: console.print(
        f"Calibration for {d['model_id']} written to {d['path']}: {d['impostor_pairs']:,} impostor pairs, "
        f"threshold at FMR 1e-4 = {d['threshold_at_fmr_1e-4']:.3f}, smallest supported FMR {d['min_fmr']:.1e}"))


def _audit_config_change(s, action: str, details: dict) -> None:
    try:
        from vigil.governance.audit_hooks import record_system_event
    except ModuleNotFoundError:
        return
    record_system_event(s, action, details)


def models(as_json: bool = JsonOpt) -> None:
    """List model packs, whether they are installed, and their calibration."""
    from vigil.engine.packs import LIVE_PACKS, PACK_NAMES, get_pack
    from vigil.errors import VigilError

    s = settings()
    rows = []
    for name in PACK_NAMES:
        row = {"pack": name, "available": False, "live": name in LIVE_PACKS}
        try:
            pack = get_pack(name, s)
            row.update(available=True, model_id=pack.model_id, dim=pack.dim)
            try:
                cal = pack.calibration
                row.update({"calibration": cal.source, "calibration_dataset": cal.dataset,
                            "threshold_at_fmr_1e-4": round(cal.threshold_for(1e-4), 4)})
            except VigilError as exc:
                row.update(calibration=None, note=str(exc))
        except VigilError as exc:
            row["note"] = str(exc)
        rows.append(row)

    def human(rs):
        table = Table(title="Model packs")
        for col in ("pack", "model", "calibration", "thr@1e-4", "live", "note"):
            table.add_column(col)
        for r in rs:
            table.add_row(r["pack"], r.get("model_id", "-"), str(r.get("calibration") or "-"),
                          str(r.get("threshold_at_fmr_1e-4", "-")), "yes" if r["live"] else "stills only",
                          r.get("note", ""))
        console.print(table)

    emit(rows, as_json, human)
