"""Accountability commands: users, tokens, audit, retention, reports."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import JsonOpt, console, emit
from vigil.cli.common_ctx import ctx
from vigil.errors import VigilError

user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention policy.", no_args_is_help=True)
report_app = typer.Typer(help="Transparency reports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(audit_app, name="audit")
    app.add_typer(retention_app, name="retention")
    app.add_typer(report_app, name="report")


@user_app.command("add")
def user_add(username: str, role: str = typer.Option(..., "--role"),
             display_name: str = typer.Option("", "--display-name"),
             os_user: str = typer.Option(None, "--os-user", help="Map this operating-system user to the new user."),
             as_json: bool = JsonOpt) -> None:
    """Create a user; a password is generated and printed once."""
    from vigil.governance.permissions import require
    from vigil.governance.users import create_user

    vigil, actor = ctx()
    require(actor, "user.manage")
    with vigil.store.session() as session:
        user, password = create_user(session, username, role, created_by=actor.username, display_name=display_name,
                                     os_user=os_user)
        vigil.store.audit.record(session, actor, "user.created", "user", user.username,
                                 {"role": role, "os_user": os_user})
    emit({"username": username, "role": role, "password": password}, as_json, lambda d: console.print(
        f"User {d['username']} ({d['role']}) created. Password (shown once): {d['password']}"))


@user_app.command("list")
def user_list(as_json: bool = JsonOpt) -> None:
    from sqlalchemy import select

    from vigil.governance.permissions import require
    from vigil.store.schema import User
    from vigil.timeutil import iso

    vigil, actor = ctx()
    require(actor, "user.manage")
    with vigil.store.session() as session:
        rows = [{"username": u.username, "role": u.role, "disabled": u.disabled, "os_user": u.os_user,
                 "created_at": iso(u.created_at)} for u in session.scalars(select(User).order_by(User.username))]

    def human(rs):
        table = Table(title="Users")
        for col in ("username", "role", "disabled", "os user"):
            table.add_column(col)
        for r in rs:
            table.add_row(r["username"], r["role"], "yes" if r["disabled"] else "", r["os_user"] or "")
        console.print(table)

    emit(rows, as_json, human)


def _set_disabled(username: str, disabled: bool, as_json: bool) -> None:
    from vigil.governance.permissions import require
    from vigil.governance.users import get_user

    vigil, actor = ctx()
    require(actor, "user.manage")
    if username == actor.username and disabled:
        raise VigilError("you cannot disable yourself")
    with vigil.store.session() as session:
        user = get_user(session, username)
        user.disabled = disabled
        vigil.store.audit.record(session, actor, "user.disabled" if disabled else "user.enabled", "user", username, {})
    emit({"username": username, "disabled": disabled}, as_json,
         lambda d: console.print(f"User {username} {'disabled' if disabled else 'enabled'} (effective immediately)"))


@user_app.command("disable")
def user_disable(username: str, as_json: bool = JsonOpt) -> None:
    _set_disabled(username, True, as_json)


@user_app.command("enable")
def user_enable(username: str, as_json: bool = JsonOpt) -> None:
    _set_disabled(username, False, as_json)


@user_app.command("reset-password")
def user_reset_password(username: str, as_json: bool = JsonOpt) -> None:
    from vigil.governance.permissions import require
    from vigil.governance.users import generate_password, get_user, hash_password

    vigil, actor = ctx()
    require(actor, "user.manage")
    password = generate_password()
    with vigil.store.session() as session:
        get_user(session, username).password_hash = hash_password(password)
        vigil.store.audit.record(session, actor, "user.password_reset", "user", username, {})
    emit({"username": username, "password": password}, as_json,
         lambda d: console.print(f"New password for {username} (shown once): {d['password']}"))


@token_app.command("create")
def token_create(user: str = typer.Option(None, "--user", help="For another user (admin only)."),
                 name: str = typer.Option("", "--name"), days: float = typer.Option(None, "--days"),
                 as_json: bool = JsonOpt) -> None:
    """Create an API token (printed once). Use it as VIGIL_TOKEN or a Bearer token."""
    from vigil.governance.permissions import require
    from vigil.governance.users import create_token, get_user

    vigil, actor = ctx()
    require(actor, "token.manage_own")
    with vigil.store.session() as session:
        target = get_user(session, user or actor.username)
        if target.username != actor.username:
            require(actor, "user.manage")
        row, secret = create_token(session, target, name, days)
        vigil.store.audit.record(session, actor, "token.created", "token", row.id,
                                 {"for_user": target.username, "name": name, "prefix": row.prefix})
        token_id = row.id
    emit({"id": token_id, "user": target.username, "token": secret}, as_json,
         lambda d: console.print(f"Token {d['id']} for {d['user']} (shown once): {d['token']}"))


@token_app.command("revoke")
def token_revoke(token_id: int, as_json: bool = JsonOpt) -> None:
    from vigil.governance.users import revoke_token

    vigil, actor = ctx()
    with vigil.store.session() as session:
        revoke_token(session, token_id, actor)
        vigil.store.audit.record(session, actor, "token.revoked", "token", token_id, {})
    emit({"id": token_id, "revoked": True}, as_json, lambda d: console.print(f"Token {token_id} revoked"))


@audit_app.command("verify")
def audit_verify(as_json: bool = JsonOpt) -> None:
    """Check the whole chain: any edit, deletion, insertion or reordering is named."""
    from vigil.governance.permissions import require

    vigil, actor = ctx()
    require(actor, "audit.view")
    with vigil.store.session() as session:
        result = vigil.store.audit.verify(session)

    def human(r):
        if r["ok"]:
            console.print(f"[green]OK[/]: {r['entries']} entries, chain and signatures intact"
                          + (f" ({r['note']})" if r.get("note") else ""))
        else:
            console.print(f"[bold red]TAMPERED[/]: first bad entry {r['first_bad_entry']}: {r['reason']}")

    emit(result, as_json, human)
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("list")
def audit_list(action: str = typer.Option(None, "--action"), actor_name: str = typer.Option(None, "--actor"),
               limit: int = typer.Option(50, "--limit"), as_json: bool = JsonOpt) -> None:
    from vigil.governance.audit_query import query_audit

    vigil, actor = ctx()
    rows = query_audit(vigil, actor, action=action, actor_name=actor_name, limit=limit)

    def human(rs):
        table = Table(title="Audit log (newest first)")
        for col in ("seq", "time", "actor", "action", "object", "details"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["seq"]), r["ts"], r["actor"], r["action"], f"{r['object_type']} {r['object_id']}",
                          json.dumps(r["details"])[:80])
        console.print(table)

    emit(rows, as_json, human)


@retention_app.command("run")
def retention_run(as_json: bool = JsonOpt) -> None:
    """Purge what the retention policy says must go; the run is audited."""
    from vigil.governance.retention import run_retention

    vigil, actor = ctx()
    counts = run_retention(vigil, actor)
    emit(counts, as_json, lambda d: console.print("Retention run: " + ", ".join(f"{k} {v}" for k, v in d.items())))


@report_app.command("deployment")
def report_deployment(deployment: str, fmt: str = typer.Option("json", "--format", help="json | csv | html"),
                      out: Path = typer.Option(None, "--out")) -> None:
    """The record of one deployment."""
    from vigil.governance.reports import deployment_report, render

    vigil, actor = ctx()
    text = render(deployment_report(vigil, actor, deployment), fmt, f"Deployment {deployment}")
    _write(vigil, actor, text, out, "report.deployment", {"deployment": deployment, "format": fmt})


@report_app.command("annual")
def report_annual(year: int = typer.Option(..., "--year"), fmt: str = typer.Option("json", "--format"),
                  out: Path = typer.Option(None, "--out"),
                  include_trials: bool = typer.Option(False, "--include-trials")) -> None:
    """The year's deployments and totals (faces seen, alerts, false alert rate, arrests)."""
    from vigil.governance.reports import annual_report, render

    vigil, actor = ctx()
    text = render(annual_report(vigil, actor, year, include_trials=include_trials), fmt,
                  f"Live facial recognition deployments {year}")
    _write(vigil, actor, text, out, "report.annual", {"year": year, "format": fmt})


def _write(vigil, actor, text: str, out: Path | None, kind: str, details: dict) -> None:
    import sys

    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from vigil.store.exports import check_target, record_export

    target = check_target(out, directory=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    with vigil.store.session() as session:
        record_export(vigil.store, session, actor, kind, target, details)
    console.print(f"Written to {target}")
