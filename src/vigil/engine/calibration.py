"""Per-model calibration: the score that gives a target false match rate, and back.

A table lists, for a log-spaced grid of false match rates (FMR per comparison), the score
threshold at which that share of impostor comparisons on the calibration set scores at or
above it. Shipped tables are built by ``scripts/build_calibration.py`` from every impostor
pair of LFW-a (about 87 million); a site rebuilds its own with ``vigil calibrate --data DIR``
(written under ``$VIGIL_HOME/calibration`` and preferred over the shipped one).

Below the smallest FMR the data supports (about 1 / number of impostor pairs) the table
says so instead of extrapolating: :meth:`Calibration.fmr_at` returns that floor with
``bounded=True``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from vigil.errors import ModelError

HIST_BINS = 40_000  # score resolution 5e-5 over [-1, 1]


@dataclass
class Calibration:
    model_id: str
    dataset: str
    impostor_pairs: int
    genuine_pairs: int
    fmr: list[float]
    threshold: list[float]
    fnmr: list[float] = field(default_factory=list)
    impostor_mean: float = 0.0
    impostor_std: float = 0.0
    created: str = ""
    source: str = "shipped"

    @property
    def min_fmr(self) -> float:
        return min(self.fmr)

    def threshold_for(self, fmr: float) -> float:
        """Score threshold for a target FMR per comparison (clamped to what the data supports)."""
        if not (0 < fmr < 1):
            raise ValueError("false match rate must be between 0 and 1")
        lf = np.log10(np.asarray(self.fmr))
        target = math.log10(max(fmr, self.min_fmr))
        order = np.argsort(lf)
        return float(np.interp(target, lf[order], np.asarray(self.threshold)[order]))

    def fmr_at(self, score: float) -> tuple[float, bool]:
        """(FMR per comparison at this score, bounded) where bounded means 'at most this'."""
        th = np.asarray(self.threshold)
        lf = np.log10(np.asarray(self.fmr))
        order = np.argsort(th)
        if score >= th[order][-1]:
            return float(self.min_fmr), True
        if score <= th[order][0]:
            return float(10 ** lf[order][0]), False
        return float(10 ** np.interp(score, th[order], lf[order])), False

    def fnmr_at(self, score: float) -> float | None:
        if not self.fnmr:
            return None
        th = np.asarray(self.threshold)
        order = np.argsort(th)
        return float(np.interp(score, th[order], np.asarray(self.fnmr)[order]))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "source"}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_json(self))

    @classmethod
    def from_dict(cls, data: dict, source: str = "shipped") -> "Calibration":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "source"}
        return cls(**fields, source=source)


MAX_REFERENCES = 3  # reference photos averaged into one watchlist entry at most


def calibration_filename(model_id: str, references: int = 1) -> str:
    """``<model>.json`` for single templates; ``<model>.mean<k>.json`` for the table of entries
    that are the mean template of k reference photos (their impostor scores differ)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in model_id)
    return f"{safe}.json" if references == 1 else f"{safe}.mean{references}.json"


def calibration_in_effect(model_id: str, site_dir: Path | None = None, explicit: Path | None = None,
                          references: int = 1):
    """(file, source) of the table a model's thresholds come from, or (None, None): the
    configured file, else the site's, else the shipped one. A table for mean templates of
    ``references`` photos is only taken from beside the single-template table in effect, so
    that every threshold of a deployment comes from the same calibration data."""
    name = calibration_filename(model_id)
    candidates = []
    if explicit:
        candidates.append((Path(explicit), "configured"))
    if site_dir:
        candidates.append((site_dir / name, "site"))
    candidates.append((resources.files("vigil.engine") / "calibration" / name, "shipped"))
    for path, source in candidates:
        if path.is_file():
            if references == 1:
                return path, source
            beside = path.parent / calibration_filename(model_id, references)
            return (beside, source) if beside.is_file() else (None, None)
    return None, None


def supported_references(model_id: str, site_dir: Path | None = None, explicit: Path | None = None,
                         limit: int = MAX_REFERENCES) -> int:
    """The most reference photos per entry (up to ``limit``) whose mean-template table sits
    beside the model's table in effect: every count from 2 up to it must have its table."""
    k = 1
    while k < min(limit, MAX_REFERENCES) and calibration_in_effect(model_id, site_dir, explicit, k + 1)[0]:
        k += 1
    return k


def entry_threshold(tables: dict, references: int, fmr: float) -> float:
    """The threshold of an entry averaging ``references`` photos at a per-comparison FMR: its
    own table's, floored at the single-photo table's. At the live setting (FMR 1e-7) a table's
    threshold rests on its ten or so highest impostor comparisons; the single-photo table
    draws them from every person of the calibration data, a k-photo table only from the few
    with k photos or more, so its far tail misses look-alikes (twins with one or two photos)
    and can fall below what single photos need (docs/evaluation.md)."""
    fmr = min(0.5, fmr)
    single = tables[1].threshold_for(fmr)
    return single if references == 1 else max(single, tables[references].threshold_for(fmr))


def mean_template(vectors: np.ndarray, split: tuple[int, float] | None = None) -> np.ndarray:
    """One watchlist entry from several reference templates (unit rows): their normalised
    mean. A fused template (``split`` = (first model's dimension, weight)) is averaged model by
    model, so each part stays a unit vector scaled by its weight, as the live cascade needs."""
    vectors = np.atleast_2d(np.asarray(vectors, np.float64))

    def unit(v):
        n = np.linalg.norm(v)
        return v / n if n > 0 else v

    if split is None:
        return unit(vectors.sum(axis=0)).astype(np.float32)
    first_dim, w = split
    a = unit((vectors[:, :first_dim] / math.sqrt(w)).sum(axis=0)) * math.sqrt(w)
    b = unit((vectors[:, first_dim:] / math.sqrt(1.0 - w)).sum(axis=0)) * math.sqrt(1.0 - w)
    return np.concatenate([a, b]).astype(np.float32)


def to_json(cal: Calibration) -> str:
    return json.dumps(cal.to_dict(), indent=1) + "\n"


def load_calibration(model_id: str, site_dir: Path | None = None, explicit: Path | None = None,
                     references: int = 1) -> Calibration:
    path, source = calibration_in_effect(model_id, site_dir, explicit, references)
    if path is not None:
        try:
            return Calibration.from_dict(json.loads(path.read_text()), source=source)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a damaged file: say which, never a traceback
            raise ModelError(f"the calibration table {path} cannot be read ({exc.__class__.__name__}): rebuild it "
                             "with 'vigil calibrate --model PACK --data DIR'") from None
    what = "" if references == 1 else f" of mean templates of {references} references"
    raise ModelError(
        f"no calibration table{what} for model {model_id!r}: run 'vigil calibrate --model PACK --data DIR' on "
        "labelled images"
    )


def build_from_histograms(model_id: str, dataset: str, impostor_hist: np.ndarray, genuine_hist: np.ndarray,
                          impostor_mean: float, impostor_std: float) -> Calibration:
    """Build a table from score histograms over [-1, 1] with HIST_BINS bins."""
    n_imp = int(impostor_hist.sum())
    n_gen = int(genuine_hist.sum())
    if n_imp < 100:
        raise ModelError(f"calibration needs at least 100 impostor comparisons, got {n_imp}")
    edges = np.linspace(-1.0, 1.0, HIST_BINS + 1)
    # share of impostors scoring >= edge[i]
    tail = np.concatenate([np.cumsum(impostor_hist[::-1])[::-1], [0]]) / n_imp
    gen_below = np.concatenate([[0], np.cumsum(genuine_hist)]) / max(n_gen, 1)
    floor = 1.0 / n_imp
    fmrs = [f for f in np.logspace(-1, -9, 81) if f >= floor * 0.999]
    if fmrs[-1] > floor * 1.001:
        fmrs.append(floor)
    thresholds, fnmrs = [], []
    for f in fmrs:
        # first edge where the tail share drops to <= f
        idx = int(np.argmax(tail <= f + 1e-15))
        thresholds.append(float(edges[idx]))
        fnmrs.append(float(gen_below[idx]))
    return Calibration(
        model_id=model_id, dataset=dataset, impostor_pairs=n_imp, genuine_pairs=n_gen,
        fmr=[float(f) for f in fmrs], threshold=thresholds, fnmr=fnmrs,
        impostor_mean=float(impostor_mean), impostor_std=float(impostor_std),
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
    )


def score_histograms(vectors: np.ndarray, identities: np.ndarray, block: int = 2048,
                     progress=None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Histograms of all impostor and genuine cosine scores among ``vectors`` (unit rows)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(identities)
    _, codes = np.unique(ids, return_inverse=True)
    n = len(vectors)
    imp_hist = np.zeros(HIST_BINS, dtype=np.int64)
    gen_hist = np.zeros(HIST_BINS, dtype=np.int64)
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = vectors[start:stop] @ vectors[start:].T  # upper triangle incl. this block
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(start, n)[None, :]
        upper = cols > rows
        same = codes[start:stop, None] == codes[None, start:]
        bins = np.clip(((sims + 1.0) * (HIST_BINS / 2)).astype(np.int64), 0, HIST_BINS - 1)
        imp_mask = upper & ~same
        gen_mask = upper & same
        imp_hist += np.bincount(bins[imp_mask], minlength=HIST_BINS)
        gen_hist += np.bincount(bins[gen_mask], minlength=HIST_BINS)
        vals = sims[imp_mask].astype(np.float64)
        total += vals.sum()
        total_sq += (vals ** 2).sum()
        count += vals.size
        if progress:
            progress(stop - start)
    mean = total / max(count, 1)
    std = math.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))
    return imp_hist, gen_hist, mean, std


def site_calibration_dir(home: Path) -> Path:
    return home / "calibration"


__all__ = ["Calibration", "load_calibration", "mean_template", "entry_threshold", "supported_references",
           "build_from_histograms", "score_histograms", "UTC"]
