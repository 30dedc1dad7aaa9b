"""``vigil demo``: the whole product on embedded defaults, from images shipped in the package."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from vigil.cli.common import JsonOpt, console, emit, settings
from vigil.config import default_home


def demo_home() -> Path:
    """The demo's own data directory, beside the configured one (``vigil`` -> ``vigil-demo``):
    the demo's collections, deployment, alerts and login never enter the data directory real
    work uses, nor its transparency reports."""
    home = default_home()
    return home.with_name(home.name + "-demo")


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="End by serving the console (default) or exit."),
    port: int = typer.Option(8765, "--port", help="Port of the console the demo serves on 127.0.0.1."),
    home: Path = typer.Option(None, "--home", help="The demo's data directory (default: its own, beside the "
                              "configured one, so the demo never enters real work's records)."),
    as_json: bool = JsonOpt,
) -> None:
    """Verify and identify, search a gallery, run a live deployment, then serve the console.
    Runs in its own data directory (printed), not in the one real work uses."""
    from vigil.cli.common_ctx import ctx
    from vigil.services.demo import run_demo

    os.environ["VIGIL_HOME"] = str((home or demo_home()).expanduser())  # this process is the demo's
    os.environ.pop("VIGIL_CONFIG", None)  # the demo's own (none): not the real data directory's settings
    s = settings()
    if not as_json:
        console.print(f"[bold]Vigil demo[/] in its own data directory {s.home} (real work's is untouched)")
    vigil, actor = ctx()
    result = run_demo(vigil, actor, alert_sinks=[] if as_json else [_PrintSink()])

    def human(r):
        console.print("[bold]1. Verification[/] (SFace, threshold at a false match rate of 1 in 10,000)")
        for v in r["engine"]["verifications"]:
            console.print(f"   {v['a']} vs {v['b']}: score {v['score']:.3f} -> {'MATCH' if v['match'] else 'no match'}")
        console.print(f"[bold]2. Retrospective search[/] {r['retrospective']['search_id']} (case DEMO-001)")
        for f in r["retrospective"]["faces"]:
            console.print(f"   face at {f['box']}: top candidate {f['top']} (score {f['score']:.3f}, "
                          f"FMR {f['fmr']:.1e}) - a lead for a person to review")
        live = r["live"]
        console.print(f"[bold]3. Live deployment[/] {live['deployment_id']} on {live['video']}: {live['frames']} frames, "
                      f"{live['faces_seen']} faces compared, {len(live['alerts'])} alert(s); every other face discarded")
        login = r["login"]
        console.print(f"[bold]4. Console login[/]: user [bold]{login['username']}[/] "
                      + (f"password [bold]{login['password']}[/] ({login['note']})" if login["password"]
                         else f"({login['note']})"))

    emit(result, as_json, human)
    if serve:
        import uvicorn

        from vigil.server import create_app

        console.print(f"Console: [bold]http://127.0.0.1:{port}/[/]  (Ctrl-C to stop)")
        uvicorn.run(create_app(s), host="127.0.0.1", port=port, log_level="warning", access_log=False)


class _PrintSink:
    """Prints each alert of the demo's live run as it happens."""

    def send(self, payload: dict) -> None:
        if payload.get("type") == "alert":
            console.print(f"  [bold red]ALERT[/] {payload['name']} on {payload['camera']} at {payload['time']:.1f}s, "
                          f"score {payload['score']:.3f}: awaiting an operator's decision")

    def close(self) -> None:
        pass
