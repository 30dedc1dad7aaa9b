import math

import numpy as np
import pytest

from tests.evaluation import make_data
from vigil.evaluation.protocol import NO_SCORE, quantise
from vigil.evaluation.verification import Curves, all_pair_histograms, evaluate_all_pairs, histogram_of, summarise


def test_counts_every_pair_once_and_failures_never_match():
    d = make_data(60, seed=1, fte={"male": 0.2})
    gen, imp = all_pair_histograms(d, block=7, show_progress=False)
    counts = np.bincount(d.person)
    n_gen = int((counts * (counts - 1) // 2).sum())
    assert gen.sum() == n_gen and imp.sum() == d.n * (d.n - 1) // 2 - n_gen
    c = Curves(gen, imp)
    no_template = int((~d.found).sum())
    assert no_template > 0 and c.frr(NO_SCORE + 1) > 0  # failures are genuine misses at any threshold


def test_symmetric_gaussians_give_the_known_eer_and_tar():
    rng = np.random.default_rng(0)
    gen = histogram_of(quantise(rng.normal(0.5, 0.1, 200_000)))
    imp = histogram_of(quantise(rng.normal(0.1, 0.1, 2_000_000)))
    s = summarise(Curves(gen, imp))
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    assert s["eer"] == pytest.approx(phi(-2.0), abs=0.002) and s["eer_threshold"] == pytest.approx(0.3, abs=0.005)
    # FAR 1e-3 at 0.1 + 3.09 sd; TAR = P(N(0.5, 0.1) >= that)
    assert s["tar_at_far"]["0.001"]["tar"] == pytest.approx(1 - phi((0.409 - 0.5) / 0.1), abs=0.01)
    assert s["tar_at_far"]["0.000001"]["supported"] is False  # 2e6 pairs support down to 1.5e-6


def test_all_pairs_lists_the_highest_impostors():
    d = make_data(80, seed=2)
    d.vectors[1] = d.vectors[d.person != d.person[1]][0]  # a copy of another person's photo
    out, _ = evaluate_all_pairs(d, show_progress=False)
    assert out["highest_impostor_pairs"][0]["score"] == pytest.approx(1.0)
    assert d.names[1] in (out["highest_impostor_pairs"][0]["a"], out["highest_impostor_pairs"][0]["b"])
