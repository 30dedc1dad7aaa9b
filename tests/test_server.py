"""The composition root: one app serving the API and the console on one context, and the
scheduled retention run going through the retention use case as the system."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from vigil.store.schema import AuditEntry


def test_server_mounts_api_and_console_and_runs_retention_on_schedule(settings):
    from vigil.server import create_app
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    app = create_app(settings, retention_every=0.2)
    with TestClient(app) as client:
        assert client.get("/api/health").json()["ok"] is True
        assert client.get("/login").status_code == 200  # the console, mounted by the root, not by the API
        assert client.get("/api/me").status_code == 401  # the API's own authentication
        deadline = time.monotonic() + 30
        runs = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.2)
            fresh = get_vigil(settings)
            with fresh.store.session() as s:
                runs = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")))
    forget_contexts()
    assert runs and runs[0].actor == "system"
