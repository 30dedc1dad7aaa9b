"""Who is calling: logins (throttled), logout, and turning a credential into an Actor.

A login opens a server-side session and returns a short-lived signed access token (JWT,
HS256, key in ``keys/jwt.key``) that names it (``sid``). Every request decodes the token,
then checks in the database that its session is still open and its user still enabled, so
logout, a password reset, a disable or a role change takes effect on the next request,
not when the token expires. Long-lived API tokens (``vgl_...``) are looked up the same way.

Failed logins count against the account and against the client address; reaching
``login_max_failures`` (or ``login_max_failures_per_address``) locks it for
``login_lockout_seconds``. The count is committed in its own transaction, with the audit
entry of the failure, before the request is refused, so a refused request's rollback
cannot undo it. While locked, even the right password is refused (and audited).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from vigil.errors import AuthenticationError
from vigil.governance import users
from vigil.governance.permissions import Actor
from vigil.services import login_audit
from vigil.services.unit import use_case
from vigil.store.crypto import write_secret_file
from vigil.store.schema import User
from vigil.timeutil import utcnow

ISSUER = "vigil"
WRONG = "wrong username or password, or the account is disabled"


@dataclass(frozen=True)
class Credentials:
    """An authenticated caller: the actor, and the login session (if any) the credential
    belongs to, so that tokens minted with it die with that session."""

    actor: Actor
    session_id: str | None = None
    token_id: int | None = None


def signing_key(vigil) -> bytes:
    path = vigil.store.home / "keys" / "jwt.key"
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _issue_jwt(vigil, user: User, session_id: str) -> tuple[str, int]:
    minutes = vigil.settings.token_minutes
    now = utcnow()
    claims = {"sub": user.username, "uid": user.id, "sid": session_id, "iss": ISSUER, "iat": now,
              "exp": now + timedelta(minutes=minutes), "jti": secrets.token_hex(8)}
    return jwt.encode(claims, signing_key(vigil), algorithm="HS256"), minutes * 60


def _limits(settings) -> dict[str, int]:
    return {"account": settings.login_max_failures, "address": settings.login_max_failures_per_address}


def _refuse_login(vigil, who: str, name: str, kind: str, wait: int, client: str | None):
    """A locked account or address: audited (one by one, or counted for the minute's summary
    under a flood from one address) in its own transaction, then refused."""
    with use_case(vigil, who) as uow:
        vigil.audit.lock(uow.session)
        login_audit.record_attempt(uow, "auth.login_refused", name, {
            "why": f"{kind} locked after repeated failed logins", "retry_after_s": wait}, client)
    raise AuthenticationError(f"too many failed logins: try again in {wait} s")


def login(vigil, username: str, password: str, *, client: str | None = None) -> dict:
    """Check a password; on success open a session and return a signed access token.

    Refusals raise :class:`AuthenticationError` (401) with the reason a user may know: wrong
    credentials, or a lock and how long it lasts. Every attempt is audited (a flood from one
    address in a summary entry per minute: :mod:`vigil.services.login_audit`)."""
    settings = vigil.settings
    name = (username or "")[:80]
    who = name or "?"
    keys = users.throttle_keys(name, client)
    with vigil.store.session() as session:
        locked = users.locked_for(session, keys)
    if locked:
        _refuse_login(vigil, who, name, *locked, client)
    with vigil.store.session() as session:
        user = users.find_user(session, name)
        ok = users.check_password(user, password) and user is not None and not user.disabled
    if not ok:
        with use_case(vigil, who) as uow:
            vigil.audit.lock(uow.session)  # concurrent failures are all counted
            newly_locked = users.count_failure(uow.session, keys, _limits(settings), settings.login_lockout_seconds)
            login_audit.record_attempt(uow, "auth.login_failed", name,
                                       {"locked": newly_locked} if newly_locked else {}, client,
                                       always=bool(newly_locked))
        raise AuthenticationError(WRONG)
    with use_case(vigil, name) as uow:
        vigil.audit.lock(uow.session)
        locked = users.locked_for(uow.session, keys)  # locked by a concurrent attempt meanwhile?
        if not locked:
            users.clear_failures(uow.session, keys["account"])
            row = users.open_session(uow.session, user, client)
            uow.audit("auth.login", "user", name, {"via": "api", "client": client, "session": row.id})
            session_id = row.id
    if locked:
        _refuse_login(vigil, who, name, *locked, client)
    token, seconds = _issue_jwt(vigil, user, session_id)
    return {"access_token": token, "token_type": "bearer", "expires_in": seconds, "role": user.role,
            "username": user.username, "session_id": session_id}


def _claims(vigil, token: str) -> dict:
    try:
        return jwt.decode(token, signing_key(vigil), algorithms=["HS256"], issuer=ISSUER)
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("session expired: log in again") from None
    except jwt.PyJWTError:
        raise AuthenticationError("invalid token") from None


def authenticate(vigil, token: str, via: str = "api") -> Credentials:
    """The caller behind a bearer token or session cookie (JWT or API token), checked against
    the database now: an ended session, a revoked token or a disabled user is refused."""
    if not token:
        raise AuthenticationError("not authenticated")
    with vigil.store.session() as session:
        if token.startswith(users.TOKEN_PREFIX):
            row = users.token_row(session, token)
            user = users.require_enabled(session.get(User, row.user_id))
            if row.session_id is not None:
                users.live_session(session, row.session_id, user.id)
            return Credentials(Actor(user.username, user.role, user.id, via), row.session_id, row.id)
        claims = _claims(vigil, token)
        try:
            user = session.get(User, int(claims.get("uid", 0)))
        except (TypeError, ValueError):
            user = None
        if user is None or user.username != claims.get("sub") or not claims.get("sid"):
            raise AuthenticationError("invalid token")
        users.require_enabled(user)
        users.live_session(session, str(claims["sid"]), user.id)
        return Credentials(Actor(user.username, user.role, user.id, via), str(claims["sid"]))


def actor_from_credential(vigil, token: str, via: str = "api") -> Actor:
    """:func:`authenticate`, the actor only (role and disabled flag read now, not from the token)."""
    return authenticate(vigil, token, via).actor


def logout(vigil, token: str | None) -> dict:
    """End the login session a signed access token names, and every API token minted from it.
    A missing, expired or already-ended credential is not an error: the caller is logged out
    either way. An API token is not a login: it is revoked with ``POST /api/tokens/{id}/revoke``."""
    if not token or token.startswith(users.TOKEN_PREFIX):
        return {"ok": True, "session_ended": False}
    try:
        claims = _claims(vigil, token)
        uid, sid = int(claims.get("uid", 0)), str(claims.get("sid") or "")
    except (AuthenticationError, TypeError, ValueError):
        return {"ok": True, "session_ended": False}
    with vigil.store.session() as session:
        user = session.get(User, uid)
        actor = Actor(user.username, user.role, user.id, "api") if user is not None else None
    if actor is None or not sid:
        return {"ok": True, "session_ended": False}
    with use_case(vigil, actor) as uow:
        counts = users.end_session(uow.session, sid, "logout")
        if counts["sessions_revoked"]:
            uow.audit("auth.logout", "session", sid, counts)
    return {"ok": True, "session_ended": bool(counts["sessions_revoked"]), **counts}
