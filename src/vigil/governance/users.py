"""Users, passwords (argon2), API tokens, login throttling and the CLI's identity.

- Passwords are hashed with argon2id; they are generated (never a default) and shown once.
- API tokens are random 32-byte secrets shown once; only their SHA-256 is stored.
- Disabling a user or revoking a token takes effect on the next request: every request
  looks the user/token up again.
- After ``login_max_failures`` failures for a username the account is locked for
  ``login_lockout_seconds``; failures are counted for unknown usernames too, so probing
  cannot tell which names exist.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.errors import AuthenticationError, ConflictError, NotFoundError, PermissionDenied, VigilError
from vigil.governance.permissions import ROLES, Actor
from vigil.store.schema import ApiToken, LoginThrottle, User
from vigil.timeutil import as_utc, utcnow

_hasher = PasswordHasher()
TOKEN_PREFIX = "vgl_"


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise VigilError("passwords must be at least 10 characters")
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def os_username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return os.environ.get("USER") or f"uid{os.getuid()}"


def create_user(session: Session, username: str, role: str, *, created_by: str, display_name: str = "",
                password: str | None = None, os_user: str | None = None) -> tuple[User, str | None]:
    """Create a user. Returns (user, generated password or None if one was given)."""
    if role not in ROLES:
        raise VigilError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not username or len(username) > 80 or not all(c.isalnum() or c in "._-@" for c in username):
        raise VigilError("usernames are 1-80 letters, digits or . _ - @")
    if session.scalar(select(User).where(User.username == username)):
        raise ConflictError(f"user {username!r} already exists")
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


def actor_for(user: User, via: str) -> Actor:
    if user.disabled:
        raise AuthenticationError(f"user {user.username} is disabled")
    return Actor(user.username, user.role, user.id, via)


# -- login with throttling ---------------------------------------------------------------
def login(session: Session, username: str, password: str, *, max_failures: int, lockout_seconds: int) -> User:
    key = f"user:{username.lower()}"
    throttle = session.get(LoginThrottle, key)
    now = utcnow()
    if throttle and throttle.locked_until and as_utc(throttle.locked_until) > now:
        wait = int((as_utc(throttle.locked_until) - now).total_seconds()) + 1
        raise AuthenticationError(f"too many failed logins: try again in {wait} s")
    user = session.scalar(select(User).where(User.username == username))
    ok = user is not None and not user.disabled and check_password(user, password)
    if not ok:
        throttle = throttle or LoginThrottle(key=key, failures=0)
        throttle.failures += 1
        throttle.last_failure_at = now
        if throttle.failures >= max_failures:
            throttle.locked_until = now + timedelta(seconds=lockout_seconds)
            throttle.failures = 0
        session.merge(throttle)
        raise AuthenticationError("wrong username or password, or the account is disabled")
    if throttle:
        session.delete(throttle)
    return user


# -- API tokens ------------------------------------------------------------------------------
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "", days: float | None = None) -> tuple[ApiToken, str]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=token_digest(secret), prefix=secret[:10],
                   expires_at=utcnow() + timedelta(days=days) if days else None)
    session.add(row)
    session.flush()
    return row, secret


def user_for_token(session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API token")
    if row.expires_at and as_utc(row.expires_at) < utcnow():
        raise AuthenticationError("API token expired")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise AuthenticationError("the token's user is disabled")
    row.last_used_at = utcnow()
    return user


def revoke_token(session: Session, token_id: int, actor: Actor) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"no token {token_id}")
    if row.user_id != actor.user_id and actor.role != "admin":
        raise PermissionDenied("only an admin may revoke another user's token")
    row.revoked_at = utcnow()
    return row


def cli_actor(session: Session, token: str | None) -> Actor:
    """The CLI's identity: VIGIL_TOKEN if given, else the user mapped to the OS user."""
    if token:
        return actor_for(user_for_token(session, token), "cli")
    name = os_username()
    user = session.scalar(select(User).where(User.os_user == name))
    if user is None:
        raise AuthenticationError(
            f"the operating-system user {name!r} is not mapped to a Vigil user: set VIGIL_TOKEN to an API token "
            f"(an admin creates one with 'vigil token create --user NAME'), or ask an admin to run "
            f"'vigil user add {name} --role ROLE --os-user {name}'"
        )
    return actor_for(user, "cli")
