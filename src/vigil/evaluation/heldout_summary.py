"""Pooling the held-out protocol's two folds: each fold has its own calibrated threshold, so
the live-setting figures are computed per fold and summed (counts, not averaged rates)."""

from __future__ import annotations

import numpy as np

from vigil.evaluation.bootstrap import binomial_upper_bound
from vigil.evaluation.identification import LIVE_RATES, OpenSet, Searches, at_live_settings, summarise_size
from vigil.evaluation.protocol import rate_key, sig


def summarise_folds(size, splits, results, calibrations, names) -> dict:
    """Per fold the threshold differs, so at_live_settings are computed per fold and pooled."""
    folds = np.array([0] * ((len(splits) + 1) // 2) + [1] * (len(splits) // 2))
    fold_live = []
    for fold, cal in enumerate(calibrations):
        idx = np.nonzero(folds == fold)[0]
        pooled = OpenSet(Searches(*(np.concatenate([getattr(results[i], f) for i in idx])
                                    for f in ("mate_score", "mate_rank", "nonmated_top")),
                                  nonmated_image=np.concatenate([results[i].nonmated_image for i in idx])))
        fold_live.append(at_live_settings(pooled, size, cal, names=names))
    live = {}
    for rate in LIVE_RATES:
        key = rate_key(rate)
        parts = [f[key] for f in fold_live]
        fa = sum(p["false_alerts"] for p in parts)
        nm = sum(p["nonmated_searches"] for p in parts)
        ms = sum(p["mated_searches"] for p in parts)
        missed = sum(p["fnir"] * p["mated_searches"] for p in parts)
        live[key] = {
            "per_comparison_fmr": parts[0]["per_comparison_fmr"],
            "threshold_per_fold": [p["threshold"] for p in parts],
            "threshold_supported_per_fold": [c.supported(rate / size) for c in calibrations],
            "false_alerts": fa, "nonmated_searches": nm,
            "false_alerts_per_face": sig(fa / max(nm, 1)),
            "false_alerts_per_face_upper95": sig(binomial_upper_bound(fa, nm)),
            "false_alert_probe_images": sorted({n for p in parts for n in p.get("false_alert_probe_images", [])}),
            "fnir": sig(missed / max(ms, 1)), "mated_searches": ms,
        }
    whole = summarise_size(size, splits, results, fpirs=(0.01, 0.001), ranks=(1,))
    keep = ("watchlist_size", "splits", "probed_people", "enrolled_never_probed", "mated_searches_per_split",
            "nonmated_searches_per_split", "fnir_at_fpir", "rank1")
    return {**{k: whole[k] for k in keep}, "at_live_settings": live}


def live_by_sex(data, splits, results, calibrations, size, seed) -> dict:
    """Per sex at the 1-in-10,000 live setting (each fold's own threshold)."""
    from vigil.evaluation.heldout_groups import by_sex

    folds = [0] * ((len(splits) + 1) // 2) + [1] * (len(splits) // 2)
    mated, missed, alerts, nonmated = [], [], [], []
    for split, res, fold in zip(splits, results, folds):
        t = calibrations[fold].grid_threshold_for(1e-4 / size)
        mated.append(split.mated)
        missed.append(~((res.mate_rank == 1) & (res.mate_score >= t)))
        nonmated.append(split.nonmated)
        alerts.append(split.nonmated[res.nonmated_top >= t])
    return by_sex(data, np.concatenate(mated), np.concatenate(missed), np.concatenate(alerts),
                  np.concatenate(nonmated), seed=seed)
