import json

import numpy as np
import pytest

from tests.evaluation import make_data
from vigil.evaluation.fairness import ALL, evaluate_fairness
from vigil.evaluation.protocol import quantise

GRID = [("0.01", 0.30), ("0.001", 0.40)]


def _run(data, operating=0.30, **kw):
    return evaluate_fairness(data, GRID, operating, seed=0, replicates=200, attributes=("sex",),
                             show_progress=False, **kw)


def test_a_built_in_fmr_difference_is_flagged_and_an_equal_pair_is_not():
    differ = _run(make_data(400, groups={"female": 0.45, "male": 0.0}, seed=11))
    wb = differ["worst_to_best_fmr_ratio"]["sex"]
    assert wb["worst"] == "female" and wb["best"] == "male"
    assert wb["value"] > 2 and wb["significant"] and wb["ci95"][0] > 1
    assert 0.3 in differ["attributes"]["sex"]["significant_fmr_thresholds"]

    equal = _run(make_data(400, groups={"female": 0.0, "male": 0.0}, seed=12))
    wb = equal["worst_to_best_fmr_ratio"]["sex"]
    assert not wb["significant"] and wb["ci95"][0] <= 1 <= wb["ci95"][1]
    assert "does not show the rates are equal" in wb["statement"]


def test_fmr_within_a_group_uses_only_pairs_inside_the_group():
    d = make_data(120, seed=13)
    r = _run(d)
    for name in ("male", "female"):
        members = np.nonzero(d.sex == name)[0]
        s = quantise(d.vectors[members] @ d.vectors[members].T)
        same = d.person[members][:, None] == d.person[members][None, :]
        upper = np.triu(np.ones_like(same), 1).astype(bool)
        imp = s[upper & ~same]
        g = r["groups"][name]
        assert g["impostor_pairs"] == len(imp)
        assert g["fmr"]["errors"] == int((imp >= 30_000).sum())
        gen = s[upper & same]
        assert g["fnmr"]["errors"] == int((gen < 30_000).sum())


def test_a_tiny_group_is_reported_as_too_small_not_as_no_difference():
    d = make_data(300, seed=14)
    d.sex = np.array(["female" if p < 12 else "male" for p in d.person], dtype=object)
    r = _run(d)
    f = r["groups"]["female"]
    assert f["fmr"]["verdict"] == "too small to conclude" and f["fnmr"]["verdict"] == "too small to conclude"
    wb = r["worst_to_best_fmr_ratio"]["sex"]
    assert wb["value"] is None and not wb["significant"] and "female" in wb["too_small"]
    assert "nothing can be concluded" in wb["statement"]
    assert r["groups"][f"{ALL} (sex)"]["identities"] == 300


def test_no_errors_gives_the_rule_of_three_bound():
    d = make_data(200, noise=0.01, seed=15)
    r = _run(d, operating=0.9)
    fm = r["groups"]["male"]["fmr"]
    assert fm["errors"] == 0 and fm["ci95"][1] == pytest.approx(3 / fm["trials"], rel=0.01)


def test_gate_rejection_differential_is_flagged():
    d = make_data(500, gate_fail={"female": 0.25, "male": 0.02}, fte={"female": 0.05}, seed=16)
    r = _run(d)
    f, m = r["groups"]["female"], r["groups"]["male"]
    assert f["quality_gate_rejection"]["value"] > 0.15 and m["quality_gate_rejection"]["value"] < 0.05
    assert f["gate_reasons"] == {"under-exposed": f["quality_gate_rejection"]["errors"]}
    assert r["attributes"]["sex"]["significance"]["quality_gate_rejection"]["significant"]
    assert f["failure_to_enrol"]["errors"] > 0 and m["failure_to_enrol"]["errors"] == 0


def test_race_groups_and_determinism():
    d = make_data(300, groups={"african": 0.0, "caucasian": 0.0, "eastasian": 0.0}, attribute="race", seed=17)
    a = evaluate_fairness(d, GRID, 0.3, seed=3, replicates=100, show_progress=False)
    b = evaluate_fairness(d, GRID, 0.3, seed=3, replicates=100, show_progress=False)
    assert json.dumps(a) == json.dumps(b)
    assert {"african", "caucasian", "eastasian"} <= set(a["groups"])
    assert a["groups"]["african"]["fmr"]["ci95"][0] <= a["groups"]["african"]["fmr"]["value"]
