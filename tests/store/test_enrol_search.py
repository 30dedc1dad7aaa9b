"""Galleries, enrolment, search, and their rules (through the service layer)."""

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes, demo_path
from vigil.errors import PolicyError, VigilError
from vigil.services.collections import authorise_watchlist, create_collection, show_collection
from vigil.services.enrolment import EnrolItem, enrol_files, enrol_image, items_from_csv, items_from_dir
from vigil.services.search import run_search
from vigil.store.schema import AuditEntry, FaceImage, SearchRecord, TemplateRow


def make_gallery(vigil, actor, name="custody", kind="gallery", pack=None) -> dict:
    return create_collection(vigil, actor, kind, name, pack=pack, purpose="test purpose")


def enrol(vigil, actor, coll: dict, photo: str, name: str, **kw) -> dict:
    return enrol_image(vigil, actor, coll["kind"], coll["name"], demo_bytes(photo), EnrolItem(photo, name, **kw))


def search(vigil, actor, coll: dict, probe, case="CASE-1", reason="robbery suspect", top=5, **kw) -> dict:
    return run_search(vigil, actor, coll["kind"], coll["name"], case_ref=case, reason=reason, top=top, path=probe, **kw)


def test_enrol_folder_then_search_finds_the_right_person(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    report = enrol_files(vigil, admin, "gallery", "custody", items_from_dir(people_dir), show_progress=False)
    assert report["enrolled"] == 4 and report["skipped"] == 0 and not report["rejected"]
    assert len(report["subjects"]) == 2  # three photos of one person make one subject
    assert report["authorisation_withdrawn"] == []
    result = search(vigil, admin, coll, demo_path("obama_small.jpg", tmp_path))
    face = result["faces"][0]
    top = face["candidates"][0]
    assert top["name"] == "Barack Obama"
    assert top["score"] > face["candidates"][1]["score"]
    assert 0 < top["fmr"] < 1e-3
    assert top["expected_false_candidates_at_this_score"] == pytest.approx(top["fmr"] * result["gallery_templates"])
    with vigil.store.session() as s:
        rec = s.get(SearchRecord, result["id"])
        assert rec.case_ref == "CASE-1" and rec.results[0]["candidates"][0]["subject_id"] == top["subject_id"]
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "search.run")) == 1


def test_two_faces_in_a_probe_are_both_searched(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    enrol_files(vigil, admin, "gallery", "custody", items_from_dir(people_dir), show_progress=False)
    result = search(vigil, admin, coll, demo_path("obama_and_biden.jpg", tmp_path), "C2", "test", 3)
    names = {f["candidates"][0]["name"] for f in result["faces"]}
    assert names == {"Barack Obama", "Joe Biden"}


def test_search_without_case_or_reason_is_refused_and_recorded(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    for case, reason in (("", "why"), ("C", " ")):
        with pytest.raises(PolicyError, match="case reference"):
            search(vigil, admin, coll, demo_path("obama.jpg", tmp_path), case, reason)
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "search.refused")) == 2
        assert s.scalar(select(func.count()).select_from(SearchRecord)) == 0


def test_contact_sheet_is_an_audited_export(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    enrol_files(vigil, admin, "gallery", "custody", items_from_dir(people_dir), show_progress=False)
    sheet = tmp_path / "out" / "sheet.html"
    result = search(vigil, admin, coll, demo_path("obama_small.jpg", tmp_path), sheet=sheet)
    html = sheet.read_text()
    assert result["contact_sheet"] == str(sheet) and "Barack Obama" in html
    # the sheet states the threshold and marks the candidates at or above it (issue #15)
    threshold = result["threshold_fmr_1e-4"]
    assert f"score {threshold:.3f}" in html
    above = [c for c in result["faces"][0]["candidates"] if c["score"] >= threshold]
    assert above and html.count("<b>above threshold</b>") == len(above)
    with vigil.store.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "export.written"))
        assert entry is not None and json.loads(entry.details)["search_id"] == result["id"]


def test_same_image_twice_is_enrolled_once(vigil, admin, tmp_path):
    coll = make_gallery(vigil, admin)
    first = enrol(vigil, admin, coll, "obama.jpg", "Barack Obama")
    again = enrol(vigil, admin, coll, "obama.jpg", "Someone Else")
    assert first["status"] == "enrolled" and again["status"] == "skipped"
    assert again["subject_id"] == first["subject_id"]
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceImage)) == 1


def test_lookalike_warning_when_the_same_face_comes_under_another_name(vigil, admin):
    from tests.store.conftest import variant

    make_gallery(vigil, admin)
    enrol_image(vigil, admin, "gallery", "custody", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    out = enrol_image(vigil, admin, "gallery", "custody", variant("obama.jpg", 3), EnrolItem("b", "John Smith"))
    assert out["status"] == "enrolled" and "looks like subject" in out["warning"]


def test_bad_images_are_rejected_with_reasons_and_nothing_is_stored(vigil, admin, tmp_path):
    make_gallery(vigil, admin)
    cases = {b"": "empty", b"not an image": "not a recognised", demo_bytes("obama.jpg")[:3000]: "corrupt"}
    for data, why in cases.items():
        out = enrol_image(vigil, admin, "gallery", "custody", data, EnrolItem("x", "X"))
        assert out["status"] == "rejected" and why in " ".join(out["reasons"])
    import cv2
    import numpy as np

    blank = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))[1].tobytes()
    out = enrol_image(vigil, admin, "gallery", "custody", blank, EnrolItem("blank", "X"))
    assert out["status"] == "rejected" and "no face" in out["reasons"][0]
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceImage)) == 0
        assert s.scalar(select(func.count()).select_from(TemplateRow)) == 0


def test_csv_manifest(vigil, admin, tmp_path):
    make_gallery(vigil, admin)
    for f in ("obama.jpg", "biden.jpg"):
        demo_path(f, tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,name,category,reference\nobama.jpg,Barack Obama,wanted,W-1\nbiden.jpg,Joe Biden,,\n")
    report = enrol_files(vigil, admin, "gallery", "custody", items_from_csv(manifest), show_progress=False)
    assert report["enrolled"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("file,who\nx,y\n")
    with pytest.raises(VigilError, match="columns"):
        items_from_csv(bad)


def test_watchlist_needs_purpose_and_edits_withdraw_authorisation(vigil, admin):
    with pytest.raises(PolicyError, match="purpose"):
        create_collection(vigil, admin, "watchlist", "w")
    wl = make_gallery(vigil, admin, "wanted", "watchlist")
    authorise_watchlist(vigil, admin, "wanted")
    out = enrol(vigil, admin, wl, "obama.jpg", "Barack Obama")
    assert out["authorisation_withdrawn"] == [
        {"watchlist": "wanted", "because": out["authorisation_withdrawn"][0]["because"]}]
    assert show_collection(vigil, admin, "watchlist", "wanted")["authorised_by"] is None


def test_the_cli_table_marks_candidates_above_the_threshold(vigil, admin, people_dir, tmp_path):
    from tests.cli_run import run_cli

    make_gallery(vigil, admin)
    enrol_files(vigil, admin, "gallery", "custody", items_from_dir(people_dir), show_progress=False)
    out = run_cli(vigil.settings.home, "search", str(demo_path("obama_small.jpg", tmp_path)), "--gallery", "custody",
                  "--case", "CASE-9", "--reason", "robbery suspect")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1]: line for line in out.stdout.splitlines() if line.startswith("│ ") and line.split()[1].isdigit()}
    assert "above" in rows["1"] and "below" in rows["2"], out.stdout  # Obama (rank 1) above, Biden below
    assert "Threshold (1 in 10,000 false match rate)" in out.stdout


def test_a_group_photo_is_refused_until_a_face_is_chosen(vigil, admin, tmp_path):
    """Issue #15: a group photo was enrolled as one arbitrary face with no warning."""
    from tests.cli_run import run_cli

    coll = make_gallery(vigil, admin)
    refused = enrol(vigil, admin, coll, "obama_and_biden.jpg", "Joe Biden")
    assert refused["status"] == "rejected" and "choose the one to enrol with --face" in refused["reasons"][0]
    # through the CLI, choosing the right-hand face (Biden stands on the right in this photo)
    out = run_cli(vigil.settings.home, "enroll", str(demo_path("obama_and_biden.jpg", tmp_path)), "--gallery",
                  "custody", "--name", "Joe Biden", "--face", "2", "--json")
    assert out.returncode == 0, out.stderr
    found = search(vigil, admin, coll, demo_path("biden.jpg", tmp_path))
    assert found["faces"][0]["candidates"][0]["name"] == "Joe Biden"
    assert found["faces"][0]["candidates"][0]["score"] >= found["threshold_fmr_1e-4"]
    # importing an existing collection as it is (quality gate off): its clearest face, with a warning
    from tests.store.conftest import variant

    other = tmp_path / "group-copy.jpg"
    other.write_bytes(variant("obama_and_biden.jpg", 1))  # another file of that photo (not a repeat)
    kept = enrol_files(vigil, admin, "gallery", "custody", [(other, EnrolItem("group", "Imported as is"))],
                       quality_gate=False, show_progress=False, with_outcomes=True)
    assert kept["enrolled"] == 1 and "imported as it is with its clearest face" in kept["outcomes"][0]["warning"]
    wrong = run_cli(vigil.settings.home, "enroll", str(demo_path("obama.jpg", tmp_path)), "--gallery", "custody",
                    "--name", "Barack Obama", "--face", "2")
    assert wrong.returncode != 0 and "choose a face from 1 to 1" in wrong.stdout + wrong.stderr


def test_a_video_search_says_when_each_face_was_seen(vigil, admin, people_dir, tmp_path):
    """Issue #15: the human output of a video search left out when in the video each face was seen."""
    from tests.cli_run import run_cli
    from tests.live.conftest import two_people_video

    make_gallery(vigil, admin)
    enrol_files(vigil, admin, "gallery", "custody", items_from_dir(people_dir), show_progress=False)
    clip = two_people_video(tmp_path / "clip.mp4", seconds=2.0, fps=10)
    out = run_cli(vigil.settings.home, "search", str(clip), "--gallery", "custody", "--case", "CASE-V",
                  "--reason", "who walked past the depot")
    assert out.returncode == 0, out.stderr
    seen = [line for line in out.stdout.splitlines() if "seen at" in line]
    assert len(seen) >= 2 and all(" s into the video (best of " in line for line in seen)
    data = json.loads(run_cli(vigil.settings.home, "search", str(clip), "--gallery", "custody", "--case", "CASE-V",
                              "--reason", "who walked past the depot", "--json").stdout)
    assert data["probe"] == "video" and all(f["time"] is not None and f["shots"] >= 1 for f in data["faces"])
    assert {f["candidates"][0]["name"] for f in data["faces"]} >= {"Barack Obama", "Joe Biden"}
