"""Administration use cases: backup, restore, key rotation, database upgrade and copy.

Each needs ``system.admin`` and leaves an audit entry naming the data and the state before
and after; a restore is recorded in the restored log. Everything is asserted from a fresh
context (or through the real CLI in a subprocess), outside the transactions under test."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.cli_run import run_cli
from tests.conftest import demo_bytes
from tests.store.conftest import admin, vectors_of, vigil  # noqa: F401 (shared fixtures)
from tests.store.test_postgres import pg_url  # noqa: F401 (fixture: a private schema per test)
from vigil.config import Settings
from vigil.errors import PermissionDenied, VigilError
from vigil.retro.manifests import EnrolItem
from vigil.services import admin as admin_service
from vigil.services import forget_contexts, get_vigil
from vigil.services.accounts import add_user, create_token
from vigil.services.collections import create_collection
from vigil.services.enrolment import enrol_image
from vigil.store.schema import AuditEntry, FaceImage, Subject


def _enrol_two(vigil, actor) -> tuple[str, str]:
    create_collection(vigil, actor, "gallery", "custody")
    a = enrol_image(vigil, actor, "gallery", "custody", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    b = enrol_image(vigil, actor, "gallery", "custody", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    return a["subject_id"], b["subject_id"]


def _entries(settings: Settings, action: str | None = None) -> list[AuditEntry]:
    """The audit log as a new process sees it."""
    forget_contexts()
    fresh = get_vigil(settings)
    with fresh.store.session() as s:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(s.scalars(query))


def _verify(settings: Settings) -> dict:
    forget_contexts()
    fresh = get_vigil(settings)
    with fresh.store.session() as s:
        return fresh.audit.verify(s)


def _copy_keys(src_home, dst_home) -> None:
    (dst_home / "keys").mkdir(parents=True, exist_ok=True)
    for name in ("data.key", "audit.key"):  # keys travel separately from backups
        (dst_home / "keys" / name).write_bytes((src_home / "keys" / name).read_bytes())




def test_backup_and_restore_roundtrip_are_both_recorded(vigil, admin, settings, tmp_path):
    obama, _ = _enrol_two(vigil, admin)
    out = admin_service.backup(vigil, admin, tmp_path / "bk")
    assert out["keys_included"] is False and out["blobs"] >= 2 and len(out["sha256"]) == 64
    assert not list((tmp_path / "bk").rglob("*.key"))
    [entry] = _entries(settings, "system.backup")
    details = json.loads(entry.details)
    assert details["sha256"] == out["sha256"] and details["audit_head"]["seq"] == entry.seq - 1

    new_home = tmp_path / "restored"
    _copy_keys(settings.home, new_home)
    target = Settings(home=new_home)
    admin_service.check_restorable(target, tmp_path / "bk")
    forget_contexts()
    fresh = get_vigil(target)  # a fresh data directory: its first admin restores
    result = admin_service.restore(fresh, fresh.cli_actor(), tmp_path / "bk")
    assert result["blobs"] >= 2 and result["sha256"] == out["sha256"]

    log = _entries(target)
    last = log[-1]
    assert last.action == "system.restored"
    details = json.loads(last.details)
    assert details["sha256"] == out["sha256"]  # which backup
    assert details["restored_head"] == out["audit_head"]  # the chain it continues
    assert details["replaced_head"]["seq"] == 1  # the fresh directory's initialisation it replaced
    assert details["schema_revision_after"]
    assert _verify(target)["ok"]
    restored = get_vigil(target)
    with restored.store.session() as s:
        assert s.get(Subject, obama) is not None
        img = s.scalar(select(FaceImage).where(FaceImage.subject_id == obama))
        assert restored.store.blobs.get(img.blob_id) == demo_bytes("obama.jpg")


def test_restore_refuses_without_the_keys(vigil, admin, tmp_path):
    from vigil.store.crypto import Keyring

    _enrol_two(vigil, admin)
    admin_service.backup(vigil, admin, tmp_path / "bk")
    other = tmp_path / "other"
    Keyring.generate(other / "keys" / "data.key")
    with pytest.raises(VigilError, match="lacks key"):
        admin_service.check_restorable(Settings(home=other), tmp_path / "bk")
    empty = tmp_path / "empty"
    with pytest.raises(VigilError, match="data.key not found"):
        admin_service.check_restorable(Settings(home=empty), tmp_path / "bk")
    assert not empty.exists()  # nothing was created in the would-be target


def test_key_rotation_needs_admin_and_records_old_and_new_key(vigil, admin, settings):
    _enrol_two(vigil, admin)
    before = sorted(tuple(np.round(v, 6)) for v in vectors_of(vigil))
    old_kids = {k.hex() for k in vigil.store.keyring.keys}
    auditor = add_user(vigil, admin, "aud", "auditor")
    forget_contexts()
    vigil = get_vigil(settings)
    from vigil.governance.permissions import Actor

    with pytest.raises(PermissionDenied):
        admin_service.rotate_keys(vigil, Actor(auditor["username"], "auditor"))
    assert {k.hex() for k in vigil.store.keyring.keys} == old_kids  # nothing changed
    result = admin_service.rotate_keys(vigil, admin)
    assert result["templates"] == 2 and result["blobs"] >= 2 and result["retired_keys"] == 1
    assert sorted(tuple(np.round(v, 6)) for v in vectors_of(vigil)) == before
    with vigil.store.session() as s:
        for img in s.scalars(select(FaceImage)):
            assert vigil.store.blobs.get(img.blob_id)[:2] == b"\xff\xd8"  # still the JPEG, under the new key
    again = enrol_image(vigil, admin, "gallery", "custody", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    assert again["status"] == "skipped"  # content hashes were recomputed under the new key
    [started] = _entries(settings, "keys.rotation_started")
    [rotated] = _entries(settings, "keys.rotated")
    assert json.loads(started.details)["old_keys"] == sorted(old_kids)
    assert rotated.object_id == result["active_key"] and result["active_key"] not in old_kids
    assert json.loads(rotated.details)["retired_keys"] == sorted(old_kids)
    assert _verify(settings)["ok"]


def _cli(args: list[str], home, token: str | None = None) -> subprocess.CompletedProcess:
    return run_cli(home, *args, "--json", env={"VIGIL_TOKEN": token})


def test_auditor_cannot_restore_or_upgrade_and_admin_leaves_a_verifiable_trail(vigil, admin, settings, tmp_path):
    """The reported defect: an auditor's token rolled the store back (303 -> 300 audit
    entries) with ``vigil restore --force``, and ``vigil db upgrade`` checked nobody."""
    add_user(vigil, admin, "aud", "auditor")
    token = create_token(vigil, admin, for_user="aud")["token"]
    out = admin_service.backup(vigil, admin, tmp_path / "bk")
    create_collection(vigil, admin, "gallery", "after the backup")  # state the rollback would lose
    before = _entries(settings)
    forget_contexts()

    refused = _cli(["restore", str(tmp_path / "bk"), "--force"], settings.home, token)
    assert refused.returncode == 6, refused.stderr
    assert "may not" in refused.stderr and "Traceback" not in refused.stderr
    refused = _cli(["db", "upgrade"], settings.home, token)
    assert refused.returncode == 6, refused.stderr
    after = _entries(settings)
    assert [(e.seq, e.hash) for e in after] == [(e.seq, e.hash) for e in before]  # nothing changed

    done = _cli(["db", "upgrade"], settings.home)  # the OS user: the first admin
    assert done.returncode == 0, done.stderr
    [upgraded] = _entries(settings, "system.db_upgraded")
    revision = json.loads(done.stdout.strip().splitlines()[-1])["revision"]
    assert json.loads(upgraded.details) == {"revision_before": revision, "revision_after": revision}

    done = _cli(["restore", str(tmp_path / "bk"), "--force"], settings.home)
    assert done.returncode == 0, done.stderr
    log = _entries(settings)
    assert log[-1].action == "system.restored" and log[-1].actor == admin.username
    details = json.loads(log[-1].details)
    assert details["sha256"] == out["sha256"] and details["forced"] is True
    assert details["replaced_head"]["seq"] == after[-1].seq + 1  # the head it replaced: the upgrade entry
    assert details["restored_head"] == out["audit_head"]
    assert log[-1].seq == out["audit_head"]["seq"] + 1  # the restored chain, continued by the restore
    assert _verify(settings)["ok"]
    fresh = get_vigil(settings)
    with fresh.store.session() as s:  # the collection made after the backup is gone, as restored
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "gallery.created")) == 0


def test_db_copy_needs_admin_and_is_recorded(vigil, admin, settings, tmp_path):
    from vigil.governance.permissions import Actor

    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with pytest.raises(PermissionDenied):
        admin_service.copy_database(vigil, Actor("someone", "auditor"), target)
    assert not (tmp_path / "copy.db").exists()
    result = admin_service.copy_database(vigil, admin, target)
    assert result["rows"]["audit_log"] >= 1
    [entry] = _entries(settings, "system.db_copied")
    details = json.loads(entry.details)
    assert entry.object_id == target and details["audit_head"] == result["audit_head"]
    assert details["schema_revision"]


@pytest.mark.postgres
def test_restore_into_postgresql_with_force_keeps_the_schema_and_records_it(vigil, admin, settings, tmp_path,
                                                                            pg_url):
    """A forced restore into a server database that already holds a store: its rows are
    replaced, its schema revision kept (emptying alembic_version broke the next upgrade)."""
    _enrol_two(vigil, admin)
    out = admin_service.backup(vigil, admin, tmp_path / "bk")
    server_home = tmp_path / "server-home"
    _copy_keys(settings.home, server_home)
    target = Settings(home=server_home, database_url=pg_url)
    forget_contexts()
    on_server = get_vigil(target)
    create_collection(on_server, on_server.cli_actor(), "gallery", "to be replaced")
    result = admin_service.restore(on_server, on_server.cli_actor(), tmp_path / "bk", force=True)
    assert result["sha256"] == out["sha256"]
    log = _entries(target)
    assert log[-1].action == "system.restored" and log[-1].seq == out["audit_head"]["seq"] + 1
    assert [e.object_id for e in log if e.action == "gallery.created"] != []  # the backup's gallery
    assert _verify(target)["ok"]
    restored = get_vigil(target)
    with restored.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Subject)) == 2
    forget_contexts()
