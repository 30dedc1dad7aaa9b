import numpy as np
import pytest

from vigil.engine.calibration import Calibration
from vigil.evaluation.identification import OpenSet, Searches
from vigil.evaluation.protocol import quantise
from vigil.evaluation.threshold_advice import advise, fmr_for_fpir, fpir_for_fmr


def calibration(min_fmr=1e-8) -> Calibration:
    """Impostor tail by construction: FMR = 10**(-10 * t), so the threshold for FMR f is -log10(f)/10."""
    fmrs = [f for f in np.logspace(-1, -9, 81) if f >= min_fmr]
    return Calibration(model_id="m", dataset="synthetic", impostor_pairs=int(round(1 / min_fmr)), genuine_pairs=100,
                       fmr=fmrs, threshold=[-np.log10(f) / 10 for f in fmrs],
                       fnmr=[min(1.0, -np.log10(f) / 20) for f in fmrs])


def test_fpir_and_fmr_conversions_are_inverse():
    f = fmr_for_fpir(1e-4, 1000)
    assert f == pytest.approx(1e-7, rel=1e-3)
    assert fpir_for_fmr(f, 1000) == pytest.approx(1e-4, rel=1e-9)


def test_advised_threshold_keeps_expected_false_alerts_under_the_budget():
    a = advise(calibration(), 1000, 10_000, 1)
    assert a["target_fpir"] == pytest.approx(1e-4)
    assert a["per_comparison_fmr"] == pytest.approx(1e-7, rel=1e-3)
    assert a["threshold"] == pytest.approx(0.7, abs=2e-5)  # -log10(1e-7)/10, rounded up to the 1e-5 grid
    assert a["threshold"] >= 0.7 - 1e-9
    assert a["expected_false_alerts"] <= 1.0 + 1e-6 and a["supported_by_calibration"]
    loose, strict = a["alternatives"]
    assert loose["threshold"] < a["threshold"] < strict["threshold"]


def test_beyond_the_calibration_floor_the_advice_says_so():
    a = advise(calibration(min_fmr=1e-6), 5000, 100_000, 1)
    assert not a["supported_by_calibration"] and "fewer than 3 impostor pairs" in a["warning"]
    # 1 in 60,000 with 1,000 people needs FMR 1.7e-8: below 3 / 1e8 calibration pairs, so unsupported
    b = advise(calibration(min_fmr=1e-8), 1000, 60_000, 1)
    assert b["per_comparison_fmr"] == pytest.approx(1.667e-8, rel=1e-3) and not b["supported_by_calibration"]
    ok = advise(calibration(min_fmr=1e-8), 1000, 10_000, 1)
    assert ok["supported_by_calibration"] and ok["calibration_impostor_pairs_above"] == 10


def test_measured_cost_comes_from_the_open_set_curves():
    rng = np.random.default_rng(0)
    mate = quantise(rng.uniform(0.5, 0.9, 10_000))  # uniform: FNIR(t) = (t - 0.5) / 0.4
    top = quantise(rng.uniform(0.0, 0.6, 50_000))
    o = OpenSet(Searches(mate, np.ones(10_000, dtype=np.int64), top))
    a = advise(calibration(), 1000, 10_000, 1, openset=o)
    assert a["measured"]["fnir"] == pytest.approx((0.7 - 0.5) / 0.4, abs=0.02)
    assert a["measured"]["false_positives"] == 0
    assert a["measured"]["fpir_upper95"] == pytest.approx(3 / 50_000, rel=0.01)
    assert a["measured"]["target_fpir_measurable"]  # 50,000 searches >= 3 / 1e-4
    o.n_per_split = 10_000  # five splits of 10,000 pooled: one split cannot measure 1e-4
    assert not advise(calibration(), 1000, 10_000, 1, openset=o)["measured"]["target_fpir_measurable"]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        advise(calibration(), 0, 10, 1)
