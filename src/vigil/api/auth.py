"""Authentication for the API: who is calling. A Bearer header or the console's session
cookie carries a signed access token (``POST /api/token``) or a long-lived API token
(``vgl_...``); :func:`current_actor` resolves it through the service layer, which checks the
login session and the user in the database on every request (so logout, a password reset or
a disable works at once). Authorisation is not done here: every service function checks
its own permission and raises ``PermissionDenied`` (403)."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from vigil.errors import AuthenticationError
from vigil.services import Actor
from vigil.services.authentication import Credentials, authenticate

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)
COOKIE = "vigil_session"


def bearer_or_cookie(request: Request, token: str | None) -> str | None:
    return token or request.cookies.get(COOKIE)


def current_credentials(request: Request, token: str | None = Depends(oauth2)) -> Credentials:
    """The caller and the login session their credential belongs to (401 if none or invalid)."""
    token = bearer_or_cookie(request, token)
    if not token:
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(request.app.state.vigil, token, via="api")
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def current_actor(credentials: Credentials = Depends(current_credentials)) -> Actor:
    """The calling user (authentication only: the service called next checks the permission)."""
    return credentials.actor
