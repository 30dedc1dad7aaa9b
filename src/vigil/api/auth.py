"""Authentication for the API: OAuth2 password flow with short-lived signed tokens (JWT,
HS256, key in ``keys/jwt.key``), or long-lived API tokens (``vgl_...``) as Bearer tokens.
Every request looks the user up again, so disabling a user or revoking a token takes
effect on the next request."""

from __future__ import annotations

import secrets
from datetime import timedelta

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from vigil.errors import AuthenticationError
from vigil.governance.permissions import Actor, require
from vigil.governance.users import TOKEN_PREFIX, actor_for, user_for_token
from vigil.store.crypto import write_secret_file
from vigil.store.schema import User
from vigil.timeutil import utcnow

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)
ISSUER = "vigil"


def signing_key(vigil) -> bytes:
    path = vigil.store.home / "keys" / "jwt.key"
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def issue_jwt(vigil, user: User) -> tuple[str, int]:
    minutes = vigil.settings.token_minutes
    now = utcnow()
    claims = {"sub": user.username, "uid": user.id, "role": user.role, "iss": ISSUER, "iat": now,
              "exp": now + timedelta(minutes=minutes), "jti": secrets.token_hex(8)}
    return jwt.encode(claims, signing_key(vigil), algorithm="HS256"), minutes * 60


def actor_from_bearer(vigil, token: str, via: str = "api") -> Actor:
    with vigil.store.session() as session:
        if token.startswith(TOKEN_PREFIX):
            return actor_for(user_for_token(session, token), via)
        try:
            claims = jwt.decode(token, signing_key(vigil), algorithms=["HS256"], issuer=ISSUER)
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("session expired: log in again") from None
        except jwt.PyJWTError:
            raise AuthenticationError("invalid token") from None
        user = session.get(User, int(claims.get("uid", 0)))
        if user is None or user.username != claims.get("sub"):
            raise AuthenticationError("invalid token")
        return actor_for(user, via)  # role and disabled flag read now, not from the token


def current_actor(request: Request, token: str | None = Depends(oauth2)) -> Actor:
    vigil = request.app.state.vigil
    token = token or request.cookies.get("vigil_session")
    if not token:
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        return actor_from_bearer(vigil, token)
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def permission(name: str):
    """A dependency that returns the actor if the role allows ``name`` (else 403)."""

    def check(actor: Actor = Depends(current_actor)) -> Actor:
        require(actor, name)
        return actor

    check.permission = name  # type: ignore[attr-defined]
    return check
