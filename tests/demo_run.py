"""One traced ``vigil demo --no-serve --json`` on a fresh data directory, shared by the demo's
end-to-end test and the file-mode and no-network checks (the demo is the slowest thing the
suite runs; doing it once instead of once per test module and worker saves half a minute).
Under pytest-xdist the first worker to ask runs it while holding a lock in the run's shared
temporary folder; the others wait and read its result (``result.json``)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def run_vigil(home: Path, *args: str, trace: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vigil", *args]
    if trace is not None:
        cmd = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,open,openat", "-o", str(trace), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200", **env},
                          preexec_fn=lambda: os.umask(0o022))  # the usual umask: Vigil must not rely on it


def strace_works() -> bool:
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-e", "trace=connect", "true"], capture_output=True).returncode == 0


def traced_demo(root: Path, model_cache: Path) -> dict:
    """The README's first command's ``vigil demo`` in a new data directory, traced when strace
    can, with evidence clips on so that the run stores one; then a clip export."""
    home = root / "home"
    home.mkdir(mode=0o755, parents=True)
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    trace = root / "strace.txt" if strace_works() else None
    proc = run_vigil(home, "demo", "--no-serve", "--json", "--home", str(home), trace=trace,
                     VIGIL_LIVE__EVIDENCE_CLIP_SECONDS="1")
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    clip = exported = None
    if result is not None:
        alerts = run_vigil(home, "alert", "list", "--json")
        first = json.loads(alerts.stdout)["items"][0]["id"]
        exported = home / "exports" / "clip.avi"
        clip = run_vigil(home, "alert", "clip", str(first), "--out", str(exported), "--json")
    return {"home": str(home), "trace": str(trace) if trace else None, "returncode": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr, "result": result,
            "clip": {"returncode": clip.returncode, "stderr": clip.stderr} if clip else None,
            "exported": str(exported) if exported else None}


def shared_traced_demo(root: Path, model_cache: Path) -> dict:
    """:func:`traced_demo` once per test run, shared by every worker through ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    done = root / "result.json"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on failure
        if not done.exists():
            done.write_text(json.dumps(traced_demo(root, model_cache)))
    run = json.loads(done.read_text())
    for key in ("home", "trace", "exported"):
        run[key] = Path(run[key]) if run[key] else None
    return run
