"""The ``vigil`` command run in this process: the real entry point (:func:`vigil.cli.main`, with
its error contract: usage errors exit 2, Vigil's errors print one line with their exit code),
with stdout and stderr captured, without paying for a new interpreter and its imports (about
a second a command). Tests about the process itself (exit on a signal, a traced run, the
installed script) still start one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner


def run_cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``vigil ARGS`` against the data directory ``home``, as a completed process."""
    from vigil.cli import main
    from vigil.services import forget_contexts

    forget_contexts()  # a command starts with nothing loaded, as a new process would
    full = {"VIGIL_HOME": str(home), "VIGIL_CONFIG": str(Path(home) / "vigil.toml"), "COLUMNS": "200",
            "VIGIL_TOKEN": None, **(env or {})}  # None: unset (the OS account's own identity)
    code = 0
    with CliRunner().isolation(env=full) as streams:
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            forget_contexts()
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    return subprocess.CompletedProcess(["vigil", *args], code, out, err)
