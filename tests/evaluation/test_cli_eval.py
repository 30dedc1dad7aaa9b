"""The evaluation commands end to end (real models) on a tiny LFW-shaped folder."""

import json

from typer.testing import CliRunner

from tests.engine.test_cli_engine import tiny_lfw  # noqa: F401  (fixture)
from vigil.cli import app


def _json(args):
    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_identification_and_fairness_json_contracts(home, tiny_lfw, tmp_path):  # noqa: F811
    out = tmp_path / "ident.json"
    ident = _json(["eval", "identification", "--data", str(tiny_lfw), "--watchlist-size", "1", "--splits", "2",
                   "--seed", "0", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written.pop("machine")["cores"] >= 1  # the file says where it was measured
    assert written == ident and "machine" not in ident
    for key in ("fnir_at_fpir", "rank1", "threshold_at_fpir"):
        assert key in json.dumps(ident)
    again = _json(["eval", "identification", "--data", str(tiny_lfw), "--watchlist-size", "1", "--splits", "2",
                   "--seed", "0"])
    assert again == ident  # same seed, same data: the same JSON
    # what a deployment does by default: up to three photos averaged (the shipped SFace tables)
    assert ident["references"] == 3 and ident["reference_rule"] == "mean template"
    one = _json(["eval", "identification", "--data", str(tiny_lfw), "--watchlist-size", "1", "--splits", "2",
                 "--seed", "0", "--references", "1"])
    assert one["references"] == 1 and "threshold_by_references" not in json.dumps(one)
    fair = _json(["eval", "fairness", "--data", str(tiny_lfw), "--seed", "0", "--bootstrap", "50"])
    assert "worst_to_best_fmr_ratio" in fair and "groups" in fair



def _main(args, monkeypatch, capsys) -> tuple[int, str]:
    """The real entry point (``vigil ...``): exit code and everything printed."""
    import pytest

    from vigil.cli import main

    monkeypatch.setattr("sys.argv", ["vigil", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    out = capsys.readouterr()
    return ended.value.code, out.out + out.err


def test_held_out_options_on_too_little_data_are_a_clear_error_not_a_traceback(
        home, tiny_lfw, monkeypatch, capsys):  # noqa: F811
    """Two people cannot give a cohort, a calibration half and a test half: say so (this was an
    IndexError traceback)."""
    for extra in (["--score-norm", "symmetric"], ["--references", "2", "--reference-rule", "max"], ["--heldout"]):
        code, said = _main(["eval", "identification", "--data", str(tiny_lfw), "--watchlist-size", "1",
                            "--splits", "2", *extra], monkeypatch, capsys)
        assert code not in (0, None) and "Traceback" not in said, said
        assert "held-out" in said and "enrolable people" in said, said
    code, said = _main(["eval", "identification", "--data", str(tiny_lfw), "--score-norm", "zz"], monkeypatch, capsys)
    assert code not in (0, None) and "Traceback" not in said and "symmetric" in said, said
