"""Encryption at rest and erasure (key rotation and backup/restore: tests/services/test_admin.py)."""

import base64
import json
import os
import stat

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes
from tests.store.conftest import vectors_of
from tests.store.test_enrol_search import enrol, make_gallery
from vigil.store.schema import Blob, FaceImage, IndexChange, Subject, TemplateRow

JPEG_JFIF = b"\xff\xd8\xff\xe0\x00\x10JFIF"
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _enrol_two(vigil, admin):
    coll = make_gallery(vigil, admin)
    a = enrol(vigil, admin, coll, "obama.jpg", "Barack Obama")
    b = enrol(vigil, admin, coll, "biden.jpg", "Joe Biden")
    return coll, a["subject_id"], b["subject_id"]


def _row(session, coll):
    from vigil.store.schema import Collection

    return session.get(Collection, coll["id"])


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
        vigil.indexes.save(s, _row(s, coll), force=True)  # persisted index files too
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
    from vigil.store.snapshots import freeze
    from vigil.services.subjects import erase_subject
    from vigil.store.schema import SnapshotEntry

    coll, obama, biden = _enrol_two(vigil, admin)
    with vigil.store.session() as s:
        freeze(vigil.store, s, admin.username, _row(s, coll))
        blob_ids = [i.blob_id for i in s.scalars(select(FaceImage).where(FaceImage.subject_id == obama))]
    summary = erase_subject(vigil, admin, obama, "subject access request: erase")
    assert summary["images"] == 1 and summary["snapshot_entries"] == 1
    with vigil.store.session() as s:
        assert s.get(Subject, obama) is None
        assert s.scalar(select(func.count()).select_from(TemplateRow).where(TemplateRow.subject_id == obama)) == 0
        assert s.scalar(select(func.count()).select_from(SnapshotEntry).where(SnapshotEntry.subject_id == obama)) == 0
        assert s.scalar(select(func.count()).select_from(Blob).where(Blob.id.in_(blob_ids))) == 0
        index = vigil.indexes.get(s, _row(s, coll))
        assert len(index) == 1  # only Biden left in the index
        removed = s.scalar(select(func.count()).select_from(IndexChange).where(IndexChange.op == "remove"))
        assert removed >= 1
    for blob in blob_ids:
        assert not vigil.store.blobs.path(blob).exists()
