"""The audit chain catches every kind of tampering done directly in the database."""

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from vigil.config import Settings


@pytest.fixture()
def audited(vigil, admin):
    with vigil.store.session() as s:
        for i in range(8):
            vigil.audit.record(s, admin, "test.event", "thing", i, {"n": i})
    return vigil


def _verify(vigil):
    with vigil.store.session() as s:
        return vigil.audit.verify(s)


def _db(vigil):
    return sqlite3.connect(vigil.store.home / "vigil.db")


def test_untouched_log_verifies(audited):
    result = _verify(audited)
    assert result["ok"] and result["first_bad_entry"] is None and result["entries"] >= 9


def test_edit_is_caught(audited):
    with _db(audited) as conn:
        conn.execute("UPDATE audit_log SET details = ? WHERE seq = 5", (json.dumps({"n": 999}),))
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == 5 and "edited" in r["reason"]


def test_edit_with_recomputed_hash_is_caught_by_the_signature(audited):
    from vigil.governance.audit import entry_hash

    with _db(audited) as conn:
        row = conn.execute("SELECT prev_hash, seq, ts, actor, action, object_type, object_id FROM audit_log "
                           "WHERE seq = 4").fetchone()
        details = json.dumps({"n": "forged"}, sort_keys=True, separators=(",", ":"))
        new_hash = entry_hash(row[0], row[1], row[2], row[3], row[4], row[5], row[6], details)
        conn.execute("UPDATE audit_log SET details = ?, hash = ? WHERE seq = 4", (details, new_hash))
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == 4


def test_deletion_in_the_middle_is_caught(audited):
    with _db(audited) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == 3 and "deleted" in r["reason"]


def test_truncation_of_the_newest_entries_is_caught(audited):
    total = _verify(audited)["entries"]
    with _db(audited) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (total - 2,))
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == total - 1 and "newest" in r["reason"]


def test_insertion_is_caught(audited):
    with _db(audited) as conn:
        conn.execute("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 6")
        conn.execute("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 106")  # 6.. -> 7.., leaving a slot at 6
        row = conn.execute("SELECT * FROM audit_log WHERE seq = 5").fetchone()
        conn.execute("INSERT INTO audit_log VALUES (6, ?, 'mallory', 'test.event', 'thing', 'x', '{}', ?, ?, ?)",
                     (row[1], row[8], "0" * 64, "0" * 64))
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == 6


def test_reordering_is_caught(audited):
    with _db(audited) as conn:
        a = conn.execute("SELECT ts, actor, action, object_type, object_id, details, prev_hash, hash, signature "
                         "FROM audit_log WHERE seq = 4").fetchone()
        b = conn.execute("SELECT ts, actor, action, object_type, object_id, details, prev_hash, hash, signature "
                         "FROM audit_log WHERE seq = 5").fetchone()
        cols = "ts=?, actor=?, action=?, object_type=?, object_id=?, details=?, prev_hash=?, hash=?, signature=?"
        conn.execute(f"UPDATE audit_log SET {cols} WHERE seq = 4", b)
        conn.execute(f"UPDATE audit_log SET {cols} WHERE seq = 5", a)
    r = _verify(audited)
    assert not r["ok"] and r["first_bad_entry"] == 4


def test_deleting_the_head_file_is_caught(audited):
    audited.settings.head_path.unlink()
    r = _verify(audited)
    assert not r["ok"] and "head file" in r["reason"]


def test_details_never_hold_biometrics_or_secrets(vigil, admin):
    with vigil.store.session() as s, pytest.raises(ValueError, match="biometric"):
        vigil.audit.record(s, admin, "x", details={"vector": [0.1, 0.2]})
    with vigil.store.session() as s, pytest.raises(ValueError):
        vigil.audit.record(s, admin, "x", details={"password": "hunter2"})


def test_cli_audit_verify_json_and_exit_status(audited, home, tmp_path):
    env = {"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "vigil", "audit", "verify", "--json"], env=env, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["first_bad_entry"] is None and data["entries"] >= 9
    copy = tmp_path / "tampered"
    shutil.copytree(home, copy, symlinks=True)
    with sqlite3.connect(copy / "vigil.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    bad = subprocess.run([sys.executable, "-m", "vigil", "audit", "verify", "--json"],
                         env={**env, "VIGIL_HOME": str(copy)}, capture_output=True, text=True)
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False and data["first_bad_entry"] == 2



def test_head_file_is_private_and_never_moves_backwards(audited):
    import stat

    log = audited.audit
    head = log.read_head()
    assert stat.S_IMODE(log.head_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.head_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.head_path.with_name(log.head_path.name + ".lock").stat().st_mode) == 0o600
    log.write_head(head["seq"] - 3, "0" * 64)  # an older head (a slow writer, or someone putting one back)
    assert log.read_head() == head
    log.write_head(head["seq"] - 3, "0" * 64, restore=True)  # only a restore's own entry sets it back
    assert log.read_head()["seq"] == head["seq"] - 3


def test_backups_carry_no_head_file(audited, tmp_path):
    from vigil.services import admin as admin_service

    out = admin_service.backup(audited, audited.cli_actor(), tmp_path / "bk")
    assert out["audit_head"]["seq"] >= 9
    assert not (tmp_path / "bk" / "audit").exists() and not list((tmp_path / "bk").rglob("head.json"))
