#!/usr/bin/env python
"""Fit the shipped fusion weight on LFW pairsDevTrain and build the fusion calibration table.

    python scripts/fit_fusion.py --data ../shared/data/lfw --cache /tmp/lfw_fusion_parts.npz

1. Extracts SFace and dlib templates of every LFW image on Vigil's detections (cached).
2. Fits the weight by logistic regression on pairsDevTrain only (1,100 + 1,100 pairs), so the
   View 2 evaluation (pairs.txt) never sees data the shipped weight was fitted on... except
   that LFW's identities overlap between the two views, which LFW's own protocol accepts.
3. Writes ``src/vigil/engine/calibration/fusion_weight.json`` and the calibration table of the
   fused model from every impostor pair of all 13,233 images.
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
from vigil.evaluation.calibrate import calibrate_templates, labelled_images
from vigil.evaluation.extract import extract
from vigil.evaluation.lfw_data import LFW

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "vigil" / "engine" / "calibration"


def parts(data: Path, cache: Path | None):
    paths, ids = labelled_images(data)
    if cache and cache.is_file():
        z = np.load(cache)
        row = {str(n): i for i, n in enumerate(z["names"])}
        if all(p.name in row for p in paths):
            take = np.array([row[p.name] for p in paths])
            return z["a"][take], z["b"][take], z["found"][take], ids, paths
    engine = FaceEngine.from_settings(Settings(), "fusion")
    ext = extract(engine, paths, description="LFW (SFace + dlib)")
    a, b = engine.pack.embedder.split(ext.vectors)
    a, b = a * ext.found[:, None], b * ext.found[:, None]
    if cache:
        np.savez(cache, a=a, b=b, found=ext.found, names=np.array([p.name for p in paths]),
                 images_per_second=ext.images_per_second)
    return a, b, ext.found, ids, paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out-dir", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    a, b, found, ids, paths = parts(args.data, args.cache)
    lfw = LFW(args.data)
    dev = lfw.pairs("pairsDevTrain.txt")  # the standard pairs, as published (label errors included)
    z = np.load(args.cache) if args.cache else None
    if z is None or any(lfw.path(*k).name not in set(map(str, z["names"])) for p in dev for k in (p.a, p.b)):
        raise SystemExit("fitting needs the template cache of every LFW image (--cache)")
    row = {str(n): i for i, n in enumerate(z["names"])}
    ia = np.array([row[lfw.path(*p.a).name] for p in dev])
    ib = np.array([row[lfw.path(*p.b).name] for p in dev])
    labels = np.array([p.genuine for p in dev])
    sa = np.einsum("ij,ij->i", z["a"][ia], z["a"][ib])
    sb = np.einsum("ij,ij->i", z["b"][ia], z["b"][ib])
    weight = fit_weight(sa, sb, labels)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "fusion_weight.json").write_text(json.dumps({
        "weight": round(weight, 4), "fitted_on": "LFW pairsDevTrain.txt (1,100 genuine + 1,100 impostor pairs)",
        "method": "logistic regression of genuine vs impostor on (SFace cosine, dlib cosine)",
        "created": datetime.now(UTC).strftime("%Y-%m-%d")}, indent=1) + "\n")
    engine = FaceEngine.from_settings(Settings(), "fusion")  # picks up the new weight
    engine.pack.embedder.weight = round(weight, 4)
    model_id = f"fusion[{engine.pack.embedder.first.model_id}+{engine.pack.embedder.second.model_id}]w{round(weight, 4):.3f}"
    fused = combine(a, b, round(weight, 4))
    for old in args.out_dir.glob("fusion_*.json"):
        if old.name != "fusion_weight.json":
            old.unlink()  # a table for a previous weight would never be used again
    keep = found.astype(bool)
    cal = calibrate_templates(model_id, fused[keep], [i for i, k in zip(ids, keep) if k],
                              f"LFW-a (grayscale, pre-aligned): {int(keep.sum())} of {len(paths)} images; every pair "
                              "of different people is an impostor comparison")
    cal.save(args.out_dir / calibration_filename(model_id))
    dlib_cal = calibrate_templates("dlib-resnet-v1-flip", b[keep], [i for i, k in zip(ids, keep) if k],
                                   "LFW-a, dlib descriptors on YuNet detections with dlib's own 5 landmarks "
                                   "(the dlib pack detects with HOG; see docs/engine.md)")
    dlib_cal.save(args.out_dir / calibration_filename("dlib-resnet-v1-flip"))
    print(json.dumps({"weight": weight, "model_id": model_id, "dev_pairs": len(dev),
                      "threshold_at_1e-4": cal.threshold_for(1e-4), "impostor_pairs": cal.impostor_pairs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
