"""Every tampering attack on the audit log is caught once an external anchor is configured
(issue #12): the file anchor always, the NATS JetStream anchor where a server runs.

Each test tampers with the files directly, as an attacker on the host would, then asks a
fresh context (a new process's view) or the real CLI whether the log verifies."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid

import pytest

from tests.conftest import need_service
from vigil.governance.audit import GENESIS, AuditKey, entry_hash

NATS_URL = "nats://127.0.0.1:4222"
COLUMNS = "seq, ts, actor, action, object_type, object_id, details, prev_hash, hash, signature"


def _nats_available() -> bool:
    try:
        import nats  # noqa: F401
    except ImportError:
        return False
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        return True
    except OSError:
        return False


def _delete_stream(name: str) -> None:
    import asyncio

    import nats

    async def drop():
        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(drop())


@pytest.fixture(params=["file", "nats"])
def anchor_env(request, home, tmp_path, monkeypatch) -> dict:
    """An anchor outside the data directory, its signing key elsewhere again."""
    stream = None
    if request.param == "file":
        anchor = str(tmp_path / "witness-volume" / "vigil-anchor.log")
    else:
        need_service(_nats_available(), "NATS with JetStream not reachable at 127.0.0.1:4222 (or nats-py missing)")
        stream = f"VIGIL_TEST_{uuid.uuid4().hex[:12].upper()}"
        anchor = f"{NATS_URL}/{stream}?subject=vigil.test.{stream.lower()}"
    env = {"VIGIL_AUDIT__ANCHOR": anchor, "VIGIL_AUDIT__ANCHOR_KEY": str(tmp_path / "service-secrets" / "anchor.key"),
           "VIGIL_AUDIT__ANCHOR_EVERY_SECONDS": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    from vigil.services import forget_contexts

    forget_contexts()
    if stream:
        _delete_stream(stream)


def _context():
    from vigil.config import get_settings
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    return get_vigil(get_settings())


@pytest.fixture()
def anchored(anchor_env):
    """A log of 1 + 8 entries, entries 2 to 9 each committed (and anchored) on its own."""
    vigil = _context()
    admin = vigil.cli_actor()
    for i in range(8):
        with vigil.store.session() as s:
            vigil.audit.record(s, admin, "test.event", "thing", i, {"n": i})
    return vigil


def _verify() -> dict:
    from vigil.services import audit_views

    vigil = _context()
    return audit_views.verify_audit(vigil, vigil.cli_actor())


def _db(vigil):
    return sqlite3.connect(vigil.store.home / "vigil.db")


def _rechain(conn, start: int, key: AuditKey | None = None) -> None:
    """Recompute prev_hash and hash of every entry from ``start`` on (and, holding the audit
    key, the signatures too), as an attacker covering an edit would."""
    prev = GENESIS if start == 1 else conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (start - 1,)).fetchone()[0]
    for row in conn.execute(f"SELECT {COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq", (start,)).fetchall():
        digest = entry_hash(prev, *row[0:7])
        signature = key.sign(digest) if key else row[9]
        conn.execute("UPDATE audit_log SET prev_hash = ?, hash = ?, signature = ? WHERE seq = ?",
                     (prev, digest, signature, row[0]))
        prev = digest


def _renumber_after(conn, seq: int) -> None:
    conn.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq > ?", (seq,))
    conn.execute("UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000")


def _truncate(conn, keep: int) -> None:
    conn.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))


def _snapshot(vigil, folder):
    """Copy the database (consistently) and the head file, as an old backup or a disk image would."""
    folder.mkdir()
    with _db(vigil) as src, sqlite3.connect(folder / "vigil.db") as dst:
        src.backup(dst)
    shutil.copy2(vigil.settings.head_path, folder / "head.json")


def _put_back(vigil, folder, *, head: bool) -> None:
    from vigil.services import forget_contexts

    forget_contexts()
    with sqlite3.connect(folder / "vigil.db") as src, _db(vigil) as dst:
        src.backup(dst)  # the old database, page for page, over the live one
    if head:
        shutil.copy2(folder / "head.json", vigil.settings.head_path)


def _bad(result: dict, first: int, *words: str) -> None:
    assert result["ok"] is False, result
    assert result["first_bad_entry"] == first, result
    for word in words:
        assert word in result["reason"], result


def test_untouched_anchored_log_verifies(anchored):
    r = _verify()
    assert r["ok"] and r["entries"] == 9 and r["anchor"]["anchored_head"] == 9 and r["anchor"]["pending"] == 0
    assert r["anchor"]["records"] == 8 and r["anchor"]["restores"] == [] and not r["anchor"]["invalid_records"]


def test_edit_a_row(anchored):
    with _db(anchored) as conn:
        conn.execute("UPDATE audit_log SET details = ? WHERE seq = 5", (json.dumps({"n": 999}),))
    _bad(_verify(), 5, "edited")


def test_edit_and_rehash_every_later_row(anchored):
    with _db(anchored) as conn:
        conn.execute("UPDATE audit_log SET details = '{\"n\":\"forged\"}' WHERE seq = 5")
        _rechain(conn, 5)
    _bad(_verify(), 5, "signature")


def test_delete_a_middle_row(anchored):
    with _db(anchored) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    _bad(_verify(), 5, "deleted")


def test_delete_renumber_and_rehash(anchored):
    with _db(anchored) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
        _renumber_after(conn, 5)
        _rechain(conn, 5)
    _bad(_verify(), 5, "signature")


def test_swap_two_rows_content(anchored):
    cols = "ts, actor, action, object_type, object_id, details, prev_hash, hash, signature"
    with _db(anchored) as conn:
        a = conn.execute(f"SELECT {cols} FROM audit_log WHERE seq = 4").fetchone()
        b = conn.execute(f"SELECT {cols} FROM audit_log WHERE seq = 5").fetchone()
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        conn.execute(f"UPDATE audit_log SET {sets} WHERE seq = 4", b)
        conn.execute(f"UPDATE audit_log SET {sets} WHERE seq = 5", a)
    _bad(_verify(), 4)


def test_swap_two_rows_seq(anchored):
    with _db(anchored) as conn:
        conn.execute("UPDATE audit_log SET seq = 1004 WHERE seq = 4")
        conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = 5")
        conn.execute("UPDATE audit_log SET seq = 5 WHERE seq = 1004")
    _bad(_verify(), 4)


def test_truncate_the_tail(anchored):
    with _db(anchored) as conn:
        _truncate(conn, 6)
    _bad(_verify(), 7, "anchor recorded entry 9")


def test_truncate_and_delete_the_head(anchored):
    with _db(anchored) as conn:
        _truncate(conn, 6)
    anchored.settings.head_path.unlink()
    _bad(_verify(), 7, "anchor recorded entry 9")


def test_truncate_and_put_back_an_older_head(anchored, tmp_path):
    older = tmp_path / "head-at-9.json"
    shutil.copy2(anchored.settings.head_path, older)
    with anchored.store.session() as s:  # two more entries, then cut back to the saved head
        for i in range(2):
            anchored.audit.record(s, anchored.cli_actor(), "test.more", "thing", i)
    with _db(anchored) as conn:
        _truncate(conn, 9)
    shutil.copy2(older, anchored.settings.head_path)
    _bad(_verify(), 10, "anchor recorded entry 11")


def test_append_a_chained_row_with_a_forged_signature(anchored):
    with _db(anchored) as conn:
        last = conn.execute(f"SELECT {COLUMNS} FROM audit_log WHERE seq = 9").fetchone()
        details = json.dumps({"n": "mallory"})
        digest = entry_hash(last[8], 10, last[1], "mallory", "test.event", "thing", "x", details)
        conn.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES (10, ?, 'mallory', 'test.event', 'thing', 'x', ?, ?, ?, ?)",
                     (last[1], details, last[8], digest, "f" * 64))
    _bad(_verify(), 10, "signature")


def test_roll_back_the_database_keeping_the_head(anchored, tmp_path):
    _snapshot(anchored, tmp_path / "at-9")
    with anchored.store.session() as s:
        for i in range(3):
            anchored.audit.record(s, anchored.cli_actor(), "test.more", "thing", i)
    _put_back(anchored, tmp_path / "at-9", head=False)
    _bad(_verify(), 10, "anchor recorded entry 12")


def test_roll_back_the_database_and_the_head_together(anchored, tmp_path, anchor_env, home):
    _snapshot(anchored, tmp_path / "at-9")
    with anchored.store.session() as s:
        for i in range(3):
            anchored.audit.record(s, anchored.cli_actor(), "test.more", "thing", i)
    _put_back(anchored, tmp_path / "at-9", head=True)
    from vigil.services import forget_contexts

    forget_contexts()
    env = {"VIGIL_HOME": str(home), "VIGIL_CONFIG": str(home / "vigil.toml"), "PATH": "/usr/bin:/bin", **anchor_env}
    cli = subprocess.run([sys.executable, "-m", "vigil", "audit", "verify", "--json"], env=env, capture_output=True,
                         text=True)
    assert cli.returncode == 1, cli.stderr
    _bad(json.loads(cli.stdout), 10, "anchor recorded entry 12", "rolled back")
    without_anchor = {k: v for k, v in env.items() if not k.startswith("VIGIL_AUDIT__")}
    old = subprocess.run([sys.executable, "-m", "vigil", "audit", "verify", "--json"], env=without_anchor,
                         capture_output=True, text=True)
    assert old.returncode == 0 and json.loads(old.stdout)["ok"]  # what passed before the anchor existed


def test_a_rollback_written_over_is_caught(anchored, tmp_path):
    """Roll database and head back, then let the service write on: the new entries reuse
    sequence numbers the anchor already holds with other hashes."""
    _snapshot(anchored, tmp_path / "at-9")
    with anchored.store.session() as s:
        anchored.audit.record(s, anchored.cli_actor(), "test.original", "thing", 1)
    _put_back(anchored, tmp_path / "at-9", head=True)
    vigil = _context()
    for i in range(3):
        with vigil.store.session() as s:
            vigil.audit.record(s, vigil.cli_actor(), "test.rewritten", "thing", i)
    _bad(_verify(), 10, "two different entries 10")


def test_insider_with_the_audit_key_deletes_a_row_and_resigns(anchored):
    key = anchored.audit.key
    with _db(anchored) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
        _renumber_after(conn, 5)
        _rechain(conn, 5, key)
        seq, digest = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    anchored.audit.write_head(seq, digest, restore=True)  # a head file that agrees, MAC and all
    r = _verify()
    _bad(r, 5, "anchored", "rewritten")


@pytest.mark.parametrize("anchor_env", ["file"], indirect=True)  # a NATS stream takes the service's credentials only
def test_an_insider_cannot_forge_anchor_records(anchored, anchor_env):
    """Appending a head signed with any other key (the audit key, a new Ed25519 key) is named."""
    from vigil.governance.anchor import AnchorSigner

    other = AnchorSigner(__import__("cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"])
                         .Ed25519PrivateKey.generate())
    forged = other.sign({"v": 1, "event": "write", "seq": 3, "hash": "0" * 64, "ts": "2030-01-01T00:00:00Z"})
    with open(anchor_env["VIGIL_AUDIT__ANCHOR"], "a") as fh:
        fh.write(json.dumps(forged) + "\n")
    r = _verify()
    assert r["ok"] is False and "not signed by the anchor key" in r["reason"]
    assert r["anchor"]["invalid_records"] and "invalid signature" in r["anchor"]["invalid_records"][0]
