"""Missed alerts per sex at the live setting of the held-out protocol, with 95% intervals from
a bootstrap over identities (the people probed are resampled, as in ``fairness.py``).

Why here and not only in ``vigil eval fairness``: several reference photos and score
normalisation change how a *watchlist entry* scores, which a study of single image pairs
cannot show. The false alerts are counted per sex of the non-mated face as well; at 1 in
10,000 they are too few to compare groups, and the output says so instead of a ratio.
"""

from __future__ import annotations

import numpy as np

from vigil.evaluation.bootstrap import identity_weights
from vigil.evaluation.protocol import EvalData, rng_for, sig

GROUPS = ("female", "male")
MIN_ERRORS_TO_COMPARE = 10


def _interval(values: np.ndarray) -> list | None:
    v = values[np.isfinite(values)]
    return [sig(np.percentile(v, 2.5)), sig(np.percentile(v, 97.5))] if len(v) else None


def by_sex(data: EvalData, mated_images: np.ndarray, missed: np.ndarray, alert_images: np.ndarray,
           nonmated_images: np.ndarray, *, seed: int = 0, replicates: int = 1000) -> dict:
    """FNIR per sex (mated searches of that sex's probes) with identity-bootstrap CIs, the
    female/male FNIR ratio with its CI, and false alerts per sex of the non-mated face."""
    people = data.person[mated_images]
    units, unit_of = np.unique(people, return_inverse=True)
    w = identity_weights(rng_for(seed, "heldout-groups"), len(units), replicates)
    out, reps = {}, {}
    for g in GROUPS:
        mine = data.sex[mated_images] == g
        n_u = np.bincount(unit_of[mine], minlength=len(units)).astype(float)
        e_u = np.bincount(unit_of[mine], weights=missed[mine].astype(float), minlength=len(units))
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[g] = (w @ e_u) / (w @ n_u)
        nm = data.sex[nonmated_images] == g
        out[g] = {"mated_searches": int(mine.sum()), "people": int((n_u > 0).sum()),
                  "fnir": sig(e_u.sum() / max(n_u.sum(), 1)), "fnir_ci95": _interval(reps[g]),
                  "nonmated_searches": int(nm.sum()),
                  "false_alerts": int((data.sex[alert_images] == g).sum())}
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = reps["female"] / reps["male"]
    point = out["female"]["fnir"] / out["male"]["fnir"] if out["male"]["fnir"] else None
    ci = _interval(ratio)
    alerts = [out[g]["false_alerts"] for g in GROUPS]
    return {"groups": out,
            "fnir_ratio_female_to_male": {"value": sig(point), "ci95": ci,
                                          "significant": bool(ci and (ci[0] > 1 or ci[1] < 1))},
            "false_alert_ratio": ("too few false alerts to compare groups "
                                  f"({alerts[0]} female, {alerts[1]} male; at least {MIN_ERRORS_TO_COMPARE} "
                                  "in each needed)") if min(alerts) < MIN_ERRORS_TO_COMPARE else None}
