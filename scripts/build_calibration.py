#!/usr/bin/env python
"""Build the shipped calibration table of a pack from every impostor pair of LFW-a.

    python scripts/build_calibration.py --data ../shared/data/lfw --pack sface

Writes ``src/vigil/engine/calibration/<model_id>.json``. The images are not committed;
the table (score thresholds for a grid of false match rates, with the FNMR on LFW's
genuine pairs at each) is. LFW-a is grayscale and pre-aligned: sites with colour cameras
should rebuild the table on their own labelled images with ``vigil calibrate --data DIR``.

``--cache FILE.npz`` keeps the extracted templates so a rerun (or the fusion-weight script)
need not extract them again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vigil.config import Settings
from vigil.engine.calibration import calibration_filename
from vigil.engine.face_engine import FaceEngine
from vigil.evaluation.calibrate import calibrate_templates, labelled_images
from vigil.evaluation.extract import extract

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LFW root (holding lfw/ and pairs.txt)")
    parser.add_argument("--pack", default="sface")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out-dir", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
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
