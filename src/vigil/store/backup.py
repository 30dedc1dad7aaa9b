"""Backup, restore and moving an embedded store to a server.

A backup is a folder holding ``vigil.db`` (a consistent SQLite copy of the database, made
with SQLite's online backup API, or table by table from PostgreSQL), the encrypted blobs
and index files it references, and ``manifest.json``; not the audit head file, which never
moves backwards (the restore's own audit entry sets it, and the anchor records that). Keys
are NOT in the backup: back up ``keys/`` (or your ``VIGIL_KEY``/``VIGIL_AUDIT_KEY`` secrets)
separately, and keep them apart from the data, or a stolen backup is a readable one.

Persistence only: these functions copy files and rows. Who may back up or restore, and the
audit entries that say who did (with the backup's digest and the audit heads before and
after), belong to the use cases in ``vigil.services.admin``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import MetaData, Table, func, insert, inspect, select, text

from vigil import __version__
from vigil.errors import VigilError
from vigil.store.db import current_revision, make_engine, normalise_url, sqlite_path, upgrade
from vigil.store.schema import AuditEntry, Base, Blob
from vigil.timeutil import iso, utcnow

CHUNK = 2000


def copy_database(source_url: str, target_url: str, *, progress=None) -> dict:
    """Copy every table row by row into an empty target database of the same schema."""
    src = make_engine(source_url)
    dst = make_engine(target_url)
    upgrade(dst)
    counts = {}
    with dst.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if conn.execute(select(func.count()).select_from(table)).scalar():
                raise VigilError(f"the target database already holds data (table {table.name}); use an empty one")
    with src.connect() as s_conn, dst.begin() as d_conn:
        for table in Base.metadata.sorted_tables:
            n = 0
            result = s_conn.execution_options(stream_results=True).execute(select(table))
            while rows := result.fetchmany(CHUNK):
                d_conn.execute(insert(table), [dict(r._mapping) for r in rows])
                n += len(rows)
            counts[table.name] = n
            if progress:
                progress(1)
        if dst.dialect.name == "postgresql":
            _reset_sequences(d_conn)
    src.dispose()
    dst.dispose()
    return counts


def _reset_sequences(conn) -> None:
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].autoincrement is not False and str(pk[0].type) == "INTEGER":
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"))


def write_backup(store, target: Path) -> dict:
    """Write a backup of ``store`` into ``target`` (new or empty); return its manifest and path."""
    target = Path(target).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise VigilError(f"{target}: backup folder must be new or empty")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    db_copy = target / "vigil.db"
    src_file = sqlite_path(store.settings.db_url)
    if src_file:
        with closing(sqlite3.connect(src_file)) as src, closing(sqlite3.connect(db_copy)) as dst:
            src.backup(dst)
    else:
        copy_database(store.settings.db_url, f"sqlite:///{db_copy}")
    with closing(sqlite3.connect(db_copy)) as dst:
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, readable read-only
    db_copy.chmod(0o600)
    with _read_only(db_copy) as conn:
        blob_ids = [r[0] for r in conn.execute("SELECT id FROM blobs")]
        revision = (conn.execute("SELECT version_num FROM alembic_version").fetchone() or [None])[0]
        tip = conn.execute(f"SELECT seq, hash FROM {AuditEntry.__tablename__} ORDER BY seq DESC LIMIT 1").fetchone()
    copied, missing = 0, []
    for blob_id in blob_ids:
        source = store.blobs.path(blob_id)
        dest = target / "blobs" / source.relative_to(store.blobs.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(source, dest)
            copied += 1
        except FileNotFoundError:
            missing.append(blob_id)  # deleted between the database copy and now
    if (store.home / "index").is_dir():
        shutil.copytree(store.home / "index", target / "index")
    manifest = {"vigil_version": __version__, "created_at": iso(utcnow()), "source_database": redact_url(store.settings.db_url),
                "blobs": copied, "blobs_deleted_during_backup": missing,
                "data_key_ids": sorted(k.hex() for k in store.keyring.keys),
                "keys_included": False, "schema_revision": revision,
                "audit_head": {"seq": tip[0], "hash": tip[1]} if tip else None,
                "note": "Keys are not in this backup. Restore needs the data key(s) listed above and the audit key."}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"path": str(target), **manifest}


@contextmanager
def _read_only(db_file: Path):
    """A read-only connection to a backup's database: reading it changes no byte of it."""
    conn = sqlite3.connect(f"{Path(db_file).resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def backup_digest(folder: Path) -> str:
    """SHA-256 over every file of a backup (relative path and content, in sorted order): the
    backup's identity, recorded when it is written and again when it is restored."""
    folder = Path(folder)
    outer = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{path.relative_to(folder).as_posix()}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


def audit_tip(url: str) -> dict | None:
    """The last audit entry of the database at ``url`` (sequence number and hash), or None."""
    engine = make_engine(url)
    try:
        if AuditEntry.__tablename__ not in inspect(engine).get_table_names():
            return None
        with engine.connect() as conn:
            row = conn.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    finally:
        engine.dispose()
    return {"seq": row[0], "hash": row[1]} if row else None


def database_revision(url: str) -> str | None:
    """The schema (Alembic) revision of the database at ``url``."""
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def read_manifest(settings, source: Path) -> dict:
    """Check that ``source`` is a backup this data directory's keys can read; return its manifest.

    Creates nothing, so it can run before a fresh data directory is initialised."""
    from vigil.store.crypto import load_keyring

    source = Path(source).expanduser().resolve()
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file() or not (source / "vigil.db").is_file():
        raise VigilError(f"{source}: not a Vigil backup (manifest.json and vigil.db expected)")
    try:
        manifest = json.loads(manifest_path.read_text())
        needed = set(manifest["data_key_ids"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VigilError(f"{manifest_path}: unreadable backup manifest ({exc})") from exc
    if not settings.key and not (settings.home / "keys" / "data.key").is_file():
        raise VigilError(f"{settings.home / 'keys' / 'data.key'} not found: copy the key file this backup needs "
                         f"({sorted(needed)}) there first (or set VIGIL_KEY)")
    ring = load_keyring(settings.home, settings.key)
    missing_keys = needed - {k.hex() for k in ring.keys}
    if missing_keys:
        raise VigilError(f"the keyring at {settings.home / 'keys'} lacks key(s) {sorted(missing_keys)} this backup needs; "
                         "copy the key file (or set VIGIL_KEY) first")
    return manifest


def holds_data(url: str) -> bool:
    engine = make_engine(url)
    try:
        if "subjects" not in inspect(engine).get_table_names():
            return False
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT COUNT(*) FROM subjects")).scalar())
    finally:
        engine.dispose()


def restore(settings, source: Path, *, force: bool = False) -> dict:
    """Restore a backup into the data directory (and database) of ``settings``.

    Every open connection to the target must be closed first (``forget_contexts``)."""
    from vigil.store.crypto import load_keyring

    source = Path(source).expanduser().resolve()
    manifest = read_manifest(settings, source)
    home = settings.home
    ring = load_keyring(home, settings.key)
    target_url = settings.db_url
    target_file = sqlite_path(target_url)
    if holds_data(target_url) and not force:
        raise VigilError(f"{home} already holds data; restore into a fresh data directory (or pass --force)")
    if target_file:
        for suffix in ("", "-wal", "-shm"):
            Path(str(target_file) + suffix).unlink(missing_ok=True)
        target_file.parent.mkdir(parents=True, exist_ok=True)
        with _read_only(source / "vigil.db") as src, closing(sqlite3.connect(target_file)) as dst:
            src.backup(dst)
        target_file.chmod(0o600)
        restored = make_engine(target_url)
        upgrade(restored)
        restored.dispose()
    else:
        _empty(target_url)
        with tempfile.TemporaryDirectory() as scratch:  # never open the backup itself read-write
            work = Path(scratch) / "vigil.db"
            with _read_only(source / "vigil.db") as src, closing(sqlite3.connect(work)) as dst:
                src.backup(dst)
            scratch_engine = make_engine(f"sqlite:///{work}")
            upgrade(scratch_engine)  # an older backup gains the current schema before its rows are copied
            scratch_engine.dispose()
            copy_database(f"sqlite:///{work}", target_url)
    for folder in ("blobs", "index"):
        if (source / folder).is_dir():
            shutil.copytree(source / folder, home / folder, dirs_exist_ok=True)
    # prove the keys work on restored data
    check = make_engine(target_url)
    with check.connect() as conn:
        sample = conn.execute(select(Blob.id).limit(1)).scalar()
    check.dispose()
    if sample:
        from vigil.store.blobs import BlobStore

        BlobStore(settings.blobs_dir, ring).get(sample)
    return {"restored_from": str(source), "home": str(home), "blobs": manifest["blobs"],
            "database": redact_url(target_url)}


def _empty(url: str) -> None:
    """Delete every row of a server database before a restore, but keep its schema revision
    (emptying ``alembic_version`` too would make the next upgrade recreate existing tables)."""
    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(meta.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(Table(table.name, meta).delete())
    engine.dispose()


def redact_url(url: str) -> str:
    """A database URL fit for an audit entry or a manifest: the password (and user) hidden."""
    url = normalise_url(url)
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
