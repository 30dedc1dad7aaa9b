"""Users, passwords, tokens and the CLI's identity, through the account services; each check
of what was stored is made in a fresh session. (Lockout and sessions through the real API:
tests/services/test_accounts.py.)"""

import pytest

from vigil.errors import AuthenticationError, PermissionDenied, VigilError
from vigil.governance.permissions import PERMISSIONS, ROLES, Actor, allowed, require
from vigil.governance.users import get_user
from vigil.services import accounts
from vigil.services.authentication import authenticate


def test_first_run_created_an_admin_for_the_os_user_with_a_generated_password(fresh_home):
    from vigil.config import get_settings
    from vigil.governance.users import os_username
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    vigil = get_vigil(get_settings())
    info = vigil.first_run
    assert info["password"] and len(info["password"]) >= 16 and info["admin"] == os_username()
    with vigil.store.session() as s:
        user = get_user(s, info["admin"])
        assert user.role == "admin" and user.os_user == info["admin"]
        assert user.password_hash.startswith("$argon2id$")
        assert info["password"] not in user.password_hash
    forget_contexts()


def test_disabled_users_and_revoked_tokens_stop_at_once(vigil, admin):
    accounts.add_user(vigil, admin, "ivan", "investigator")
    secret = accounts.create_token(vigil, admin, for_user="ivan", name="laptop")
    assert authenticate(vigil, secret["token"]).actor.username == "ivan"
    accounts.set_disabled(vigil, admin, "ivan", True)
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(vigil, secret["token"])
    accounts.set_disabled(vigil, admin, "ivan", False)
    again = accounts.create_token(vigil, admin, for_user="ivan")
    ivan = authenticate(vigil, again["token"]).actor
    accounts.revoke_token(vigil, ivan, again["id"])  # one's own
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(vigil, again["token"])


def test_token_and_user_rules(vigil, admin):
    accounts.add_user(vigil, admin, "ivan", "investigator")
    accounts.add_user(vigil, admin, "olga", "operator")
    ivan = authenticate(vigil, accounts.create_token(vigil, admin, for_user="ivan")["token"]).actor
    olga_token = accounts.create_token(vigil, admin, for_user="olga")
    with pytest.raises(PermissionDenied):
        accounts.create_token(vigil, ivan, for_user="olga")  # another user's: admin only
    with pytest.raises(PermissionDenied):
        accounts.revoke_token(vigil, ivan, olga_token["id"])
    with pytest.raises(PermissionDenied):
        accounts.reset_password(vigil, ivan, "olga")
    with pytest.raises(VigilError, match="yourself"):
        accounts.set_disabled(vigil, admin, admin.username, True)
    with pytest.raises(VigilError, match="unknown role"):
        accounts.set_role(vigil, admin, "olga", "overlord")
    with pytest.raises(VigilError, match="already"):
        accounts.add_user(vigil, admin, "olga", "operator")
    assert authenticate(vigil, olga_token["token"]).actor.role == "operator"  # nothing above changed it


def test_cli_identity_follows_vigil_token(vigil, admin):
    accounts.add_user(vigil, admin, "audrey", "auditor")
    secret = accounts.create_token(vigil, admin, for_user="audrey")["token"]
    assert accounts.cli_actor(vigil).role == "admin"  # the OS user's mapping
    vigil.settings.token = secret
    try:
        assert accounts.cli_actor(vigil).role == "auditor"
        vigil.settings.token = "vgl_not-a-real-token"
        with pytest.raises(AuthenticationError):
            accounts.cli_actor(vigil)
    finally:
        vigil.settings.token = None


def test_permission_table_is_consistent():
    for permission, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), permission
        assert "admin" in roles or permission == "", permission
    assert not allowed("auditor", "search.run") and allowed("investigator", "search.run")
    assert allowed("auditor", "audit.view") and not allowed("operator", "audit.view")
    with pytest.raises(PermissionDenied):
        require(Actor("x", "operator"), "subject.delete")


def test_passwords_are_argon2id_at_the_production_cost():
    """The suite hashes with cheap parameters (tests/conftest.py); what ships must not."""
    from argon2 import Type

    from vigil.governance.users import PASSWORD_HASHER

    assert PASSWORD_HASHER.type is Type.ID
    assert PASSWORD_HASHER.memory_cost >= 64 * 1024 and PASSWORD_HASHER.time_cost >= 3
    assert PASSWORD_HASHER.hash("a long enough password").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_hash_made_at_the_production_cost_still_verifies():
    from vigil.governance.users import PASSWORD_HASHER, check_password
    from vigil.store.schema import User

    user = User(username="strong", role="operator", password_hash=PASSWORD_HASHER.hash("a long enough password"))
    assert check_password(user, "a long enough password") and not check_password(user, "a wrong password!")
