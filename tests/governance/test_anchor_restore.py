"""The anchor and the one legitimate rollback, a restore; an anchor that is down; settings
that would defeat the anchor. Through the real CLI where a user would see the result."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import time

import pytest

from tests.cli_run import run_cli
from tests.conftest import need_service
from tests.governance.test_anchor import (  # noqa: F401  (fixtures)
    _context, _nats_available, _rechain, _verify, anchor_env, anchored)


def _cli(home, env: dict, *args: str) -> subprocess.CompletedProcess:
    return run_cli(home, *args, env=env)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _more(vigil, n: int, action: str = "test.more") -> None:
    for i in range(n):
        with vigil.store.session() as s:
            vigil.audit.record(s, vigil.cli_actor(), action, "thing", i)


def test_restore_of_an_old_backup_is_explained_not_hidden(anchored, anchor_env, home, tmp_path):
    backup = _cli(home, anchor_env, "backup", str(tmp_path / "bk"), "--json")
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["audit_head"]["seq"] == 9  # the backup's log ends at 9; entry 10 records it
    assert not (tmp_path / "bk" / "audit").exists() and not list((tmp_path / "bk").rglob("*.key"))
    _more(_context(), 3)  # entries 11 to 13, then the old backup comes back
    restore = _cli(home, anchor_env, "restore", str(tmp_path / "bk"), "--force", "--json")
    assert restore.returncode == 0, restore.stderr

    verdict = _cli(home, anchor_env, "audit", "verify", "--json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    r = json.loads(verdict.stdout)
    assert r["ok"] and r["entries"] == 10 and r["head"] == 10  # the head file moved back with the restore only
    [restore_seen] = r["anchor"]["restores"]
    assert restore_seen["entry"] == 10 and restore_seen["restored_head"] == 9 and restore_seen["replaced_head"] == 13
    assert restore_seen["discarded"] == [10, 13] and "entries 10 to 13" in r["note"]
    human = _cli(home, anchor_env, "audit", "verify")
    assert human.returncode == 0 and "Restore at entry 10" in human.stdout
    assert "entries 10 to 13 of the replaced log were discarded" in " ".join(human.stdout.split())
    _more(_context(), 2)  # the restored log goes on and stays anchored
    assert _verify()["ok"]


def test_restore_into_a_fresh_data_directory_with_the_same_anchor(anchored, anchor_env, home, tmp_path):
    assert _cli(home, anchor_env, "backup", str(tmp_path / "bk")).returncode == 0
    new_home = tmp_path / "new-machine"
    (new_home / "keys").mkdir(parents=True)
    for name in ("data.key", "audit.key"):  # keys travel apart from backups
        (new_home / "keys" / name).write_bytes((home / "keys" / name).read_bytes())
    restore = _cli(new_home, anchor_env, "restore", str(tmp_path / "bk"), "--json")
    assert restore.returncode == 0, restore.stderr
    r = json.loads(_cli(new_home, anchor_env, "audit", "verify", "--json").stdout)
    assert r["ok"], r
    [seen] = r["anchor"]["restores"]
    # the fresh directory's own log (its entry 1) is another log: the anchor keeps them apart
    assert seen["replaced_head"] == 1 and seen["restored_head"] == 9 and seen["anchored_before"] == 10
    assert seen["discarded"] == [10, 10] and r["anchor"]["other_logs_records"] == 1


def test_restore_of_an_altered_backup_is_caught(anchored, anchor_env, home, tmp_path):
    assert _cli(home, anchor_env, "backup", str(tmp_path / "bk")).returncode == 0
    key = anchored.audit.key
    with sqlite3.connect(tmp_path / "bk" / "vigil.db") as conn:  # an insider with the audit key edits the backup
        conn.execute("UPDATE audit_log SET details = '{\"n\":\"laundered\"}' WHERE seq = 5")
        _rechain(conn, 5, key)
    assert _cli(home, anchor_env, "restore", str(tmp_path / "bk"), "--force").returncode == 0
    r = json.loads(_cli(home, anchor_env, "audit", "verify", "--json").stdout)
    assert r["ok"] is False and r["first_bad_entry"] == 5 and "anchored" in r["reason"]


def test_an_unreachable_anchor_spools_heads_and_delivers_them_later(home, tmp_path, monkeypatch):
    blocker = tmp_path / "unmounted"
    blocker.write_text("not a folder")  # the anchor's volume is missing: appending fails
    env = {"VIGIL_AUDIT__ANCHOR": str(blocker / "anchor.log"), "VIGIL_AUDIT__ANCHOR_KEY": str(tmp_path / "k" / "a.key"),
           "VIGIL_AUDIT__ANCHOR_EVERY_SECONDS": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    vigil = _context()
    _more(vigil, 2)  # the actions commit all the same
    spool = vigil.settings.head_path.parent / "anchor-spool.jsonl"
    assert len(spool.read_text().splitlines()) == 2 and _mode(spool) == 0o600
    r = _verify()  # an anchor that cannot be read cannot rule out a rollback
    assert r["ok"] is False and "cannot read the anchor" in r["reason"]
    down = _cli(home, env, "audit", "anchor")
    assert down.returncode == 1 and "could not be delivered" in down.stdout and "Traceback" not in down.stderr
    blocker.unlink()
    up = _cli(home, env, "audit", "anchor", "--json")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["pending"] == 0 and not spool.exists()
    lines = (blocker / "anchor.log").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [2, 3, 4, 5]  # in order, the two failed then two more
    assert _mode(blocker / "anchor.log") == 0o600 and _verify()["ok"]


@pytest.mark.parametrize("setting, value, words", [
    ("VIGIL_AUDIT__ANCHOR", "{home}/audit/anchor.log", "inside the data directory"),
    ("VIGIL_AUDIT__ANCHOR_KEY", "{home}/keys/anchor.key", "inside the data directory"),
    ("VIGIL_AUDIT__ANCHOR", "http://witness.example/heads", "not a supported anchor"),
    ("VIGIL_AUDIT__ANCHOR", "relative/anchor.log", "absolute path"),
])
def test_settings_that_would_defeat_the_anchor_are_refused(home, tmp_path, setting, value, words):
    env = {"VIGIL_AUDIT__ANCHOR": str(tmp_path / "elsewhere" / "anchor.log"),
           "VIGIL_AUDIT__ANCHOR_KEY": str(tmp_path / "secrets" / "anchor.key"), setting: value.format(home=home)}
    out = _cli(home, env, "audit", "verify")
    assert out.returncode != 0 and words in " ".join(out.stderr.split()) and "Traceback" not in out.stderr


def test_anchor_files_are_private(anchored, anchor_env, tmp_path):
    key = tmp_path / "service-secrets" / "anchor.key"
    assert _mode(key) == 0o600 and _mode(key.parent) == 0o700
    head = anchored.settings.head_path
    assert _mode(head) == 0o600 and _mode(head.parent) == 0o700
    assert _mode(head.with_name(head.name + ".lock")) == 0o600
    if anchor_env["VIGIL_AUDIT__ANCHOR"].startswith("/"):
        assert _mode(tmp_path / "witness-volume" / "vigil-anchor.log") == 0o600


def test_heads_are_republished_periodically(home, tmp_path, monkeypatch):
    anchor = tmp_path / "witness" / "anchor.log"
    monkeypatch.setenv("VIGIL_AUDIT__ANCHOR", str(anchor))
    monkeypatch.setenv("VIGIL_AUDIT__ANCHOR_KEY", str(tmp_path / "k" / "anchor.key"))
    monkeypatch.setenv("VIGIL_AUDIT__ANCHOR_EVERY_SECONDS", "0.2")
    _more(_context(), 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [json.loads(line)["event"] for line in anchor.read_text().splitlines()]
        if events.count("periodic") >= 2:
            break
        time.sleep(0.1)
    assert events[0] == "write" and events.count("periodic") >= 2
    assert _verify()["ok"]


@pytest.mark.parametrize("anchor_env", ["nats"], indirect=True)  # a file witness is as append-only as its file system
def test_the_nats_stream_refuses_deletes_and_purges(anchored, anchor_env):
    need_service(_nats_available(), "NATS with JetStream not reachable")
    import asyncio

    import nats
    from nats.js.errors import ServerError

    stream = anchor_env["VIGIL_AUDIT__ANCHOR"].split("/")[3].split("?")[0]

    async def attack():
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        refused = []
        for attempt in (lambda: js.purge_stream(stream), lambda: js.delete_msg(stream, 1)):
            try:
                await attempt()
            except ServerError as exc:
                refused.append(exc.description)
        await nc.close()
        return refused

    refused = asyncio.run(attack())
    assert refused == ["stream purge not permitted", "message delete not permitted"]
    assert _verify()["ok"]
