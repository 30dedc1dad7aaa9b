"""Cohort score normalisation (engine/score_norm.py) on score sets with known answers."""

import numpy as np
import pytest

from vigil.engine.score_norm import CohortNormaliser, CohortStats


def _unit(rng, n, d=16):
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_top_k_statistics_are_the_mean_and_spread_of_the_k_highest_scores():
    norm = CohortNormaliser(_unit(np.random.default_rng(0), 100), top_k=10)
    scores = np.arange(100, dtype=float)[None, ::-1] / 100  # 0.99 .. 0.00
    st = norm.stats_from_scores(scores)
    top = np.arange(90, 100) / 100
    assert st.mean[0] == pytest.approx(top.mean()) and st.std[0] == pytest.approx(top.std())


def test_a_templates_own_subject_is_left_out_of_its_statistics():
    labels = np.array([7] * 10 + list(range(90)))
    norm = CohortNormaliser(_unit(np.random.default_rng(0), 100), top_k=10, cohort_labels=labels)
    scores = np.concatenate([np.full(10, 0.95), np.linspace(0.0, 0.5, 90)])[None, :]
    mine = norm.stats_from_scores(scores, labels=np.array([7]))
    assert mine.mean[0] == pytest.approx(np.linspace(0.0, 0.5, 90)[-10:].mean())  # the 0.95s are its own
    other = norm.stats_from_scores(scores, labels=np.array([1000]))
    assert other.mean[0] == pytest.approx(0.95)


def test_a_lamb_and_a_distinctive_entry_get_the_same_impostor_distribution_after_normalisation():
    """Entry A draws impostor scores ~ N(0.5, 0.05) (a lamb), entry B ~ N(0.1, 0.05). Raw scores
    need one threshold above A's tail; entry-side normalisation (statistics over the whole
    cohort) turns both into N(0, 1), so one normalised threshold gives both the same FMR."""
    rng = np.random.default_rng(1)
    m = 20_000
    norm = CohortNormaliser(_unit(rng, m, 4), top_k=m, mode="entry")  # statistics over all m
    cohort = np.stack([rng.normal(0.5, 0.05, m), rng.normal(0.1, 0.05, m)])
    entry = norm.stats_from_scores(cohort)
    assert entry.mean == pytest.approx([0.5, 0.1], abs=0.002)
    impostors = np.stack([rng.normal(0.5, 0.05, m), rng.normal(0.1, 0.05, m)], axis=1)  # (probes, entries)
    probe = CohortStats(np.zeros(m), np.ones(m))  # unused in "entry" mode
    z = norm.normalise(impostors, probe, entry)
    assert z.mean(axis=0) == pytest.approx([0, 0], abs=0.03)
    assert z.std(axis=0) == pytest.approx([1, 1], abs=0.03)
    fmr = (z >= 3.0).mean(axis=0)  # one threshold, the same false match rate for both entries
    assert fmr == pytest.approx([0.00135, 0.00135], abs=0.0008)
    raw_fmr = (impostors >= 0.65).mean(axis=0)  # the raw threshold that holds A's FMR ...
    genuine_b = 0.4  # ... misses B's mate at 0.4, which normalisation alerts on (z = 6)
    assert raw_fmr[0] == pytest.approx(0.00135, abs=0.0008) and genuine_b < 0.65
    assert norm.normalise(np.array([[genuine_b, genuine_b]]), CohortStats(np.zeros(1), np.ones(1)),
                          entry)[0, 1] == pytest.approx(6.0, abs=0.1)


def test_symmetric_mode_averages_the_entry_and_probe_sides():
    norm = CohortNormaliser(_unit(np.random.default_rng(0), 4), mode="symmetric")
    z = norm.normalise(np.array([[0.7]]), CohortStats(np.array([0.3]), np.array([0.1])),
                       CohortStats(np.array([0.5]), np.array([0.05])))
    assert z[0, 0] == pytest.approx(0.5 * ((0.7 - 0.5) / 0.05 + (0.7 - 0.3) / 0.1))


def test_stats_of_templates_match_stats_of_their_cohort_scores():
    rng = np.random.default_rng(2)
    cohort, probes = _unit(rng, 300), _unit(rng, 50)
    norm = CohortNormaliser(cohort, top_k=20)
    a, b = norm.stats(probes, block=7), norm.stats_from_scores(probes @ cohort.T)
    assert np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="mode"):
        CohortNormaliser(np.eye(3), mode="z")
    with pytest.raises(ValueError, match="two templates"):
        CohortNormaliser(np.ones((1, 3)))
