"""Malformed, oversized and wrong-format requests get clear 4xx answers and change nothing."""

from sqlalchemy import func, select

from tests.api.conftest import auth
from tests.conftest import demo_bytes
from vigil.store.schema import FaceImage


def _images(world):
    with world["vigil"].store.session() as s:
        return s.scalar(select(func.count()).select_from(FaceImage))


def test_oversized_upload_is_refused_before_parsing(world):
    before = _images(world)
    big = b"\xff\xd8" + b"0" * (world["vigil"].settings.max_upload_bytes + 10)
    r = world["client"].post("/api/galleries/custody/enrol", files={"image": ("big.jpg", big, "image/jpeg")},
                             data={"subject_name": "X"}, headers=auth(world, "admin"))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert _images(world) == before


def test_corrupt_and_wrong_format_images(world):
    for payload, expect in ((b"", "empty"), (b"%PDF-1.4 not an image", "not a recognised"),
                            (demo_bytes("obama.jpg")[:2000], "corrupt")):
        r = world["client"].post("/api/galleries/custody/enrol", files={"image": ("x.jpg", payload, "image/jpeg")},
                                 data={"subject_name": "X"}, headers=auth(world, "admin"))
        assert r.status_code == 422 and expect in r.json()["detail"], r.text


def test_malformed_json_and_missing_fields(world):
    c = world["client"]
    r = c.post("/api/deployments", content=b"{not json", headers={**auth(world, "admin"),
                                                                 "Content-Type": "application/json"})
    assert r.status_code == 422
    r = c.post("/api/deployments", json={"name": "x"}, headers=auth(world, "admin"))
    assert r.status_code == 422
    r = c.post("/api/alerts/999999/decision", json={"decision": "maybe"}, headers=auth(world, "admin"))
    assert r.status_code in (400, 404)
    r = c.post(f"/api/alerts/{world['alert_id']}/decision", json={"decision": "maybe"}, headers=auth(world, "admin"))
    assert r.status_code == 400 and "decision must be" in r.json()["detail"]
    r = c.post("/api/search", files={"probe": ("p.jpg", demo_bytes("obama.jpg"), "image/jpeg")},
               data={"gallery": "custody"}, headers=auth(world, "investigator"))
    assert r.status_code == 422 and "case reference" in r.json()["detail"]
    r = c.get("/api/galleries/no-such-gallery", headers=auth(world, "admin"))
    assert r.status_code == 404


def test_login_errors_are_uniform_and_throttled(world):
    c = world["client"]
    bad = c.post("/api/token", data={"username": "auditor1", "password": "wrong-wrong-wrong"})
    unknown = c.post("/api/token", data={"username": "nobody-at-all", "password": "wrong-wrong-wrong"})
    assert bad.status_code == unknown.status_code == 401
    assert bad.json()["detail"] == unknown.json()["detail"]  # no hint which usernames exist
    ok = c.post("/api/token", data={"username": "auditor1", "password": "auditor-password-123"})
    assert ok.status_code == 200 and ok.json()["role"] == "auditor"
