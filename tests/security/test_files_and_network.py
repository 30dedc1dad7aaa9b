"""After ``vigil demo`` (which makes a crowd video and runs an authorised deployment on it) and an
exported evidence clip: every file under the data directory is 0600 and every directory 0700,
and the whole run, traced with strace, made no network call (issue #12)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_service

NETWORK = re.compile(r"(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?\b")
# A name lookup reads the resolver's files (nscd is also asked for the OS account: not a lookup).
RESOLVER = re.compile(r'open(at)?\(.*"/etc/(resolv\.conf|hosts|gai\.conf)"')


@pytest.mark.slow  # the session's traced demo: whichever worker asks first runs it
def test_every_file_is_0600_and_every_directory_0700(demo_run):
    home = demo_run["home"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    loose = []
    for folder, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():  # the tests' shared model cache
                continue
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except FileNotFoundError:  # a temporary file renamed into place meanwhile
                continue
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
    assert clip["returncode"] == 0, clip["stderr"]
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
