"""Watchlist entries with several reference photos, and how such an entry scores a probe.

Rules (measured side by side in docs/evaluation.md):

* ``max``: the entry's score is the highest of its references' cosine scores. A probe only
  has to resemble one reference photo, so pose and lighting variety helps the mated probes;
  but every impostor also gets r chances, so the threshold must rise (the held-out
  calibration scores the calibration comparisons with the same rule, which accounts for it).
* ``mean``: the entry is one template, the normalised mean of its references' templates.
  Averaging cancels what is particular to each photo, and the impostor scores stay one
  chance per entry.
"""

from __future__ import annotations

import numpy as np

from vigil.engine.score_norm import CohortNormaliser, CohortStats
from vigil.evaluation.protocol import EvalData

RULES = ("max", "mean")


def pick_references(data: EvalData, images_of: list[np.ndarray], first: np.ndarray, references: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(len(first), references) image indices, -1 padded: each entry is its ``first`` image plus up
    to ``references - 1`` other gate-passing images of the same person, drawn at random."""
    refs = np.full((len(first), references), -1, dtype=np.int64)
    refs[:, 0] = first
    if references == 1:
        return refs
    for row, image in enumerate(first):
        same = images_of[data.person[image]]
        others = same[data.gate_passed[same] & (same != image)]
        extra = rng.permutation(others)[:references - 1]
        refs[row, 1:1 + len(extra)] = extra
    return refs


class EntryScorer:
    """Raw cosine scores of probe templates against entries given as reference image indices."""

    def __init__(self, data: EvalData, refs: np.ndarray, rule: str = "max"):
        if rule not in RULES:
            raise ValueError(f"reference rule must be one of {', '.join(RULES)}")
        refs = np.atleast_2d(refs)
        self.rule, self.refs = rule, refs
        self.person = data.person[refs[:, 0]]
        present = refs >= 0
        vectors = data.vectors[np.where(present, refs, 0)] * present[:, :, None]  # (E, r, d)
        if rule == "mean":
            mean = vectors.sum(axis=1)
            norms = np.linalg.norm(mean, axis=1, keepdims=True)
            self._templates = [mean / np.where(norms > 0, norms, 1.0)]
            self._present = [np.ones(len(refs), dtype=bool)]
        else:
            self._templates = [vectors[:, j] for j in range(refs.shape[1])]
            self._present = [present[:, j] for j in range(refs.shape[1])]
        self._stats: tuple[CohortNormaliser, CohortStats] | None = None

    def raw(self, probe_vectors: np.ndarray) -> np.ndarray:
        """(n_probes, n_entries) scores under the entry's rule."""
        best = None
        for templates, present in zip(self._templates, self._present):
            s = np.where(present[None, :], probe_vectors @ templates.T, -np.inf)
            best = s if best is None else np.maximum(best, s)
        return best

    def cached_stats(self, norm: CohortNormaliser) -> CohortStats:
        """The entries' cohort statistics, each entry scored against the cohort by its own rule."""
        if self._stats is None or self._stats[0] is not norm:
            self._stats = (norm, norm.stats_from_scores(self.raw(norm.cohort).T, labels=self.person))
        return self._stats[1]
