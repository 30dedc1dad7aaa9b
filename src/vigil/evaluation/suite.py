"""Running the evaluations the way ``vigil eval`` does: one place that picks the
thresholds, the calibration and the defaults, so the CLI commands and the HTML report
always agree.

The operating threshold for the demographic study is the calibration table's threshold
at FMR 1e-4 per comparison (what ``verify`` uses by default); the study also sweeps a grid
of calibration thresholds from FMR 1e-2 down to 1e-6. If the model has no calibration
table at all, one is built from this data's own impostor pairs and the result says so.
"""

from __future__ import annotations

import numpy as np

from vigil.errors import ModelError
from vigil.evaluation.identification import SIZES, OpenSet, candidates, evaluate_identification, strip_private
from vigil.evaluation.protocol import EvalData, rate_key

FMR_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)
OPERATING_FMR = 1e-4


def calibration_for(engine, data: EvalData, *, show_progress: bool = True):
    """The pack's calibration table, or one built from ``data`` when none exists."""
    try:
        return engine.pack.calibration
    except ModelError:
        pass
    from vigil.engine.calibration import HIST_BINS, build_from_histograms
    from vigil.evaluation.protocol import NO_SCORE, SCALE
    from vigil.evaluation.verification import OFFSET, all_pair_histograms

    gen, imp = all_pair_histograms(data, show_progress=show_progress)

    def rebin(h):  # 1e-5 grid -> the table's 40,000 bins over [-1, 1]; no-template pairs dropped
        q = np.arange(len(h)) - OFFSET
        keep = q > NO_SCORE
        k = np.clip((q[keep] + SCALE) * HIST_BINS // (2 * SCALE), 0, HIST_BINS - 1)
        return np.bincount(k, weights=h[keep], minlength=HIST_BINS).astype(np.int64)

    cal = build_from_histograms(engine.model_id, "this evaluation's own data (no calibration table was found)",
                                rebin(imp), rebin(gen), 0.0, 0.0)
    cal.source = "evaluation data"
    return cal


def fmr_thresholds(cal) -> tuple[list[tuple[str, float]], float]:
    grid = [(rate_key(f), cal.threshold_for(f)) for f in FMR_GRID if f >= cal.min_fmr]
    return grid, cal.threshold_for(OPERATING_FMR)


def calibration_summary(cal) -> dict:
    return {"model_id": cal.model_id, "dataset": cal.dataset, "source": cal.source,
            "impostor_pairs": cal.impostor_pairs, "genuine_pairs": cal.genuine_pairs,
            "smallest_fmr": cal.min_fmr, "operating_fmr": OPERATING_FMR,
            "operating_threshold": round(cal.threshold_for(OPERATING_FMR), 5)}


def identification(data: EvalData, cal, *, sizes=SIZES, seed: int = 0, splits: int = 10,
                   skip_infeasible: bool = False, references: int = 1, calibration_for=None,
                   show_progress: bool = True) -> tuple[dict, dict[int, OpenSet]]:
    """Identification JSON (private helpers removed) and the pooled curves per size.
    With ``skip_infeasible`` sizes larger than the number of enrolable people are left out
    (and listed) instead of failing."""
    skipped = []
    if skip_infeasible:
        multi, single = candidates(data, data.images_of())
        skipped = [n for n in sizes if n > len(multi) + len(single)]
        sizes = [n for n in sizes if n not in skipped]
    res = evaluate_identification(data, sizes=sizes, seed=seed, splits=splits,
                                  operating_threshold=cal.threshold_for(OPERATING_FMR), calibration=cal,
                                  references=references, calibration_for=calibration_for,
                                  show_progress=show_progress)
    pooled = {int(k): v["_pooled"] for k, v in res["by_watchlist_size"].items()}
    res = strip_private(res)
    if skipped:
        res["skipped_watchlist_sizes"] = skipped
    res["dataset"] = data.description
    res["calibration"] = calibration_summary(cal)
    return res, pooled


def with_primary(res: dict, primary: int) -> dict:
    """Put one watchlist size's figures at the top level (what scripts read), keeping all."""
    key = str(primary)
    top = {k: v for k, v in res["by_watchlist_size"][key].items() if k not in ("vs_threshold", "det")}
    return {"primary_watchlist_size": primary, **top, **res}
