"""After ``vigil demo`` (which makes a crowd video and runs an authorised deployment on it) and an
exported evidence clip: every file under the data directory is 0600 and every directory 0700,
and the whole run, traced with strace, made no network call (issue #12)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_service

NETWORK = re.compile(r"(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?\b")
# A name lookup reads the resolver's files (nscd is also asked for the OS account: not a lookup).
RESOLVER = re.compile(r'open(at)?\(.*"/etc/(resolv\.conf|hosts|gai\.conf)"')


def _vigil(home: Path, *args: str, trace: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vigil", *args]
    if trace is not None:
        cmd = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,open,openat", "-o", str(trace), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={"VIGIL_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200", **env},
                          preexec_fn=lambda: os.umask(0o022))  # the usual umask: Vigil must not rely on it


def _strace_works() -> bool:
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-e", "trace=connect", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, model_cache):
    """One traced ``vigil demo --no-serve`` (slow: reused by every test here), then a clip export."""
    root = tmp_path_factory.mktemp("demo-modes")
    home = root / "home"
    home.mkdir(mode=0o755)
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    trace = root / "strace.txt" if _strace_works() else None
    # evidence clips on, so that the run stores one and the test exports it
    proc = _vigil(home, "demo", "--no-serve", "--json", trace=trace, VIGIL_LIVE__EVIDENCE_CLIP_SECONDS="1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    alerts = _vigil(home, "alert", "list", "--json")
    first = json.loads(alerts.stdout)[0]["alert_id"]
    exported = home / "exports" / "clip.avi"
    clip = _vigil(home, "alert", "clip", str(first), "--out", str(exported), "--json")
    return {"home": home, "trace": trace, "result": result, "clip": clip, "exported": exported}


def test_every_file_is_0600_and_every_directory_0700(demo_run):
    home = demo_run["home"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    loose = []
    for folder, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():  # the tests' shared model cache
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode != (0o700 if path.is_dir() else 0o600):
                loose.append(f"{path.relative_to(home)} {oct(mode)}")
    assert loose == []
    names = {p.name for p in home.rglob("*")}
    assert "vigil.db-wal" in names or "vigil.db" in names
    assert (home / "audit" / "head.json").exists()


def test_the_demo_leaves_no_crowd_video_or_ground_truth_behind(demo_run):
    home = demo_run["home"]
    leftovers = [p for p in home.rglob("*") if p.suffix in (".mp4", ".avi", ".json") and "crowd" in p.name]
    assert leftovers == []  # faces and names of the synthetic crowd were deleted after the run
    assert [a["name"] for a in demo_run["result"]["live"]["alerts"]] == ["Barack Obama"]


def test_an_exported_evidence_clip_is_private(demo_run):
    clip = demo_run["clip"]
    assert clip.returncode == 0, clip.stderr
    assert stat.S_IMODE(demo_run["exported"].stat().st_mode) == 0o600


def test_a_traced_live_run_makes_no_network_call(demo_run):
    need_service(demo_run["trace"] is not None, "strace is not installed or may not trace here")
    calls = [line for line in demo_run["trace"].read_text().splitlines() if NETWORK.search(line)
             or RESOLVER.search(line)]
    assert calls == []  # no telemetry, no name lookup: nothing the operator did not configure


def test_onnxruntime_telemetry_is_off_before_any_session():
    probe = ("import onnxruntime as ort, vigil.engine.model_files as m\n"
             "calls = []\n"
             "real = ort.disable_telemetry_events\n"
             "ort.disable_telemetry_events = lambda: calls.append(1) or real()\n"
             "m.onnxruntime_offline(); m.onnxruntime_offline()\n"
             "print(len(calls))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
