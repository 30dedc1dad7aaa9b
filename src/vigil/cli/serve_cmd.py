"""``vigil serve``: the REST API and the web console."""

from __future__ import annotations

import typer

from vigil.cli.common import console, settings


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8765, "--port"),
          retention_every: float = typer.Option(3600.0, "--retention-every",
                                                help="Seconds between scheduled retention runs (0 = off)."),
          behind_proxy: str = typer.Option(None, "--behind-proxy",
                                           help="Trust X-Forwarded-* from this proxy address (TLS terminated there; "
                                                "session cookies are then marked Secure).")) -> None:
    """Serve the API (/api, OpenAPI document at /openapi.json) and the operator console (/)."""
    import uvicorn

    from vigil.server import create_app

    app = create_app(settings(), retention_every=retention_every or None)
    console.print(f"Vigil console: http://{host}:{port}/   OpenAPI: http://{host}:{port}/openapi.json")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=bool(behind_proxy), forwarded_allow_ips=behind_proxy or "127.0.0.1")
