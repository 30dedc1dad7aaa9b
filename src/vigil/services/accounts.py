"""Accounts: users, API tokens, login sessions and the CLI's identity, each use case with
its permission check, transaction and audit entry. (Logging in and turning a credential
into an actor: :mod:`vigil.services.authentication`.)

A password reset, a disable and a role change end every session of the user and revoke
every API token they hold, in the same transaction: a reset is done because the account
may be compromised, and whatever was minted with the old password must not outlive it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from vigil.errors import AuthenticationError, PermissionDenied, VigilError
from vigil.governance import users
from vigil.governance.permissions import PERMISSIONS, Actor
from vigil.services.authentication import authenticate
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import use_case
from vigil.store.schema import ApiToken, LoginSession, User
from vigil.timeutil import as_utc, iso, utcnow


_FROM_SETTINGS = object()


def cli_actor(vigil, token=_FROM_SETTINGS) -> Actor:
    """The CLI's identity: ``VIGIL_TOKEN`` if given, else the Vigil user mapped to the
    operating-system account this process runs as (the kernel's uid, not LOGNAME/USER).
    ``token`` (default: the context's settings) lets a caller whose settings were read anew
    (contexts are cached per data directory) pass the token it was given."""
    token = vigil.settings.token if token is _FROM_SETTINGS else token
    if token:
        return authenticate(vigil, token, via="cli").actor
    name = users.os_username()
    with vigil.store.session() as session:
        user = session.scalar(select(User).where(User.os_user == name))
        if user is None:
            raise AuthenticationError(
                f"the operating-system user {name!r} is not mapped to a Vigil user: set VIGIL_TOKEN to an API "
                f"token (an admin creates one with 'vigil token create --user NAME'), or ask an admin to run "
                f"'vigil user create {name} --role ROLE --os-user {name}'")
        users.require_enabled(user)
        return Actor(user.username, user.role, user.id, "cli")


def whoami(actor: Actor) -> dict:
    return {"username": actor.username, "role": actor.role,
            "permissions": sorted(p for p, roles in PERMISSIONS.items() if actor.role in roles)}


def _user_dict(u) -> dict:
    return {"username": u.username, "role": u.role, "disabled": u.disabled, "os_user": u.os_user,
            "display_name": u.display_name, "created_at": iso(u.created_at)}


# -- users ---------------------------------------------------------------------------------------
def list_users(vigil, actor: Actor, *, cursor: str | None = None, limit: int | None = None) -> Page:
    """Users by name, one page at a time (:mod:`vigil.services.pages`)."""
    with use_case(vigil, actor, "user.manage") as uow:
        return keyset_page(uow.session, select(User), list_name="users", order=[User.username],
                           key_of=lambda u: (u.username,), item_of=_user_dict, cursor=cursor, limit=limit)


def add_user(vigil, actor: Actor, username: str, role: str, *, display_name: str = "", password: str | None = None,
             os_user: str | None = None) -> dict:
    """Create a user; returns the generated password (shown once) unless one was given."""
    with use_case(vigil, actor, "user.manage") as uow:
        user, generated = users.create_user(uow.session, username, role, created_by=actor.username,
                                            display_name=display_name, password=password, os_user=os_user)
        uow.audit("user.created", "user", user.username, {"role": role, "os_user": os_user})
    return {"username": username, "role": role, "os_user": os_user, "password": generated}


def set_disabled(vigil, actor: Actor, username: str, disabled: bool) -> dict:
    """Disable (ending every session and token of the user) or enable a user."""
    with use_case(vigil, actor, "user.manage") as uow:
        if disabled and username == actor.username:
            raise VigilError("you cannot disable yourself")
        user = users.get_user(uow.session, username)
        user.disabled = disabled
        revoked = users.revoke_user_access(uow.session, user.id, "user disabled") if disabled else {}
        uow.audit("user.disabled" if disabled else "user.enabled", "user", username, revoked)
    return {"username": username, "disabled": disabled, **revoked}


def reset_password(vigil, actor: Actor, username: str) -> dict:
    """A new generated password (shown once). The account may be compromised, so every
    session of the user ends and every API token they hold is revoked with it."""
    with use_case(vigil, actor, "user.manage") as uow:
        user = users.get_user(uow.session, username)
        password = users.generate_password()
        user.password_hash = users.hash_password(password)
        revoked = users.revoke_user_access(uow.session, user.id, "password reset")
        uow.audit("user.password_reset", "user", username, revoked)
    return {"username": username, "password": password, **revoked}


def set_role(vigil, actor: Actor, username: str, role: str) -> dict:
    """Change a user's role; their sessions and tokens end, so nobody keeps acting under the
    old role's assumptions (they log in again)."""
    with use_case(vigil, actor, "user.manage") as uow:
        users.check_role(role)
        if username == actor.username:
            raise VigilError("you cannot change your own role")
        user = users.get_user(uow.session, username)
        old, user.role = user.role, role
        revoked = users.revoke_user_access(uow.session, user.id, "role changed") if old != role else {}
        uow.audit("user.role_changed", "user", username, {"from": old, "to": role, **revoked})
    return {"username": username, "role": role, "previous_role": old, **revoked}


# -- API tokens ----------------------------------------------------------------------------------
def create_token(vigil, actor: Actor, *, for_user: str | None = None, name: str = "", days: float | None = None,
                 session_id: str | None = None) -> dict:
    """A new API token (the secret is returned once). Minted from a login session
    (``session_id``), it is revoked when that session ends. Another user's: admin only."""
    with use_case(vigil, actor, "token.manage_own") as uow:
        target = users.get_user(uow.session, for_user or actor.username)
        if target.username != actor.username:
            uow.require("user.manage")
        row, secret = users.create_token(uow.session, target, name, days, session_id=session_id)
        uow.audit("token.created", "token", row.id, {"for_user": target.username, "name": name, "prefix": row.prefix,
                                                     **({"session": session_id} if session_id else {})})
        token_id = row.id
    return {"id": token_id, "user": target.username, "token": secret}


def list_tokens(vigil, actor: Actor, *, all_users: bool = False, cursor: str | None = None,
                limit: int | None = None) -> Page:
    """API tokens, newest first: one's own, or everyone's (administrators and auditors) so that
    a token can be found and revoked by its id. Never the secret: its first characters only."""
    with use_case(vigil, actor, "token.manage_own") as uow:
        query = select(ApiToken)
        if all_users:
            if not (actor.can("user.manage") or actor.can("audit.view")):
                raise PermissionDenied("only administrators and auditors list everyone's tokens")
        else:
            query = query.where(ApiToken.user_id == actor.user_id)
        now = utcnow()
        return keyset_page(uow.session, query, list_name="tokens", order=[ApiToken.id], descending=True,
                           key_of=lambda t: (t.id,), cursor=cursor, limit=limit, item_of=lambda t: {
                               "id": t.id, "user": t.user.username, "name": t.name, "prefix": t.prefix,
                               "created_at": iso(t.created_at), "expires_at": iso(t.expires_at),
                               "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at),
                               "from_login_session": t.session_id is not None,
                               "active": t.revoked_at is None and (t.expires_at is None
                                                                   or as_utc(t.expires_at) > now)})


def revoke_token(vigil, actor: Actor, token_id: int) -> dict:
    """Revoke one API token: one's own, or anyone's for an admin."""
    with use_case(vigil, actor, "token.manage_own") as uow:
        row = users.get_token(uow.session, token_id)
        if row.user_id != actor.user_id and not actor.can("user.manage"):
            raise PermissionDenied("only an admin may revoke another user's token")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        uow.audit("token.revoked", "token", token_id, {})
    return {"id": token_id, "revoked": True}


# -- sessions ------------------------------------------------------------------------------------
def my_sessions(vigil, actor: Actor, *, cursor: str | None = None, limit: int | None = None) -> Page:
    """The caller's own login sessions, newest first (any signed-in user)."""
    if actor.user_id is None:
        return Page([], None)
    with use_case(vigil, actor) as uow:
        query = select(LoginSession).where(LoginSession.user_id == actor.user_id)
        return keyset_page(uow.session, query, list_name="sessions",
                           order=[LoginSession.created_at, LoginSession.id], descending=True,
                           key_of=lambda s: (as_utc(s.created_at).isoformat(), s.id),
                           key_from_cursor=lambda k: (as_utc(datetime.fromisoformat(k[0])), k[1]),
                           cursor=cursor, limit=limit, item_of=lambda s: {
                               "id": s.id, "created_at": iso(s.created_at), "client": s.client,
                               "revoked_at": iso(s.revoked_at) if s.revoked_at else None,
                               "revoked_reason": s.revoked_reason})
