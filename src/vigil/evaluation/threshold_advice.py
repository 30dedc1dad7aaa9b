"""Threshold advice: the lowest threshold that keeps expected false alerts under a budget.

A deployment that sees F faces against a watchlist of N people raises about
F x FPIR(t, N) false alerts. Each non-mated face is compared with N templates, so with
per-comparison false match rate FMR(t), FPIR(t, N) = 1 - (1 - FMR(t))^N ~= N x FMR(t)
(comparisons treated as independent; a look-alike watchlist makes it worse, which is
why the empirical open-set FPIR is shown beside the prediction). So:

1. target FPIR = max false alerts / faces per deployment;
2. per-comparison FMR = 1 - (1 - target FPIR)^(1/N);
3. threshold = the calibration table's score for that FMR, rounded *up* to the 1e-5 grid;
4. the cost: the share of watchlisted people walking past who would not raise an alert,
   FNIR(threshold) from the open-set evaluation with a watchlist of N (when data is given),
   and the calibration's per-comparison FNMR otherwise.

When the FMR needed is below what the calibration data can support (3 / impostor pairs),
the advice says so instead of extrapolating. Every answer also says how many calibration
impostor pairs lie above the threshold: a threshold set by a handful of pairs is only as
good as the labels of those pairs (on LFW the far tail is mostly label errors).
"""

from __future__ import annotations

import math

from vigil.evaluation.bootstrap import smallest_supportable_rate, zero_upper_bound
from vigil.evaluation.protocol import SCALE, sig, to_score


def fmr_for_fpir(fpir: float, watchlist_size: int) -> float:
    """Per-comparison FMR giving the open-set FPIR over ``watchlist_size`` comparisons."""
    return -math.expm1(math.log1p(-fpir) / watchlist_size)


def fpir_for_fmr(fmr: float, watchlist_size: int) -> float:
    return -math.expm1(watchlist_size * math.log1p(-fmr))


def advise(calibration, watchlist_size: int, faces_per_deployment: float, max_false_alerts: float, *,
           openset=None, budget_factors=(10.0, 1.0, 0.1)) -> dict:
    """Advice for one deployment; ``openset`` is a :class:`~vigil.evaluation.identification.OpenSet`
    measured with the same watchlist size (optional)."""
    if watchlist_size < 1 or faces_per_deployment <= 0 or max_false_alerts <= 0:
        raise ValueError("watchlist size, faces per deployment and false alerts must be positive")
    target_fpir = min(max_false_alerts / faces_per_deployment, 0.999999)
    main = _at_budget(calibration, watchlist_size, faces_per_deployment, target_fpir, openset)
    out = {
        "watchlist_size": watchlist_size,
        "faces_per_deployment": faces_per_deployment,
        "max_false_alerts": max_false_alerts,
        "target_fpir": sig(target_fpir),
        "calibration": {"model_id": calibration.model_id, "dataset": calibration.dataset,
                        "impostor_pairs": calibration.impostor_pairs, "source": calibration.source,
                        "smallest_fmr": sig(calibration.min_fmr)},
        **main,
        "alternatives": [{"max_false_alerts": sig(max_false_alerts * k),
                          **_at_budget(calibration, watchlist_size, faces_per_deployment,
                                       min(target_fpir * k, 0.999999), openset)} for k in budget_factors if k != 1.0],
    }
    return out


def _at_budget(cal, n: int, faces: float, target_fpir: float, openset) -> dict:
    fmr = fmr_for_fpir(target_fpir, n)
    # rule of three: below 3 / impostor pairs the table rests on fewer than 3 pairs
    bounded = fmr < max(cal.min_fmr, smallest_supportable_rate(cal.impostor_pairs) or 1.0)
    raw = cal.threshold_for(fmr)
    t = math.ceil(raw * SCALE - 1e-6)  # round up: never looser than the table says
    fmr_t, at_floor = cal.fmr_at(t / SCALE)
    predicted_fpir = fpir_for_fmr(fmr_t, n)
    out = {
        "threshold": to_score(t),
        "per_comparison_fmr": sig(fmr),
        "supported_by_calibration": not bounded,
        "predicted_fpir": sig(predicted_fpir),
        "expected_false_alerts": sig(faces * predicted_fpir),
        "calibration_fnmr": sig(cal.fnmr_at(t / SCALE)),
        # how much evidence the threshold stands on: calibration impostor pairs at or above it
        "calibration_impostor_pairs_above": int(round(fmr_t * cal.impostor_pairs)),
    }
    if bounded:
        floor = 3.0 / cal.impostor_pairs
        out["warning"] = (f"a per-comparison FMR of {fmr:.3g} is below the smallest the calibration data can "
                          f"support ({floor:.3g} = 3 / {cal.impostor_pairs:,} impostor pairs): the threshold rests "
                          "on fewer than 3 impostor pairs and the false-alert rate it gives is unknown")
    if openset is not None:
        fp = openset.false_positives(t)
        # pooled splits reuse the same images, so what can be measured is set by one split's searches
        per_split = getattr(openset, "n_per_split", openset.n_nonmated)
        floor = smallest_supportable_rate(per_split)
        out["measured"] = {
            "fnir": sig(openset.fnir(t)),
            "fpir": sig(openset.fpir(t)),
            "false_positives": fp,
            "nonmated_searches": openset.n_nonmated,
            "nonmated_searches_per_split": per_split,
            "fpir_upper95": sig(zero_upper_bound(per_split)) if fp == 0 else None,
            "target_fpir_measurable": bool(floor is not None and target_fpir >= floor),
        }
        if floor is not None and target_fpir >= floor:
            te = openset.threshold_at_fpir(target_fpir)
            out["measured"]["data_threshold_at_target"] = to_score(te)
            out["measured"]["fnir_at_data_threshold"] = sig(openset.fnir(te))
        out["missed_matches_per_100_watchlisted_passers"] = sig(100 * openset.fnir(t), 3)
    return out
