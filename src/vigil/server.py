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


def _cluster_recorder(vigil, servers: list[str], live: LiveRegistry):
    """The cluster's alert recorder in this process (``vigil serve --nats``): alerts committed
    here wake the console's live stream at once."""
    from vigil.cluster.recorder import Recorder, RecorderOptions

    def said(event: dict) -> None:
        if event.get("type") == "alert_recorded":
            live.notify()

    creds = vigil.settings.cluster.credentials
    recorder = Recorder(vigil, RecorderOptions(servers=servers, name="api-server",
                                               credentials=str(creds) if creds else None), say=said)
    thread = threading.Thread(target=recorder.run, daemon=True, name="cluster-recorder")
    return recorder, thread


def _sharded_galleries(vigil, settings: Settings):
    """The galleries the settings shard (``cluster.sharded_galleries``, docs/cluster.md): their
    searches and erasures go to their shards over NATS, never to a local index. NATS is tried
    at once so that ``vigil serve`` can say whether it answers; if not, those searches fail
    ("gallery incomplete") until it does, and the connection is tried again as they come."""
    if not settings.cluster.sharded_galleries:
        return None
    from vigil.cluster.gallery import use_configured_galleries

    provider = use_configured_galleries(vigil, settings)
    if provider is not None:
        provider.try_connect()
    return provider


def create_app(settings: Settings, *, retention_every: float | None = 3600.0,
               secure_cookies: bool = False, recorder_nats: list[str] | None = None) -> FastAPI:
    """``secure_cookies``: served over TLS (a certificate, or a declared TLS-terminating proxy),
    so the session cookie is marked ``Secure`` even when a request reaches Vigil as http.
    ``recorder_nats``: also be the cluster's recorder (docs/cluster.md) on these NATS servers.
    Galleries the settings shard are searched on their shards (``app.state.sharded_galleries``
    says where, and whether NATS answered at startup)."""
    from vigil.services import get_vigil

    vigil = get_vigil(settings)
    sharded = _sharded_galleries(vigil, settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = None
        if retention_every:
            thread = threading.Thread(target=_retention_loop, args=(vigil, stop, retention_every), daemon=True,
                                      name="retention")
            thread.start()
        threading.Thread(target=_login_summary_loop, args=(vigil, stop), daemon=True, name="login-summary").start()
        recorder = None
        if recorder_nats:
            recorder, recorder_thread = _cluster_recorder(vigil, recorder_nats, app.state.live)
            recorder_thread.start()
        yield
        stop.set()
        app.state.live.stop_all()
        if recorder is not None:
            recorder.request_stop()
            recorder_thread.join(timeout=10)
        if sharded is not None:
            sharded.close()

    # Swagger UI and ReDoc load their assets from a CDN; Vigil works offline, so only the
    # OpenAPI document itself is served (/openapi.json), for any local viewer or client generator.
    app = FastAPI(title="Vigil", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Accountable facial recognition. Every route needs a Bearer token "
                              "(POST /api/token, OAuth2 password flow) or an API token.")
    app.state.vigil = vigil
    app.state.live = LiveRegistry()
    app.state.secure_cookies = secure_cookies
    app.state.sharded_galleries = sharded
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
