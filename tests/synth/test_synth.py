"""`vigil synth crowd` on the demo portraits shipped in the package (no ../shared data)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vigil.errors import VigilError
from vigil.synth.crowd import CrowdOptions, generate_crowd
from vigil.synth.faces import cut_head, display_name
from vigil.synth.render import motion_kernel

W, H, FPS, SECONDS, SEED = 320, 240, 25, 3, 1
ARGS = ["--width", str(W), "--height", str(H), "--fps", str(FPS), "--seconds", str(SECONDS),
        "--min-face", "20", "--max-face", "80", "--watchlist-size", "1", "--seed", str(SEED)]


@pytest.fixture(scope="module")
def crowd(tmp_path_factory, engine):
    out = tmp_path_factory.mktemp("synth") / "crowd.mp4"
    opts = CrowdOptions(out=out, manifest=out.with_name("watchlist.csv"), width=W, height=H, fps=FPS,
                        seconds=SECONDS, min_face=20, max_face=80, watchlist_size=1, seed=SEED)
    summary = generate_crowd(opts, engine=engine)
    truth = json.loads(Path(summary["truth"]).read_text())
    return summary, truth


def test_video_opens_with_expected_frames_and_size(crowd):
    summary, truth = crowd
    cap = cv2.VideoCapture(summary["video"])
    assert cap.isOpened()
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (W, H)
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == FPS * SECONDS == truth["video"]["frames"]
    assert truth["video"]["path"] == "crowd.mp4"  # relative to the truth file


def test_truth_people_and_watchlist(crowd):
    _, truth = crowd
    people = {p["person_id"]: p for p in truth["people"]}
    assert set(people) == {"Barack Obama", "Joe Biden"}
    obama, biden = people["Barack Obama"], people["Joe Biden"]
    assert obama["watchlisted"] and not biden["watchlisted"] and biden["watchlist_image"] is None
    assert Path(obama["watchlist_image"]).name == "obama.jpg"
    assert obama["crowd_image"] != obama["watchlist_image"]
    assert Path(obama["crowd_image"]).name in {"obama_speech.jpg", "obama_standing.jpg"}
    assert truth["watchlist"] == [{"name": "Barack Obama", "folder": "Barack_Obama",
                                   "path": obama["watchlist_image"]}]


def test_boxes_inside_frame_and_small_faces_present(crowd):
    _, truth = crowd
    boxes = [b for p in truth["people"] for b in p["boxes"]]
    assert boxes
    for f, x, y, w, h in boxes:
        assert 0 <= f < truth["video"]["frames"]
        assert x >= 0 and y >= 0 and x + w <= W and y + h <= H and w > 0 and h > 0
    assert any(b[3] <= 40 for b in boxes)  # --min-face 20: people at the back
    for p in truth["people"]:
        if p["boxes"]:
            frames = [b[0] for b in p["boxes"]]
            assert frames == sorted(frames) and (p["first_frame"], p["last_frame"]) == (frames[0], frames[-1])
            assert p["min_face_px"] == min(b[3] for b in p["boxes"])


def test_detector_finds_the_face_in_its_truth_box(crowd, engine):
    summary, truth = crowd
    large = [b for p in truth["people"] for b in p["boxes"] if b[3] >= 60]
    assert large, "a walker at --max-face 80 should reach 60 px"
    f, x, y, w, h = large[len(large) // 2]
    cap = cv2.VideoCapture(summary["video"])
    cap.set(cv2.CAP_PROP_POS_FRAMES, f)
    ok, frame = cap.read()
    assert ok
    centres = [face.center for face in engine.detect(frame)]
    assert any(x <= cx <= x + w and y <= cy <= y + h for cx, cy in centres)


def test_manifest_columns(crowd):
    summary, _ = crowd
    with open(summary["manifest"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "name", "category", "reference"]
    assert [r["name"] for r in rows] == ["Barack Obama"]
    assert Path(rows[0]["path"]).is_file() and rows[0]["category"] == "person-of-interest"


def test_cli_same_seed_same_truth(crowd, home, tmp_path):
    from vigil.cli.synth_cmd import register

    app = typer.Typer()
    register(app)
    out = tmp_path / "crowd.mp4"  # same file name as the fixture: the truth is byte-identical
    result = CliRunner().invoke(app, ["synth", "crowd", "--out", str(out), "--json", *ARGS])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["frames"] == FPS * SECONDS and summary["watchlisted_walkers"] == 1
    assert Path(summary["truth"]).read_text() == Path(crowd[0]["truth"]).read_text()


def test_cut_head_is_soft_edged(engine):
    from importlib import resources

    from vigil.engine.faces import primary_face
    from vigil.engine.images import read_image_file

    path = Path(str(resources.files("vigil") / "demo_data" / "biden.jpg"))
    image = read_image_file(path)
    sprite = cut_head(image, primary_face(engine.detect(image), image.shape), path)
    alpha = sprite.rgba[:, :, 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # corners transparent: no rectangle edge
    assert alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] > 0.99
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 0.05 * alpha.size  # a feathered rim


def test_helpers_and_bad_options(tmp_path, engine):
    assert display_name("George_W_Bush") == "George W Bush"
    assert motion_kernel(0.5, 0.0) is None
    kernel = motion_kernel(30.0, 0.0)
    assert kernel is not None and np.isclose(kernel.sum(), 1.0)
    with pytest.raises(VigilError):
        generate_crowd(CrowdOptions(out=tmp_path / "x.mp4", min_face=50, max_face=30), engine=engine)
    with pytest.raises(VigilError):
        generate_crowd(CrowdOptions(out=tmp_path / "x.mp4", width=320, height=240, max_face=200), engine=engine)


def test_manifest_with_several_references_never_enrols_the_walking_photo(tmp_path, engine):
    from tests.conftest import demo_bytes

    people = tmp_path / "people"
    (people / "Barack_Obama").mkdir(parents=True)
    (people / "Joe_Biden").mkdir()
    for name in ("obama.jpg", "obama_speech.jpg", "obama_standing.jpg", "obama_small.jpg"):
        (people / "Barack_Obama" / name).write_bytes(demo_bytes(name))
    (people / "Joe_Biden" / "biden.jpg").write_bytes(demo_bytes("biden.jpg"))
    out = tmp_path / "crowd.mp4"
    opts = CrowdOptions(out=out, manifest=tmp_path / "watchlist.csv", people_dir=people, width=W, height=H,
                        fps=FPS, seconds=1, min_face=20, max_face=80, watchlist_size=1, seed=SEED, references=3)
    summary = generate_crowd(opts, engine=engine)
    truth = json.loads(Path(summary["truth"]).read_text())
    (obama,) = [p for p in truth["people"] if p["watchlisted"]]
    with open(summary["manifest"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    paths = [Path(r["path"]).resolve() for r in rows]
    assert [r["name"] for r in rows] == ["Barack Obama"] * 3  # one subject, three enrolment photos
    assert len(set(paths)) == 3 and Path(obama["crowd_image"]).resolve() not in paths
    assert paths[0] == Path(obama["watchlist_image"]).resolve()  # the first is the one the truth names
    with pytest.raises(VigilError, match="--references"):
        generate_crowd(CrowdOptions(out=tmp_path / "x.mp4", references=4), engine=engine)
