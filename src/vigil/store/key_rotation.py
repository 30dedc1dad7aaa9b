"""``vigil keys rotate``: a new data key, everything re-encrypted, the old key retired.

Resumable: the new key becomes active first (the keyring keeps both), each ciphertext
names its key, and rows are re-encrypted in committed batches, so a crash half way leaves
every item readable; running the command again finishes the job. Content hashes (the
enrolment idempotency key) are recomputed from the decrypted images under the new key.
"""

from __future__ import annotations

from sqlalchemy import select

from vigil.governance.permissions import Actor, require
from vigil.store.schema import Blob, FaceImage, SnapshotEntry, TemplateRow
from vigil.store.store import snapshot_context, template_context

BATCH = 500


def rotate_keys(vigil, actor: Actor, *, progress=None) -> dict:
    require(actor, "system.admin")
    store = vigil.store
    ring = store.keyring
    from_env = ring.path is None
    resumed = len(ring.keys) > 1 and not from_env
    if not from_env and not resumed:
        ring.add_key()
        ring.save()
    with store.session() as session:
        store.audit.record(session, actor, "keys.rotation_started", "keys", ring.active.hex(),
                           {"resumed": resumed, "keys_held": len(ring.keys), "from_environment": from_env})
    counts = {"blobs": 0, "templates": 0, "snapshot_entries": 0, "content_hashes": 0}
    blob_ids = list(store.Session().scalars(select(Blob.id)))
    for start in range(0, len(blob_ids), BATCH):
        for blob_id in blob_ids[start : start + BATCH]:
            try:
                counts["blobs"] += int(store.blobs.reencrypt(blob_id))
            except FileNotFoundError:
                continue
        if progress:
            progress(min(BATCH, len(blob_ids) - start))
    with store.session() as session:
        for image in session.scalars(select(FaceImage)):
            digest = ring.content_key(store.blobs.get(image.blob_id))
            if digest != image.content_hash:
                image.content_hash = digest
                counts["content_hashes"] += 1
    _reseal(store, TemplateRow, lambda r: template_context(r.image_id, r.model_id), counts, "templates")
    _reseal(store, SnapshotEntry, None, counts, "snapshot_entries")
    vigil.indexes.forget()
    for path in (store.home / "index").glob("*.idx"):
        path.unlink()  # rebuilt (and re-saved under the new key) on next use
    retired = 0
    if not from_env:
        retired = ring.retire_all_but_active()
        ring.save()
    with store.session() as session:
        store.audit.record(session, actor, "keys.rotated", "keys", ring.active.hex(), {**counts, "retired": retired})
    note = ("Re-encrypted under the first key of VIGIL_KEY; now remove the older keys from VIGIL_KEY."
            if from_env else "Old key retired. Back up keys/data.key again: older backups need the old key.")
    return {"active_key": ring.active.hex(), **counts, "retired_keys": retired, "note": note}


def _reseal(store, model, context_of, counts: dict, label: str) -> None:
    ring = store.keyring
    with store.session() as session:
        ids = list(session.scalars(select(model.id)))
    for start in range(0, len(ids), BATCH):
        with store.session() as session:
            for row in session.scalars(select(model).where(model.id.in_(ids[start : start + BATCH]))):
                if not ring.needs_rotation(row.vector_enc):
                    continue
                ctx = (context_of(row) if context_of else _snapshot_ctx(session, row)).encode()
                plain = ring.decrypt(row.vector_enc, ctx)
                row.vector_enc = ring.encrypt(plain, ctx)
                counts[label] += 1


def _snapshot_ctx(session, entry: SnapshotEntry) -> str:
    return snapshot_context(entry.snapshot_id, entry.id)
