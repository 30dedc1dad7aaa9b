"""Administration: keys, reindex, backup/restore, database copy and upgrade."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.common import JsonOpt, console, emit, settings
from vigil.cli.common_ctx import ctx
from vigil.errors import VigilError

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
    from vigil.store.key_rotation import rotate_keys

    vigil, actor = ctx()
    result = rotate_keys(vigil, actor)
    emit(result, as_json, lambda d: console.print(
        f"Rotated to key {d['active_key']}: {d['blobs']} blobs, {d['templates']} templates, "
        f"{d['snapshot_entries']} snapshot entries re-encrypted. {d['note']}"))


def reindex(
    pack: str = typer.Option(..., "--pack", help="The pack to re-extract templates with."),
    gallery: str = typer.Option(None, "--gallery"),
    watchlist: str = typer.Option(None, "--watchlist"),
    as_json: bool = JsonOpt,
) -> None:
    """Re-extract templates from the stored images with another pack (model upgrade)."""
    from sqlalchemy import select

    from vigil.retro.reindex import reindex as run
    from vigil.store.collections import get_collection
    from vigil.store.schema import Collection

    vigil, actor = ctx()
    with vigil.store.session() as session:
        if gallery:
            colls = [get_collection(session, "gallery", gallery)]
        elif watchlist:
            colls = [get_collection(session, "watchlist", watchlist)]
        else:
            colls = list(session.scalars(select(Collection)))
    result = run(vigil, actor, pack, colls, show_progress=not as_json)
    emit(result, as_json, lambda d: console.print(
        f"Reindexed {len(d['collections'])} collection(s) with {d['model_id']}: {d['templates_made']} templates made, "
        f"{d['failed_images']} images without a face, {d['old_templates_deleted']} old templates deleted"))


def backup(path: Path = typer.Argument(..., help="New or empty folder."), as_json: bool = JsonOpt) -> None:
    """Consistent copy of database, encrypted blobs and indexes (keys are NOT included)."""
    from vigil.store.backup import backup as run

    vigil, actor = ctx()
    result = run(vigil, actor, path)
    emit(result, as_json, lambda d: console.print(
        f"Backup written to {d['path']} ({d['blobs']} blobs). [yellow]Keys are not included:[/] "
        f"keep a copy of keys/ (data key ids {', '.join(d['data_key_ids'])}) somewhere else."))


def restore(path: Path = typer.Argument(...), force: bool = typer.Option(False, "--force"),
            as_json: bool = JsonOpt) -> None:
    """Restore a backup into this data directory (keys must already be in place)."""
    from vigil.services import forget_contexts
    from vigil.store.backup import restore as run

    s = settings()
    forget_contexts()
    result = run(s, path, force=force)
    emit(result, as_json, lambda d: console.print(f"Restored {d['restored_from']} into {d['home']}"))


@db_app.command("copy")
def db_copy(to: str = typer.Option(..., "--to", help="Target database URL, e.g. postgresql://host/db"),
            as_json: bool = JsonOpt) -> None:
    """Copy this store's database to another (empty) database, e.g. embedded SQLite to PostgreSQL."""
    from vigil.governance.permissions import require
    from vigil.store.backup import copy_database

    vigil, actor = ctx()
    require(actor, "system.admin")
    if to == vigil.settings.db_url:
        raise VigilError("source and target are the same database")
    counts = copy_database(vigil.settings.db_url, to)
    with vigil.store.session() as session:
        vigil.store.audit.record(session, actor, "system.db_copied", "database", "", {"rows": sum(counts.values())})
    emit({"rows": counts, "note": "Point VIGIL_DATABASE_URL at the target; blobs and keys stay in VIGIL_HOME."},
         as_json, lambda d: console.print(f"Copied {sum(d['rows'].values())} rows. {d['note']}"))


@db_app.command("upgrade")
def db_upgrade(as_json: bool = JsonOpt) -> None:
    """Apply database migrations (done automatically on open; for servers' deploy scripts)."""
    from vigil.store.db import current_revision, make_engine, upgrade

    engine = make_engine(settings().db_url)
    upgrade(engine)
    emit({"revision": current_revision(engine)}, as_json, lambda d: console.print(f"Database at revision {d['revision']}"))
