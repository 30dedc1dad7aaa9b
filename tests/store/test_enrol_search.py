"""Galleries, enrolment, search, and their rules."""

import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes, demo_path
from vigil.errors import PolicyError, VigilError
from vigil.retro.enrolment import Enroller, EnrolItem, items_from_csv, items_from_dir
from vigil.retro.search import SearchRequest, run_search
from vigil.store.collections import create_collection, get_collection
from vigil.store.schema import AuditEntry, FaceImage, SearchRecord, TemplateRow


def make_gallery(vigil, actor, name="custody", kind="gallery"):
    engine = vigil.engine()
    with vigil.store.session() as s:
        return create_collection(s, vigil.store.audit, actor, kind, name, pack="sface", model_id=engine.model_id,
                                 purpose="test purpose")


def test_enrol_folder_then_search_finds_the_right_person(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    report = enroller.enrol_many(items_from_dir(people_dir), show_progress=False).to_dict()
    assert report["enrolled"] == 4 and report["skipped"] == 0 and not report["rejected"]
    assert len(report["subjects"]) == 2  # three photos of one person make one subject
    probe = demo_path("obama_small.jpg", tmp_path)
    result = run_search(vigil, admin, SearchRequest(coll, "CASE-1", "robbery suspect", 5), path=probe)
    face = result["faces"][0]
    top = face["candidates"][0]
    assert top["name"] == "Barack Obama"
    assert top["score"] > face["candidates"][1]["score"]
    assert 0 < top["fmr"] < 1e-3
    assert top["expected_false_candidates_at_this_score"] == pytest.approx(top["fmr"] * result["gallery_templates"])
    with vigil.store.session() as s:
        rec = s.get(SearchRecord, result["search_id"])
        assert rec.case_ref == "CASE-1" and rec.results[0]["candidates"][0]["subject_id"] == top["subject_id"]
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "search.run")) == 1


def test_two_faces_in_a_probe_are_both_searched(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll).enrol_many(items_from_dir(people_dir),
                                                                                 show_progress=False)
    result = run_search(vigil, admin, SearchRequest(coll, "C2", "test", 3),
                        path=demo_path("obama_and_biden.jpg", tmp_path))
    names = {f["candidates"][0]["name"] for f in result["faces"]}
    assert names == {"Barack Obama", "Joe Biden"}


def test_search_without_case_or_reason_is_refused_and_recorded(vigil, admin, people_dir, tmp_path):
    coll = make_gallery(vigil, admin)
    for case, reason in (("", "why"), ("C", " ")):
        with pytest.raises(PolicyError, match="case reference"):
            run_search(vigil, admin, SearchRequest(coll, case, reason), path=demo_path("obama.jpg", tmp_path))
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "search.refused")) == 2
        assert s.scalar(select(func.count()).select_from(SearchRecord)) == 0


def test_same_image_twice_is_enrolled_once(vigil, admin, tmp_path):
    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    first = enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    again = enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("b", "Someone Else"))
    assert first.status == "enrolled" and again.status == "skipped" and again.subject_id == first.subject_id
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceImage)) == 1


def test_lookalike_warning_when_the_same_face_comes_under_another_name(vigil, admin):
    from tests.store.conftest import variant

    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    out = enroller.enrol_bytes(variant("obama.jpg", 3), EnrolItem("b", "John Smith"))
    assert out.status == "enrolled" and out.warning and "looks like subject" in out.warning


def test_bad_images_are_rejected_with_reasons_and_nothing_is_stored(vigil, admin, tmp_path):
    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    cases = {b"": "empty", b"not an image": "not a recognised", demo_bytes("obama.jpg")[:3000]: "corrupt"}
    for data, why in cases.items():
        out = enroller.enrol_bytes(data, EnrolItem("x", "X"))
        assert out.status == "rejected" and why in " ".join(out.reasons)
    import numpy as np
    import cv2

    blank = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))[1].tobytes()
    out = enroller.enrol_bytes(blank, EnrolItem("blank", "X"))
    assert out.status == "rejected" and "no face" in out.reasons[0]
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceImage)) == 0
        assert s.scalar(select(func.count()).select_from(TemplateRow)) == 0


def test_csv_manifest(vigil, admin, tmp_path):
    coll = make_gallery(vigil, admin)
    for f in ("obama.jpg", "biden.jpg"):
        demo_path(f, tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,name,category,reference\nobama.jpg,Barack Obama,wanted,W-1\nbiden.jpg,Joe Biden,,\n")
    report = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll).enrol_many(
        items_from_csv(manifest), show_progress=False)
    assert report.count("enrolled") == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("file,who\nx,y\n")
    with pytest.raises(VigilError, match="columns"):
        items_from_csv(bad)


def test_watchlist_needs_purpose_and_edits_withdraw_authorisation(vigil, admin):
    from vigil.store.collections import authorise_watchlist

    engine = vigil.engine()
    with vigil.store.session() as s, pytest.raises(PolicyError, match="purpose"):
        create_collection(s, vigil.store.audit, admin, "watchlist", "w", pack="sface", model_id=engine.model_id)
    wl = make_gallery(vigil, admin, "wanted", "watchlist")
    with vigil.store.session() as s:
        authorise_watchlist(s, vigil.store.audit, admin, get_collection(s, "watchlist", "wanted"))
    Enroller(vigil.store, engine, vigil.indexes, admin, wl).enrol_bytes(demo_bytes("obama.jpg"),
                                                                        EnrolItem("a", "Barack Obama"))
    with vigil.store.session() as s:
        assert get_collection(s, "watchlist", "wanted").authorised_by is None
