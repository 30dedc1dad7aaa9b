"""The CLI's error contract: a usage mistake (unknown option, missing argument, bad value,
unknown command) is a short usage message on stderr and exit code 2, never a traceback.

Typer 0.2x raises its own click exception classes, which ``main()`` once failed to catch:
every usage error was a 30-line traceback. The walk below covers every registered command
and sub-command, so a new command is covered without editing this file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer

from vigil.cli import app, main


def _command_paths(command=None, path=()) -> list[tuple[str, ...]]:
    command = command or typer.main.get_command(app)
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, path + (name,))
    return paths


def _run(args: list[str], home) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIGIL_HOME": str(home), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("args, says", [
    (["backup", "--bogus"], "No such option"),
    (["verify"], "Missing argument"),
    (["synth", "crowd", "--out", "x.mp4", "--width", "wide"], "Invalid value"),
    (["no-such-command"], "No such command"),
    (["db", "copy"], "Missing option"),
])
def test_usage_errors_through_python_m_vigil(args, says, home):
    proc = _run(args, home)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert says in proc.stderr
    assert len(proc.stderr.splitlines()) < 12  # a usage message, not a stack


def test_every_command_rejects_an_unknown_option_with_exit_code_2(home, monkeypatch, capsys):
    paths = _command_paths()
    assert len(paths) > 40  # the walk found the command tree
    failures = []
    for path in paths:
        monkeypatch.setattr(sys, "argv", ["vigil", *path, "--no-such-option-xyz"])
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:  # noqa: BLE001 - escaping main() is the traceback a user would see
            failures.append(f"vigil {' '.join(path)}: {type(exc).__name__}: {exc}")
            continue
        else:
            code = 0
        err = capsys.readouterr().err
        if code != 2 or "No such option" not in err or "Traceback" in err:
            failures.append(f"vigil {' '.join(path)}: exit {code}: {err[-200:]}")
    assert not failures, "\n".join(failures)


def test_a_vigil_error_is_one_line_with_its_own_exit_code(home, tmp_path):
    proc = _run(["restore", str(tmp_path / "not-a-backup")], home)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "not a Vigil backup" in " ".join(proc.stderr.split())


def test_version_and_the_enrol_spelling(home):
    from vigil import __version__

    assert _run(["--version"], home).stdout.strip() == f"vigil {__version__}"
    assert _run(["enrol", "--help"], home).returncode == 0  # the docs' spelling; enroll works too


def test_a_pack_whose_extra_is_missing_is_refused_when_chosen_and_says_how_to_install_it(home):
    """Issue #15: `gallery create --pack fusion` succeeded without dlib, and Rich markup ate the
    "[dlib]" of the install hint."""
    script = ("import sys; sys.modules['dlib'] = None\n"  # as if the optional extra were not installed
              "from vigil.cli import main\n"
              "main(['gallery', 'create', 'custody', '--pack', 'fusion'])\n")
    env = {**os.environ, "VIGIL_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pip install 'vigil[dlib]'" in proc.stderr
    listed = subprocess.run([sys.executable, "-c", script.replace("['gallery', 'create', 'custody', '--pack', "
                                                                   "'fusion']", "['gallery', 'list', '--json']")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout)["items"] == []  # nothing was created


def test_every_command_and_option_says_what_it_is_for():
    """Issue #15: many options had no help text."""
    missing = []

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, path + (name,))
            return
        if not command.help:
            missing.append(f"vigil {' '.join(path)}: no description")
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and param.name != "help" and not param.help:
                missing.append(f"vigil {' '.join(path)} {param.opts[0]}: no help")

    walk(typer.main.get_command(app), ())
    assert missing == []


def test_reports_take_json_like_every_command_that_reports(home):
    from tests.cli_run import run_cli

    out = run_cli(home, "report", "annual", "--year", "2026", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["year"] == 2026


def test_output_to_a_pipe_is_never_wrapped_at_80_columns(home):
    """Logs and grep read whole lines: a long line stays one line when stdout is not a terminal,
    whatever width the environment claims."""
    name = "a-gallery-with-a-name-long-enough-to-pass-eighty-columns-on-its-own-" + "x" * 40
    env = {**os.environ, "VIGIL_HOME": str(home), "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "vigil", "gallery", "create", name], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    [line] = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert name in line and len(line) > 120  # (an error is one line too: test_a_vigil_error_is_one_line...)


def test_an_invalid_setting_is_named_in_one_line_not_a_traceback(home):
    from tests.cli_run import run_cli

    out = run_cli(home, "gallery", "list", env={"VIGIL_LIVE__DETECT_MAX_SIDE": "wide"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "invalid setting: live.detect_max_side (VIGIL_LIVE__DETECT_MAX_SIDE or vigil.toml)" in out.stderr
