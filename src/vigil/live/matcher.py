"""Matching track templates against a deployment's frozen watchlist snapshot(s).

Thresholds come from the accepted false alert rate per face seen: with N watchlist entries
each face is compared N times, so the per-comparison false match rate is rate / N, turned
into a score through the model's calibration table. A bigger watchlist therefore gets a
stricter threshold automatically. Categories may carry their own rate (e.g. missing
people searched with a looser one than wanted offenders).

A fused watchlist (the fusion pack) can be matched as a cascade: :meth:`best_fused` scores
the first model's part against every entry and asks for the second model's template only
if some entry could still reach its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.engine.calibration import entry_threshold


# A runner-up scoring within this much of its own threshold nearly alerted too: a look-alike
# (a relative, a twin) the operator is warned about before adjudicating.
LOOKALIKE_MARGIN = 0.05


@dataclass
class WatchlistEntry:
    subject_id: str
    name: str
    category: str
    watchlist_id: int
    image_blob_id: str | None
    references: int = 1  # photos averaged into the entry's template: picks its calibration table


class WatchlistMatcher:
    def __init__(self, entries: list[WatchlistEntry], vectors: np.ndarray, calibration, *,
                 false_alert_rate: float, category_rates: dict[str, float] | None = None,
                 split: tuple[int, float] | None = None, calibration_for=None):
        if len(entries) != len(vectors):
            raise ValueError("entries and vectors differ in length")
        self.entries = entries
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        self.size = len(entries)
        self.calibration = calibration
        self.false_alert_rate = false_alert_rate
        self.category_rates = dict(category_rates or {})
        n = max(self.size, 1)
        self.default_threshold = calibration.threshold_for(min(0.5, false_alert_rate / n))
        self.category_thresholds = {c: calibration.threshold_for(min(0.5, r / n)) for c, r in self.category_rates.items()}
        # an entry averaging k photos takes its threshold from the table of k-photo entries
        # (``calibration_for(k)``), never below the single-photo one (see entry_threshold)
        counts = sorted({e.references for e in entries} - {1})
        if counts and calibration_for is None:
            raise ValueError("entries averaging several references need their calibration tables")
        tables = {1: calibration, **{k: calibration_for(k) for k in counts}}
        self.reference_thresholds = {k: entry_threshold(tables, k, false_alert_rate / n) for k in tables}

        def threshold(e: WatchlistEntry) -> float:
            return entry_threshold(tables, e.references, self.category_rates.get(e.category, false_alert_rate) / n)

        self.entry_thresholds = np.array([threshold(e) for e in entries], np.float32)
        self.weight = None
        if split is not None:  # a fused watchlist: keep each model's part for the cascade
            from vigil.engine.fusion import split as split_parts

            first_dim, self.weight = split
            if self.size:
                if self.vectors.shape[1] <= first_dim:
                    raise ValueError("fused vectors are shorter than their first part")
                self.first_part, self.second_part = split_parts(self.vectors, first_dim, self.weight)

    def thresholds(self) -> dict:
        """The thresholds in force, with the share of genuine comparisons the calibration data
        puts below the default one (``expected_fnmr``: what a stricter threshold costs; the
        authorising officer sees it in the deployment record)."""
        fnmr = getattr(self.calibration, "fnmr_at", lambda _s: None)(self.default_threshold)
        return {"default": self.default_threshold, "per_comparison_fmr": self.false_alert_rate / max(self.size, 1),
                "expected_fnmr": None if fnmr is None else round(fnmr, 4),
                **({"by_references": {str(k): round(t, 5) for k, t in sorted(self.reference_thresholds.items())}}
                   if len(self.reference_thresholds) > 1 else {}),
                **{f"category:{c}": t for c, t in self.category_thresholds.items()}}

    def best(self, vector: np.ndarray) -> tuple[int, float, float]:
        """(entry index, score, that entry's threshold) of the highest margin over threshold."""
        if self.size == 0:
            return -1, -1.0, 1.0
        scores = self.vectors @ np.asarray(vector, np.float32)
        margin = scores - self.entry_thresholds
        i = int(np.argmax(margin))
        return i, float(scores[i]), float(self.entry_thresholds[i])

    def best_fused(self, first: np.ndarray, second) -> tuple[int, float, float] | None:
        """Like :meth:`best` for a fused watchlist, from the first model's probe template and a
        callable giving the second's. ``second`` is called only when, with a perfect second
        score (1.0), some entry would reach its threshold; otherwise the score returned is
        that upper bound, which is below the entry's threshold. The result is what
        :meth:`best` gives on the fused template whenever an entry passes. None when
        ``second`` returns None (its answer is not there yet)."""
        if self.weight is None:
            raise ValueError("best_fused needs a matcher built with split=")
        if self.size == 0:
            return -1, -1.0, 1.0
        w = self.weight
        partial = w * (self.first_part @ np.asarray(first, np.float32))
        reach = partial + (1.0 - w) - self.entry_thresholds
        if float(reach.max()) < 0.0:
            i = int(np.argmax(reach))
            return i, float(partial[i] + (1.0 - w)), float(self.entry_thresholds[i])
        vector = second()
        if vector is None:
            return None
        scores = partial + (1.0 - w) * (self.second_part @ np.asarray(vector, np.float32))
        i = int(np.argmax(scores - self.entry_thresholds))
        return i, float(scores[i]), float(self.entry_thresholds[i])

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.vectors @ np.asarray(vector, np.float32)

    def runner_up(self, vector: np.ndarray, best_index: int) -> tuple[int, float, float] | None:
        """The closest entry of another subject than ``best_index``'s: (index, score, its
        threshold), or None when the watchlist holds no one else. The operator sees it beside
        the alert; a close one is a look-alike warning (:data:`LOOKALIKE_MARGIN`)."""
        if self.size < 2 or best_index < 0:
            return None
        scores = self.scores(vector)
        best_subject = self.entries[best_index].subject_id
        others = [i for i, e in enumerate(self.entries) if e.subject_id != best_subject]
        if not others:
            return None
        i = max(others, key=lambda k: float(scores[k]))
        return i, float(scores[i]), float(self.entry_thresholds[i])
