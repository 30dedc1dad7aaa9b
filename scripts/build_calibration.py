#!/usr/bin/env python
"""Build the shipped calibration table of a pack from every impostor pair of LFW-a.

    python scripts/build_calibration.py --data ../shared/data/lfw --pack sface

Writes ``src/vigil/engine/calibration/<model_id>.json``. The images are not committed;
the table (score thresholds for a grid of false match rates, with the FNMR on LFW's
genuine pairs at each) is. LFW-a is grayscale and pre-aligned: sites with colour cameras
should rebuild the table on their own labelled images with ``vigil calibrate --data DIR``.

``--cache FILE.npz`` keeps the extracted templates so a rerun (or the fusion-weight script)
need not extract them again.

Any pack by name works: ``--pack faceplugin`` (after ``vigil models install faceplugin``), or
a fused pair ``--pack fusion:sface+faceplugin``. For a fused pair the weight is fitted as
``scripts/fit_fusion.py`` fits the shipped ``fusion`` pack's (logistic regression on LFW
pairsDevTrain only) from each model's own templates (``--cache-dir`` keeps one file per
model, ``lfw_<model>.npz``, shared with single-model runs), then written as
``fusion_weight_A+B.json`` beside the fused model's table. Tables of models a site may not
redistribute (a licensed model) belong in ``--out-dir $VIGIL_HOME/calibration``, never in
the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vigil.config import Settings
from vigil.engine.calibration import calibration_filename
from vigil.engine.face_engine import FaceEngine
from vigil.engine.fusion import combine, fit_weight
from vigil.engine.packs import FUSED_PREFIX
from vigil.evaluation.calibrate import calibrate_templates, labelled_images
from vigil.evaluation.extract import extract
from vigil.evaluation.lfw_data import LFW

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "vigil" / "engine" / "calibration"


def lfw_templates(engine: FaceEngine, data: Path, cache: Path | None):
    paths, ids = labelled_images(data)
    if cache and cache.is_file():
        saved = np.load(cache, allow_pickle=False)
        row = {str(n): i for i, n in enumerate(saved["names"])}
        if str(saved["model_id"]) == engine.model_id and all(p.name in row for p in paths):
            take = np.array([row[p.name] for p in paths])
            return saved["vectors"][take], saved["found"][take], ids, paths
    ext = extract(engine, paths, description=f"LFW templates ({engine.pack.name})")
    if cache:
        np.savez(cache, vectors=ext.vectors, found=ext.found, model_id=engine.model_id,
                 names=np.array([p.name for p in paths]))
    return ext.vectors, ext.found, ids, paths


def fused(args) -> dict:
    """Fit ``fusion:A+B``'s weight on pairsDevTrain and build the fused model's table."""
    first, second = args.pack[len(FUSED_PREFIX):].split("+")
    settings = Settings()
    parts = {}
    for name in (first, second):
        engine = FaceEngine.from_settings(settings, name)
        cache = args.cache_dir / f"lfw_{name}.npz" if args.cache_dir else None
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
        parts[name] = (engine.model_id, *lfw_templates(engine, args.data, cache))
    (id_a, a, found_a, ids, paths), (id_b, b, found_b, _, _) = parts[first], parts[second]
    found = found_a & found_b
    row = {p.name: i for i, p in enumerate(paths)}
    lfw = LFW(args.data)
    dev = lfw.pairs("pairsDevTrain.txt")
    ia = np.array([row[lfw.path(*p.a).name] for p in dev])
    ib = np.array([row[lfw.path(*p.b).name] for p in dev])
    labels = np.array([p.genuine for p in dev])
    score = lambda v: np.where(found[ia] & found[ib], np.einsum("ij,ij->i", v[ia], v[ib]), -1.0)  # noqa: E731
    weight = round(fit_weight(score(a), score(b), labels), 4)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"fusion_weight_{first}+{second}.json").write_text(json.dumps({
        "weight": weight, "fitted_on": f"LFW pairsDevTrain.txt ({len(dev)} pairs)",
        "method": f"logistic regression of genuine vs impostor on ({first} cosine, {second} cosine)",
        "models": [id_a, id_b], "created": datetime.now(UTC).strftime("%Y-%m-%d")}, indent=1) + "\n")
    model_id = f"fusion[{id_a}+{id_b}]w{weight:.3f}"
    cal = calibrate_templates(model_id, combine(a, b, weight)[found], [i for i, k in zip(ids, found) if k],
                              f"LFW-a (grayscale, pre-aligned): {int(found.sum())} of {len(paths)} images; every "
                              "pair of different people is an impostor comparison")
    target = args.out_dir / calibration_filename(model_id)
    cal.save(target)
    return {"path": str(target), "weight": weight, "model_id": model_id, "impostor_pairs": cal.impostor_pairs,
            "threshold_at_1e-4": cal.threshold_for(1e-4), "threshold_at_1e-6": cal.threshold_for(1e-6)}


def mean_tables(args) -> dict:
    """The tables of entries that are the mean template of 2 and 3 photos, beside the pack's own."""
    from vigil.engine.calibration import MAX_REFERENCES
    from vigil.engine.fusion import template_split
    from vigil.evaluation.calibrate import calibrate_mean_templates
    from vigil.evaluation.protocol import load_lfw

    settings = Settings()
    engine = FaceEngine.from_settings(settings, args.pack)
    d = load_lfw(settings, engine, args.data)
    ids = [d.people[p] for p in d.person[d.found]]
    dataset = (f"LFW-a (grayscale, pre-aligned): {int(d.found.sum())} of {len(d.names)} images of "
               f"{len(d.people)} people; every entry against every image of another person is an impostor "
               "comparison")
    out = {}
    for k in range(2, MAX_REFERENCES + 1):
        cal = calibrate_mean_templates(engine.model_id, d.vectors[d.found], ids, k, dataset,
                                       split=template_split(engine.pack.embedder))
        target = args.out_dir / calibration_filename(engine.model_id, k)
        cal.save(target)
        out[k] = {"path": str(target), "impostor_pairs": cal.impostor_pairs, "genuine_pairs": cal.genuine_pairs,
                  "threshold_at_1e-6": cal.threshold_for(1e-6), "threshold_at_1e-7": cal.threshold_for(1e-7)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LFW root (holding lfw/ and pairs.txt)")
    parser.add_argument("--pack", default="sface")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--cache-dir", type=Path, help="per-model template caches (fused packs)")
    parser.add_argument("--out-dir", type=Path, default=SHIPPED)
    parser.add_argument("--mean-tables", action="store_true",
                        help="build only the tables of watchlist entries averaging 2 and 3 photos (from the "
                             "evaluation's template cache under $VIGIL_HOME, extracting once if missing)")
    args = parser.parse_args(argv)
    if args.mean_tables:
        print(json.dumps(mean_tables(args)))
        return 0
    if args.pack.startswith(FUSED_PREFIX):
        print(json.dumps(fused(args)))
        return 0
    engine = FaceEngine.from_settings(Settings(), args.pack)
    vectors, found, ids, paths = lfw_templates(engine, args.data, args.cache)
    kept_ids = [i for i, k in zip(ids, found) if k]
    dataset = (f"LFW-a (grayscale, pre-aligned): {int(found.sum())} of {len(paths)} images of "
               f"{len(set(ids))} people; every pair of different people is an impostor comparison")
    cal = calibrate_templates(engine.model_id, vectors[found], kept_ids, dataset)
    target = args.out_dir / calibration_filename(engine.model_id)
    cal.save(target)
    print(json.dumps({"path": str(target), "impostor_pairs": cal.impostor_pairs, "genuine_pairs": cal.genuine_pairs,
                      "impostor_mean": cal.impostor_mean, "impostor_std": cal.impostor_std,
                      "threshold_at_1e-4": cal.threshold_for(1e-4), "threshold_at_1e-6": cal.threshold_for(1e-6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
