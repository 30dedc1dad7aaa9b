"""Login (OAuth2 password flow), identity, own tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from vigil.api.auth import current_actor, issue_jwt, permission
from vigil.api.schemas import TokenIn
from vigil.errors import AuthenticationError
from vigil.governance.permissions import PERMISSIONS, Actor
from vigil.governance.users import create_token, get_user, login

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/token")
def token(request: Request, response: Response, form: OAuth2PasswordRequestForm = Depends()):
    """OAuth2 password flow: a short-lived signed access token (also set as an HttpOnly cookie)."""
    vigil = request.app.state.vigil
    s = vigil.settings
    try:
        with vigil.store.session() as session:
            user = login(session, form.username, form.password, max_failures=s.login_max_failures,
                         lockout_seconds=s.login_lockout_seconds)
            vigil.store.audit.record(session, user.username, "auth.login", "user", user.username,
                                     {"via": "api", "client": request.client.host if request.client else None})
    except AuthenticationError:
        with vigil.store.session() as session:
            vigil.store.audit.record(session, form.username[:80] or "?", "auth.login_failed", "user",
                                     form.username[:80], {"client": request.client.host if request.client else None})
        raise
    jwt_token, seconds = issue_jwt(vigil, user)
    response.set_cookie("vigil_session", jwt_token, max_age=seconds, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return {"access_token": jwt_token, "token_type": "bearer", "expires_in": seconds, "role": user.role}


@router.post("/logout")
def logout(response: Response):
    response.delete_cookie("vigil_session")
    return {"ok": True}


@router.get("/me")
def me(actor: Actor = Depends(current_actor)):
    return {"username": actor.username, "role": actor.role,
            "permissions": sorted(p for p, roles in PERMISSIONS.items() if actor.role in roles)}


@router.post("/me/tokens")
def my_token(body: TokenIn, request: Request, actor: Actor = Depends(permission("token.manage_own"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        row, secret = create_token(session, get_user(session, actor.username), body.name, body.days)
        vigil.store.audit.record(session, actor, "token.created", "token", row.id,
                                 {"for_user": actor.username, "name": body.name, "prefix": row.prefix})
        return {"id": row.id, "token": secret}
