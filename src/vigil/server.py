"""The composition root: one FastAPI application with the REST API under /api and the
operator console at /, sharing one application context.

It lives above both front ends (``vigil.api`` and ``vigil.web``) so that neither imports
the other: the API once built the whole application and so imported the console, an
upward import. The hourly retention loop runs here too; it calls the retention use case
like any other caller, as the system actor.
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vigil import __version__
from vigil.api import errors
from vigil.api.auth import CrossSiteGuard
from vigil.api.limits import BodyLimit
from vigil.api.openapi_errors import declare_problems
from vigil.api.responses import Health
from vigil.api.live_registry import LiveRegistry
from vigil.config import Settings


def _retention_loop(vigil, stop: threading.Event, every_seconds: float) -> None:
    from vigil.services import SYSTEM

    while not stop.wait(every_seconds):
        try:
            from vigil.services.retention import run_retention

            run_retention(vigil, SYSTEM)
        except Exception:  # noqa: BLE001 - a failed run is retried next time; it is audited when it succeeds
            continue


def _login_summary_loop(vigil, stop: threading.Event, every_seconds: float = 60.0) -> None:
    """Each minute, the failed logins a flood left uncounted in the audit log get their summary."""
    from vigil.services.login_audit import summarise_ended_minutes

    while not stop.wait(every_seconds):
        try:
            summarise_ended_minutes(vigil)
        except Exception:  # noqa: BLE001 - retried next minute; the counts stay in the database
            continue


def create_app(settings: Settings, *, retention_every: float | None = 3600.0,
               secure_cookies: bool = False) -> FastAPI:
    """``secure_cookies``: served over TLS (a certificate, or a declared TLS-terminating proxy),
    so the session cookie is marked ``Secure`` even when a request reaches Vigil as http."""
    from vigil.services import get_vigil

    vigil = get_vigil(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = None
        if retention_every:
            thread = threading.Thread(target=_retention_loop, args=(vigil, stop, retention_every), daemon=True,
                                      name="retention")
            thread.start()
        threading.Thread(target=_login_summary_loop, args=(vigil, stop), daemon=True, name="login-summary").start()
        yield
        stop.set()
        app.state.live.stop_all()

    # Swagger UI and ReDoc load their assets from a CDN; Vigil works offline, so only the
    # OpenAPI document itself is served (/openapi.json), for any local viewer or client generator.
    app = FastAPI(title="Vigil", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Accountable facial recognition. Every route needs a Bearer token "
                              "(POST /api/token, OAuth2 password flow) or an API token.")
    app.state.vigil = vigil
    app.state.live = LiveRegistry()
    app.state.secure_cookies = secure_cookies
    errors.install(app)
    declare_problems(app)
    from vigil.api import routes_auth, routes_cameras, routes_governance, routes_live, routes_store

    app.include_router(routes_auth.router)
    app.include_router(routes_store.router)
    for plural in ("galleries", "watchlists"):
        app.include_router(routes_store.collection_router(plural))
    app.include_router(routes_live.router)
    app.include_router(routes_cameras.router)
    app.include_router(routes_governance.router)

    @app.get("/api/health", tags=["system"], response_model=Health)
    def health():
        return {"ok": True, "version": __version__}

    try:
        from vigil.web.routes import mount_console
    except ModuleNotFoundError as exc:
        if exc.name != "vigil.web.routes":
            raise
    else:
        mount_console(app)
    app.add_middleware(CrossSiteGuard, trusted_origins=tuple(settings.trusted_origins))
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    return app
