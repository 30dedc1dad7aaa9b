"""Login (OAuth2 password flow), logout, identity, own tokens and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from vigil.api.auth import (
    COOKIE, Credentials, bearer_or_cookie, cookie_secure, current_actor, current_credentials, oauth2,
)
from vigil.api.responses import AccessToken, ApiTokenInfo, LoggedOut, LoginSession, Me, NewApiToken, Page
from vigil.api.schemas import Cursor, Limit, LoginForm, TokenIn
from vigil.services import Actor
from vigil.services import accounts
from vigil.services.authentication import login, logout

router = APIRouter(prefix="/api", tags=["auth"])


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/token", response_model=AccessToken)
def token(request: Request, response: Response, form: LoginForm = Depends()):
    """OAuth2 password flow: a short-lived signed access token (also set as an HttpOnly
    cookie, ``Secure`` over TLS) naming a new server-side session. Repeated failures lock the
    account and the client address for a while; every attempt is audited (a flood from one
    address: the first few, then one summary entry a minute)."""
    result = login(request.app.state.vigil, form.username, form.password, client=_client(request))
    response.set_cookie(COOKIE, result["access_token"], max_age=result["expires_in"], httponly=True,
                        samesite="strict", secure=cookie_secure(request))
    return {k: result[k] for k in ("access_token", "token_type", "expires_in", "role")}


@router.post("/logout", response_model=LoggedOut, response_model_exclude_unset=True)
def logout_route(request: Request, response: Response, token: str | None = Depends(oauth2)):
    """End this login session (and every API token minted from it), and drop the cookie."""
    result = logout(request.app.state.vigil, bearer_or_cookie(request, token))
    response.delete_cookie(COOKIE)
    return result


@router.get("/me", response_model=Me)
def me(actor: Actor = Depends(current_actor)):
    return accounts.whoami(actor)


@router.get("/me/sessions", response_model=Page[LoginSession])
def my_sessions(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    return accounts.my_sessions(request.app.state.vigil, actor, cursor=cursor, limit=limit).as_dict()


@router.get("/me/tokens", response_model=Page[ApiTokenInfo])
def my_tokens(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """The caller's API tokens with their ids (never the secret), newest first."""
    return accounts.list_tokens(request.app.state.vigil, actor, cursor=cursor, limit=limit).as_dict()


@router.post("/me/tokens", status_code=201, response_model=NewApiToken)
def my_token(body: TokenIn, request: Request, credentials: Credentials = Depends(current_credentials)):
    """A long-lived API token for the caller; minted from a login session, it ends with it."""
    result = accounts.create_token(request.app.state.vigil, credentials.actor, name=body.name, days=body.days,
                                   session_id=credentials.session_id)
    return {"id": result["id"], "token": result["token"]}
