"""The ``vigil`` command line. Commands are thin: they call the same services as the API."""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from vigil.cli.common import err_console, print_json
from vigil.errors import VigilError, problem_details

app = typer.Typer(
    name="vigil",
    help="Accountable facial recognition: live and retrospective identification against watchlists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from vigil import __version__

        print(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print Vigil's version and exit.")) -> None:
    """Accountable facial recognition: live and retrospective identification against watchlists."""


def _register() -> None:
    from vigil.cli import engine_cmds, eval_cmds, demo_cmd

    engine_cmds.register(app)
    eval_cmds.register(app)
    demo_cmd.register(app)
    for module in ("store_cmds", "admin_cmds", "live_cmds", "camera_cmds", "synth_cmd", "governance_cmds", "serve_cmd",
                   "cluster_shard_cmd", "node_cmds"):
        try:
            mod = __import__(f"vigil.cli.{module}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"vigil.cli.{module}":
                raise
            continue
        mod.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI with one error contract, whatever Typer version is installed.

    Typer (0.2x vendors its own copy of click, with its own exception classes) handles its
    usage errors itself in standalone mode: a short usage message on stderr and exit code 2,
    never a traceback. Vigil's own errors (a user's mistake the code recognised) pass through
    it untouched and are printed here as one line with their exit code.
    """
    os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
    wants_json = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, standalone_mode=True)  # exits: 0, a typer.Exit code, or 2 for a usage error
    except VigilError as exc:
        if wants_json:  # the API's error body (RFC 9457 problem details), on stdout
            print_json(problem_details(exc))
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)  # "vigil[dlib]" stays
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
