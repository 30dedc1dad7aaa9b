"""Confidence intervals and tests that respect who is in the data.

Comparisons are not independent: one person contributes many images and every image
takes part in many pairs, so a binomial interval over pairs would be far too narrow.
We resample *identities* with replacement (a cluster bootstrap): replicate b gives
identity u the weight ``W[b, u]`` (how often it was drawn) and every statistic is
recomputed from weighted per-identity counts.

* :func:`identity_weights` draws the weights (multinomial, from a seeded generator).
* :func:`ratio_replicates` recomputes a rate sum(w*x)/sum(w*y) for per-identity
  numerators x and denominators y (FNMR, failure to enrol, gate rejections).
* :func:`pair_rate_replicates` does the same for rates over pairs of *different*
  identities (FMR), where a pair's weight is the product of its two identities' weights.
* :func:`percentile_ci` is the plain percentile interval.
* :func:`log_ratio_test` compares two groups: the bootstrap interval of log(rate_a/rate_b)
  at a Bonferroni-corrected level; the difference is called significant when that
  interval excludes 0.
* :func:`zero_upper_bound` is the exact one-sided 95% upper bound when nothing was
  observed in n trials, 1 - 0.05**(1/n), about 3/n ("rule of three");
  :func:`binomial_upper_bound` the same (Clopper-Pearson) for k events.
"""

from __future__ import annotations

import math

import numpy as np


def zero_upper_bound(n: int, confidence: float = 0.95) -> float | None:
    """Largest rate still consistent (at ``confidence``) with 0 events in n independent trials."""
    if n <= 0:
        return None
    return float(1.0 - (1.0 - confidence) ** (1.0 / n))


def binomial_upper_bound(k: int, n: int, confidence: float = 0.95) -> float | None:
    """Exact (Clopper-Pearson) one-sided upper bound of a rate with k events in n trials:
    the p at which seeing k or fewer events has probability 1 - confidence."""
    if n <= 0:
        return None
    if k >= n:
        return 1.0

    i = np.arange(k + 1, dtype=np.float64)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in range(k + 1)])

    def cdf(p: float) -> float:  # P(X <= k) for X ~ Binomial(n, p), summed in log space
        if p <= 0.0:
            return 1.0
        logs = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
        top = float(logs.max())
        return math.exp(top) * float(np.exp(logs - top).sum())

    lo, hi = k / n, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if cdf(mid) > 1.0 - confidence:
            lo = mid
        else:
            hi = mid
    return hi


def smallest_supportable_rate(n: int) -> float | None:
    """The rule of three: below 3/n a clean result cannot distinguish the rate from 3/n."""
    return 3.0 / n if n > 0 else None


def identity_weights(rng: np.random.Generator, units: int, replicates: int) -> np.ndarray:
    """(replicates, units) int32 draw counts; each row sums to ``units``."""
    if units == 0:
        return np.zeros((replicates, 0), dtype=np.int32)
    return rng.multinomial(units, np.full(units, 1.0 / units), size=replicates).astype(np.int32)


def ratio_replicates(weights: np.ndarray, numer: np.ndarray, denom: np.ndarray) -> np.ndarray:
    """sum(w*numer)/sum(w*denom) per replicate. ``numer`` is (units,) or (units, T);
    the result is (B,) or (B, T), NaN where a replicate has a zero denominator."""
    w = weights.astype(np.float64)
    top = w @ np.asarray(numer, dtype=np.float64)
    bottom = w @ np.asarray(denom, dtype=np.float64)
    if top.ndim == 2:
        bottom = bottom[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)


def pair_rate_replicates(weights: np.ndarray, unit_a: np.ndarray, unit_b: np.ndarray, pair_bin: np.ndarray,
                         bins: int, unit_sizes: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Bootstrap rates over pairs of images of different identities.

    Each listed pair (an impostor pair scoring at or above the lowest threshold of
    interest) joins identities ``unit_a``/``unit_b`` and falls in ``pair_bin`` (0..bins-1:
    the number of thresholds it reaches, minus one). The rate at threshold j is the weighted
    count of pairs reaching it over the weighted number of all cross-identity pairs,
    ((sum w n)^2 - sum w^2 n^2) / 2 with n the identity's image count.
    Returns (B, bins): column j is the rate at threshold j.
    """
    B = len(weights)
    n = np.asarray(unit_sizes, dtype=np.float64)
    w = weights.astype(np.float64)
    denom = ((w @ n) ** 2 - (w ** 2) @ (n ** 2)) / 2.0
    out = np.zeros((B, bins), dtype=np.float64)
    if len(unit_a):
        order = np.argsort(pair_bin, kind="stable")
        a, b, pb = unit_a[order], unit_b[order], pair_bin[order]
        bounds = np.searchsorted(pb, np.arange(bins + 1))
        for lo in range(0, B, chunk):
            wc = weights[lo:lo + chunk]
            contrib = wc[:, a].astype(np.int64) * wc[:, b]  # (chunk, P)
            per_bin = np.stack([contrib[:, bounds[k]:bounds[k + 1]].sum(axis=1) for k in range(bins)], axis=1)
            # a pair in bin k reaches thresholds 0..k: cumulative sum from the top bin down
            out[lo:lo + chunk] = np.cumsum(per_bin[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom[:, None] > 0, out / np.where(denom > 0, denom, 1)[:, None], np.nan)


def percentile_ci(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval, ignoring NaN replicates; infinities are kept (no interpolation)."""
    alpha = (1.0 - level) / 2.0
    s = np.asarray(samples, dtype=np.float64)
    lo = np.nanquantile(s, alpha, axis=axis, method="inverted_cdf")
    hi = np.nanquantile(s, 1.0 - alpha, axis=axis, method="inverted_cdf")
    return lo, hi


def log_ratio_test(reps_a: np.ndarray, reps_b: np.ndarray, comparisons: int = 1,
                   level: float = 0.95) -> dict:
    """Is rate_a different from rate_b? Bootstrap interval of log(a/b) at level
    1 - (1-level)/comparisons (Bonferroni); significant when it excludes 0.

    Replicates where both rates are 0 carry no information and are dropped; a zero on one
    side gives an infinite log ratio, which the percentile method keeps as such.
    """
    a = np.asarray(reps_a, dtype=np.float64)
    b = np.asarray(reps_b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b) | ((a == 0) & (b == 0)))
    if keep.sum() < 0.9 * len(a) or keep.sum() < 20:
        return {"testable": False, "significant": False, "ci_level": None, "ratio_ci": None}
    with np.errstate(divide="ignore"):
        lr = np.log(a[keep]) - np.log(b[keep])
    adj = 1.0 - (1.0 - level) / max(comparisons, 1)
    lo, hi = percentile_ci(lr, adj)
    lo, hi = float(lo), float(hi)
    return {"testable": True, "significant": bool(lo > 0 or hi < 0), "ci_level": round(adj, 6),
            "ratio_ci": [_exp(lo), _exp(hi)]}


def _exp(x: float) -> float | None:
    if math.isinf(x):
        return None if x > 0 else 0.0
    return float(math.exp(x))
