"""The test suite's wall time, this tree against a base revision, in the same run (issue #11).

    python -m bench.test_suite [--base c6a1970] [--runs 1]

Each suite runs as the README's test command runs it (``python -m pytest -q``) with the
services ``.ci/run`` provides when they are there (PostgreSQL, NATS, Chromium and axe-core,
the faceplugin tarball: the ``VIGIL_*`` variables of this shell are passed on). The base
revision is checked out in a temporary git worktree and run with this venv's packages and
its own sources first on the path; its pyproject decides its options (c6a1970 had no
pytest-xdist, so it runs on one process, as it did). Written to ``bench/results/test_suite.json``
with the machine, the load average before each run, the number of tests and the wall times,
and the ratios: whole suite, and per test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, write_result

COUNT = re.compile(r"(\d+) (passed|skipped|failed|errors?)\b")  # pytest orders them by outcome, not always so


def run_suite(tree: Path, extra_env: dict, args: list[str]) -> dict:
    load = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=tree,
                          env={**os.environ, **extra_env}, capture_output=True, text=True)
    wall = time.monotonic() - started
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in
              COUNT.findall(proc.stdout.splitlines()[-1] if proc.stdout.strip() else "")}
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    failed = counts.get("failed", 0) + counts.get("error", 0)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-2000:])
    return {"wall_seconds": round(wall, 1), "passed": passed, "skipped": skipped, "failed": failed,
            "exit_code": proc.returncode, "load_average_before": [round(x, 2) for x in load],
            "seconds_per_test": round(wall / max(passed + skipped + failed, 1), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="c6a1970", help="the revision to compare with (default: before #11)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each suite (the best is kept)")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(base_tree), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            base_env = {"PYTHONPATH": str(base_tree / "src")}
            base = [run_suite(base_tree, base_env, ["-p", "no:xdist"]) for _ in range(args.runs)]
            now = [run_suite(ROOT, {}, []) for _ in range(args.runs)]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    best_base = min(base, key=lambda r: r["wall_seconds"])
    best_now = min(now, key=lambda r: r["wall_seconds"])
    data = {"base_revision": args.base, "revision": head.strip(), "base_runs": base, "runs": now,
            "base": best_base, "now": best_now,
            "wall_ratio_now_over_base": round(best_now["wall_seconds"] / best_base["wall_seconds"], 3),
            "per_test_ratio_now_over_base": round(best_now["seconds_per_test"] / best_base["seconds_per_test"], 3),
            "services": {k: bool(os.environ.get(k)) for k in ("VIGIL_TEST_POSTGRES_URL", "VIGIL_AXE_JS",
                                                              "VIGIL_FACEPLUGIN_TGZ", "VIGIL_REQUIRE_SERVICES")}}
    path = write_result("test_suite", data)
    print(f"base {args.base}: {best_base['passed']} tests in {best_base['wall_seconds']} s; "
          f"now {head.strip()}: {best_now['passed']} tests in {best_now['wall_seconds']} s "
          f"(whole suite x{data['wall_ratio_now_over_base']}, per test x{data['per_test_ratio_now_over_base']}) "
          f"-> {path}")


if __name__ == "__main__":
    main()
