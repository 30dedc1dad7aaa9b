"""The application context shared by the CLI and the API: one store, one index manager,
engines loaded once. Rules (permissions, audit, refusals) live in the service modules that
take this context; the CLI and the API only translate arguments and results."""

from __future__ import annotations

import threading

from vigil.config import Settings
from vigil.engine.face_engine import FaceEngine
from vigil.governance.permissions import Actor
from vigil.index.manager import IndexManager
from vigil.store.schema import Collection
from vigil.store.store import Store, open_store

_contexts: dict[tuple, "Vigil"] = {}
_lock = threading.Lock()


class Vigil:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store: Store = open_store(settings)
        self.indexes = IndexManager(self.store)

    def engine(self, pack: str | None = None) -> FaceEngine:
        return FaceEngine.from_settings(self.settings, pack)

    def engine_for(self, collection: Collection) -> FaceEngine:
        return self.engine(collection.pack)

    def cli_actor(self) -> Actor:
        from vigil.governance.users import cli_actor

        with self.store.session() as session:
            return cli_actor(session, self.settings.token)


def get_vigil(settings: Settings) -> Vigil:
    key = (str(settings.home), settings.db_url)
    with _lock:
        if key not in _contexts:
            _contexts[key] = Vigil(settings)
        return _contexts[key]


def forget_contexts() -> None:
    from vigil.store.store import forget_stores

    with _lock:
        _contexts.clear()
    forget_stores()
