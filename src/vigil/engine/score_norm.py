"""Per-entry score normalisation against a cohort (adaptive S-norm, as in speaker verification).

Why: one global threshold treats every watchlist entry alike, but entries are not alike.
A "lamb" (a face that looks like many others: a common appearance, a relative of someone
else) draws most of the false matches, so the threshold has to rise for everybody to hold
the false-alert budget, and the distinctive entries pay for it in missed alerts. Cohort
normalisation measures each template's own impostor distribution, against a cohort of
templates of people known *not* to be the same person, and expresses a score in units of
that distribution:

    z_entry(s) = (s - mu_e) / sigma_e          (mu_e, sigma_e: top-k cohort scores of the entry)
    z_probe(s) = (s - mu_p) / sigma_p          (the same for the probe: a face that looks like
                                                everyone gets less credit too)
    S-norm(s)  = (z_entry + z_probe) / 2       (mode "symmetric"; mode "entry" uses z_entry only)

"Adaptive": only the ``top_k`` highest cohort scores enter the statistics, because the
far tail (the cohort members that look most alike) is what decides false alerts; the bulk
of the cohort is unrelated and says little about it.

The normalised score needs its own threshold (it is no longer a cosine): set it from
impostor comparisons normalised with the same cohort on calibration data disjoint from the
people it will be used on (see ``vigil.evaluation.heldout`` and docs/evaluation.md).

The cohort in production is templates of people who are not on the watchlist, from the
site's own data and the same camera conditions (a consented cohort, or a sample of a
gallery), plus optionally the watchlist's other entries: give each cohort template a label
(the subject id) and each entry its own label, and a template is never compared with its
own subject's cohort members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("symmetric", "entry")


@dataclass(frozen=True)
class CohortStats:
    """Mean and spread of the ``top_k`` highest cohort scores of some templates."""

    mean: np.ndarray  # (n,)
    std: np.ndarray  # (n,)


class CohortNormaliser:
    """Adaptive cohort normalisation of cosine scores.

    ``cohort``: (m, d) unit templates; ``cohort_labels``: optional (m,) subject labels, so
    that a template labelled with the same subject is left out of its own statistics.
    """

    def __init__(self, cohort: np.ndarray, *, top_k: int = 100, mode: str = "symmetric",
                 cohort_labels: np.ndarray | None = None, min_std: float = 1e-3):
        if mode not in MODES:
            raise ValueError(f"score normalisation mode must be one of {', '.join(MODES)}")
        cohort = np.atleast_2d(np.asarray(cohort, dtype=np.float64))
        if len(cohort) < 2:
            raise ValueError("a cohort needs at least two templates")
        self.cohort = cohort
        self.top_k = int(max(2, min(top_k, len(cohort))))
        self.mode = mode
        self.cohort_labels = None if cohort_labels is None else np.asarray(cohort_labels)
        self.min_std = float(min_std)

    def cohort_scores(self, templates: np.ndarray) -> np.ndarray:
        """Raw cosine scores (n, m) of unit templates against the cohort."""
        return np.atleast_2d(np.asarray(templates, dtype=np.float64)) @ self.cohort.T

    def stats_from_scores(self, scores: np.ndarray, labels: np.ndarray | None = None) -> CohortStats:
        """Statistics of rows of cohort scores (for templates already scored against the cohort,
        e.g. a multi-reference entry scored with its own rule). Same-label members are excluded."""
        scores = np.array(np.atleast_2d(scores), dtype=np.float64, copy=True)
        if labels is not None and self.cohort_labels is not None:
            scores[np.asarray(labels)[:, None] == self.cohort_labels[None, :]] = -np.inf
        k = self.top_k
        top = -np.partition(-scores, k - 1, axis=1)[:, :k]
        valid = np.isfinite(top)
        count = np.maximum(valid.sum(axis=1), 1)
        top = np.where(valid, top, 0.0)
        mean = top.sum(axis=1) / count
        var = np.where(valid, (top - mean[:, None]) ** 2, 0.0).sum(axis=1) / count
        return CohortStats(mean, np.maximum(np.sqrt(var), self.min_std))

    def stats(self, templates: np.ndarray, labels: np.ndarray | None = None, block: int = 4096) -> CohortStats:
        """Statistics of unit templates (scored against the cohort in blocks)."""
        templates = np.atleast_2d(templates)
        parts = [self.stats_from_scores(self.cohort_scores(templates[lo:lo + block]),
                                        None if labels is None else np.asarray(labels)[lo:lo + block])
                 for lo in range(0, len(templates), block)]
        if not parts:
            return CohortStats(np.zeros(0), np.zeros(0))
        return CohortStats(np.concatenate([p.mean for p in parts]), np.concatenate([p.std for p in parts]))

    def normalise(self, scores: np.ndarray, probe: CohortStats, entry: CohortStats) -> np.ndarray:
        """Normalised scores (n_probes, n_entries) from raw scores of the same shape."""
        scores = np.asarray(scores, dtype=np.float64)
        z_entry = (scores - entry.mean[None, :]) / entry.std[None, :]
        if self.mode == "entry":
            return z_entry
        z_probe = (scores - probe.mean[:, None]) / probe.std[:, None]
        return 0.5 * (z_entry + z_probe)
