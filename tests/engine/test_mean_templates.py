"""Mean templates of several reference photos and their calibration tables (issue #13)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vigil.engine.calibration import (
    Calibration, calibration_filename, calibration_in_effect, entry_threshold, load_calibration, mean_template,
    supported_references,
)
from vigil.engine.fusion import combine, split
from vigil.errors import VigilError
from vigil.evaluation.calibrate import calibrate_mean_templates, mean_entries

SFACE = "sface-2021dec-fp32-flip"


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_mean_template_is_the_normalised_mean():
    rng = np.random.default_rng(0)
    v = unit(rng.normal(size=(3, 16)))
    m = mean_template(v)
    assert np.linalg.norm(m) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(m, unit(v.sum(axis=0)), atol=1e-6)
    assert np.allclose(mean_template(v[:1]), v[0], atol=1e-6)  # one photo: itself


def test_a_fused_mean_template_averages_each_model_so_each_part_stays_a_unit_vector():
    rng = np.random.default_rng(1)
    a, b = unit(rng.normal(size=(3, 8))), unit(rng.normal(size=(3, 5)))
    fused = combine(a, b, 0.3)
    m = mean_template(fused, (8, 0.3))
    pa, pb = split(m, 8, 0.3)
    assert np.linalg.norm(pa) == pytest.approx(1.0, abs=1e-6) and np.linalg.norm(pb) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(pa[0], unit(a.sum(axis=0)), atol=1e-6) and np.allclose(pb[0], unit(b.sum(axis=0)), atol=1e-6)
    # averaging the concatenation instead would break the cascade's bound on the second part
    naive = split(mean_template(fused), 8, 0.3)
    assert not math.isclose(float(np.linalg.norm(naive[1])), 1.0, abs_tol=1e-3)


def table(model_id: str, threshold_at_1e7: float, threshold_at_1e6: float) -> dict:
    return Calibration(model_id, "test", 10**8, 1000, [1e-1, 1e-6, 1e-7], [0.2, threshold_at_1e6, threshold_at_1e7],
                       [0.0, 0.1, 0.2]).to_dict()


def test_mean_tables_come_only_from_beside_the_table_in_effect(tmp_path):
    site = tmp_path / "calibration"
    site.mkdir()
    assert supported_references(SFACE, site) == 3  # the shipped tables of 1, 2 and 3 photos
    (site / calibration_filename(SFACE)).write_text(json.dumps(table(SFACE, 0.7, 0.6)))
    # a site table of single photos and none of mean templates: entries stay one photo each,
    # never a site threshold beside a shipped one
    assert supported_references(SFACE, site) == 1
    assert calibration_in_effect(SFACE, site, references=2) == (None, None)
    (site / calibration_filename(SFACE, 2)).write_text(json.dumps(table(SFACE, 0.72, 0.62)))
    assert supported_references(SFACE, site) == 2 and supported_references(SFACE, site, limit=1) == 1
    assert load_calibration(SFACE, site, references=2).source == "site"


def test_an_entry_threshold_is_its_own_tables_never_below_the_single_photo_one():
    tables = {1: Calibration.from_dict(table("m", 0.68, 0.56)), 3: Calibration.from_dict(table("m", 0.63, 0.60))}
    assert entry_threshold(tables, 3, 1e-6) == pytest.approx(0.60)  # stricter: its own
    assert entry_threshold(tables, 3, 1e-7) == pytest.approx(0.68)  # thinner tail: floored
    assert entry_threshold(tables, 1, 1e-7) == pytest.approx(0.68)


def test_mean_template_table_counts_every_entry_against_every_other_persons_photo():
    rng = np.random.default_rng(2)
    counts = [4, 3, 2] + [1] * 21
    ids = np.repeat([f"p{i}" for i in range(len(counts))], counts)  # p0: 4 photos, p1: 3, p2: 2, 21 of 1
    centre = unit(rng.normal(size=(len(counts), 32)))
    vectors = unit(centre[np.repeat(np.arange(len(counts)), counts)] + 0.2 * rng.normal(size=(30, 32)))
    entries = mean_entries(ids, 3)
    assert entries.shape == (7, 3)  # every photo of p0 (4) and p1 (3) leads one entry; the others have too few
    assert all(len({*map(int, e)}) == 3 and len({ids[i] for i in e}) == 1 for e in entries)
    cal = calibrate_mean_templates("m", vectors, list(ids), 3, "synthetic", show_progress=False)
    assert cal.impostor_pairs == 4 * 26 + 3 * 27  # p0's entries against 26 others' photos, p1's against 27
    assert cal.genuine_pairs == 4 * 1 + 3 * 0  # p0 keeps one photo outside each entry, p1 none
    assert cal.threshold_for(0.5) < 0.9
    with pytest.raises(VigilError, match="no person has 3"):
        calibrate_mean_templates("m", vectors[7:], list(ids[7:]), 3, "x", show_progress=False)


def test_a_damaged_table_is_a_clear_error_naming_the_file(tmp_path):
    from vigil.errors import ModelError

    site = tmp_path / "calibration"
    site.mkdir()
    (site / calibration_filename(SFACE)).write_text(json.dumps(table(SFACE, 0.7, 0.6)))
    (site / calibration_filename(SFACE, 2)).write_text("{}")  # truncated, or left by a crash
    with pytest.raises(ModelError, match=r"mean2\.json cannot be read"):
        load_calibration(SFACE, site, references=2)
