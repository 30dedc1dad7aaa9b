"""Malformed, oversized and wrong-format requests get clear 4xx answers and change nothing;
every error, expected or not, is an RFC 9457 problem; cookie-authenticated state changes come
from the console's own origin; floods of failed logins are summarised in the audit log."""

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from tests.api.conftest import auth, unique
from tests.conftest import demo_bytes
from vigil.store.schema import ApiToken, AuditEntry, FaceImage, LoginThrottle
from vigil.timeutil import utcnow


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
    r = c.post(f"/api/alerts/{world['alert_id']}/decision", json={"decision": "maybe"}, headers=auth(world, "admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "decision"], r.text
    assert "decision: Input should be 'confirmed'" in r.json()["detail"]
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


# -- bounds: no parameter reaches the database that it cannot hold ------------------------------
BIG = 2**63  # one past the largest BIGINT: SQLite raised OverflowError (a 500) on 11 endpoints


def _raw(world):
    """A client that returns a 500 as a response instead of raising the server's exception."""
    return TestClient(world["app"], raise_server_exceptions=False)


def _is_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert body["status"] == status and body["type"].startswith("urn:vigil:problem:"), body
    assert isinstance(body["detail"], str) and body["title"] and body["error"], body
    return body


def test_ids_beyond_64_bits_and_below_one_are_422_not_500(world):
    c, admin = _raw(world), auth(world, "admin")
    dep, alert = world["deployment_id"], world["alert_id"]
    for bad in (BIG, 0, -1):
        for method, path, kw in (
            ("GET", f"/api/deployments/{bad}", {}), ("POST", f"/api/deployments/{bad}/authorise", {"json": {}}),
            ("POST", f"/api/deployments/{bad}/cancel", {}), ("POST", f"/api/deployments/{bad}/start", {"json": {}}),
            ("POST", f"/api/deployments/{bad}/stop", {}), ("POST", f"/api/deployments/{bad}/outcomes", {"json": {}}),
            ("GET", f"/api/alerts/{bad}", {}), ("POST", f"/api/alerts/{bad}/decision", {"json": {"decision": "unverified"}}),
            ("GET", f"/api/alerts/{bad}/probe.jpg", {}), ("GET", f"/api/alerts/{bad}/clip.avi", {}),
            ("GET", f"/api/reports/deployments/{bad}", {}), ("POST", f"/api/tokens/{bad}/revoke", {}),
        ):
            body = _is_problem(c.request(method, path, headers=admin, **kw), 422)
            assert body["errors"][0]["loc"][0] == "path", body
    for query in (f"deployment_id={BIG}", f"after_id={BIG}", "after_id=-1"):
        _is_problem(c.get(f"/api/alerts?{query}", headers=admin), 422)
    _is_problem(c.get(f"/api/alerts/stream?once=1&after_id={BIG}", headers=admin), 422)
    r = c.get(f"/api/alerts/stream?once=1&after_id={dep}", headers={**admin, "Last-Event-ID": str(BIG)})
    assert r.status_code == 200  # a resumed stream with an impossible id is ignored, not a 500
    for query in ("limit=-1", "limit=0", "limit=1001", "cursor=not%20a%20cursor"):
        _is_problem(c.get(f"/api/audit?{query}", headers=admin), 422)
    # the largest id the database holds is a valid id: not found, still no 500
    assert _is_problem(c.get(f"/api/deployments/{BIG - 1}", headers=admin), 404)["error"] == "NotFoundError"
    _is_problem(c.get(f"/api/alerts/{alert}/thumbnail.jpg", headers=admin), 422)  # probe | frame | watchlist
    _is_problem(c.get(f"/api/reports/deployments/{dep}?format=pdf", headers=admin), 422)


def test_nan_infinity_and_out_of_range_numbers_are_refused(world):
    c, admin = _raw(world), auth(world, "admin")
    plan = '{"name": "n", "cameras": [{"camera": "c1"}], "watchlists": ["wanted"], "legal_basis": "b", %s}'
    for field in ('"false_alert_rate": NaN', '"false_alert_rate": Infinity', '"category_rates": {"wanted": NaN}',
                  '"category_rates": {"wanted": 0.5}'):
        r = c.post("/api/deployments", content=(plan % field).encode(),
                   headers={**admin, "Content-Type": "application/json"})
        _is_problem(r, 422)
    # a boolean or a string is not a number (pydantic's lax mode read true as 1: the fuzzer found it)
    for body in (b'{"days": NaN}', b'{"days": -Infinity}', b'{"days": true}', b'{"days": "5"}'):
        r = c.post("/api/me/tokens", content=body, headers={**admin, "Content-Type": "application/json"})
        _is_problem(r, 422)
    for arrests in (BIG, True, "2"):
        _is_problem(c.post(f"/api/deployments/{world['deployment_id']}/outcomes", json={"arrests": arrests},
                           headers=admin), 422)
    _is_problem(c.get("/api/reports/annual/99999", headers=admin), 422)


def test_naive_and_aware_datetimes_mix_and_naive_means_utc(world):
    c, admin = _raw(world), auth(world, "admin")
    # a naive start and an aware end used to be compared as they came: TypeError, a 500
    plan = {"name": "mixed", "cameras": [{"camera": "c1"}], "watchlists": ["wanted"], "legal_basis": "b",
            "window_start": "2031-01-01T12:00:00", "window_end": "2031-01-01T11:00:00+00:00"}
    assert "the window must end after it starts" in _is_problem(c.post("/api/deployments", json=plan,
                                                                         headers=admin), 400)["detail"]
    name = unique("naive-expiry")
    r = c.post("/api/watchlists", json={"name": name, "purpose": "p", "expires_at": "2031-06-01T08:30:00"},
               headers=admin)
    assert r.status_code == 201, r.text
    shown = c.get(f"/api/watchlists/{name}", headers=admin).json()
    assert shown["expires_at"].startswith("2031-06-01T08:30:00"), shown  # read as UTC
    for when in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"):  # conversion would overflow
        _is_problem(c.post("/api/watchlists", json={"name": unique("far"), "expires_at": when}, headers=admin), 422)
    # a number is not a date-time (pydantic's lax mode read "0.5" as seconds since 1970)
    for url in ("/api/audit?until=0.5", "/api/searches?since=1700000000", "/api/audit?since=-3"):
        _is_problem(c.get(url, headers=admin), 422)


def test_text_fields_have_limits_and_a_refused_one_reaches_no_audit_entry(world):
    c, admin = _raw(world), auth(world, "admin")
    name = unique("huge-purpose")
    r = c.post("/api/watchlists", json={"name": name, "purpose": "x" * (15 * 1024 * 1024)}, headers=admin)
    body = _is_problem(r, 422)
    assert body["errors"] == [{"loc": ["body", "purpose"], "msg": "String should have at most 2000 characters",
                               "type": "string_too_long"}]
    assert len(r.content) < 2000  # the refused value is not echoed back
    for field, size in (("legal_basis", 2001), ("category", 41), ("pack", 21)):
        _is_problem(c.post("/api/watchlists", json={"name": name, field: "y" * size}, headers=admin), 422)
    _is_problem(c.post("/api/users", json={"username": "u", "role": "admin", "display_name": "d" * 201},
                       headers=admin), 422)
    _is_problem(c.get("/api/audit?action=" + "a" * 61, headers=admin), 422)
    _is_problem(c.post("/api/token", data={"username": "u", "password": "p" * 201}), 422)
    with world["vigil"].store.session() as s:  # a fresh session: nothing of it was stored or audited
        assert not s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.object_id == name))
        assert not s.scalar(select(func.count()).select_from(AuditEntry).where(
            func.length(AuditEntry.details) > 100_000))


# -- one error format, declared for every operation -----------------------------------------------
def test_every_kind_of_error_is_a_problem_document(world):
    c, admin = _raw(world), auth(world, "admin")
    assert _is_problem(c.get("/api/deployments"), 401)["error"] == "AuthenticationError"
    assert _is_problem(c.get("/api/audit", headers=auth(world, "operator")), 403)["error"] == "PermissionDenied"
    assert _is_problem(c.get("/api/galleries/nope", headers=admin), 404)["error"] == "NotFoundError"
    assert _is_problem(c.get("/api/no/such/route", headers=admin), 404)
    body = _is_problem(c.post("/api/deployments", json={"name": "x"}, headers=admin), 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "cameras"), ("body", "watchlists")}
    rejected = _is_problem(c.post("/api/galleries/custody/enrol", files={"image": ("x.jpg", b"", "image/jpeg")},
                                  data={"subject_name": "X"}, headers=admin), 422)
    assert rejected["error"] == "QualityError" and rejected["reasons"] and "empty" in rejected["detail"]
    big = b"\xff\xd8" + b"0" * (world["vigil"].settings.max_upload_bytes + 10)
    assert _is_problem(c.post("/api/galleries/custody/enrol", files={"image": ("b.jpg", big, "image/jpeg")},
                              headers=admin), 413)["error"] == "RequestTooLarge"
    schema = c.get("/openapi.json").json()
    declared = {path: {m: sorted(op["responses"]) for m, op in ops.items()} for path, ops in schema["paths"].items()}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert declared["/api/deployments/{dep_id}"]["get"] == ["200", "400", "401", "403", "404", "422", "500"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                if code >= "400":
                    assert response["content"] == {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, code)


def test_405_names_every_method_the_path_serves(world):
    c, admin = _raw(world), auth(world, "admin")
    for method, path, allow in (("PUT", "/api/deployments", "GET, POST"), ("PATCH", "/api/subjects/s1", "GET, DELETE"),
                                ("OPTIONS", "/api/galleries/custody", "GET, DELETE"), ("GET", "/api/token", "POST")):
        r = c.request(method, path, headers=admin)
        _is_problem(r, 405)
        assert r.headers["allow"] == allow, (method, path, r.headers["allow"])


def test_an_unexpected_error_is_a_bare_500_and_sql_errors_carry_no_parameters(world, monkeypatch, caplog):
    from vigil.services import audit_views

    secret = "Jane Doe, warrant W-4471"

    def broken(*args, **kwargs):
        raise RuntimeError(f"INSERT INTO audit_log VALUES ({secret!r})")

    monkeypatch.setattr(audit_views, "verify_audit", broken)
    with caplog.at_level("ERROR", logger="vigil.api"):
        r = _raw(world).get("/api/audit/verify", headers=auth(world, "admin"))
    body = _is_problem(r, 500)
    assert secret not in r.text and "Traceback" not in r.text and "INSERT" not in r.text
    assert body["incident"] in body["detail"] and body["incident"] in caplog.text and secret not in caplog.text
    engine = world["vigil"].store.engine  # a database error's message names no parameter either
    with pytest.raises(Exception) as raised, engine.connect() as conn:
        conn.execute(text("INSERT INTO no_such_table VALUES (:who)"), {"who": secret})
    assert "no_such_table" in str(raised.value) and secret not in str(raised.value)


# -- cross-site requests: the cookie alone does not carry a state change from another origin ------
def _console_login(world):
    browser = TestClient(world["app"])  # keeps the HttpOnly session cookie like a browser
    r = browser.post("/api/token", data={"username": "supervisor1", "password": "supervisor-password-123"})
    assert r.status_code == 200, r.text
    return browser


def _tokens(world) -> int:
    with world["vigil"].store.session() as s:
        return s.scalar(select(func.count()).select_from(ApiToken))


def test_a_cookie_authenticated_state_change_from_another_origin_is_refused(world):
    browser = _console_login(world)
    before = _tokens(world)
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {},
                    {"Referer": "http://evil.example/page"}, {"Origin": "http://testserver.evil.example"}):
        r = browser.post("/api/me/tokens", json={"name": "stolen"}, headers=headers)
        assert _is_problem(r, 403)["error"] == "CrossSiteRequestRefused", headers
        assert browser.post("/logout", headers=headers, follow_redirects=False).status_code == 403
    assert _tokens(world) == before  # read in a fresh session: nothing was minted
    assert browser.get("/api/me").status_code == 200  # reading with the cookie is unaffected
    for headers in ({"Origin": "http://testserver"}, {"Referer": "http://testserver/deployments"}):
        assert browser.post("/api/me/tokens", json={"name": "mine"}, headers=headers).status_code == 201
    bearer = {"Authorization": f"Bearer {world['tokens']['supervisor']}", "Origin": "https://evil.example"}
    assert TestClient(world["app"]).post("/api/me/tokens", json={"name": "script"}, headers=bearer).status_code == 201
    assert _tokens(world) == before + 3
    login = {"username": "auditor1", "password": "auditor-password-123"}  # no login from another site's page
    assert _is_problem(TestClient(world["app"]).post("/api/token", data=login,
                                                     headers={"Origin": "https://evil.example"}), 403)
    assert TestClient(world["app"]).post("/api/token", data=login).status_code == 200  # a script names none


def test_the_session_cookie_is_secure_over_tls_or_behind_a_declared_proxy(world):
    form = {"username": "auditor1", "password": "auditor-password-123"}
    plain = TestClient(world["app"]).post("/api/token", data=form)
    assert plain.status_code == 200 and "secure" not in plain.headers["set-cookie"].lower()
    tls = TestClient(world["app"], base_url="https://testserver").post("/api/token", data=form)
    assert "; secure" in tls.headers["set-cookie"].lower()
    world["app"].state.secure_cookies = True  # what vigil serve --behind-proxy / --tls-cert sets
    try:
        proxied = TestClient(world["app"]).post("/api/token", data=form)
    finally:
        world["app"].state.secure_cookies = False
    assert "; secure" in proxied.headers["set-cookie"].lower()


# -- a password spray from one address: a few entries, then one summary a minute ------------------
def test_a_login_spray_is_rate_limited_and_summarised_in_the_audit_log(world):
    from vigil.services.login_audit import summarise_ended_minutes

    vigil, address = world["vigil"], "203.0.113.66"
    sprayer = TestClient(world["app"], client=(address, 5000))
    answers = [sprayer.post("/api/token", data={"username": f"guess{i}", "password": "Winter2026!"})
               for i in range(40)]
    assert all(r.status_code == 401 for r in answers)
    assert "too many failed logins" in answers[-1].json()["detail"]  # the address is locked after 20

    def entries():
        with vigil.store.session() as s:  # a fresh session, after every request has finished
            rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            return [(e.action, json.loads(e.details)) for e in rows
                    if e.details and address in e.details]

    one_by_one = entries()
    limit = vigil.settings.login_audit_per_address_per_minute
    assert len(one_by_one) == limit + 1, one_by_one  # the first few, and the lock being set
    assert [d.get("locked") for a, d in one_by_one if a == "auth.login_failed" and d.get("locked")] == [["address"]]
    with vigil.store.session() as s:  # the minute ends
        s.get(LoginThrottle, f"audit:{address}").locked_until = utcnow() - timedelta(seconds=1)
    assert summarise_ended_minutes(vigil) == 1
    summary = [d for a, d in entries() if a == "auth.login_failures_summarised"]
    assert len(summary) == 1 and summary[0]["summarised"] == 40 - limit - 1, summary  # 29 counted, not listed
    assert summary[0]["audited_one_by_one_first"] == limit and summary[0]["client"] == address
    assert len(entries()) == limit + 2  # 40 attempts, 12 entries (it was 40)
    with vigil.store.session() as s:
        assert vigil.audit.verify(s)["ok"]  # the summary is chained like any entry
