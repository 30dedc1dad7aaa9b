"""Audit, reports, retention, users and tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from vigil.api.auth import permission
from vigil.api.schemas import UserIn
from vigil.errors import VigilError
from vigil.governance.audit_query import query_audit
from vigil.governance.permissions import Actor
from vigil.governance.reports import annual_report, deployment_report, render
from vigil.governance.retention import run_retention
from vigil.governance.users import create_user, get_user, revoke_token

router = APIRouter(prefix="/api", tags=["accountability"])


@router.get("/audit")
def audit(request: Request, action: str | None = None, actor_name: str | None = None, object_type: str | None = None,
          limit: int = 100, before: int | None = None, actor: Actor = Depends(permission("audit.view"))):
    return query_audit(request.app.state.vigil, actor, action=action, actor_name=actor_name,
                       object_type=object_type, limit=limit, before=before)


@router.get("/audit/verify")
def audit_verify(request: Request, actor: Actor = Depends(permission("audit.view"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        return vigil.store.audit.verify(session)


def _formatted(report: dict, fmt: str, title: str):
    if fmt == "json":
        return report
    if fmt == "png":
        from fastapi.responses import Response

        from vigil.governance.reports import chart_png

        records = report["deployments"] if "deployments" in report else [report]
        return Response(chart_png(records), media_type="image/png", headers={"Cache-Control": "no-store"})
    text = render(report, fmt, title)
    return HTMLResponse(text) if fmt == "html" else PlainTextResponse(text, media_type="text/csv")


@router.get("/reports/deployments/{dep_id}")
def report_deployment(dep_id: int, request: Request, format: str = "json",
                      actor: Actor = Depends(permission("report.view"))):
    return _formatted(deployment_report(request.app.state.vigil, actor, dep_id), format, f"Deployment {dep_id}")


@router.get("/reports/annual/{year}")
def report_annual(year: int, request: Request, format: str = "json", include_trials: bool = False,
                  actor: Actor = Depends(permission("report.view"))):
    if not 2000 <= year <= 2100:
        raise VigilError("year out of range")
    report = annual_report(request.app.state.vigil, actor, year, include_trials=include_trials)
    return _formatted(report, format, f"Live facial recognition deployments {year}")


@router.post("/retention/run")
def retention(request: Request, actor: Actor = Depends(permission("system.admin"))):
    return run_retention(request.app.state.vigil, actor)


@router.get("/users")
def users(request: Request, actor: Actor = Depends(permission("user.manage"))):
    from sqlalchemy import select

    from vigil.store.schema import User

    with request.app.state.vigil.store.session() as session:
        return [{"username": u.username, "role": u.role, "disabled": u.disabled}
                for u in session.scalars(select(User).order_by(User.username))]


@router.post("/users", status_code=201)
def add_user(body: UserIn, request: Request, actor: Actor = Depends(permission("user.manage"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        user, password = create_user(session, body.username, body.role, created_by=actor.username,
                                     display_name=body.display_name, password=body.password)
        vigil.store.audit.record(session, actor, "user.created", "user", user.username, {"role": body.role})
    return {"username": body.username, "role": body.role, "password": password}


@router.post("/users/{username}/disable")
def disable_user(username: str, request: Request, actor: Actor = Depends(permission("user.manage"))):
    vigil = request.app.state.vigil
    if username == actor.username:
        raise VigilError("you cannot disable yourself")
    with vigil.store.session() as session:
        get_user(session, username).disabled = True
        vigil.store.audit.record(session, actor, "user.disabled", "user", username, {})
    return {"username": username, "disabled": True}


@router.post("/tokens/{token_id}/revoke")
def revoke(token_id: int, request: Request, actor: Actor = Depends(permission("token.manage_own"))):
    vigil = request.app.state.vigil
    with vigil.store.session() as session:
        revoke_token(session, token_id, actor)
        vigil.store.audit.record(session, actor, "token.revoked", "token", token_id, {})
    return {"id": token_id, "revoked": True}
