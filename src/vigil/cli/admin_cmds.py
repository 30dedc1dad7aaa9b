"""Administration: keys, reindex, backup/restore, database copy and upgrade."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.common import JsonOpt, console, emit, settings
from vigil.cli.common_ctx import ctx

keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(db_app, name="db")
    app.command()(reindex)
    app.command()(backup)
    app.command()(restore)


@keys_app.command("rotate")
def keys_rotate(as_json: bool = JsonOpt) -> None:
    """New data key; re-encrypt every image, template, snapshot and index; retire the old key."""
    from vigil.services import admin

    vigil, actor = ctx()
    result = admin.rotate_keys(vigil, actor)
    emit(result, as_json, lambda d: console.print(
        f"Rotated to key {d['active_key']}: {d['blobs']} blobs, {d['templates']} templates, "
        f"{d['snapshot_entries']} snapshot entries re-encrypted. {d['note']}"))


def reindex(
    pack: str = typer.Option(..., "--pack", help="The pack to re-extract templates with."),
    gallery: str = typer.Option(None, "--gallery", help="Reindex this gallery (or --watchlist)."),
    watchlist: str = typer.Option(None, "--watchlist", help="Reindex this watchlist (or --gallery)."),
    as_json: bool = JsonOpt,
) -> None:
    """Re-extract templates from the stored images with another pack (model upgrade)."""
    from vigil.errors import VigilError
    from vigil.services.reindex import reindex as run

    if gallery and watchlist:
        raise VigilError("name at most one of --gallery or --watchlist")
    kind, name = ("gallery", gallery) if gallery else ("watchlist", watchlist) if watchlist else (None, None)
    vigil, actor = ctx()
    result = run(vigil, actor, pack, kind=kind, name=name, show_progress=not as_json)

    def human(d):
        console.print(f"Reindexed {len(d['collections'])} collection(s) with {d['model_id']}: "
                      f"{d['templates_made']} templates made, {d['failed_images']} images without a face, "
                      f"{d['old_templates_deleted']} old templates deleted")
        for w in d["authorisation_withdrawn"]:
            console.print(f"  [yellow]authorisation withdrawn[/] from watchlist {w['watchlist']!r}: {w['because']}")

    emit(result, as_json, human)


def backup(path: Path = typer.Argument(..., help="New or empty folder."), as_json: bool = JsonOpt) -> None:
    """Consistent copy of database, encrypted blobs and indexes (keys are NOT included)."""
    from vigil.services import admin

    vigil, actor = ctx()
    result = admin.backup(vigil, actor, path)
    emit(result, as_json, lambda d: console.print(
        f"Backup written to {d['path']} ({d['blobs']} blobs, sha256 {d['sha256'][:16]}...). "
        f"[yellow]Keys are not included:[/] keep a copy of keys/ (data key ids {', '.join(d['data_key_ids'])}) "
        "somewhere else."))


def restore(path: Path = typer.Argument(...),
            force: bool = typer.Option(False, "--force", help="Replace a store already there (admins; audited)."),
            as_json: bool = JsonOpt) -> None:
    """Restore a backup into this data directory (keys must already be in place)."""
    from vigil.services import admin

    admin.check_restorable(settings(), path)  # before a fresh data directory is initialised
    vigil, actor = ctx()
    result = admin.restore(vigil, actor, path, force=force)
    emit(result, as_json, lambda d: console.print(f"Restored {d['restored_from']} into {d['home']}"))


@db_app.command("copy")
def db_copy(to: str = typer.Option(..., "--to", help="Target database URL, e.g. postgresql://host/db"),
            as_json: bool = JsonOpt) -> None:
    """Copy this store's database to another (empty) database, e.g. embedded SQLite to PostgreSQL."""
    from vigil.services import admin

    vigil, actor = ctx()
    result = admin.copy_database(vigil, actor, to)
    emit(result, as_json, lambda d: console.print(f"Copied {sum(d['rows'].values())} rows. {d['note']}"))


@db_app.command("upgrade")
def db_upgrade(as_json: bool = JsonOpt) -> None:
    """Apply database migrations (done automatically on open; for servers' deploy scripts)."""
    from vigil.services import admin

    vigil = admin.maintenance_context(settings())  # opened without migrating: who asks is checked first
    result = admin.upgrade_database(vigil, vigil.cli_actor())
    emit(result, as_json, lambda d: console.print(f"Database at revision {d['revision']}"))
