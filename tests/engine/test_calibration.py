import numpy as np
import pytest

from vigil.engine.calibration import (
    Calibration, build_from_histograms, load_calibration, score_histograms,
)
from vigil.errors import ModelError


def _synthetic(n_ids=300, per_id=4, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    vecs = np.repeat(centres, per_id, axis=0) + rng.normal(scale=0.6, size=(n_ids * per_id, dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.repeat(np.arange(n_ids), per_id)
    return vecs.astype(np.float32), ids


def test_histograms_count_every_pair_once():
    vecs, ids = _synthetic(n_ids=50, per_id=3)
    imp, gen, mean, std = score_histograms(vecs, ids, block=17)
    n = len(vecs)
    assert gen.sum() == 50 * 3
    assert imp.sum() == n * (n - 1) // 2 - 150
    sims = vecs @ vecs.T
    iu = np.triu_indices(n, 1)
    mask = ids[iu[0]] != ids[iu[1]]
    assert mean == pytest.approx(sims[iu][mask].mean(), abs=1e-6)
    assert std == pytest.approx(sims[iu][mask].std(), abs=1e-5)


def test_threshold_matches_the_empirical_tail():
    vecs, ids = _synthetic()
    imp, gen, mean, std = score_histograms(vecs, ids)
    cal = build_from_histograms("toy", "synthetic", imp, gen, mean, std)
    sims = vecs @ vecs.T
    iu = np.triu_indices(len(vecs), 1)
    impostor = sims[iu][ids[iu[0]] != ids[iu[1]]]
    for fmr in (1e-2, 1e-3, 1e-4):
        th = cal.threshold_for(fmr)
        observed = (impostor >= th).mean()
        assert observed <= fmr * 1.05 + 1e-6
        assert observed >= fmr * 0.8  # not absurdly strict either
        back, bounded = cal.fmr_at(th)
        assert back == pytest.approx(fmr, rel=0.1) and not bounded


def test_scores_beyond_the_data_are_bounded_not_extrapolated():
    vecs, ids = _synthetic(n_ids=40, per_id=2)
    cal = build_from_histograms("toy", "synthetic", *score_histograms(vecs, ids))
    fmr, bounded = cal.fmr_at(0.999)
    assert bounded and fmr == pytest.approx(1.0 / cal.impostor_pairs, rel=1e-6)
    assert cal.threshold_for(1e-12) == cal.threshold_for(cal.min_fmr)
    with pytest.raises(ValueError):
        cal.threshold_for(0)


def test_site_table_wins_over_shipped_and_missing_table_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="vigil calibrate"):
        load_calibration("no-such-model", tmp_path)
    cal = Calibration(model_id="m", dataset="site", impostor_pairs=1000, genuine_pairs=10,
                      fmr=[0.1, 0.01, 0.001], threshold=[0.1, 0.2, 0.3])
    cal.save(tmp_path / "m.json")
    loaded = load_calibration("m", tmp_path)
    assert loaded.source == "site" and loaded.threshold_for(0.01) == pytest.approx(0.2)


def test_shipped_sface_table_is_sane():
    cal = load_calibration("sface-2021dec-fp32-flip")
    assert cal.impostor_pairs > 50_000_000
    assert 0.3 < cal.threshold_for(1e-4) < 0.6
    assert cal.threshold_for(1e-6) > cal.threshold_for(1e-4) > cal.threshold_for(1e-2)
