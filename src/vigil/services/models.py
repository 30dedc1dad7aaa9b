"""Models as accountable objects: which recognisers a site runs, who brought each in, and who
changed the calibration table every threshold depends on.

- :func:`list_models`: the built-in packs and every registered or installed model, with
  licence, SHA-256 and where its calibration comes from (any user).
- :func:`register_model` (``vigil models add``), :func:`install_model` (``vigil models
  install``) and :func:`calibrate_model` (``vigil calibrate``) need ``model.manage``. A refusal
  is recorded before anything is computed; the model file (or calibration table) is
  published inside the transaction that writes the audit entry, and withdrawn if that
  transaction does not commit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from vigil.engine import registered_models as registry
from vigil.engine.calibration import (
    MAX_REFERENCES, calibration_filename, calibration_in_effect, site_calibration_dir, to_json,
)
from vigil.engine.model_install import KNOWN_MODELS, prepare, prepare_known
from vigil.engine.packs import PACK_NAMES, check_live_pack, get_pack
from vigil.errors import ConflictError, ModelError, PermissionDenied, VigilError
from vigil.fsutil import atomic_write
from vigil.governance.permissions import Actor
from vigil.services.unit import refuse, use_case
from vigil.store.schema import ModelRecord
from vigil.timeutil import iso

MANAGE = "model.manage"


def _authorise(vigil, actor: Actor, action: str, object_id: str, details: dict) -> None:
    """Refuse (and record the refusal) before any long work starts."""
    if not actor.can(MANAGE):
        refuse(vigil, actor, f"{action}.refused", "model", object_id,
               f"{actor.username} ({actor.role}) may not manage models or calibration", details,
               error=PermissionDenied)


def _sha256(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


# --------------------------------------------------------------------------- listing
def _pack_row(vigil, name: str) -> dict:
    row = {"pack": name, "available": False, "live": _live(name)}
    try:
        pack = get_pack(name, vigil.settings)
        row.update(available=True, model_id=pack.model_id, dim=pack.dim)
        try:
            cal = pack.calibration
            row.update({"calibration": cal.source, "calibration_dataset": cal.dataset,
                        "threshold_at_fmr_1e-4": round(cal.threshold_for(1e-4), 4)})
        except VigilError as exc:
            row.update(calibration=None, note=str(exc))
    except VigilError as exc:
        row["note"] = str(exc)
    return row


def _live(name: str) -> bool:
    try:
        check_live_pack(name)
        return True
    except ModelError:
        return False


def list_models(vigil, actor: Actor) -> list[dict]:
    """Every pack a ``--pack`` option accepts, with its provenance where Vigil recorded one."""
    with use_case(vigil, actor) as uow:
        records = {r.name: r for r in uow.session.scalars(select(ModelRecord))}
    names = list(PACK_NAMES) + sorted(s.name for s in registry.list_specs(vigil.settings.home)
                                      if s.name not in PACK_NAMES)
    rows = []
    for name in names:
        row = _pack_row(vigil, name)
        spec = registry.load_spec(vigil.settings.home, name)
        if spec is not None:
            row.update(kind=spec.kind, licence=spec.licence, source=spec.source, sha256=spec.source_sha256,
                       per_face=spec.per_face, normalisation=f"({spec.input_mean}, {spec.input_std}) "
                       f"from {spec.normalisation_from}")
        record = records.get(name)
        if record is not None:
            row.update(registered_by=record.registered_by, registered_at=iso(record.registered_at))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- bringing models in
def _publish(vigil, actor: Actor, prepared: registry.Prepared, action: str, details: dict) -> dict:
    spec = prepared.spec
    home = vigil.settings.home
    published: list[Path] = []
    try:
        with use_case(vigil, actor, MANAGE) as uow:
            existing = uow.session.scalar(select(ModelRecord).where(ModelRecord.name == spec.name))
            if existing is not None:
                if existing.kind == "installed" and existing.source_sha256 == spec.source_sha256 and \
                        registry.load_spec(home, spec.name) is not None:
                    return {**existing.spec, "status": "already installed"}
                raise ConflictError(f"a model named {spec.name!r} is already registered "
                                    f"(by {existing.registered_by}, SHA-256 {existing.source_sha256[:16]}...)")
            uow.session.add(ModelRecord(name=spec.name, kind=spec.kind, source_sha256=spec.source_sha256,
                                        file_sha256=spec.sha256, dim=spec.dim, spec=spec.to_dict(),
                                        licence=spec.licence, source=spec.source, registered_by=actor.username))
            uow.session.flush()
            uow.audit(action, "model", spec.name, {
                "sha256": spec.source_sha256, "file_sha256": spec.sha256, "dim": spec.dim,
                "licence": spec.licence, "source": spec.source, "input_mean": spec.input_mean,
                "input_std": spec.input_std, "normalisation_from": spec.normalisation_from,
                "per_face": spec.per_face, **details})
            prepared.publish(home, published)
    except BaseException:
        registry.withdraw(published)
        raise
    return {**spec.to_dict(), "status": "registered" if spec.kind == "registered" else "installed",
            "model_id": spec.model_id(vigil.settings.engine.flip_augment),
            "path": str(registry.registry_dir(home) / spec.file)}


def register_model(vigil, actor: Actor, file: Path, name: str, *, licence: str = "", source: str = "",
                   mean: float | None = None, std: float | None = None, rgb: bool = True) -> dict:
    """``vigil models add``: check, repair and register a site's ArcFace-style ONNX model."""
    _authorise(vigil, actor, "model.register", name, {"file": str(file)})
    if name in KNOWN_MODELS:
        raise ModelError(f"{name!r} is a model Vigil installs itself: vigil models install {name}")
    registry.check_name(name)
    path = Path(file).expanduser()
    if not path.is_file():
        raise ModelError(f"{file}: no such file")
    prepared = prepare(path.read_bytes(), name, mean=mean, std=std, rgb=rgb, licence=licence, source_url=source)
    return _publish(vigil, actor, prepared, "model.registered", {"file": str(path)})


def install_model(vigil, actor: Actor, name: str, location: str | None = None) -> dict:
    """``vigil models install``: fetch a known model by pinned URL (or ``location``) and digest."""
    _authorise(vigil, actor, "model.install", name, {"from": location or "publisher"})
    prepared = prepare_known(name, location)
    return _publish(vigil, actor, prepared, "model.installed", {"from": location or KNOWN_MODELS[name].url})


# --------------------------------------------------------------------------- calibration
def calibrate_model(vigil, actor: Actor, model: str | None, data: Path, *, dataset: str | None = None,
                    out: Path | None = None, show_progress: bool = True) -> dict:
    """``vigil calibrate``: rebuild a model's score-to-FMR table from a labelled folder. The
    audit entry names the data, the model and the SHA-256 of the old and the new table."""
    from vigil.evaluation.calibrate import calibrate_folder

    model = model or vigil.settings.engine.pack
    _authorise(vigil, actor, "calibration.rebuild", model, {"data": str(data)})
    if not Path(data).is_dir():
        raise VigilError(f"{data}: not a folder of labelled images (one sub-folder per person)")
    engine = vigil.engine(model)
    site = site_calibration_dir(vigil.settings.home)
    target = Path(out) if out else site / calibration_filename(engine.model_id)
    tables, stats = calibrate_folder(engine, Path(data), dataset, show_progress=show_progress)
    cal = tables[1]
    # the mean-template tables lie beside the single one; a count the data cannot support
    # loses a stale table, so every threshold comes from this data
    files = {k: target if k == 1 else target.parent / calibration_filename(engine.model_id, k)
             for k in range(1, MAX_REFERENCES + 1)}
    new_bytes = {k: to_json(tables[k]).encode() if k in tables else None for k in files}
    before_file, before_source = calibration_in_effect(engine.model_id, site, engine.pack.calibration_path)
    old_bytes = before_file.read_bytes() if before_file is not None else None
    replaced = {k: f.read_bytes() if f.is_file() else None for k, f in files.items()}
    touched = []
    try:
        with use_case(vigil, actor, MANAGE) as uow:
            uow.audit("calibration.rebuilt", "model", model, {
                "model_id": engine.model_id, "data": str(Path(data).resolve()), "dataset": cal.dataset,
                "path": str(target), "old_sha256": _sha256(old_bytes), "old_source": before_source,
                "new_sha256": _sha256(new_bytes[1]), "impostor_pairs": cal.impostor_pairs,
                "genuine_pairs": cal.genuine_pairs,
                "mean_template_tables": {str(k): _sha256(new_bytes[k]) for k in files if k > 1}, **stats})
            uow.session.flush()
            for k, f in files.items():
                touched.append(k)
                if new_bytes[k] is not None:
                    atomic_write(f, new_bytes[k], mode=0o644, dir_mode=None)
                else:
                    f.unlink(missing_ok=True)
    except BaseException:
        for k in touched:  # the audit entry did not commit: put the old tables back
            if replaced[k] is None:
                files[k].unlink(missing_ok=True)
            else:
                atomic_write(files[k], replaced[k], mode=0o644, dir_mode=None)
        raise
    engine.pack.reload_calibration()
    return {"path": str(target), "model": model, "model_id": cal.model_id, "impostor_pairs": cal.impostor_pairs,
            "genuine_pairs": cal.genuine_pairs, "threshold_at_fmr_1e-4": cal.threshold_for(1e-4),
            "min_fmr": cal.min_fmr, "old_sha256": _sha256(old_bytes), "new_sha256": _sha256(new_bytes[1]),
            "mean_template_tables": {str(k): str(files[k]) for k in tables if k > 1}, **stats}


__all__ = ["calibrate_model", "install_model", "list_models", "register_model"]
