"""The engine's commands as scripts use them (--json contracts)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.conftest import demo_bytes, demo_path
from vigil.cli import app

runner = CliRunner()


def run_json(args):
    result = runner.invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_verify_json_contract(home, tmp_path):
    data = run_json(["verify", str(demo_path("obama.jpg", tmp_path)), str(demo_path("obama_speech.jpg", tmp_path))])
    assert {"score", "match", "threshold", "fmr"} <= set(data)
    assert data["match"] is True and data["fmr"] < 1e-4
    other = run_json(["verify", str(demo_path("obama.jpg", tmp_path)), str(demo_path("biden.jpg", tmp_path)),
                      "--fmr", "1e-3"])
    assert other["match"] is False and other["threshold"] < data["threshold"]


def test_models_say_which_packs_can_run_live(home):
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["pack"]: r for r in json.loads(result.stdout)}
    assert rows["sface"]["live"] and rows["fusion"]["live"] and not rows["dlib"]["live"]
    assert rows["sface"]["available"] and rows["sface"]["threshold_at_fmr_1e-4"] > 0


def test_detect_json_lists_both_faces(home, tmp_path):
    data = run_json(["detect", str(demo_path("obama_and_biden.jpg", tmp_path))])
    assert len(data["faces"]) == 2 and all(len(f["landmarks"]) == 5 for f in data["faces"])
    assert [f["face"] for f in data["faces"]] == [1, 2] and data["faces"][0]["box"][0] < data["faces"][1]["box"][0]


def test_verify_compares_every_face_of_a_group_photo_and_says_which(home, tmp_path):
    """Issue #15: Obama against a photo of Obama and Biden once compared Obama with Biden (the
    "main face") and answered NO MATCH."""
    group, obama, biden = (str(demo_path(n, tmp_path)) for n in ("obama_and_biden.jpg", "obama.jpg", "biden.jpg"))
    faces = run_json(["detect", group])["faces"]
    for person in (obama, biden):
        best = run_json(["verify", person, group])
        assert best["match"] is True and best["chosen"] == "best"
        assert best["face_b"]["of"] == 2 and best["face_b"]["box"] == faces[best["face_b"]["index"] - 1]["box"]
    obama_face = run_json(["verify", obama, group])["face_b"]["index"]
    biden_face = run_json(["verify", biden, group])["face_b"]["index"]
    assert {obama_face, biden_face} == {1, 2}  # each found in their own place
    # a chosen face is the only one compared
    forced = run_json(["verify", obama, group, "--face-b", str(biden_face)])
    assert forced["match"] is False and forced["face_b"]["index"] == biden_face and forced["chosen"] == "given"
    human = runner.invoke(app, ["verify", obama, group])
    assert "face " + str(obama_face) + " of 2" in human.stdout and "--face-a/--face-b" in " ".join(human.stdout.split())
    out_of_range = runner.invoke(app, ["verify", obama, group, "--face-b", "3"])
    assert out_of_range.exit_code != 0 and "choose a face from 1 to 2" in str(out_of_range.exception)


def test_no_face_is_a_clear_error_not_a_traceback(home, tmp_path):
    import cv2
    import numpy as np

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 100, np.uint8))
    proc = subprocess.run([sys.executable, "-m", "vigil", "verify", str(blank), str(demo_path("obama.jpg", tmp_path)),
                           "--json"], capture_output=True, text=True, env={"VIGIL_HOME": str(home), "PATH": "/usr/bin"})
    assert proc.returncode == 3
    assert "no face found" in proc.stderr and "Traceback" not in proc.stderr
    problem = json.loads(proc.stdout)  # the API's error body: RFC 9457 problem details
    assert problem["error"] == "NoFaceError" and problem["status"] == 422 and "no face found" in problem["detail"]
    assert problem["type"] == "urn:vigil:problem:no-face"


@pytest.fixture()
def tiny_lfw(tmp_path):
    """An LFW-shaped folder from the shipped portraits: 10 folds of 1 genuine + 1 impostor pair."""
    root = tmp_path / "tiny-lfw"
    obama = ["obama.jpg", "obama_speech.jpg", "obama_standing.jpg", "obama_small.jpg"]
    for i, name in enumerate(obama, 1):
        path = root / "lfw" / "Barack_Obama" / f"Barack_Obama_{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(demo_bytes(name))
    (root / "lfw" / "Joe_Biden").mkdir(parents=True)
    (root / "lfw" / "Joe_Biden" / "Joe_Biden_0001.jpg").write_bytes(demo_bytes("biden.jpg"))
    genuine = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4), (1, 2), (1, 3), (2, 4), (3, 4)]
    lines = ["10 1"]
    for k in range(10):
        a, b = genuine[k]
        lines.append(f"Barack_Obama\t{a}\t{b}")
        lines.append(f"Barack_Obama\t{(k % 4) + 1}\tJoe_Biden\t1")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_eval_lfw_json_contract(home, tiny_lfw):
    data = run_json(["eval", "lfw", "--data", str(tiny_lfw)])
    for key in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "eer", "failures_to_enrol", "images",
                "images_per_second"):
        assert key in data
    assert data["images"] == 5 and data["failures_to_enrol"] == 0
    assert data["accuracy"] == 1.0  # Obama vs Biden is easy
    assert data["tar_at_far_1e-3"] is None  # 10 impostor pairs cannot support FAR 1e-3: said, not invented


def test_calibrate_writes_a_site_table_the_pack_then_prefers(home, tmp_path):
    from tests.store.conftest import labelled_site_folder

    folder = labelled_site_folder(tmp_path / "site")
    data = run_json(["calibrate", "--data", str(folder), "--dataset", "site test images"])
    assert data["images"] == 32 and data["impostor_pairs"] >= 100
    assert (home / "calibration").is_dir()
    from vigil.config import get_settings
    from vigil.engine.packs import get_pack

    pack = get_pack("sface", get_settings())
    pack.reload_calibration()
    assert pack.calibration.source == "site" and pack.calibration.dataset == "site test images"
    pack.reload_calibration()
    # regression: the command used to rewrite the table with no audit entry (its helper imported
    # a module that does not exist and gave up silently). Read back as a new process would.
    from sqlalchemy import select

    from vigil.services import forget_contexts, get_vigil
    from vigil.store.schema import AuditEntry

    forget_contexts()
    with get_vigil(get_settings()).store.session() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "calibration.rebuilt"))
        details = json.loads(entry.details)
    assert details["new_sha256"] == data["new_sha256"] and details["old_source"] == "shipped"
    assert details["data"] == str(folder.resolve()) and details["model_id"] == "sface-2021dec-fp32-flip"
    forget_contexts()


def test_models_add_and_list_through_the_cli(home, tmp_path):
    from tests.engine import tiny_onnx

    model = tmp_path / "site.onnx"
    model.write_bytes(tiny_onnx.recogniser(metadata={"input_mean": 127.5, "input_std": 127.5}))
    added = run_json(["models", "add", str(model), "--name", "site1", "--licence", "vendor contract 7"])
    assert added["normalisation_from"] == "metadata" and added["status"] == "registered"
    rows = {r["pack"]: r for r in run_json(["models"])}
    assert rows["site1"]["licence"] == "vendor contract 7" and rows["site1"]["sha256"] == added["source_sha256"]
    assert rows["faceplugin"]["available"] is False and "vigil models install faceplugin" in rows["faceplugin"]["note"]
    bad = runner.invoke(app, ["models", "add", str(model), "--name", "site1", "--json"])
    assert bad.exit_code != 0 and "already registered" in str(bad.exception)


def test_models_install_refuses_a_file_that_is_not_the_pinned_one(home, tmp_path):
    """A tarball whose fr_feature.onnx is not faceplugin's: a clear error, nothing installed."""
    from tests.engine import tiny_onnx

    tgz = tiny_onnx.npm_tarball(tmp_path / "fake.tgz", "package/model/fr_feature.onnx", tiny_onnx.recogniser())
    proc = subprocess.run([sys.executable, "-m", "vigil", "models", "install", "faceplugin", "--from", tgz.as_uri(),
                           "--json"], capture_output=True, text=True,
                          env={"VIGIL_HOME": str(home), "PATH": "/usr/bin"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "is not the pinned" in json.loads(proc.stdout.strip().splitlines()[-1])["detail"]
    assert not (home / "model_registry").exists()


def test_eval_lfw_with_a_fused_pair_of_any_two_models(home, tiny_lfw, tmp_path):
    from tests.engine import tiny_onnx

    model = tmp_path / "site.onnx"
    model.write_bytes(tiny_onnx.recogniser())
    run_json(["models", "add", str(model), "--name", "site1", "--mean", "127.5", "--std", "127.5"])
    data = run_json(["eval", "lfw", "--data", str(tiny_lfw), "--pack", "fusion:sface+site1"])
    assert data["pack"] == "fusion:sface+site1" and set(data["component_accuracy"]) == {"sface", "site1"}
    assert len(data["fusion_weights_per_fold"]) == 10 and data["fusion_weight_shipped"] == 0.5
