"""Engine commands: verify, detect (stateless), and calibrate, models (services: audited)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import JsonOpt, PackOpt, console, emit, settings


def register(app: typer.Typer) -> None:
    app.command()(verify)
    app.command()(detect)
    app.command()(calibrate)
    app.add_typer(models_app, name="models")


def verify(
    image_a: Path = typer.Argument(..., help="First image (every face in it is compared unless --face-a)."),
    image_b: Path = typer.Argument(..., help="Second image (every face unless --face-b)."),
    fmr: float = typer.Option(1e-4, "--fmr", help="Target false match rate per comparison."),
    face_a: int = typer.Option(None, "--face-a", min=1, help="Use only this face of image A (1 = leftmost; "
                               "'vigil detect' numbers them)."),
    face_b: int = typer.Option(None, "--face-b", min=1, help="Use only this face of image B."),
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
    result = engine.verify(a, b, target_fmr=fmr, names=(str(image_a), str(image_b)), face_a=face_a, face_b=face_b)

    def human(r):
        verdict = "[green]MATCH[/]" if r.match else "[yellow]NO MATCH[/]"
        bound = "at most " if r.fmr_bounded else ""
        console.print(f"{verdict}  score {r.score:.3f}  threshold {r.threshold:.3f} (FMR {r.target_fmr:g})")
        for label, index, count, box in (("A", r.face_a, r.faces_a, r.box_a), ("B", r.face_b, r.faces_b, r.box_b)):
            if count > 1:
                console.print(f"image {label}: face {index} of {count} (box {box})")
        if r.chosen == "best":
            console.print("Several faces: every pair was compared and the best is shown; choose one with "
                          "--face-a/--face-b (numbered left to right, as 'vigil detect' lists them).")
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
    from vigil.engine.faces import reading_order

    found = engine.analyse(img, reading_order(engine.detect(img)))
    data = {"image": str(image), "width": img.shape[1], "height": img.shape[0], "faces": [
        {"face": number, "box": f.face.box_list(), "score": round(f.face.score, 4),
         "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in f.face.landmarks],
         "quality": f.quality.to_dict()} for number, f in enumerate(found, 1)]}

    def human(d):
        table = Table(title=f"{len(d['faces'])} face(s) in {d['image']} ({d['width']}x{d['height']})")
        for col in ("face", "box", "confidence", "quality", "issues"):
            table.add_column(col)
        for f in d["faces"]:
            table.add_row(str(f["face"]), str(f["box"]), f"{f['score']:.2f}", f"{f['quality']['score']:.2f}",
                          "; ".join(f["quality"]["reasons"]) or "-")
        console.print(table)

    emit(data, as_json, human)


def calibrate(
    data: Path = typer.Option(..., "--data", help="Folder with one sub-folder of images per person."),
    model: str = typer.Option(None, "--model", "--pack", help="Registered model or pack (default: the default pack)."),
    out: Path = typer.Option(None, "--out", help="Write the table here instead of the site calibration folder."),
    dataset: str = typer.Option(None, "--dataset", help="Description of the data recorded in the table."),
    as_json: bool = JsonOpt,
) -> None:
    """Rebuild a model's score-to-false-match-rate table from a site's own labelled images
    (administrators; audited with the old and new table's SHA-256)."""
    from vigil.cli.common_ctx import ctx
    from vigil.services.models import calibrate_model

    vigil, actor = ctx()
    summary = calibrate_model(vigil, actor, model, data, dataset=dataset, out=out, show_progress=not as_json)
    emit(summary, as_json, lambda d: console.print(
        f"Calibration for {d['model_id']} written to {d['path']}: {d['impostor_pairs']:,} impostor pairs, "
        f"threshold at FMR 1e-4 = {d['threshold_at_fmr_1e-4']:.3f}, smallest supported FMR {d['min_fmr']:.1e}"))


models_app = typer.Typer(help="Model packs and recognisers: list, register a site's model, install a known one.",
                         no_args_is_help=False)


@models_app.callback(invoke_without_command=True)
def models(context: typer.Context, as_json: bool = JsonOpt) -> None:
    """List model packs and registered models: availability, licence, SHA-256, calibration."""
    if context.invoked_subcommand is not None:
        return
    from vigil.cli.common_ctx import ctx
    from vigil.services.models import list_models

    vigil, actor = ctx()
    rows = list_models(vigil, actor)

    def human(rs):
        from rich.markup import escape  # fused model ids hold [brackets]

        table = Table(title="Model packs")
        for col in ("pack", "model", "calibration", "thr@1e-4", "live", "licence", "sha256"):
            table.add_column(col)
        for r in rs:
            table.add_row(r["pack"], escape(r.get("model_id", "-")), str(r.get("calibration") or "-"),
                          str(r.get("threshold_at_fmr_1e-4", "-")), "yes" if r["live"] else "stills only",
                          escape(r.get("licence", "")), (r.get("sha256") or "")[:12])
        console.print(table)
        for r in rs:
            if r.get("note"):
                console.print(escape(f"{r['pack']}: {r['note']}"), highlight=False)

    emit(rows, as_json, human)


@models_app.command("add")
def models_add(
    file: Path = typer.Argument(..., help="An ArcFace-style ONNX recogniser (N x 3 x 112 x 112 in, embedding out)."),
    name: str = typer.Option(..., "--name", help="Pack name to use it by (--pack NAME)."),
    licence: str = typer.Option("", "--licence", help="The licence the site holds for it."),
    source: str = typer.Option("", "--source", help="Where it came from (URL)."),
    mean: float = typer.Option(None, "--mean", help="Input mean, when the model's metadata does not say."),
    std: float = typer.Option(None, "--std", help="Input standard deviation, likewise."),
    bgr: bool = typer.Option(False, "--bgr", help="The model takes BGR (default RGB)."),
    as_json: bool = JsonOpt,
) -> None:
    """Register a site's recogniser: checked, repaired for batching, copied (0600), audited."""
    from vigil.cli.common_ctx import ctx
    from vigil.services.models import register_model

    vigil, actor = ctx()
    result = register_model(vigil, actor, file, name, licence=licence, source=source, mean=mean, std=std,
                            rgb=not bgr)
    emit(result, as_json, _said_registered)


@models_app.command("install")
def models_install(
    name: str = typer.Argument(..., help="A model Vigil knows: faceplugin."),
    source: str = typer.Option(None, "--from", help="A mirror URL, file:// URL or local file (e.g. from npm pack) "
                               "instead of the publisher's pinned URL; the SHA-256 is checked all the same."),
    as_json: bool = JsonOpt,
) -> None:
    """Fetch a known model by pinned URL and SHA-256, repair it and register it."""
    from vigil.cli.common_ctx import ctx
    from vigil.services.models import install_model

    vigil, actor = ctx()
    emit(install_model(vigil, actor, name, source), as_json, _said_registered)


def _said_registered(d: dict) -> None:
    console.print(f"{d['name']}: {d['status']} (SHA-256 {d['source_sha256'][:16]}..., {d['dim']}-d, "
                  f"mean {d['input_mean']} std {d['input_std']} from {d['normalisation_from']}"
                  f"{', one face per run' if d['per_face'] else ''}). Use it with --pack {d['name']}; "
                  f"calibrate it with: vigil calibrate --model {d['name']} --data DIR")
