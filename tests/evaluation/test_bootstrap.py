import itertools

import numpy as np
import pytest

from vigil.evaluation.bootstrap import (
    identity_weights,
    log_ratio_test,
    pair_rate_replicates,
    percentile_ci,
    ratio_replicates,
    smallest_supportable_rate,
    zero_upper_bound,
)


def test_rule_of_three():
    for n in (100, 6_000, 60_000):
        assert zero_upper_bound(n) == pytest.approx(3 / n, rel=0.02)
        assert smallest_supportable_rate(n) == 3 / n
        # the bound is exact: 0 events in n trials has probability 5% at that rate
        assert (1 - zero_upper_bound(n)) ** n == pytest.approx(0.05)
    # LFW gives at most ~13,000 non-mated searches: it cannot show 1 in 60,000
    assert smallest_supportable_rate(13_233) > 1 / 60_000
    assert zero_upper_bound(0) is None


def test_weights_are_draw_counts_and_reproducible():
    w = identity_weights(np.random.default_rng(1), 50, 200)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all()
    assert (w == identity_weights(np.random.default_rng(1), 50, 200)).all()


def test_ratio_replicates_with_unit_weights_give_the_pooled_rate():
    x = np.array([1, 0, 3, 2])
    y = np.array([10, 5, 10, 5])
    r = ratio_replicates(np.ones((2, 4), dtype=np.int32), x, y)
    assert r.tolist() == [6 / 30, 6 / 30]


def test_pair_rates_match_brute_force_on_duplicated_identities():
    rng = np.random.default_rng(3)
    sizes = np.array([2, 3, 1, 4])
    owner = np.repeat(np.arange(4), sizes)
    scores = {}
    for i, j in itertools.combinations(range(len(owner)), 2):
        if owner[i] != owner[j]:
            scores[(i, j)] = rng.integers(0, 3)  # bin: thresholds reached - 1 (-1 = none)
    thresholds = 2
    weights = np.array([[1, 2, 0, 1], [0, 0, 3, 1]], dtype=np.int32)
    listed = [(owner[i], owner[j], b) for (i, j), b in scores.items() if b < thresholds]
    a, b, bins = (np.array(c) for c in zip(*listed))
    got = pair_rate_replicates(weights, a, b, bins, thresholds, sizes)
    for row, w in zip(got, weights):
        # brute force: expand each drawn identity into copies, count cross-identity image pairs
        copies = [(u, k) for u in range(4) for k in range(w[u])]
        total, hits = 0, np.zeros(thresholds)
        for (u, _), (v, _) in itertools.combinations(copies, 2):
            if u == v:
                continue
            for i in np.nonzero(owner == u)[0]:
                for j in np.nonzero(owner == v)[0]:
                    total += 1
                    bin_ = scores[(min(i, j), max(i, j))]
                    hits[: bin_ + 1 if bin_ < thresholds else 0] += 1
        assert row == pytest.approx(hits / total)


def test_bootstrap_interval_covers_the_truth():
    """Clustered data: each identity has its own error rate around a true mean of 0.1."""
    true_rate, covered, runs = 0.1, 0, 60
    for k in range(runs):
        rng = np.random.default_rng(100 + k)
        units = 80
        trials = rng.integers(5, 40, size=units)
        rates = rng.beta(2, 18, size=units)  # mean 0.1
        errors = rng.binomial(trials, rates)
        lo, hi = percentile_ci(ratio_replicates(identity_weights(rng, units, 300), errors, trials))
        # the target is the trial-weighted rate of the population the identities come from
        covered += lo <= true_rate <= hi
    assert covered / runs >= 0.85


def test_log_ratio_test_flags_a_real_difference_and_not_an_equal_pair():
    rng = np.random.default_rng(5)
    base = rng.normal(0.01, 0.001, 1000)
    assert log_ratio_test(base * 2, rng.normal(0.01, 0.001, 1000))["significant"]
    assert not log_ratio_test(base, rng.normal(0.01, 0.001, 1000))["significant"]
    # all-zero replicates carry no information
    assert not log_ratio_test(np.zeros(100), np.zeros(100))["testable"]
    # Bonferroni: the interval widens with the number of comparisons
    one = log_ratio_test(base * 1.1, base, 1)["ratio_ci"]
    many = log_ratio_test(base * 1.1, base, 20)["ratio_ci"]
    assert many[0] <= one[0] and many[1] >= one[1]
