"""Audit, reports, retention, users and tokens: each route calls one service function,
which checks the permission (403), runs the transaction and writes the audit entry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from vigil.api.auth import current_actor
from vigil.api.responses import (
    AnnualReport, ApiTokenInfo, AuditEntry, AuditVerification, DeploymentRecord, Page, PasswordReset, RetentionRun,
    RoleChanged, SearchRecord, TokenRevoked, UserCreated, UserDisabled, UserSummary,
)
from vigil.api.schemas import REPORT_FORMATS, Cursor, Id, Limit, ReportFormat, RoleIn, UserIn, Username, UtcDateTime, Year
from vigil.services import Actor, accounts, audit_views, reports
from vigil.services.audit_views import entries_csv
from vigil.services.search_records import list_searches
from vigil.services.retention import run_retention

router = APIRouter(prefix="/api", tags=["accountability"])


@router.get("/audit", response_model=Page[AuditEntry],
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
def audit(request: Request, action: Annotated[str | None, Query(max_length=60)] = None,
          actor_name: Annotated[str | None, Query(max_length=80)] = None,
          object_type: Annotated[str | None, Query(max_length=40)] = None,
          since: Annotated[UtcDateTime | None, Query(description="from this instant (UTC if naive)")] = None,
          until: Annotated[UtcDateTime | None, Query(description="to this instant, inclusive")] = None,
          format: Annotated[Literal["json", "csv"], Query(
              description="csv: a spreadsheet export of every entry the filters select (not paged)")] = "json",
          limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """Entries newest first, one page at a time; ``format=csv`` exports them all."""
    filters = {"action": action, "actor_name": actor_name, "object_type": object_type, "since": since, "until": until}
    if format == "csv":
        entries = audit_views.audit_entries(request.app.state.vigil, actor, **filters)
        return PlainTextResponse(entries_csv(entries), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="audit.csv"',
                                          "Cache-Control": "no-store"})
    return audit_views.list_audit(request.app.state.vigil, actor, cursor=cursor, limit=limit, **filters).as_dict()


@router.get("/searches", response_model=Page[SearchRecord])
def searches(request: Request, since: Annotated[UtcDateTime | None, Query()] = None,
             until: Annotated[UtcDateTime | None, Query()] = None,
             case_ref: Annotated[str | None, Query(max_length=200)] = None,
             by: Annotated[str | None, Query(max_length=80)] = None,
             limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """Who searched which gallery, when, for which case and why (investigators: their own), newest first."""
    return list_searches(request.app.state.vigil, actor, since=since, until=until, case_ref=case_ref, by=by,
                         cursor=cursor, limit=limit).as_dict()


@router.get("/tokens", response_model=Page[ApiTokenInfo])
def tokens(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """Every API token with its id and owner (administrators and auditors), newest first; never the secret."""
    return accounts.list_tokens(request.app.state.vigil, actor, all_users=True, cursor=cursor, limit=limit).as_dict()


@router.get("/audit/verify", response_model=AuditVerification, response_model_exclude_unset=True)
def audit_verify(request: Request, actor: Actor = Depends(current_actor)):
    return audit_views.verify_audit(request.app.state.vigil, actor)


def _formatted(report: dict, fmt: str, title: str):
    if fmt == "json":
        return report
    if fmt == "png":
        return Response(reports.chart_png(report), media_type="image/png", headers={"Cache-Control": "no-store"})
    text = reports.render(report, fmt, title)
    return HTMLResponse(text) if fmt == "html" else PlainTextResponse(text, media_type="text/csv")


@router.get("/reports/deployments/{dep_id}", response_model=DeploymentRecord, responses=REPORT_FORMATS)
def report_deployment(dep_id: Id, request: Request, format: ReportFormat = "json",
                      actor: Actor = Depends(current_actor)):
    return _formatted(reports.deployment_report(request.app.state.vigil, actor, dep_id), format, f"Deployment {dep_id}")


@router.get("/reports/annual/{year}", response_model=AnnualReport, responses=REPORT_FORMATS)
def report_annual(year: Year, request: Request, format: ReportFormat = "json", include_trials: bool = False,
                  actor: Actor = Depends(current_actor)):
    report = reports.annual_report(request.app.state.vigil, actor, year, include_trials=include_trials)
    return _formatted(report, format, f"Live facial recognition deployments {year}")


@router.post("/retention/run", response_model=RetentionRun)
def retention(request: Request, actor: Actor = Depends(current_actor)):
    return run_retention(request.app.state.vigil, actor)


@router.get("/users", response_model=Page[UserSummary])
def users(request: Request, limit: Limit = 100, cursor: Cursor = None, actor: Actor = Depends(current_actor)):
    """Users by name, one page at a time."""
    page = accounts.list_users(request.app.state.vigil, actor, cursor=cursor, limit=limit)
    return {"items": [{k: u[k] for k in ("username", "role", "disabled")} for u in page.items],
            "next_cursor": page.next_cursor}


@router.post("/users", status_code=201, response_model=UserCreated)
def add_user(body: UserIn, request: Request, actor: Actor = Depends(current_actor)):
    result = accounts.add_user(request.app.state.vigil, actor, body.username, body.role,
                               display_name=body.display_name, password=body.password)
    return {k: result[k] for k in ("username", "role", "password")}


@router.post("/users/{username}/disable", response_model=UserDisabled, response_model_exclude_unset=True)
def disable_user(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    """Disable a user: every session and API token of theirs stops working at once."""
    return accounts.set_disabled(request.app.state.vigil, actor, username, True)


@router.post("/users/{username}/enable", response_model=UserDisabled, response_model_exclude_unset=True)
def enable_user(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    return accounts.set_disabled(request.app.state.vigil, actor, username, False)


@router.post("/users/{username}/reset-password", response_model=PasswordReset)
def reset_password(username: Username, request: Request, actor: Actor = Depends(current_actor)):
    """A new generated password (shown once); every session and API token of the user ends."""
    return accounts.reset_password(request.app.state.vigil, actor, username)


@router.post("/users/{username}/role", response_model=RoleChanged, response_model_exclude_unset=True)
def set_role(username: Username, body: RoleIn, request: Request, actor: Actor = Depends(current_actor)):
    """Change a user's role; their sessions and API tokens end (they log in again)."""
    return accounts.set_role(request.app.state.vigil, actor, username, body.role)


@router.post("/tokens/{token_id}/revoke", response_model=TokenRevoked)
def revoke(token_id: Id, request: Request, actor: Actor = Depends(current_actor)):
    return accounts.revoke_token(request.app.state.vigil, actor, token_id)
