"""The mechanics of accounts: passwords (argon2id), API tokens, login sessions, login
throttling and the operating-system identity. Plain functions on a database session: who
may call them, the transaction and the audit entry belong to ``vigil.services.accounts``.

- Passwords are hashed with argon2id; they are generated (never a default) and shown once.
- API tokens are random 32-byte secrets shown once; only their SHA-256 is stored.
- A login opens a server-side session; every request checks it is still open, so logout,
  a password reset, a disable or a role change ends it at once (see :func:`revoke_user_access`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.errors import AuthenticationError, ConflictError, NotFoundError, VigilError
from vigil.governance.permissions import ROLES
from vigil.store.schema import ApiToken, LoginSession, LoginThrottle, User
from vigil.timeutil import as_utc, utcnow

# argon2id at RFC 9106's second recommended setting (3 passes over 64 MiB, 4 lanes); each hash
# records its own parameters, so a stronger setting later still verifies older hashes.
PASSWORD_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
_hasher = PASSWORD_HASHER
# Each argon2 check takes 64 MiB for tens of milliseconds: a burst of logins waits here
# rather than exhausting memory.
_password_checks = threading.BoundedSemaphore(4)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "vgl_"


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise VigilError("passwords must be at least 10 characters")
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """True if ``password`` is the user's. Without a user (or a hash) a dummy hash is still
    checked, so the time taken does not tell which usernames exist."""
    stored = user.password_hash if user is not None and user.password_hash else None
    with _password_checks:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def os_username() -> str:
    """The operating-system account running this process, from the kernel's uid: never from
    LOGNAME or USER, which anyone can set to another name. ``uid<N>`` without a passwd entry."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows has no uids: the logon name is what there is
        import getpass

        return getpass.getuser()
    try:
        import pwd

        return pwd.getpwuid(getuid()).pw_name
    except (KeyError, ImportError):  # no passwd entry (containers)
        return f"uid{getuid()}"


# -- users -------------------------------------------------------------------------------------
def check_role(role: str) -> None:
    if role not in ROLES:
        raise VigilError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


def create_user(session: Session, username: str, role: str, *, created_by: str, display_name: str = "",
                password: str | None = None, os_user: str | None = None) -> tuple[User, str | None]:
    """Create a user. Returns (user, generated password or None if one was given)."""
    check_role(role)
    if not username or len(username) > 80 or not all(c.isalnum() or c in "._-@" for c in username):
        raise VigilError("usernames are 1-80 letters, digits or . _ - @")
    if session.scalar(select(User).where(User.username == username)):
        raise ConflictError(f"user {username!r} already exists")
    if os_user and session.scalar(select(User).where(User.os_user == os_user)):
        raise ConflictError(f"the operating-system user {os_user!r} is already mapped to a Vigil user")
    generated = None
    if password is None:
        password = generated = generate_password()
    user = User(username=username, role=role, display_name=display_name or username,
                password_hash=hash_password(password), os_user=os_user, created_by=created_by)
    session.add(user)
    session.flush()
    return user, generated


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def require_enabled(user: User | None) -> User:
    if user is None:
        raise AuthenticationError("no such user")
    if user.disabled:
        raise AuthenticationError(f"user {user.username} is disabled")
    return user


def revoke_user_access(session: Session, user_id: int, reason: str) -> dict:
    """End every login session of the user and revoke every API token they hold. Used when
    the password is reset (the account may be compromised: whoever knew the old password may
    have minted tokens with it), the user is disabled, or their role changes (what they were
    let in as no longer holds)."""
    now = utcnow()
    sessions = session.execute(update(LoginSession).where(LoginSession.user_id == user_id,
                                                          LoginSession.revoked_at.is_(None))
                               .values(revoked_at=now, revoked_reason=reason)).rowcount
    tokens = session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now)).rowcount
    return {"sessions_revoked": int(sessions or 0), "tokens_revoked": int(tokens or 0)}


# -- login sessions ----------------------------------------------------------------------------
def open_session(session: Session, user: User, client: str | None) -> LoginSession:
    row = LoginSession(id=secrets.token_hex(16), user_id=user.id, client=(client or "")[:120])
    session.add(row)
    session.flush()
    return row


def live_session(session: Session, session_id: str, user_id: int) -> LoginSession:
    row = session.get(LoginSession, session_id)
    if row is None or row.user_id != user_id:
        raise AuthenticationError("invalid token")
    if row.revoked_at is not None:
        raise AuthenticationError("this session has ended (logged out, or the account changed): log in again")
    return row


def end_session(session: Session, session_id: str, reason: str) -> dict:
    """Revoke one login session and every API token minted from it."""
    now = utcnow()
    ended = session.execute(update(LoginSession).where(LoginSession.id == session_id,
                                                       LoginSession.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_reason=reason)).rowcount
    tokens = session.execute(update(ApiToken).where(ApiToken.session_id == session_id,
                                                    ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now)).rowcount
    return {"sessions_revoked": int(ended or 0), "tokens_revoked": int(tokens or 0)}


# -- login throttling -------------------------------------------------------------------------
def throttle_keys(username: str, client: str | None) -> dict[str, str]:
    """The counters a login attempt feeds: its account, and the address it comes from."""
    keys = {"account": f"user:{username.lower()[:110]}"}
    if client:
        keys["address"] = f"addr:{client[:110]}"
    return keys


def locked_for(session: Session, keys: dict[str, str]) -> tuple[str, int] | None:
    """(which counter, seconds left) if any of ``keys`` is locked now, else None."""
    now = utcnow()
    for kind, key in keys.items():
        row = session.get(LoginThrottle, key)
        if row is not None and row.locked_until and as_utc(row.locked_until) > now:
            return kind, int((as_utc(row.locked_until) - now).total_seconds()) + 1
    return None


def count_failure(session: Session, keys: dict[str, str], limits: dict[str, int], lockout_seconds: int) -> list[str]:
    """Add a failure to each counter; lock those that reach their limit. Failures older than
    the lockout period are forgotten. Returns the kinds newly locked. Call it under the audit
    lock, so concurrent failures are all counted."""
    now = utcnow()
    locked = []
    for kind, key in keys.items():
        row = session.get(LoginThrottle, key, populate_existing=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        if row.last_failure_at and as_utc(row.last_failure_at) < now - timedelta(seconds=lockout_seconds):
            row.failures = 0
        row.failures = (row.failures or 0) + 1
        row.last_failure_at = now
        if row.failures >= limits[kind]:
            row.locked_until = now + timedelta(seconds=lockout_seconds)
            row.failures = 0
            locked.append(kind)
    session.flush()
    return locked


def clear_failures(session: Session, key: str) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)


# -- API tokens ------------------------------------------------------------------------------
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "", days: float | None = None, *,
                 session_id: str | None = None) -> tuple[ApiToken, str]:
    """A new API token (returned once); ``session_id`` ties it to the login that minted it."""
    if days is not None and days <= 0:
        raise VigilError("--days must be positive")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=token_digest(secret), prefix=secret[:10],
                   expires_at=utcnow() + timedelta(days=days) if days else None, session_id=session_id)
    session.add(row)
    session.flush()
    return row, secret


def token_row(session: Session, token: str) -> ApiToken:
    """The live token row for a secret: refused if unknown, revoked, expired or its user disabled."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API token")
    if row.expires_at and as_utc(row.expires_at) < utcnow():
        raise AuthenticationError("API token expired")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise AuthenticationError("the token's user is disabled")
    row.last_used_at = utcnow()
    return row


def user_for_token(session: Session, token: str) -> User:
    return session.get(User, token_row(session, token).user_id)


def get_token(session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"no token {token_id}")
    return row
