import json

from tests.evaluation import make_data
from vigil.errors import ModelError
from vigil.evaluation.report import run_all, write_report


class _NoCalibrationPack:
    @property
    def calibration(self):
        raise ModelError("no table")


class _Engine:
    pack = _NoCalibrationPack()
    model_id = "synthetic-model"


def test_report_runs_offline_and_explains_itself(tmp_path):
    d = make_data(260, seed=21, groups={"female": 0.2, "male": 0.0})
    d.description = {"name": "synthetic", "notes": ["built for a test"]}
    a = run_all(d, _Engine(), seed=0, splits=2, replicates=60, show_progress=False)
    # no calibration table: one is built from the data, and the report says so
    assert a["calibration"]["source"] == "evaluation data"
    assert a["identification"]["skipped_watchlist_sizes"] == [1000, 5000]
    page = write_report(a, tmp_path / "rep", machine={"cpu": "test"}, command="vigil eval report")
    html = page.read_text()
    for heading in ("Verification", "Open-set identification", "Demographic differentials", "Threshold advice",
                    "Data set and its limits", "Method and definitions", "At the thresholds live deployments set"):
        assert heading in html
    assert "http://" not in html and "https://" not in html and "<script" not in html  # works offline
    assert html.count("data:image/png;base64,") >= 8
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["seed"] == 0
