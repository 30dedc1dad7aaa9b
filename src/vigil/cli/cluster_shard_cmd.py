"""``vigil shard``: hold one slice of a gallery in memory and answer its searches over NATS
(docs/cluster.md, "Sharded gallery")."""

from __future__ import annotations

import signal
import threading

import typer

from vigil.cli.common import console, print_json
from vigil.errors import VigilError


def register(app: typer.Typer) -> None:
    app.command("shard")(shard)


def shard(nats: str = typer.Option(..., "--nats", help="NATS server URL, or several comma-separated (a "
                                   "cluster's seeds), for example nats://10.0.0.5:4222."),
          gallery: str = typer.Option(..., "--gallery", help="The gallery whose slice this process holds."),
          which: str = typer.Option(..., "--shard", help="Which slice: I/N, the I-th of N shards (1 to N); "
                                    "every process serving the same I/N is a replica of it."),
          dtype: str = typer.Option("float32", "--dtype", help="How templates are held: float32 (fastest), or "
                                    "float16 (half the memory, several times slower to search)."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON line once serving (for "
                                       "supervisors), instead of text."),
          ) -> None:
    """Serve one shard of a gallery: its templates are loaded from the database and decrypted in
    this process only; searches and erasures arrive over NATS, sealed with this site's keys.
    Runs until interrupted (Ctrl-C or SIGTERM), then leaves the cluster's registry."""
    from vigil.cli.common_ctx import ctx
    from vigil.cluster.shards import ShardSpec, serve_shards

    if dtype not in ("float32", "float16"):
        raise VigilError(f"--dtype {dtype}: use float32 or float16")
    spec = ShardSpec.parse(which, gallery)
    urls = [u.strip() for u in nats.split(",") if u.strip()]
    if not urls:
        raise VigilError("--nats needs a URL, for example nats://127.0.0.1:4222")
    vigil, actor = ctx()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    served = []

    def ready(servers) -> None:
        served.extend(servers)
        for server in servers:
            info = {"gallery": server.spec.gallery, "shard": server.spec.shard, "of": server.spec.of,
                    "replica": server.replica, "templates": server.templates, "dtype": dtype,
                    "load_s": round(server.load_s, 3), "nats": urls}
            if as_json:
                print_json(info)
            else:
                console.print(f"serving shard {server.spec.shard} of {server.spec.of} of gallery "
                              f"{server.spec.gallery!r}: {server.templates:,} templates ({dtype}), replica "
                              f"{server.replica}, on {', '.join(urls)}; Ctrl-C to stop",
                              markup=False, highlight=False)

    try:
        serve_shards(vigil, urls, [spec], stop, actor=actor, dtype=dtype, on_ready=ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if served and not as_json:
        console.print(f"shard {spec.shard} of {spec.of} of gallery {spec.gallery!r} stopped", markup=False,
                      highlight=False)
