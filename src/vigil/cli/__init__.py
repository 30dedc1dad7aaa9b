"""The ``vigil`` command line. Commands are thin: they call the same services as the API."""

from __future__ import annotations

import os
import sys

import typer

from vigil.cli.common import err_console, print_json
from vigil.errors import VigilError

app = typer.Typer(
    name="vigil",
    help="Accountable facial recognition: live and retrospective identification against watchlists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from vigil.cli import engine_cmds, eval_cmds, demo_cmd

    engine_cmds.register(app)
    eval_cmds.register(app)
    demo_cmd.register(app)
    for module in ("store_cmds", "admin_cmds", "live_cmds", "synth_cmd", "governance_cmds", "serve_cmd"):
        try:
            mod = __import__(f"vigil.cli.{module}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"vigil.cli.{module}":
                raise
            continue
        mod.register(app)


_register()


def main() -> None:
    os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
    wants_json = "--json" in sys.argv
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit codes in this mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except VigilError as exc:
        if wants_json:
            print_json({"error": str(exc), "type": exc.__class__.__name__})
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        if code is None:
            code = getattr(exc, "code", 0)
        sys.exit(code or 0)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
