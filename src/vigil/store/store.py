"""The open store: database, keys and encrypted blobs, wired together. Persistence only:
who may act and what is audited is the service layer's business (``vigil.services``), which
registers its own after-commit hooks (the audit head) through :meth:`Store.add_commit_hook`.

:func:`open_store` initialises a fresh data directory (keys with mode 0600, schema
migrations), so the first command of a script just works.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import event
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.fsutil import make_private, private_by_default
from vigil.store.blobs import BlobStore
from vigil.store.crypto import Keyring, load_keyring
from vigil.store.db import make_engine, session_factory, sqlite_path, upgrade

_stores: dict[tuple, "Store"] = {}
_lock = threading.Lock()


class Store:
    def __init__(self, settings: Settings, *, migrate: bool = True):
        self.settings = settings
        private_by_default()
        home = settings.ensure_home()
        make_private(home, 0o700)  # files left by older versions become unreachable to others
        (home / "keys").mkdir(exist_ok=True, mode=0o700)
        key_path = home / "keys" / "data.key"
        if not settings.key and not key_path.exists():
            Keyring.generate(key_path)
            self.created_keys = True
        else:
            self.created_keys = False
        self.keyring = load_keyring(home, settings.key)
        self._commit_hooks: list = []
        self.engine = make_engine(settings.db_url)
        db_file = sqlite_path(settings.db_url)
        if migrate:
            upgrade(self.engine)
        if db_file:
            for suffix in ("", "-wal", "-shm", "-journal"):
                make_private(db_file.with_name(db_file.name + suffix), 0o600)
        self.Session = session_factory(self.engine)
        self.blobs = BlobStore(settings.blobs_dir, self.keyring)
        event.listen(self.Session, "after_commit", self._after_commit)

    def add_commit_hook(self, hook) -> None:
        """``hook(session)`` runs after every commit of this store's sessions."""
        if hook not in self._commit_hooks:
            self._commit_hooks.append(hook)

    def _after_commit(self, session: Session) -> None:
        self.blobs.unlink_pending(session)
        for hook in self._commit_hooks:
            hook(session)
        for callback in session.info.pop("after_commit_callbacks", []):
            callback()

    @contextmanager
    def session(self):
        """A transaction: commits on success, rolls back on error."""
        session = self.Session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            session.info.pop("blobs_to_unlink", None)
            session.info.pop("audit_head", None)
            session.info.pop("after_commit_callbacks", None)
            raise
        finally:
            session.close()

    # -- template vectors -------------------------------------------------------------------
    def seal_vector(self, vector: np.ndarray, context: str) -> bytes:
        return self.keyring.encrypt(np.asarray(vector, dtype=np.float32).tobytes(), context.encode())

    def open_vector(self, sealed: bytes, context: str) -> np.ndarray:
        return np.frombuffer(self.keyring.decrypt(sealed, context.encode()), dtype=np.float32)

    @property
    def home(self) -> Path:
        return self.settings.home

    def dispose(self) -> None:
        self.engine.dispose()


def template_context(image_id: int, model_id: str) -> str:
    return f"template:{image_id}:{model_id}"


def snapshot_context(snapshot_id: int, entry_id: int) -> str:
    return f"snapshot:{snapshot_id}:{entry_id}"


def open_store(settings: Settings) -> "Store":
    key = (str(settings.home), settings.db_url, settings.key or "", settings.audit_key or "")
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = Store(settings)
            _stores[key] = store
        return store


def forget_stores() -> None:
    """Close cached stores (tests, restore)."""
    with _lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()
