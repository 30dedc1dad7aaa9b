"""Key rotation's mechanics: a new data key, everything re-encrypted, the old key retired.

Resumable: the new key becomes active first (the keyring keeps both), each ciphertext
names its key, and rows are re-encrypted in committed batches, so a crash half way leaves
every item readable; running the command again finishes the job. Content hashes (the
enrolment idempotency key) are recomputed from the decrypted images under the new key.

Persistence only: who may rotate and the audit entries (old and new key ids, counts) are
the use case's, in ``vigil.services.admin.rotate_keys``.
"""

from __future__ import annotations

from sqlalchemy import select

from vigil.store.schema import Blob, FaceImage, SnapshotEntry, TemplateRow
from vigil.store.store import snapshot_context, template_context

BATCH = 500


def begin_rotation(store) -> dict:
    """Make a new key active (unless resuming, or the keys come from VIGIL_KEY); say which."""
    ring = store.keyring
    from_env = ring.path is None
    resumed = len(ring.keys) > 1 and not from_env
    if not from_env and not resumed:
        ring.add_key()
        ring.save()
    return {"old_keys": sorted(k.hex() for k in ring.keys if k != ring.active), "active_key": ring.active.hex(), "resumed": resumed,
            "keys_held": len(ring.keys), "from_environment": from_env}


def reencrypt_everything(store, *, progress=None) -> dict:
    """Re-encrypt every blob, template and snapshot entry not yet under the active key;
    drop index files (rebuilt and re-saved under the new key on next use)."""
    ring = store.keyring
    counts = {"blobs": 0, "templates": 0, "snapshot_entries": 0, "content_hashes": 0}
    with store.session() as session:
        blob_ids = list(session.scalars(select(Blob.id)))
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
    for path in (store.home / "index").glob("*.idx"):
        path.unlink()
    return counts


def retire_old_keys(store) -> list[str]:
    """Drop every key but the active one from the key file; return the retired key ids.
    Keys from VIGIL_KEY are the operator's to remove, so nothing is retired then."""
    ring = store.keyring
    if ring.path is None:
        return []
    before = {k.hex() for k in ring.keys}
    ring.retire_all_but_active()
    ring.save()
    return sorted(before - {k.hex() for k in ring.keys})


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
