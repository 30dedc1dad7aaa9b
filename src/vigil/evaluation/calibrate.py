"""Building a calibration table from a folder of labelled face images.

``DIR`` holds one folder per person (``DIR/<person>/*.jpg``, as LFW's ``lfw/`` does); every
pair of templates of different people is an impostor comparison (about 87 million for
LFW's 13,233 images), every pair of the same person a genuine one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.engine.calibration import (
    HIST_BINS, MAX_REFERENCES, Calibration, build_from_histograms, mean_template, score_histograms,
)
from vigil.engine.face_engine import FaceEngine
from vigil.errors import ModelError, VigilError
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


def mean_entries(identities: np.ndarray, references: int, seed: int = 0) -> np.ndarray:
    """(entries, references) template indices: every template of a person with at least
    ``references`` of them, as the first reference, with ``references - 1`` other templates of
    the same person drawn at random (seeded), as a watchlist entry enrolled from that many photos."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, references])))
    _, codes = np.unique(np.asarray(identities), return_inverse=True)
    rows = []
    for person in range(codes.max() + 1 if len(codes) else 0):
        mine = np.nonzero(codes == person)[0]
        if len(mine) < references:
            continue
        for first in mine:
            others = rng.permutation(mine[mine != first])[:references - 1]
            rows.append(np.concatenate([[first], others]))
    return np.array(rows, dtype=np.int64).reshape(-1, references)


def calibrate_mean_templates(model_id: str, vectors: np.ndarray, identities: list[str], references: int,
                             dataset: str, *, split: tuple[int, float] | None = None, seed: int = 0,
                             block: int = 512, show_progress: bool = True) -> Calibration:
    """The table for watchlist entries that are the mean template of ``references`` photos:
    every such entry (:func:`mean_entries`) against every template of another person is an
    impostor comparison, against its person's templates outside the entry a genuine one."""
    if not 2 <= references <= MAX_REFERENCES:
        raise VigilError(f"a mean-template table is for 2 to {MAX_REFERENCES} references")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _, codes = np.unique(np.asarray(identities), return_inverse=True)
    entries = mean_entries(codes, references, seed)
    if not len(entries):
        raise VigilError(f"no person has {references} images to build a table of {references}-photo entries")
    templates = np.stack([mean_template(vectors[e], split) for e in entries])
    imp, gen = np.zeros(HIST_BINS, np.int64), np.zeros(HIST_BINS, np.int64)
    total = total_sq = 0.0
    count = 0
    with progress_bar(f"Scoring {references}-photo entries", len(entries), enabled=show_progress) as advance:
        for lo in range(0, len(entries), block):
            sims = templates[lo:lo + block] @ vectors.T
            owner = codes[entries[lo:lo + block, 0]]
            same = owner[:, None] == codes[None, :]
            used = np.zeros_like(same)
            np.put_along_axis(used, entries[lo:lo + block], True, axis=1)
            bins = np.clip(((sims + 1.0) * (HIST_BINS / 2)).astype(np.int64), 0, HIST_BINS - 1)
            imp += np.bincount(bins[~same], minlength=HIST_BINS)
            gen += np.bincount(bins[same & ~used], minlength=HIST_BINS)
            vals = sims[~same].astype(np.float64)
            total, total_sq, count = total + vals.sum(), total_sq + (vals ** 2).sum(), count + vals.size
            advance(len(owner))
    mean = total / max(count, 1)
    return build_from_histograms(model_id, f"{dataset}; entries: mean templates of {references} photos "
                                 f"({len(entries)} entries)", imp, gen, mean,
                                 float(np.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))))


def calibrate_folder(engine: FaceEngine, folder: Path, dataset: str | None = None,
                     show_progress: bool = True) -> tuple[dict[int, Calibration], dict]:
    """Tables by reference count: 1 (single templates) always; 2 and 3 (mean templates) where
    the folder holds people with enough images (the live snapshot averages up to 3 photos)."""
    from vigil.engine.fusion import template_split

    paths, ids = labelled_images(folder)
    ext = extract(engine, paths, show_progress=show_progress, description="Calibration templates")
    keep = ext.found
    ids_kept = [i for i, k in zip(ids, keep) if k]
    description = dataset or f"{len(paths)} images of {len(set(ids))} people from {Path(folder).name}"
    tables = {1: calibrate_templates(engine.model_id, ext.vectors[keep], ids_kept, description, show_progress)}
    for k in range(2, MAX_REFERENCES + 1):
        try:
            tables[k] = calibrate_mean_templates(engine.model_id, ext.vectors[keep], ids_kept, k, description,
                                                 split=template_split(engine.pack.embedder),
                                                 show_progress=show_progress)
        except (VigilError, ModelError):  # too few people with k images: entries stay single-photo
            break
    stats = {"images": len(paths), "people": len(set(ids)), "failures_to_enrol": ext.failures_to_enrol,
             "images_per_second": ext.images_per_second, "reference_tables": sorted(tables)}
    return tables, stats
