"""Encrypted blob files under ``$VIGIL_HOME/blobs``: face images, crops, frames.

Writes are atomic (temporary file, fsync, rename) and happen before the database row that
references them is committed: a crash leaves at worst an orphan file (removed by
:meth:`BlobStore.collect_garbage`), never a row pointing at nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.errors import NotFoundError
from vigil.fsutil import atomic_write
from vigil.store.crypto import Keyring
from vigil.store.schema import Blob


def new_blob_id() -> str:
    return "b" + secrets.token_hex(16)


class BlobStore:
    def __init__(self, root: Path, keyring: Keyring):
        self.root = root
        self.keyring = keyring

    def path(self, blob_id: str) -> Path:
        if not blob_id.isalnum():
            raise NotFoundError(f"invalid blob id {blob_id!r}")
        return self.root / blob_id[1:3] / f"{blob_id}.bin"

    @staticmethod
    def context(blob_id: str) -> bytes:
        return f"blob:{blob_id}".encode()

    def write_file(self, blob_id: str, data: bytes) -> int:
        sealed = self.keyring.encrypt(data, self.context(blob_id))
        return atomic_write(self.path(blob_id), sealed)

    def put(self, session: Session, kind: str, data: bytes) -> str:
        blob_id = new_blob_id()
        size = self.write_file(blob_id, data)
        session.add(Blob(id=blob_id, kind=kind, size=size))
        return blob_id

    def get(self, blob_id: str) -> bytes:
        try:
            sealed = self.path(blob_id).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {blob_id} is missing") from None
        return self.keyring.decrypt(sealed, self.context(blob_id))

    def delete(self, session: Session, blob_id: str | None) -> None:
        """Remove the row now; the file goes after commit (see :meth:`unlink`)."""
        if not blob_id:
            return
        row = session.get(Blob, blob_id)
        if row is not None:
            session.delete(row)
        pending = session.info.setdefault("blobs_to_unlink", [])
        pending.append(blob_id)

    def unlink_pending(self, session: Session) -> int:
        count = 0
        for blob_id in session.info.pop("blobs_to_unlink", []):
            try:
                self.path(blob_id).unlink()
                count += 1
            except FileNotFoundError:
                pass
        return count

    def reencrypt(self, blob_id: str) -> bool:
        path = self.path(blob_id)
        sealed = path.read_bytes()
        if not self.keyring.needs_rotation(sealed):
            return False
        self.write_file(blob_id, self.keyring.decrypt(sealed, self.context(blob_id)))
        return True

    def collect_garbage(self, session: Session) -> int:
        """Delete files that no committed row references (left by a crash mid-write)."""
        known = set(session.scalars(select(Blob.id)))
        removed = 0
        if not self.root.exists():
            return 0
        for path in self.root.glob("*/*"):
            stem = path.name.split(".")[0]
            if path.suffix == ".tmp" or stem not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
