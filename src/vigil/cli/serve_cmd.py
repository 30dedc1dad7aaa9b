"""``vigil serve``: the REST API and the web console.

Logins, session cookies and biometric images must not cross a network in clear: on a
loopback address Vigil serves plain HTTP (this machine only), on any other it needs a
certificate (``--tls-cert``/``--tls-key``) or a declared TLS-terminating proxy
(``--behind-proxy``), and refuses to start otherwise."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer
from rich.markup import escape

from vigil.cli.common import console, err_console, settings
from vigil.errors import VigilError


def register(app: typer.Typer) -> None:
    app.command()(serve)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a name other than localhost may
    resolve anywhere, so it counts as a network address)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(host: str, tls_cert: Path | None, tls_key: Path | None, behind_proxy: str | None) -> str:
    """How the server will be reached: ``https``, ``proxy`` or ``loopback``; a clear refusal
    if logins would cross a network in clear."""
    if bool(tls_cert) != bool(tls_key):
        raise VigilError("--tls-cert and --tls-key go together: give both (a PEM certificate and its key)")
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise VigilError(f"{option} {path}: no such file")
    if tls_cert:
        return "https"
    if behind_proxy:
        return "proxy"
    if not is_loopback(host):
        raise VigilError(
            f"--host {host} would serve logins, session cookies and face images over plain HTTP to the "
            "network. Give --tls-cert and --tls-key (HTTPS), or --behind-proxy ADDRESS if a reverse proxy "
            "at ADDRESS terminates TLS in front of Vigil; or serve on 127.0.0.1.")
    return "loopback"


def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any but a loopback "
                                   "address needs --tls-cert/--tls-key or --behind-proxy."),
          port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
          retention_every: float = typer.Option(3600.0, "--retention-every",
                                                help="Seconds between scheduled retention runs (0 = off)."),
          behind_proxy: str = typer.Option(None, "--behind-proxy",
                                           help="Trust X-Forwarded-* from this proxy address (TLS terminated there; "
                                                "session cookies are then marked Secure)."),
          tls_cert: Path = typer.Option(None, "--tls-cert", help="PEM certificate (chain) to serve HTTPS with."),
          tls_key: Path = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
          nats: str = typer.Option(None, "--nats", help="Also record the cluster's alerts and cameras (the recorder, "
                                   "docs/cluster.md) from these NATS server URL(s), comma-separated.")) -> None:
    """Serve the API (/api, OpenAPI document at /openapi.json) and the operator console (/)."""
    mode = check_transport(host, tls_cert, tls_key, behind_proxy)
    import uvicorn

    from vigil.server import create_app

    recorder_nats = [u.strip() for u in (nats or "").split(",") if u.strip()] or None
    app = create_app(settings(), retention_every=retention_every or None, secure_cookies=mode != "loopback",
                     recorder_nats=recorder_nats)
    sharded = app.state.sharded_galleries
    if sharded is not None and sharded.connected:
        console.print(sharded.describe(), markup=False, highlight=False)
    elif sharded is not None:  # served anyway: every other gallery, and these once NATS answers
        err_console.print(f"[bold yellow]warning:[/] {escape(sharded.describe())}", highlight=False)
    scheme = "https" if mode == "https" else "http"
    console.print(f"Vigil console: {scheme}://{host}:{port}/   OpenAPI: {scheme}://{host}:{port}/openapi.json"
                  + ("   (TLS terminated by the proxy at " + behind_proxy + ")" if mode == "proxy" else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=bool(behind_proxy), forwarded_allow_ips=behind_proxy or "127.0.0.1",
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)
