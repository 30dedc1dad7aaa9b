"""Building a calibration table from a folder of labelled face images.

``DIR`` holds one folder per person (``DIR/<person>/*.jpg``, as LFW's ``lfw/`` does); every
pair of templates of different people is an impostor comparison (about 87 million for
LFW's 13,233 images), every pair of the same person a genuine one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.engine.calibration import Calibration, build_from_histograms, score_histograms
from vigil.engine.face_engine import FaceEngine
from vigil.errors import VigilError
from vigil.evaluation.extract import extract
from vigil.progress import progress_bar


def labelled_images(folder: Path) -> tuple[list[Path], list[str]]:
    """(paths, person of each). An LFW root gets its reviewed label errors corrected."""
    folder = Path(folder)
    if (folder / "lfw").is_dir() and (folder / "pairs.txt").is_file():  # an LFW root
        from vigil.evaluation.lfw_data import LFW

        paths, ids = [], []
        for person, files in LFW(folder).identities().items():
            paths.extend(files)
            ids.extend([person] * len(files))
        return paths, ids
    paths, ids = [], []
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(person.iterdir()):
            if f.suffix.lower() in exts:
                paths.append(f)
                ids.append(person.name)
    if len({*ids}) < 2:
        raise VigilError(f"{folder}: calibration needs images of at least two people, one folder per person")
    return paths, ids


def calibrate_templates(model_id: str, vectors: np.ndarray, identities: list[str], dataset: str,
                        show_progress: bool = True) -> Calibration:
    with progress_bar("Scoring all pairs", len(vectors), enabled=show_progress) as advance:
        imp, gen, mean, std = score_histograms(vectors, np.asarray(identities), progress=advance)
    return build_from_histograms(model_id, dataset, imp, gen, mean, std)


def calibrate_folder(engine: FaceEngine, folder: Path, dataset: str | None = None,
                     show_progress: bool = True) -> tuple[Calibration, dict]:
    paths, ids = labelled_images(folder)
    ext = extract(engine, paths, show_progress=show_progress, description="Calibration templates")
    keep = ext.found
    ids_kept = [i for i, k in zip(ids, keep) if k]
    description = dataset or f"{len(paths)} images of {len(set(ids))} people from {Path(folder).name}"
    cal = calibrate_templates(engine.model_id, ext.vectors[keep], ids_kept, description, show_progress)
    stats = {"images": len(paths), "people": len(set(ids)), "failures_to_enrol": ext.failures_to_enrol,
             "images_per_second": ext.images_per_second}
    return cal, stats
