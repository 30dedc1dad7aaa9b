"""The application context shared by every front end: one store, one audit log, one index
manager, engines loaded once. ``get_vigil(settings)`` returns the same context for the same
data directory and database within a process."""

from __future__ import annotations

import sys
import threading

from sqlalchemy import func, select

from vigil.config import Settings
from vigil.engine.face_engine import FaceEngine
from vigil.governance.anchor_open import open_anchor
from vigil.governance.audit import AuditKey, AuditLog
from vigil.store.schema import Collection, User
from vigil.store.store import Store, forget_stores, open_store

_contexts: dict[tuple, "Vigil"] = {}
_lock = threading.Lock()


class Vigil:
    #: Optional, set by a composition root: ``provider(collection)`` returns an index-like object
    #: (``len()``, ``search(queries, k)``) for a gallery held elsewhere (the sharded gallery of
    #: ``vigil.cluster.gallery``), or None to search the local index.
    gallery_search = None
    #: Optional, set by a composition root where galleries are sharded: ``eraser(targets)`` takes
    #: ``{gallery name: template ids}`` of a subject just erased from the database, removes them
    #: from every replica of every shard of the sharded galleries among them, and returns one
    #: report per such gallery (``gallery``, ``replicas_confirmed``, ``replicas_down``,
    #: ``replicas_per_shard``, ``templates_removed``, ``seconds``), or raises a VigilError when
    #: a replica did not confirm. ``services.subjects.erase_subject`` calls it after its commit.
    shard_eraser = None

    def __init__(self, settings: Settings, *, store: Store | None = None):
        from vigil.services.indexes import IndexManager

        self.settings = settings
        self.store: Store = store or open_store(settings)
        self.audit = AuditLog(AuditKey.load_or_create(self.store.home / "keys" / "audit.key", settings.audit_key),
                              settings.head_path, open_anchor(settings))
        self.store.add_commit_hook(self.audit.after_commit)
        self.indexes = IndexManager(self.store)
        self.first_run: dict | None = ensure_initialised(self)

    def engine(self, pack: str | None = None) -> FaceEngine:
        return FaceEngine.from_settings(self.settings, pack)

    def engine_for(self, collection: Collection) -> FaceEngine:
        return self.engine(collection.pack)

    def cli_actor(self):
        from vigil.services.accounts import cli_actor

        return cli_actor(self)


def ensure_initialised(vigil: Vigil, *, announce: bool = True) -> dict | None:
    """First run: the first admin, mapped to the operating-system account, with a generated
    password printed once. Every context calls it, so a script's first command just works."""
    from vigil.governance.users import create_user, os_username

    store = vigil.store
    with store.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
        name = os_username()
        user, password = create_user(session, name, "admin", created_by="vigil-init",
                                     display_name=f"{name} (administrator)", os_user=name)
        vigil.audit.record(session, "vigil-init", "system.initialised", "user", user.username,
                           {"role": "admin", "os_user": name, "home": str(store.home)})
    info = {"home": str(store.home), "admin": name, "password": password}
    if announce:
        sys.stderr.write(
            f"Initialised Vigil data directory {store.home}\n"
            f"  first admin user: {name} (mapped to the operating-system user)\n"
            f"  password (shown once, for the web console and API): {password}\n"
        )
    return info


def get_vigil(settings: Settings) -> Vigil:
    key = (str(settings.home), settings.db_url, settings.key or "", settings.audit_key or "")
    with _lock:
        if key not in _contexts:
            _contexts[key] = Vigil(settings)
        return _contexts[key]


def forget_contexts() -> None:
    """Drop cached contexts and close their stores (tests, restore)."""
    with _lock:
        for vigil in _contexts.values():
            if vigil.audit.anchor is not None:
                vigil.audit.anchor.close()  # its periodic republisher stops with it
            close = getattr(vigil.gallery_search, "close", None)
            if close is not None:  # a provider a composition root set: its connection ends with the context
                close()
        _contexts.clear()
    forget_stores()
