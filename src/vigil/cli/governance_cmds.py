"""Accountability commands: users, tokens, audit, retention, reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import CursorOpt, JsonOpt, LimitOpt, console, emit, emit_page, err_console
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


@user_app.command("create")
@user_app.command("add", hidden=True)  # the earlier spelling; every other thing is created with create
def user_create(username: str,
             role: str = typer.Option(..., "--role", help="admin, supervisor, operator, investigator or auditor."),
             display_name: str = typer.Option("", "--display-name", help="The person's full name."),
             os_user: str = typer.Option(None, "--os-user", help="Map this operating-system user to the new user."),
             as_json: bool = JsonOpt) -> None:
    """Create a user; a password is generated and printed once."""
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.add_user(vigil, actor, username, role, display_name=display_name, os_user=os_user)
    emit(result, as_json, lambda d: console.print(
        f"User {d['username']} ({d['role']}) created. Password (shown once): {d['password']}"))


@user_app.command("list")
def user_list(limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Users with their role and state."""
    from vigil.services import accounts

    vigil, actor = ctx()
    page = accounts.list_users(vigil, actor, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title="Users")
        for col in ("username", "role", "disabled", "os user"):
            table.add_column(col)
        for r in rs:
            table.add_row(r["username"], r["role"], "yes" if r["disabled"] else "", r["os_user"] or "")
        console.print(table)

    emit_page(page, as_json, human, "vigil user list")


@user_app.command("whoami")
def user_whoami(as_json: bool = JsonOpt) -> None:
    """Who the CLI acts as: VIGIL_TOKEN's user, else the one mapped to this operating-system
    account (from the kernel's uid; LOGNAME and USER are not trusted)."""
    from vigil.services import accounts

    vigil, actor = ctx()
    emit(accounts.whoami(actor), as_json, lambda d: console.print(f"{d['username']} ({d['role']})"))


def _revoked(d: dict) -> str:
    if not d.get("sessions_revoked") and not d.get("tokens_revoked"):
        return ""
    return f"; {d.get('sessions_revoked', 0)} sessions ended, {d.get('tokens_revoked', 0)} API tokens revoked"


def _set_disabled(username: str, disabled: bool, as_json: bool) -> None:
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.set_disabled(vigil, actor, username, disabled)
    emit(result, as_json, lambda d: console.print(
        f"User {username} {'disabled' if disabled else 'enabled'} (effective immediately){_revoked(d)}"))


@user_app.command("disable")
def user_disable(username: str, as_json: bool = JsonOpt) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    _set_disabled(username, True, as_json)


@user_app.command("enable")
def user_enable(username: str, as_json: bool = JsonOpt) -> None:
    """Enable a disabled user again (audited)."""
    _set_disabled(username, False, as_json)


@user_app.command("reset-password")
def user_reset_password(username: str, as_json: bool = JsonOpt) -> None:
    """A new generated password (printed once); every session and API token of the user ends."""
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.reset_password(vigil, actor, username)
    emit(result, as_json, lambda d: console.print(
        f"New password for {username} (shown once): {d['password']}{_revoked(d)}"))


@user_app.command("set-role")
def user_set_role(username: str,
                  role: str = typer.Option(..., "--role", help="admin, supervisor, operator, investigator or auditor."),
                  as_json: bool = JsonOpt) -> None:
    """Change a user's role; their sessions and API tokens end (they log in again)."""
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.set_role(vigil, actor, username, role)
    emit(result, as_json, lambda d: console.print(
        f"User {username}: {d['previous_role']} -> {d['role']}{_revoked(d)}"))


@token_app.command("create")
def token_create(user: str = typer.Option(None, "--user", help="For another user (admin only)."),
                 name: str = typer.Option("", "--name", help="What the token is for."),
                 days: float = typer.Option(None, "--days", help="Days until it expires."),
                 as_json: bool = JsonOpt) -> None:
    """Create an API token (printed once). Use it as VIGIL_TOKEN or a Bearer token."""
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.create_token(vigil, actor, for_user=user, name=name, days=days)
    emit(result, as_json, lambda d: console.print(f"Token {d['id']} for {d['user']} (shown once): {d['token']}"))


@token_app.command("list")
def token_list(all_users: bool = typer.Option(False, "--all", help="Everyone's tokens (administrators, auditors)."),
               limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """API tokens with their ids (to revoke one), owner, expiry and last use; never the secret."""
    from vigil.services import accounts

    vigil, actor = ctx()
    page = accounts.list_tokens(vigil, actor, all_users=all_users, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title="API tokens (newest first)")
        for col in ("id", "user", "name", "starts with", "created", "expires", "last used", "state"):
            table.add_column(col)
        for r in rs:
            state = "active" if r["active"] else ("revoked" if r["revoked_at"] else "expired")
            table.add_row(str(r["id"]), r["user"], r["name"] or "-", r["prefix"], r["created_at"] or "-",
                          r["expires_at"] or "never", r["last_used_at"] or "never", state)
        console.print(table)

    emit_page(page, as_json, human, "vigil token list" + (" --all" if all_users else ""))


@token_app.command("revoke")
def token_revoke(token_id: int, as_json: bool = JsonOpt) -> None:
    """Revoke an API token by its id ('vigil token list' shows ids)."""
    from vigil.services import accounts

    vigil, actor = ctx()
    result = accounts.revoke_token(vigil, actor, token_id)
    emit(result, as_json, lambda d: console.print(f"Token {token_id} revoked"))


@audit_app.command("verify")
def audit_verify(as_json: bool = JsonOpt) -> None:
    """Check the whole chain: any edit, deletion, insertion or reordering is named."""
    from vigil.services import audit_views

    vigil, actor = ctx()
    result = audit_views.verify_audit(vigil, actor)

    def human(r):
        anchor = r.get("anchor")
        if r["ok"]:
            console.print(f"[green]OK[/]: {r['entries']} entries, chain and signatures intact"
                          + (f", anchored up to entry {anchor['anchored_head']}" if anchor else "")
                          + (f" ({r['note']})" if r.get("note") and not (anchor and anchor["restores"]) else ""))
        else:
            console.print(f"[bold red]TAMPERED[/]: first bad entry {r['first_bad_entry']}: {r['reason']}")
        if anchor:
            console.print(f"Anchor: {anchor['kind']} {anchor['location']}, {anchor['records']} signed heads "
                          f"(key {anchor['key_id']})" + (f", {anchor['pending']} waiting to be delivered"
                                                         if anchor["pending"] else ""))
            for restore in anchor["restores"]:
                lost = restore["discarded"]
                console.print(f"[yellow]Restore[/] at entry {restore['entry']} ({restore['published']}): the log "
                              f"was rolled back from entry {restore['replaced_head']} to {restore['restored_head']}"
                              + (f"; entries {lost[0]} to {lost[1]} of the replaced log were discarded" if lost
                                 else ""))

    emit(result, as_json, human)
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(as_json: bool = JsonOpt) -> None:
    """Publish the log's head to the anchor now (after configuring one, or from cron)."""
    from vigil.services import audit_views

    vigil, actor = ctx()
    result = audit_views.publish_anchor(vigil, actor)
    emit(result, as_json, lambda r: console.print(
        f"Anchored entry {r['anchored_entry']} at {r['kind']} {r['location']}"
        + (f"; [bold red]{r['pending']} head(s) could not be delivered[/] (anchor unreachable; they wait in "
           "the spool and go out with the next write)" if r["pending"] else "")))
    if result["pending"]:
        raise typer.Exit(1)


SinceOpt = typer.Option(None, "--since", help="From this date or date-time (UTC).")
UntilOpt = typer.Option(None, "--until", help="To this date (its end) or date-time (UTC).")


def _period(since: str | None, until: str | None) -> dict:
    """``--since``/``--until`` as UTC instants: a bare date is the whole day."""
    from vigil.timeutil import parse_when

    return {"since": parse_when(since) if since else None,
            "until": parse_when(until, end_of_day=True) if until else None}


@audit_app.command("list")
def audit_list(action: str = typer.Option(None, "--action", help="Action prefix, e.g. auth. or deployment."),
               actor_name: str = typer.Option(None, "--actor", help="Only entries by this username."),
               since: str = SinceOpt, until: str = UntilOpt,
               limit: int = LimitOpt, cursor: str = CursorOpt,
               fmt: str = typer.Option("table", "--format", help="table | csv | json (with --out: every entry "
                                       "the filters select; else one page)"),
               out: Path = typer.Option(None, "--out", help="Write the entries to this file (csv or json)."),
               as_json: bool = JsonOpt) -> None:
    """Audit entries, newest first, filtered by action, actor and period; export as CSV or JSON."""
    from vigil.services import audit_views
    from vigil.services.audit_views import entries_csv

    if fmt not in ("table", "csv", "json"):
        raise VigilError("--format is table, csv or json")
    vigil, actor = ctx()
    filters = {"action": action, "actor_name": actor_name, **_period(since, until)}
    if out is not None:
        done = audit_views.export_audit(vigil, actor, out, "json" if fmt == "table" else fmt, **filters)
        emit(done, as_json, lambda d: console.print(f"{d['entries']} entries written to {d['path']} ({d['format']}); "
                                                     "the export is recorded in the audit log"))
        return
    page = audit_views.list_audit(vigil, actor, cursor=cursor, limit=limit, **filters)
    if fmt == "csv" and not as_json:
        text = entries_csv(page.items)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        if page.next_cursor:
            err_console.print(f"More rows follow: add --cursor {page.next_cursor}", markup=False, highlight=False)
        return

    def human(rows):
        table = Table(title="Audit log (newest first)")
        for col in ("seq", "time", "actor", "action", "object", "details"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r["seq"]), r["ts"], r["actor"], r["action"], f"{r['object_type']} {r['object_id']}",
                          json.dumps(r["details"])[:80])
        console.print(table)

    emit_page(page, as_json or fmt == "json", human, "vigil audit list (the same filters)")


@audit_app.command("searches")
def audit_searches(since: str = SinceOpt, until: str = UntilOpt,
                   case_ref: str = typer.Option(None, "--case", help="Only this case reference."),
                   by: str = typer.Option(None, "--by", help="Only this user's searches."),
                   limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Retrospective searches: who searched which gallery, when, for which case and why."""
    from vigil.services.search_records import list_searches

    vigil, actor = ctx()
    page = list_searches(vigil, actor, **_period(since, until), case_ref=case_ref, by=by, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title="Searches (newest first)")
        for col in ("id", "when", "by", "case", "reason", "gallery", "probe", "faces", "candidates"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["id"]), r["at"], r["by"], r["case_ref"], r["reason"][:60], r["collection"],
                          r["probe"], str(r["faces"]), str(r["candidates"]))
        console.print(table)

    emit_page(page, as_json, human, "vigil audit searches (the same filters)")


@retention_app.command("run")
def retention_run(as_json: bool = JsonOpt) -> None:
    """Purge what the retention policy says must go; the run is audited."""
    from vigil.services.retention import run_retention

    vigil, actor = ctx()
    counts = run_retention(vigil, actor)
    emit(counts, as_json, lambda d: console.print("Retention run: " + ", ".join(f"{k} {v}" for k, v in d.items())))


@report_app.command("deployment")
def report_deployment(deployment: str, fmt: str = typer.Option("json", "--format", help="json | csv | html"),
                      out: Path = typer.Option(None, "--out", help="Write to this file instead of printing."),
                      as_json: bool = JsonOpt) -> None:
    """The record of one deployment."""
    from vigil.services import reports

    fmt = "json" if as_json else fmt
    vigil, actor = ctx()
    text = reports.render(reports.deployment_report(vigil, actor, deployment), fmt, f"Deployment {deployment}")
    _write(vigil, actor, text, out, "report.deployment", {"deployment": deployment, "format": fmt})


@report_app.command("annual")
def report_annual(year: int = typer.Option(..., "--year", help="The calendar year (UTC)."),
                  fmt: str = typer.Option("json", "--format", help="json | csv | html"),
                  out: Path = typer.Option(None, "--out", help="Write to this file instead of printing."),
                  include_trials: bool = typer.Option(False, "--include-trials", help="Count trials too."),
                  as_json: bool = JsonOpt) -> None:
    """The year's deployments and totals (faces seen, alerts, false alert rate, arrests)."""
    from vigil.services import reports

    fmt = "json" if as_json else fmt
    vigil, actor = ctx()
    text = reports.render(reports.annual_report(vigil, actor, year, include_trials=include_trials), fmt,
                          f"Live facial recognition deployments {year}")
    _write(vigil, actor, text, out, "report.annual", {"year": year, "format": fmt})


def _write(vigil, actor, text: str, out: Path | None, kind: str, details: dict) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from vigil.services import reports

    result = reports.write_report(vigil, actor, text, out, kind, details)
    console.print(f"Written to {result['path']}")
