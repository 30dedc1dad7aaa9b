"""One-to-one verification over every pair of images: ROC, DET, EER, TAR at fixed FAR.

All pairs of a labelled set (87 million impostor and about 240,000 genuine pairs for LFW)
are scored block by block and counted in exact histograms over the 1e-5 score grid, so
the rates below are exact counts, not samples. An image without a template scores
:data:`NO_SCORE` against everything: its genuine pairs are misses, its impostor pairs
never match. (With ``pairs`` the same metrics are computed over a pairs file instead.)

Convention: a comparison *matches* at threshold t when its score is >= t.
FAR(t) = impostor pairs >= t / impostor pairs; FRR(t) = genuine pairs < t / genuine pairs;
TAR = 1 - FRR. The threshold at a FAR f is the smallest grid threshold with FAR <= f.
"""

from __future__ import annotations

import numpy as np

from vigil.evaluation.bootstrap import smallest_supportable_rate
from vigil.evaluation.protocol import NO_SCORE, SCALE, EvalData, rate_key, sig, to_score
from vigil.progress import progress_bar

OFFSET = -NO_SCORE  # histogram index = score + OFFSET
BINS = SCALE + OFFSET + 1
FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
TOP_IMPOSTORS = 25


def all_pair_histograms(data: EvalData, *, block: int = 512, show_progress: bool = True,
                        top: int = 0) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, list]:
    """(genuine, impostor) int64 histograms over grid scores of every unordered image pair;
    with ``top`` > 0 also the ``top`` highest-scoring impostor pairs as (score, i, j)."""
    gen = np.zeros(BINS, dtype=np.int64)
    imp = np.zeros(BINS, dtype=np.int64)
    n = data.n
    all_idx = np.arange(n)
    best: list[tuple[int, int, int]] = []
    with progress_bar("Scoring all pairs", n, enabled=show_progress) as advance:
        for lo in range(0, n, block):
            rows = all_idx[lo:lo + block]
            cols = all_idx[lo:]
            s = data.scores(rows, cols)
            upper = cols[None, :] > rows[:, None]
            same = data.person[rows][:, None] == data.person[cols][None, :]
            gen += np.bincount(s[upper & same] + OFFSET, minlength=BINS)
            impostor = upper & ~same
            imp += np.bincount(s[impostor] + OFFSET, minlength=BINS)
            if top:
                flat = np.where(impostor, s, NO_SCORE).ravel()
                k = min(top, flat.size)
                cand = np.argpartition(flat, flat.size - k)[flat.size - k:]
                best.extend((int(flat[c]), int(rows[c // len(cols)]), int(cols[c % len(cols)])) for c in cand
                            if flat[c] > NO_SCORE)
                best = sorted(best, key=lambda x: (-x[0], x[1], x[2]))[:top]
            advance(len(rows))
    return (gen, imp, best) if top else (gen, imp)


def histogram_of(scores: np.ndarray) -> np.ndarray:
    return np.bincount(np.asarray(scores, dtype=np.int64) + OFFSET, minlength=BINS)


class Curves:
    """FAR/FRR at every grid threshold, from the two histograms."""

    def __init__(self, gen_hist: np.ndarray, imp_hist: np.ndarray):
        self.n_gen = int(gen_hist.sum())
        self.n_imp = int(imp_hist.sum())
        # share with score >= grid index i (index i = score + OFFSET)
        self.imp_at_or_above = np.cumsum(imp_hist[::-1])[::-1]
        self.gen_below = np.concatenate([[0], np.cumsum(gen_hist)[:-1]])

    def far(self, t: int) -> float:
        return float(self.imp_at_or_above[t + OFFSET] / max(self.n_imp, 1))

    def frr(self, t: int) -> float:
        return float(self.gen_below[t + OFFSET] / max(self.n_gen, 1))

    def threshold_at_far(self, far: float) -> int:
        """Smallest grid threshold with at most ``far`` of impostor pairs at or above it."""
        ok = self.imp_at_or_above <= far * self.n_imp
        if not ok.any():
            return SCALE
        return int(np.argmax(ok)) - OFFSET

    def eer(self) -> tuple[float, int]:
        far = self.imp_at_or_above / max(self.n_imp, 1)
        frr = self.gen_below / max(self.n_gen, 1)
        i = int(np.argmax(far <= frr))  # first threshold where the curves have crossed
        if i == 0:
            return float((far[0] + frr[0]) / 2), -OFFSET
        # linear between i-1 (far > frr) and i
        d0, d1 = far[i - 1] - frr[i - 1], far[i] - frr[i]
        w = d0 / (d0 - d1) if d0 != d1 else 0.5
        return float(far[i - 1] + w * (far[i] - far[i - 1])), i - OFFSET

    def roc(self, points: int = 60) -> dict:
        """TAR, FRR and threshold on a log-spaced FAR grid down to 1/n_imp (for plots)."""
        lowest = max(1.0 / max(self.n_imp, 1), 1e-9)
        fars = np.logspace(np.log10(lowest), 0, points)
        ths = [self.threshold_at_far(f) for f in fars]
        return {"far": [sig(self.far(t)) for t in ths], "frr": [sig(self.frr(t)) for t in ths],
                "threshold": [to_score(t) for t in ths]}


def summarise(curves: Curves, fars=FARS) -> dict:
    rate, eer_t = curves.eer()
    floor = smallest_supportable_rate(curves.n_imp)
    tar = {}
    for f in fars:
        t = curves.threshold_at_far(f)
        supported = floor is not None and f >= floor
        tar[rate_key(f)] = {"tar": sig(1 - curves.frr(t)) if supported else None,
                        "threshold": to_score(t) if supported else None,
                        "far_observed": sig(curves.far(t)), "supported": supported}
    return {"genuine_pairs": curves.n_gen, "impostor_pairs": curves.n_imp,
            "smallest_supportable_far": sig(floor) if floor else None,
            "eer": sig(rate), "eer_threshold": to_score(eer_t), "tar_at_far": tar, "roc": curves.roc()}


def evaluate_all_pairs(data: EvalData, *, show_progress: bool = True) -> tuple[dict, Curves]:
    gen, imp, best = all_pair_histograms(data, show_progress=show_progress, top=TOP_IMPOSTORS)
    curves = Curves(gen, imp)
    out = {"protocol": "every unordered pair of images: same person = genuine, different people = impostor",
           **summarise(curves)}
    # The far tail of the impostor scores is where label errors live (one person under two
    # names, the same photograph filed under two names, twins): listed so a reader can check.
    out["highest_impostor_pairs"] = [{"score": to_score(q), "a": data.names[i], "b": data.names[j]}
                                     for q, i, j in best]
    counts = np.bincount(data.person, minlength=len(data.people))
    pairs_per_person = counts * (counts - 1) // 2
    top = np.sort(pairs_per_person)[::-1]
    out["genuine_pairs_from_top_10_people"] = sig(top[:10].sum() / max(pairs_per_person.sum(), 1))
    return out, curves


def evaluate_pairs_file(data: EvalData, pairs, index: dict) -> tuple[dict, Curves]:
    """The same metrics over the pairs of a protocol file (e.g. LFW's pairs.txt)."""
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    s = np.einsum("ij,ij->i", data.vectors[ia], data.vectors[ib])
    q = np.where(data.found[ia] & data.found[ib], np.rint(s * SCALE), NO_SCORE).astype(np.int64)
    genuine = np.array([p.genuine for p in pairs])
    curves = Curves(histogram_of(q[genuine]), histogram_of(q[~genuine]))
    return {"protocol": "pairs file", **summarise(curves)}, curves
