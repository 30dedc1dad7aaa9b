"""Accounts through the real front ends: login lockout, server-side sessions (logout, password
reset, disable, role change), and the CLI's identity. Every assertion about what was stored
is made in a fresh session, after the request under test has finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)
from vigil.store.schema import ApiToken, AuditEntry, LoginSession, LoginThrottle
from vigil.timeutil import as_utc, utcnow

PASSWORD = "correct horse battery"
SAME_ORIGIN = {"Origin": "http://testserver"}  # what a browser sends with the console's own requests


@pytest.fixture()
def app(vigil, settings):  # noqa: F811
    from vigil.server import create_app

    return create_app(settings, retention_every=None)


@pytest.fixture()
def client(app):
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture()
def olive(vigil, admin):  # noqa: F811
    from vigil.services.accounts import add_user

    add_user(vigil, admin, "olive", "operator", password=PASSWORD)
    return "olive"


def login(client, username=None, password=PASSWORD, **kw):
    return client.post("/api/token", data={"username": username or "olive", "password": password}, **kw)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def me(app, token: str) -> int:
    """Status of GET /api/me with only this credential (a fresh client: no cookie jar)."""
    return TestClient(app).get("/api/me", headers=bearer(token)).status_code


def actions(vigil, action: str) -> list[AuditEntry]:  # noqa: F811
    with vigil.store.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


# -- 1. lockout --------------------------------------------------------------------------------
def test_failed_logins_lock_the_account_even_for_the_right_password(vigil, app, client, olive):  # noqa: F811
    for _ in range(7):
        r = login(client, password="wrong-password-123")
        assert r.status_code == 401
    r = login(client)
    assert r.status_code == 401 and "too many failed logins" in r.json()["detail"], r.text
    with vigil.store.session() as s:  # a fresh transaction: the counts survived the refusals
        throttle = s.get(LoginThrottle, "user:olive")
        assert throttle is not None and as_utc(throttle.locked_until) > utcnow() + timedelta(seconds=200)
        assert s.scalar(select(func.count()).select_from(LoginSession)) == 0
    failed = actions(vigil, "auth.login_failed")
    assert [e.object_id for e in failed] == ["olive"] * 5  # the 6th and 7th were refused before any check
    assert json.loads(failed[-1].details)["locked"] == ["account"]
    refused = actions(vigil, "auth.login_refused")
    assert len(refused) == 3 and json.loads(refused[-1].details)["why"].startswith("account locked")
    assert not actions(vigil, "auth.login")


def test_lock_expires_and_a_success_clears_the_account_count(vigil, client, olive):  # noqa: F811
    for _ in range(4):
        assert login(client, password="wrong-password-123").status_code == 401
    assert login(client).status_code == 200
    with vigil.store.session() as s:
        assert s.get(LoginThrottle, "user:olive") is None
        assert s.get(LoginThrottle, "addr:testclient").failures == 4
    for _ in range(5):
        login(client, password="wrong-password-123")
    with vigil.store.session() as s:  # the lock has run out
        s.get(LoginThrottle, "user:olive").locked_until = utcnow() - timedelta(seconds=1)
    assert login(client).status_code == 200


def test_failures_from_one_address_lock_that_address_for_every_account(vigil, app, olive):  # noqa: F811
    vigil.settings.login_max_failures_per_address = 4
    attacker = TestClient(app, client=("203.0.113.7", 4000))
    for i in range(4):  # a different (unknown) username each time: no account reaches its limit
        assert login(attacker, f"probe{i}", "wrong-password-123").status_code == 401
    r = login(attacker)
    assert r.status_code == 401 and "too many failed logins" in r.json()["detail"]
    assert login(TestClient(app, client=("198.51.100.2", 4000))).status_code == 200  # another address
    with vigil.store.session() as s:
        assert as_utc(s.get(LoginThrottle, "addr:203.0.113.7").locked_until) > utcnow()
    assert json.loads(actions(vigil, "auth.login_refused")[-1].details)["why"].startswith("address locked")


# -- 2. sessions ------------------------------------------------------------------------------
def _session_and_token(app, client):
    access = login(client).json()["access_token"]
    r = TestClient(app).post("/api/me/tokens", json={"name": "laptop"}, headers=bearer(access))
    assert r.status_code == 201, r.text
    minted = r.json()["token"]
    assert me(app, access) == 200 and me(app, minted) == 200
    return access, minted


def test_logout_ends_the_session_and_the_tokens_minted_from_it(vigil, app, client, olive):  # noqa: F811
    access, minted = _session_and_token(app, client)
    other, _ = _session_and_token(app, client)  # a second login of the same user
    r = TestClient(app).post("/api/logout", headers=bearer(access))
    assert r.status_code == 200 and r.json()["session_ended"] and r.json()["tokens_revoked"] == 1
    assert me(app, access) == 401 and me(app, minted) == 401
    assert me(app, other) == 200  # logout ends this session only
    with vigil.store.session() as s:
        ended = s.scalars(select(LoginSession).where(LoginSession.revoked_at.is_not(None))).all()
        assert [e.revoked_reason for e in ended] == ["logout"]
        assert s.scalar(select(ApiToken).where(ApiToken.session_id == ended[0].id)).revoked_at is not None
    assert actions(vigil, "auth.logout")[-1].object_id == ended[0].id


def test_the_console_cookie_is_ended_by_logout_too(app, olive):
    browser = TestClient(app)
    assert login(browser).status_code == 200 and browser.get("/api/me").status_code == 200
    cookie = browser.cookies.get("vigil_session")
    assert browser.post("/api/logout", headers=SAME_ORIGIN).status_code == 200
    replay = TestClient(app)
    replay.cookies.set("vigil_session", cookie)
    assert replay.get("/api/me").status_code == 401


def test_the_console_log_out_button_ends_the_server_side_session(app, olive):
    browser = TestClient(app)
    assert login(browser).status_code == 200
    cookie = browser.cookies.get("vigil_session")
    assert browser.post("/logout", headers=SAME_ORIGIN, follow_redirects=False).status_code == 303
    replay = TestClient(app)
    replay.cookies.set("vigil_session", cookie)
    assert replay.get("/api/me").status_code == 401


def test_cli_password_reset_ends_every_session_and_token(vigil, app, client, olive, admin):  # noqa: F811
    from typer.testing import CliRunner

    from vigil.cli import app as cli
    from vigil.services.accounts import create_token

    access, minted = _session_and_token(app, client)
    standalone = create_token(vigil, admin, for_user="olive", name="script")["token"]  # not from a session
    assert me(app, standalone) == 200
    result = CliRunner().invoke(cli, ["user", "reset-password", "olive", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sessions_revoked"] == 1 and data["tokens_revoked"] == 2
    assert me(app, access) == 401 and me(app, minted) == 401 and me(app, standalone) == 401
    assert login(client).status_code == 401  # the old password is gone
    assert login(client, password=data["password"]).status_code == 200
    with vigil.store.session() as s:
        assert s.scalar(select(LoginSession.revoked_reason).where(LoginSession.revoked_at.is_not(None))) == \
            "password reset"


def test_disable_and_role_change_end_sessions_and_tokens(vigil, app, client, olive, admin):  # noqa: F811
    from vigil.services.accounts import create_token

    boss = bearer(create_token(vigil, admin, name="admin")["token"])
    access, minted = _session_and_token(app, client)
    assert client.post("/api/users/olive/disable", headers=boss).json()["tokens_revoked"] == 1
    assert me(app, access) == 401 and me(app, minted) == 401
    assert login(client).status_code == 401
    assert client.post("/api/users/olive/enable", headers=boss).status_code == 200
    assert me(app, minted) == 401  # enabling again restores nothing
    access = login(client).json()["access_token"]
    r = client.post("/api/users/olive/role", json={"role": "auditor"}, headers=boss)
    assert r.status_code == 200 and r.json()["previous_role"] == "operator"
    assert me(app, access) == 401
    assert login(client).json()["role"] == "auditor"
    assert [e.action for e in actions(vigil, "user.role_changed")] == ["user.role_changed"]


def test_api_reset_password_and_forged_or_sessionless_jwts(vigil, app, client, olive, admin):  # noqa: F811
    import jwt

    from vigil.services.accounts import create_token
    from vigil.services.authentication import signing_key

    boss = bearer(create_token(vigil, admin, name="admin")["token"])
    access = login(client).json()["access_token"]
    r = client.post("/api/users/olive/reset-password", headers=boss)
    assert r.status_code == 200 and r.json()["sessions_revoked"] == 1 and len(r.json()["password"]) >= 16
    assert me(app, access) == 401
    claims = jwt.decode(access, options={"verify_signature": False})
    del claims["sid"]  # a token signed with the right key but naming no session
    assert me(app, jwt.encode(claims, signing_key(vigil), algorithm="HS256")) == 401
    assert me(app, jwt.encode({**claims, "sid": "x"}, "not-the-key" * 4, algorithm="HS256")) == 401


def test_my_sessions_lists_the_callers_own(app, client, olive):
    access = login(client).json()["access_token"]
    rows = TestClient(app).get("/api/me/sessions", headers=bearer(access)).json()["items"]
    assert len(rows) == 1 and rows[0]["revoked_at"] is None and rows[0]["client"] == "testclient"


# -- 4. the CLI's identity ----------------------------------------------------------------------
def test_cli_identity_comes_from_the_uid_not_logname(vigil, admin, home):  # noqa: F811
    from vigil.services.accounts import add_user

    add_user(vigil, admin, "someone-else", "auditor", os_user="someone-else")
    env = {**os.environ, "VIGIL_HOME": str(home), "LOGNAME": "someone-else", "USER": "someone-else",
           "USERNAME": "someone-else"}
    env.pop("VIGIL_TOKEN", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "vigil", *args], env=env, capture_output=True, text=True)

    who = run("user", "whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["username"] == admin.username != "someone-else"
    assert run("user", "list", "--json").returncode == 0  # an auditor could not list users


def test_os_username_falls_back_to_the_uid_without_a_passwd_entry(monkeypatch):
    import pwd

    from vigil.governance.users import os_username

    def missing(uid):
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", missing)
    monkeypatch.setenv("LOGNAME", "mallory")
    assert os_username() == f"uid{os.getuid()}"
