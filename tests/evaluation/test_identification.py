import json
import math

import numpy as np
import pytest

from tests.evaluation import make_data
from vigil.evaluation.identification import (
    OpenSet,
    Searches,
    candidates,
    evaluate_identification,
    make_split,
    strip_private,
)
from vigil.evaluation.protocol import EvalData, quantise, rng_for, to_grid


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_gaussian_scores_give_the_known_fnir_and_fpir():
    rng = np.random.default_rng(0)
    n = 200_000
    mate = quantise(rng.normal(0.6, 0.1, n))
    top = quantise(rng.normal(0.2, 0.1, n))
    o = OpenSet(Searches(mate, np.ones(n, dtype=np.int64), top))
    t = to_grid(0.5)
    assert o.fnir(t) == pytest.approx(phi(-1.0), abs=0.004)  # mates below 0.5
    assert o.fpir(t) == pytest.approx(1 - phi(3.0), abs=0.0005)  # non-mates at or above 0.5
    # the threshold at FPIR 1e-2 is the 99th percentile of the non-mated top scores
    assert o.threshold_at_fpir(0.01) / 1e5 == pytest.approx(0.2 + 2.3263 * 0.1, abs=0.005)


def test_threshold_at_fpir_allows_exactly_floor_f_n_false_positives():
    top = np.arange(10_000, dtype=np.int32)  # distinct scores 0..9999
    o = OpenSet(Searches(np.array([9_995, 9_990, 5], dtype=np.int32), np.ones(3, dtype=np.int64), top))
    t = o.threshold_at_fpir(0.001)
    assert o.false_positives(t) == 10 and o.false_positives(t - 1) == 11
    assert o.fnir(t) == pytest.approx(1 / 3)  # 9995 and 9990 alert at t = 9990, 5 does not


def test_a_mate_not_at_rank_one_is_a_miss_and_ties_count_against_it():
    # three people, one-hot templates; person 2's second image looks exactly like person 0
    v = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=float)
    person = np.array([0, 1, 2, 0, 1, 2])
    d = EvalData(names=[f"{i}.jpg" for i in range(6)], person=person, people=["a", "b", "c"], vectors=v,
                 found=np.ones(6, bool), gate_passed=np.array([1, 1, 1, 0, 0, 0], bool), gate_reasons=[[]] * 6)
    split = make_split(d, d.images_of(), 3, rng_for(0, "t"))
    assert sorted(split.enrol.tolist()) == [0, 1, 2]  # only gate-passing images are enrolled
    from vigil.evaluation.identification import search

    res = search(d, split)
    by_probe = dict(zip(split.mated.tolist(), zip(res.mate_rank.tolist(), res.mate_score.tolist())))
    assert by_probe[3] == (1, 100_000) and by_probe[4] == (1, 100_000)
    # probe 5 scores 1.0 against person 0 and 0 against its own mate, tied with person 1: rank 3
    assert by_probe[5] == (3, 0)
    o = OpenSet(res)
    assert o.fnir(to_grid(0.5)) == pytest.approx(1 / 3) and o.rank(1) == pytest.approx(2 / 3)
    assert o.rank(2) == pytest.approx(2 / 3) and o.rank(3) == 1.0


def test_tied_top_score_counts_against_the_mate():
    v = np.array([[1, 0], [1, 0], [1, 0]], dtype=float)  # everyone identical
    d = EvalData(names=["a", "b", "c"], person=np.array([0, 1, 0]), people=["x", "y"], vectors=v,
                 found=np.ones(3, bool), gate_passed=np.array([1, 1, 0], bool), gate_reasons=[[]] * 3)
    from vigil.evaluation.identification import search

    res = search(d, make_split(d, d.images_of(), 2, rng_for(0, "t")))
    assert res.mate_rank.tolist() == [2]


def test_split_rules_and_filler_for_a_watchlist_larger_than_the_probed_people():
    d = make_data(200, counts=(1, 2), seed=3)
    images_of = d.images_of()
    multi, single = candidates(d, images_of)
    size = len(multi) + 20
    split = make_split(d, images_of, size, rng_for(0, "x"))
    assert split.probed_people == len(multi) and split.enrolled_never_probed == 20
    on_list = set(split.watchlist.tolist())
    assert not set(d.person[split.nonmated].tolist()) & on_list
    assert set(d.person[split.mated].tolist()) <= on_list
    assert not set(split.enrol.tolist()) & set(split.mated.tolist())
    assert len(split.mated) + len(split.nonmated) + size + split.nonmated_without_template == d.n
    res = strip_private(evaluate_identification(d, sizes=(size,), splits=2, show_progress=False))
    assert "never probed" in res["by_watchlist_size"][str(size)]["note"]


def test_fpir_below_three_over_n_is_not_reported():
    d = make_data(300, seed=1)
    res = strip_private(evaluate_identification(d, sizes=(50,), splits=2, show_progress=False))
    r = res["by_watchlist_size"]["50"]
    n = min(r["nonmated_searches_per_split"])
    assert r["smallest_supportable_fpir"] == pytest.approx(3 / n, rel=1e-5)
    assert r["fnir_at_fpir"]["0.001"] is None and r["threshold_at_fpir"]["0.001"] is None  # n < 3000
    assert r["fnir_at_fpir"]["0.1"] is not None
    assert not r["fpir_detail"]["0.001"]["supported"] and "non-mated" in r["fpir_detail"]["0.001"]["reason"]


def test_well_separated_people_are_always_found():
    d = make_data(150, noise=0.02, seed=2)
    r = strip_private(evaluate_identification(d, sizes=(40,), splits=2, show_progress=False))["by_watchlist_size"]["40"]
    assert r["rank1"] == 1.0 and r["fnir_at_fpir"]["0.1"] == 0.0


def test_same_seed_same_json_and_another_seed_differs():
    d = make_data(250, seed=4)

    def run(seed):
        return json.dumps(strip_private(evaluate_identification(d, sizes=(30, 60), seed=seed, splits=3,
                                                                show_progress=False)), sort_keys=True)

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_tiny_float_noise_does_not_change_the_result():
    d = make_data(250, seed=5)
    noisy = make_data(250, seed=5)
    noisy.vectors = noisy.vectors + np.random.default_rng(9).normal(size=noisy.vectors.shape) * 1e-12

    def run(data):
        return json.dumps(strip_private(evaluate_identification(data, sizes=(40,), splits=2, show_progress=False)))

    assert run(d) == run(noisy)


class LinearCalibration:
    """A stand-in table: the score for FMR f is -0.1 * log10(f) (1e-7 -> 0.7, 1e-4 -> 0.4)."""

    def threshold_for(self, fmr):
        return -0.1 * math.log10(fmr)


def test_live_settings_use_the_deployment_threshold_and_bound_the_false_alert_rate():
    from vigil.evaluation.identification import at_live_settings

    top = np.arange(0, 100_000, 2, dtype=np.int32)  # 50,000 non-mated top scores spread over [0, 1)
    mates = np.array([90_000, 72_000, 65_000, 50_000], dtype=np.int32)
    images = np.arange(len(top)) // 5  # each probe image searched five times (five watchlists)
    o = OpenSet(Searches(mates, np.ones(4, dtype=np.int64), top, images))
    r = at_live_settings(o, 1000, LinearCalibration(), names=[f"img{i}" for i in range(10_000)])
    strict, loose = r["0.0001"], r["0.001"]
    assert strict["threshold"] == pytest.approx(0.7) and loose["threshold"] == pytest.approx(0.6)
    assert strict["false_alerts"] == 15_000 and strict["nonmated_searches"] == 50_000  # scores >= 0.7
    assert strict["fnir"] == pytest.approx(0.5) and loose["fnir"] == pytest.approx(0.25)
    assert strict["false_alerts_per_face"] < strict["false_alerts_per_face_upper95"] < 0.31
    # searches 35,000..49,999 alert; their probe images are 7,000..9,999
    assert strict["false_alert_probe_images_distinct"] == 3_000
    assert strict["false_alert_probe_images"][:2] == ["img7000", "img7001"]
    assert len(strict["false_alert_probe_images"]) == 200 and not strict["false_alert_probe_images_all_listed"]
    assert len(loose["false_alert_probe_images"]) == 200
    few = at_live_settings(o, 1000, LinearCalibration(), rates=(10 ** -6.98,),  # threshold 0.998
                           names=[f"img{i}" for i in range(10_000)])
    (few,) = few.values()
    assert few["false_alerts"] == 100 and few["false_alert_probe_images_distinct"] == 20
    assert few["false_alert_probe_images_all_listed"]  # every photo named
    assert few["false_alert_probe_images"] == [f"img{i}" for i in range(9_980, 10_000)]
    # a bigger watchlist gets a stricter threshold, as in a deployment
    assert at_live_settings(o, 10_000, LinearCalibration())["0.0001"]["threshold"] == pytest.approx(0.8)


def test_binomial_upper_bound_matches_known_values():
    from vigil.evaluation.bootstrap import binomial_upper_bound, zero_upper_bound

    assert binomial_upper_bound(0, 30_000) == pytest.approx(zero_upper_bound(30_000), rel=1e-6)
    assert binomial_upper_bound(1, 1000) == pytest.approx(0.004735, abs=2e-6)  # Clopper-Pearson tables
    assert binomial_upper_bound(5, 100) == pytest.approx(0.1023, abs=2e-4)
    assert binomial_upper_bound(3, 3) == 1.0 and binomial_upper_bound(0, 0) is None


class ShiftedCalibration(LinearCalibration):
    """A table of k-photo entries: ``shift`` stricter than the single-photo stand-in."""

    def __init__(self, shift):
        self.shift = shift

    def threshold_for(self, fmr):
        return super().threshold_for(fmr) + self.shift


def test_several_references_enrol_mean_templates_and_keep_a_probe_per_person():
    d = make_data(400, seed=3, counts=(2, 3, 4, 6))
    images_of = d.images_of()
    one = make_split(d, images_of, 100, rng_for(0, "s"))
    three = make_split(d, images_of, 100, rng_for(0, "s"), 3, rng_for(0, "r"))
    assert (three.watchlist == one.watchlist).all() and (three.enrol == one.enrol).all()  # same draw
    counts = three.reference_counts
    photos = np.array([len(images_of[p]) for p in three.watchlist])
    assert (counts == np.minimum(3, photos - 1)).all()  # up to 3, one photo always left to probe with
    refs = {int(i) for i in three.refs[three.refs >= 0]}
    assert not refs & {int(i) for i in three.mated}  # no reference photo is searched
    assert len(three.mated) == sum(photos) - counts.sum()


def test_live_settings_with_several_references_use_each_entrys_table_and_match_one_table_when_equal():
    d = make_data(400, seed=4, counts=(2, 3, 4, 6))
    same = evaluate_identification(d, sizes=(100,), splits=3, calibration=LinearCalibration(), references=3,
                                   calibration_for=lambda k: LinearCalibration(), show_progress=False)
    assert same["references"] == 3 and same["reference_rule"] == "mean template"
    r = same["by_watchlist_size"]["100"]
    assert sum(r["entries_by_references"].values()) == 300
    pooled = r["_pooled"]
    for key, live in r["at_live_settings"].items():  # one table for every entry: the top score decides
        t = to_grid(live["threshold"])
        assert live["false_alerts"] == pooled.false_positives(t)
        assert live["fnir"] == pytest.approx(pooled.fnir(t), abs=1e-5)
    strict = evaluate_identification(d, sizes=(100,), splits=3, calibration=LinearCalibration(), references=3,
                                     calibration_for=lambda k: ShiftedCalibration(0.05 * k), show_progress=False)
    s = strict["by_watchlist_size"]["100"]["at_live_settings"]["0.001"]
    assert s["threshold_by_references"] == {"1": 0.5, "2": 0.6, "3": 0.65}  # FMR 1e-3 / 100 = 1e-5
    assert s["fnir"] > r["at_live_settings"]["0.001"]["fnir"]  # stricter tables for the averaged entries
