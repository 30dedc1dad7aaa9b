"""Users, passwords, tokens, throttling, identity of the CLI."""

import pytest

from vigil.errors import AuthenticationError, PermissionDenied
from vigil.governance.permissions import PERMISSIONS, ROLES, allowed, require
from vigil.governance.users import (
    cli_actor, create_token, create_user, get_user, login, revoke_token, user_for_token,
)


def test_first_run_created_an_admin_for_the_os_user_with_a_generated_password(vigil):
    info = vigil.first_run
    assert info["password"] and len(info["password"]) >= 16
    with vigil.store.session() as s:
        user = get_user(s, info["admin"])
        assert user.role == "admin" and user.os_user == info["admin"]
        assert user.password_hash.startswith("$argon2id$")
        assert info["password"] not in user.password_hash


def test_login_throttling_locks_after_repeated_failures(vigil):
    with vigil.store.session() as s:
        create_user(s, "olive", "operator", created_by="t", password="correct horse battery")
    for _ in range(3):
        with vigil.store.session() as s, pytest.raises(AuthenticationError, match="wrong"):
            login(s, "olive", "nope-nope-nope", max_failures=3, lockout_seconds=60)
    with vigil.store.session() as s, pytest.raises(AuthenticationError, match="too many"):
        login(s, "olive", "correct horse battery", max_failures=3, lockout_seconds=60)


def test_disabled_users_and_revoked_tokens_stop_at_once(vigil, admin):
    with vigil.store.session() as s:
        user, _ = create_user(s, "ivan", "investigator", created_by="t")
        row, secret = create_token(s, user, "laptop")
        token_id = row.id
    with vigil.store.session() as s:
        assert user_for_token(s, secret).username == "ivan"
        get_user(s, "ivan").disabled = True
    with vigil.store.session() as s, pytest.raises(AuthenticationError):
        user_for_token(s, secret)
    with vigil.store.session() as s:
        get_user(s, "ivan").disabled = False
        revoke_token(s, token_id, admin)
    with vigil.store.session() as s, pytest.raises(AuthenticationError, match="revoked"):
        user_for_token(s, secret)


def test_cli_identity_follows_vigil_token(vigil):
    with vigil.store.session() as s:
        user, _ = create_user(s, "audrey", "auditor", created_by="t")
        _, secret = create_token(s, user)
    with vigil.store.session() as s:
        assert cli_actor(s, secret).role == "auditor"
        assert cli_actor(s, None).role == "admin"  # the OS user's mapping
        with pytest.raises(AuthenticationError):
            cli_actor(s, "vgl_not-a-real-token")


def test_permission_table_is_consistent():
    for permission, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), permission
        assert "admin" in roles or permission == "", permission
    assert not allowed("auditor", "search.run") and allowed("investigator", "search.run")
    assert allowed("auditor", "audit.view") and not allowed("operator", "audit.view")
    from vigil.governance.permissions import Actor

    with pytest.raises(PermissionDenied):
        require(Actor("x", "operator"), "subject.delete")
