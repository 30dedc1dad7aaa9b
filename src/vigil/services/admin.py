"""Administration use cases: backup, restore, key rotation, database upgrade and copy.

Each one replaces or copies the whole store, so each needs ``system.admin`` and leaves an
audit entry naming the data and the state before and after: the backup's SHA-256 digest,
the audit log's head (sequence number and hash), the schema revision, the key ids. A
restore is recorded *after* it, in the restored log, so the chain that survives shows who
restored which backup, when, and which head it replaced. The copying itself is
persistence (``vigil.store.backup``, ``vigil.store.key_rotation``).
"""

from __future__ import annotations

from pathlib import Path

from vigil.config import Settings
from vigil.errors import VigilError
from vigil.governance.permissions import Actor, require
from vigil.services.context import Vigil, forget_contexts, get_vigil
from vigil.services.unit import use_case
from vigil.store import backup as backups
from vigil.store import key_rotation
from vigil.store.db import current_revision, has_schema, make_engine, upgrade
from vigil.store.store import Store

ADMIN = "system.admin"


def backup(vigil: Vigil, actor: Actor, target: Path) -> dict:
    """Write a backup of this store to ``target`` and record its digest."""
    require(actor, ADMIN)  # the permission, before anything is written
    result = backups.write_backup(vigil.store, target)
    digest = backups.backup_digest(Path(result["path"]))
    with use_case(vigil, actor, ADMIN) as uow:
        uow.audit("system.backup", "backup", result["path"], {
            "sha256": digest, "blobs": result["blobs"], "missing": len(result["blobs_deleted_during_backup"]),
            "audit_head": result["audit_head"], "schema_revision": result["schema_revision"],
            "data_key_ids": result["data_key_ids"]})
    return {**result, "sha256": digest}


def check_restorable(settings: Settings, source: Path) -> dict:
    """Is ``source`` a backup this data directory's keys can read? Creates nothing, so a
    front end can ask before it opens (and so initialises) a fresh data directory."""
    return backups.read_manifest(settings, source)


def restore(vigil: Vigil, actor: Actor, source: Path, *, force: bool = False) -> dict:
    """Replace this store with a backup, then record the restore in the restored log."""
    settings = vigil.settings
    require(actor, ADMIN)  # the permission, on the store about to be replaced
    source = Path(source).expanduser().resolve()
    manifest = backups.read_manifest(settings, source)
    digest = backups.backup_digest(source)
    replaced = {"audit_head": backups.audit_tip(settings.db_url),
                "schema_revision": backups.database_revision(settings.db_url)}
    forget_contexts()  # close every connection to the database about to be replaced
    result = backups.restore(settings, source, force=force)
    restored_head = backups.audit_tip(settings.db_url)
    restored = get_vigil(settings)
    with use_case(restored, actor, ADMIN) as uow:
        uow.audit("system.restored", "backup", str(source), {
            "sha256": digest, "backup_created_at": manifest.get("created_at"),
            "restored_head": restored_head, "replaced_head": replaced["audit_head"],
            "schema_revision_before": replaced["schema_revision"],
            "schema_revision_after": backups.database_revision(settings.db_url), "forced": force})
        restored.audit.note_restore(uow.session, replaced["audit_head"], restored_head)  # anchored as a restore
    return {**result, "sha256": digest, "restored_head": restored_head, "replaced_head": replaced["audit_head"]}


def rotate_keys(vigil: Vigil, actor: Actor, *, progress=None) -> dict:
    """A new data key, everything re-encrypted under it, the old key retired (resumable)."""
    store = vigil.store
    require(actor, ADMIN)  # the permission, before the key file changes
    began = key_rotation.begin_rotation(store)
    with use_case(vigil, actor, ADMIN) as uow:
        uow.audit("keys.rotation_started", "keys", began["active_key"], began)
    counts = key_rotation.reencrypt_everything(store, progress=progress)
    vigil.indexes.forget()
    retired = key_rotation.retire_old_keys(store)
    with use_case(vigil, actor, ADMIN) as uow:
        uow.audit("keys.rotated", "keys", began["active_key"],
                  {**counts, "retired": len(retired), "retired_keys": retired, "old_keys": began["old_keys"]})
    note = ("Re-encrypted under the first key of VIGIL_KEY; now remove the older keys from VIGIL_KEY."
            if began["from_environment"] else
            "Old key retired. Back up keys/data.key again: older backups need the old key.")
    return {"active_key": began["active_key"], **counts, "retired_keys": len(retired), "note": note}


def maintenance_context(settings: Settings) -> Vigil:
    """A context whose store is opened *without* migrating, so that ``upgrade_database`` can
    check who asks before the schema changes. A database with no schema yet is a first run:
    the ordinary context creates it (and the first administrator)."""
    engine = make_engine(settings.db_url)
    try:
        fresh = not has_schema(engine)
    finally:
        engine.dispose()
    if fresh:
        return get_vigil(settings)
    return Vigil(settings, store=Store(settings, migrate=False))


def upgrade_database(vigil: Vigil, actor: Actor) -> dict:
    """Apply the database migrations; record the revision before and after."""
    engine = vigil.store.engine
    require(actor, ADMIN)  # before the schema changes
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    with use_case(vigil, actor, ADMIN) as uow:
        uow.audit("system.db_upgraded", "database", backups.redact_url(vigil.settings.db_url),
                  {"revision_before": before, "revision_after": after})
    return {"revision": after, "revision_before": before}


def copy_database(vigil: Vigil, actor: Actor, target_url: str, *, progress=None) -> dict:
    """Copy this store's database into another, empty one (e.g. SQLite to PostgreSQL)."""
    require(actor, ADMIN)
    if target_url == vigil.settings.db_url:
        raise VigilError("source and target are the same database")
    head = backups.audit_tip(vigil.settings.db_url)
    counts = backups.copy_database(vigil.settings.db_url, target_url, progress=progress)
    with use_case(vigil, actor, ADMIN) as uow:
        uow.audit("system.db_copied", "database", backups.redact_url(target_url), {
            "rows": sum(counts.values()), "audit_head": head,
            "schema_revision": backups.database_revision(target_url)})
    return {"rows": counts, "audit_head": head,
            "note": "Point VIGIL_DATABASE_URL at the target; blobs and keys stay in VIGIL_HOME."}
