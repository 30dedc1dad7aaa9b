"""Audit, reports, retention, users and tokens: each route calls one service function,
which checks the permission (403), runs the transaction and writes the audit entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from vigil.api.auth import current_actor
from vigil.api.schemas import MAX_ID, REPORT_FORMATS, Id, ReportFormat, RoleIn, UserIn, Username, Year
from vigil.services import Actor, accounts, audit_views, reports
from vigil.services.retention import run_retention

router = APIRouter(prefix="/api", tags=["accountability"])


@router.get("/audit")
def audit(request: Request, action: Annotated[str | None, Query(max_length=60)] = None,
          actor_name: Annotated[str | None, Query(max_length=80)] = None,
          object_type: Annotated[str | None, Query(max_length=40)] = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, actor: Actor = Depends(current_actor)):
    return audit_views.list_audit(request.app.state.vigil, actor, action=action, actor_name=actor_name,
                                  object_type=object_type, limit=limit, before=before)


@router.get("/audit/verify")
def audit_verify(request: Request, actor: Actor = Depends(current_actor)):
    return audit_views.verify_audit(request.app.state.vigil, actor)


def _formatted(report: dict, fmt: str, title: str):
    if fmt == "json":
        return report
    if fmt == "png":
        return Response(reports.chart_png(report), media_type="image/png", headers={"Cache-Control": "no-store"})
    text = reports.render(report, fmt, title)
    return HTMLResponse(text) if fmt == "html" else PlainTextResponse(text, media_type="text/csv")


@router.get("/reports/deployments/{dep_id}", responses=REPORT_FORMATS)
def report_deployment(dep_id: Id, request: Request, format: ReportFormat = "json",
                      actor: Actor = Depends(current_actor)):
    return _formatted(reports.deployment_report(request.app.state.vigil, actor, dep_id), format, f"Deployment {dep_id}")


@router.get("/reports/annual/{year}", responses=REPORT_FORMATS)
def report_annual(year: Year, request: Request, format: ReportFormat = "json", include_trials: bool = False,
                  actor: Actor = Depends(current_actor)):
    report = reports.annual_report(request.app.state.vigil, actor, year, include_trials=include_trials)
    return _formatted(report, format, f"Live facial recognition deployments {year}")


@router.post("/retention/run")
def retention(request: Request, actor: Actor = Depends(current_actor)):
    return run_retention(request.app.state.vigil, actor)


@router.get("/users")
def users(request: Request, actor: Actor = Depends(current_actor)):
    return [{k: u[k] for k in ("username", "role", "disabled")} for u in accounts.list_users(request.app.state.vigil,
                                                                                              actor)]


@router.post("/users", status_code=201)
def add_user(body: UserIn, request: Request, actor: Actor = Depends(current_actor)):
    result = accounts.add_user(request.app.state.vigil, actor, body.username, body.role,
                               display_name=body.display_name, password=body.password)
    return {k: result[k] for k in ("username", "role", "password")}


@router.post("/users/{username}/disable")
def disable_user(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    """Disable a user: every session and API token of theirs stops working at once."""
    return accounts.set_disabled(request.app.state.vigil, actor, username, True)


@router.post("/users/{username}/enable")
def enable_user(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    return accounts.set_disabled(request.app.state.vigil, actor, username, False)


@router.post("/users/{username}/reset-password")
def reset_password(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    """A new generated password (shown once); every session and API token of the user ends."""
    return accounts.reset_password(request.app.state.vigil, actor, username)


@router.post("/users/{username}/role")
def set_role(username: Username, body: RoleIn, request: Request, actor: Actor = Depends(current_actor)):
    """Change a user's role; their sessions and API tokens end (they log in again)."""
    return accounts.set_role(request.app.state.vigil, actor, username, body.role)


@router.post("/tokens/{token_id}/revoke")
def revoke(token_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    return accounts.revoke_token(request.app.state.vigil, actor, token_id)
