"""Encryption at rest, erasure, key rotation, backup/restore."""

import base64
import json
import os
import stat

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes
from tests.store.conftest import vectors_of
from tests.store.test_enrol_search import make_gallery
from vigil.retro.enrolment import Enroller, EnrolItem
from vigil.store.schema import Blob, FaceImage, IndexChange, Subject, TemplateRow

JPEG_JFIF = b"\xff\xd8\xff\xe0\x00\x10JFIF"
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _enrol_two(vigil, admin):
    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    a = enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    b = enroller.enrol_bytes(demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    return coll, a.subject_id, b.subject_id


def _all_bytes(home):
    for root, _dirs, files in os.walk(home):
        if os.path.realpath(root).startswith(os.path.realpath(home / "models")):
            continue  # model weights, not face data
        for f in files:
            path = os.path.join(root, f)
            if os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                yield path, fh.read()


def test_no_face_image_or_template_reaches_disk_unencrypted(vigil, admin, home):
    coll, _, _ = _enrol_two(vigil, admin)
    with vigil.store.session() as s:
        vigil.indexes.save(s, s.get(type(coll), coll.id), force=True)  # persisted index files too
    vectors = vectors_of(vigil)
    assert len(vectors) == 2
    needles = {"jpeg signature": JPEG_JFIF, "png signature": PNG_SIG,
               "original file bytes": demo_bytes("obama.jpg")[100:164]}
    for i, v in enumerate(vectors):
        needles[f"vector {i} float32"] = v[:8].astype(np.float32).tobytes()
        needles[f"vector {i} float16"] = v[:8].astype(np.float16).tobytes()
        needles[f"vector {i} float64"] = v[:4].astype(np.float64).tobytes()
        needles[f"vector {i} base64"] = base64.b64encode(v.astype(np.float32).tobytes())[:24]
        needles[f"vector {i} json"] = json.dumps([float(x) for x in v[:3]])[1:-1].encode()
        needles[f"vector {i} text"] = f"{float(v[0]):.6f}, {float(v[1]):.6f}".encode()
    scanned = 0
    for path, data in _all_bytes(home):
        scanned += 1
        for label, needle in needles.items():
            assert needle not in data, f"{label} found in {path}"
    assert scanned >= 4  # database, WAL, blobs, keys, index, audit head


def test_key_files_are_private(vigil, home):
    for name in ("data.key", "audit.key"):
        mode = stat.S_IMODE((home / "keys" / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_erasure_removes_everything_biometric(vigil, admin, home):
    from vigil.live.snapshots import freeze
    from vigil.store.subjects import erase_subject
    from vigil.store.schema import SnapshotEntry

    coll, obama, biden = _enrol_two(vigil, admin)
    with vigil.store.session() as s:
        freeze(vigil.store, s, admin.username, s.get(type(coll), coll.id))
        blob_ids = [i.blob_id for i in s.scalars(select(FaceImage).where(FaceImage.subject_id == obama))]
    with vigil.store.session() as s:
        summary = erase_subject(vigil.store, s, admin, obama, "subject access request: erase")
    assert summary["images"] == 1 and summary["snapshot_entries"] == 1
    with vigil.store.session() as s:
        assert s.get(Subject, obama) is None
        assert s.scalar(select(func.count()).select_from(TemplateRow).where(TemplateRow.subject_id == obama)) == 0
        assert s.scalar(select(func.count()).select_from(SnapshotEntry).where(SnapshotEntry.subject_id == obama)) == 0
        assert s.scalar(select(func.count()).select_from(Blob).where(Blob.id.in_(blob_ids))) == 0
        index = vigil.indexes.get(s, s.get(type(coll), coll.id))
        assert len(index) == 1  # only Biden left in the index
        removed = s.scalar(select(func.count()).select_from(IndexChange).where(IndexChange.op == "remove"))
        assert removed >= 1
    for blob in blob_ids:
        assert not vigil.store.blobs.path(blob).exists()


def test_key_rotation_reencrypts_without_loss(vigil, admin, people_dir):
    from vigil.retro.enrolment import items_from_dir
    from vigil.store.key_rotation import rotate_keys

    coll, _, _ = _enrol_two(vigil, admin)
    before = sorted(tuple(np.round(v, 6)) for v in vectors_of(vigil))
    old_kids = set(vigil.store.keyring.keys)
    result = rotate_keys(vigil, admin)
    assert result["templates"] == 2 and result["blobs"] >= 2 and result["retired_keys"] == 1
    assert not (set(vigil.store.keyring.keys) & old_kids)
    after = sorted(tuple(np.round(v, 6)) for v in vectors_of(vigil))
    assert before == after
    with vigil.store.session() as s:
        for img in s.scalars(select(FaceImage)):
            assert vigil.store.blobs.get(img.blob_id)[:2] == b"\xff\xd8"
    # re-importing the same images is still recognised as already enrolled (hashes were recomputed)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    assert enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama")).status == "skipped"
    del people_dir, items_from_dir


def test_backup_and_restore_roundtrip(vigil, admin, tmp_path, monkeypatch, model_cache):
    from vigil.config import Settings
    from vigil.store.backup import backup, restore

    coll, obama, _ = _enrol_two(vigil, admin)
    out = backup(vigil, admin, tmp_path / "bk")
    assert out["keys_included"] is False and out["blobs"] >= 2
    assert not list((tmp_path / "bk").rglob("*.key"))
    new_home = tmp_path / "restored"
    (new_home / "keys").mkdir(parents=True)
    for name in ("data.key", "audit.key"):  # keys travel separately
        (new_home / "keys" / name).write_bytes((vigil.store.home / "keys" / name).read_bytes())
    result = restore(Settings(home=new_home), tmp_path / "bk")
    assert result["blobs"] >= 2
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    restored = get_vigil(Settings(home=new_home))
    with restored.store.session() as s:
        assert s.get(Subject, obama) is not None
        img = s.scalar(select(FaceImage).where(FaceImage.subject_id == obama))
        assert restored.store.blobs.get(img.blob_id) == demo_bytes("obama.jpg")
        assert restored.store.audit.verify(s)["ok"]


def test_restore_refuses_without_the_keys(vigil, admin, tmp_path):
    from vigil.config import Settings
    from vigil.errors import VigilError
    from vigil.store.backup import backup, restore

    _enrol_two(vigil, admin)
    backup(vigil, admin, tmp_path / "bk")
    other = tmp_path / "other"
    from vigil.store.crypto import Keyring

    Keyring.generate(other / "keys" / "data.key")
    with pytest.raises(VigilError, match="lacks key"):
        restore(Settings(home=other), tmp_path / "bk")
