"""The held-out identification protocol and multi-reference entries, on synthetic templates
whose right answers are known by construction."""

import numpy as np
import pytest

from tests.evaluation import make_data
from vigil.evaluation.heldout import HeldoutCalibration, Variant, calibrate, evaluate_heldout, make_test_split, \
    partition
from vigil.evaluation.multiref import EntryScorer, pick_references
from vigil.evaluation.protocol import EvalData, rng_for


def _tiny(vectors, person):
    n = len(person)
    return EvalData(names=[f"i{i}.jpg" for i in range(n)], person=np.asarray(person),
                    people=[f"p{k}" for k in range(max(person) + 1)], vectors=np.asarray(vectors, float),
                    found=np.ones(n, bool), gate_passed=np.ones(n, bool), gate_reasons=[[] for _ in range(n)])


def test_max_rule_takes_the_best_reference_and_mean_rule_the_normalised_mean_template():
    e1, e2, e3 = np.eye(3)
    d = _tiny([e1, e2, e3], [0, 0, 1])
    probe = np.array([[0.8, 0.6, 0.0]])
    best = EntryScorer(d, np.array([[0, 1], [2, -1]]), "max").raw(probe)
    assert best[0] == pytest.approx([0.8, 0.0])  # max(0.8, 0.6); the -1 slot is ignored
    mean = EntryScorer(d, np.array([[0, 1], [2, -1]]), "mean").raw(probe)
    assert mean[0, 0] == pytest.approx((0.8 + 0.6) / np.sqrt(2))  # against (e1 + e2) / |e1 + e2|


def test_references_are_the_first_image_plus_other_gate_passing_images_of_the_same_person():
    d = make_data(60, seed=3, counts=(4,), gate_fail={"male": 0.3})
    images_of = d.images_of()
    first = np.array([ix[d.gate_passed[ix]][0] for ix in images_of if d.gate_passed[ix].any()])
    refs = pick_references(d, images_of, first, 3, rng_for(0, "t"))
    assert (refs[:, 0] == first).all()
    for row in refs:
        got = row[row >= 0]
        assert len(set(got)) == len(got) and (d.person[got] == d.person[got[0]]).all()
        assert d.gate_passed[got].all()


def test_a_probed_person_keeps_a_mated_probe_and_references_never_probe_themselves():
    d = make_data(400, seed=4, counts=(2, 3, 5))
    people = np.nonzero(partition(d, 0) == 0)[0]
    split, refs = make_test_split(d, people, 100, 3, rng_for(0, "x"))
    assert len(np.intersect1d(split.mated, refs[refs >= 0])) == 0
    assert set(split.mate_col) == set(range(split.probed_people))  # everyone probed has a probe left
    assert set(d.person[split.nonmated]) <= set(people) - set(split.watchlist)


def test_calibration_cohort_and_test_people_are_disjoint():
    d = make_data(600, seed=5)
    half = partition(d, 0)
    cal, cohort = calibrate(d, Variant(score_norm="symmetric", cohort_people=50), np.nonzero(half == 1)[0], 0, 0)
    assert (half[d.person[cohort]] == 1).all()  # the cohort comes from the calibration half only
    split, _ = make_test_split(d, np.nonzero(half == 0)[0], 50, 1, rng_for(0, "y"))
    used = np.concatenate([split.mated, split.nonmated, split.enrol])
    assert (half[d.person[used]] == 0).all()
    assert cal.comparisons > 0


def test_calibrated_threshold_allows_exactly_floor_fmr_times_comparisons():
    cal = HeldoutCalibration(np.arange(1000, 0, -1, dtype=np.int32), comparisons=100_000, model_id="m")
    t = cal.grid_threshold_for(1e-4)  # 10 comparisons may score at or above it
    assert (np.arange(1000, 0, -1) >= t).sum() == 10
    assert cal.supported(3e-5) and not cal.supported(2e-5)


def test_the_held_out_threshold_holds_the_false_alert_rate_on_the_test_half():
    """Homogeneous synthetic people: the threshold calibrated on one half gives about the
    accepted rate on the other (the deployment's rule, rate per face = N x FMR)."""
    d = make_data(4000, seed=6, noise=0.3, dim=32, counts=(1, 1, 2, 3))
    for variant in (Variant(), Variant(score_norm="symmetric", cohort_people=400)):
        r = evaluate_heldout(d, variant, size=200, splits=2, show_progress=False)
        live = r["at_live_settings"]["0.001"]
        assert live["nonmated_searches"] > 5000
        assert live["false_alerts_per_face"] <= 0.003, (variant, live)  # 1e-3 accepted, small-sample slack
        assert len(live["false_alert_probe_images"]) <= live["false_alerts"]


def test_same_seed_same_result_and_bad_rules_are_clear():
    d = make_data(800, seed=7)
    v = Variant(score_norm="entry", references=2, rule="mean", cohort_people=100)
    assert evaluate_heldout(d, v, size=50, splits=2, show_progress=False) == \
        evaluate_heldout(d, v, size=50, splits=2, show_progress=False)
    with pytest.raises(ValueError, match="rule"):
        EntryScorer(d, np.array([[0]]), "median")


def test_missed_alerts_per_sex_with_identity_bootstrap_intervals():
    from vigil.evaluation.heldout_groups import by_sex

    person = np.repeat(np.arange(80), 4)  # 80 people, 4 probes each; even people women
    sex = np.where(person % 2 == 0, "female", "male").astype(object)
    d = EvalData(names=[f"i{i}" for i in range(len(person))], person=person, people=[f"p{k}" for k in range(80)],
                 vectors=np.zeros((len(person), 2)), found=np.ones(len(person), bool),
                 gate_passed=np.ones(len(person), bool), gate_reasons=[[] for _ in person], sex=sex)
    images = np.arange(len(person))
    missed = np.where(sex == "female", np.arange(len(person)) % 4 < 2, np.arange(len(person)) % 4 < 1)
    r = by_sex(d, images, missed, np.array([0, 1, 4]), images, replicates=300)  # person 0 twice, person 1
    f, m = r["groups"]["female"], r["groups"]["male"]
    assert f["fnir"] == 0.5 and m["fnir"] == 0.25 and f["people"] == m["people"] == 40
    assert r["fnir_ratio_female_to_male"]["value"] == 2.0
    assert f["fnir_ci95"] == [0.5, 0.5]  # every woman misses exactly half: no spread over identities
    assert f["false_alerts"] == 2 and m["false_alerts"] == 1 and "too few" in r["false_alert_ratio"]


def test_fused_scores_are_the_weighted_sum_and_the_weight_is_fitted_on_the_given_people_only():
    from vigil.evaluation.score_fusion import fit_weight_on, fused

    a = make_data(300, seed=8, noise=0.1)
    noisy = a.vectors + np.random.default_rng(9).normal(size=a.vectors.shape) * 0.3  # a second, worse model
    b = EvalData(names=a.names, person=a.person, people=a.people,
                 vectors=noisy / np.linalg.norm(noisy, axis=1, keepdims=True),
                 found=a.found, gate_passed=a.gate_passed, gate_reasons=a.gate_reasons)
    f = fused(a, b, 0.7)
    i, j = 3, 10
    assert f.vectors[i] @ f.vectors[j] == pytest.approx(0.7 * a.vectors[i] @ a.vectors[j]
                                                        + 0.3 * b.vectors[i] @ b.vectors[j])
    half = partition(a, 0)
    w = fit_weight_on(a, b, np.nonzero(half == 1)[0], 0)
    assert w > 0.5  # the better model gets the larger weight
    scrambled = EvalData(names=a.names, person=a.person, people=a.people, vectors=a.vectors.copy(),
                         found=a.found, gate_passed=a.gate_passed, gate_reasons=a.gate_reasons)
    scrambled.vectors[half[a.person] == 0] = np.roll(scrambled.vectors[half[a.person] == 0], 1, axis=1)
    assert fit_weight_on(scrambled, b, np.nonzero(half == 1)[0], 0) == pytest.approx(w)  # test half unused
