#!/usr/bin/env python
"""Bulk enrolment of the whole LFW folder (13,233 images) through the CLI, killed with
SIGKILL part way and resumed: every image ends up enrolled exactly once.

    python bench/bulk_enrol_lfw.py [--data ../shared/data/lfw] [--kill-at 0.3] [--json]

Reports images/s end to end (decode, detect, quality, embed, encrypt, store, audit, index),
the number enrolled before the kill, and the duplicate check after the resume.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import lfw_root, skip, write_result


def count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM face_images").fetchone()[0]
    except sqlite3.Error:
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--kill-at", type=float, default=0.3, help="fraction enrolled before SIGKILL")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = lfw_root(args.data)
    if root is None:
        skip("LFW not found (../shared/data/lfw); pass --data")
    files = sorted((root / "lfw").glob("*/*.jpg"))
    total = len(files)
    # LFW holds a few byte-identical files under two names: enrolled once each (same content key)
    distinct_files = len({hashlib.sha256(f.read_bytes()).digest() for f in files})
    home = Path(tempfile.mkdtemp(prefix="vigil-bulk-"))
    env = {**os.environ, "VIGIL_HOME": str(home)}
    vigil = [sys.executable, "-m", "vigil"]
    subprocess.run(vigil + ["gallery", "create", "lfw"], env=env, check=True, capture_output=True)
    cmd = vigil + ["enroll", "--gallery", "lfw", "--dir", str(root / "lfw"), "--allow-low-quality", "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = int(total * args.kill_at)
    while proc.poll() is None and count(home / "vigil.db") < target:
        time.sleep(0.5)
    first_run = time.perf_counter() - start
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = count(home / "vigil.db")
    resume_start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    resume_s = time.perf_counter() - resume_start
    report = json.loads(out.stdout.strip().splitlines()[-1])
    with sqlite3.connect(home / "vigil.db") as conn:
        images = conn.execute("SELECT COUNT(*) FROM face_images").fetchone()[0]
        distinct = conn.execute("SELECT COUNT(DISTINCT content_hash) FROM face_images").fetchone()[0]
        templates = conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
    verify = subprocess.run(vigil + ["audit", "verify", "--json"], env=env, capture_output=True, text=True)
    result = {
        "images_in_folder": total, "enrolled_before_kill": before, "killed_after_seconds": round(first_run, 1),
        "resume": {"enrolled": report["enrolled"], "skipped": report["skipped"], "rejected": len(report["rejected"])},
        "rejection_reasons": sorted({r["reasons"][0] for r in report["rejected"]})[:10],
        "face_images": images, "distinct_content": distinct, "templates": templates,
        "identical_files_in_folder": total - distinct_files,
        "duplicates": images - distinct, "exactly_once": images == distinct == templates
        and images + len(report["rejected"]) == distinct_files,
        "images_per_second": round((before + report["enrolled"]) / (first_run + resume_s), 2),
        "audit_ok": json.loads(verify.stdout)["ok"],
    }
    path = write_result("bulk_enrol_lfw", result)
    print(json.dumps(result) if args.json else
          f"{images} images enrolled ({result['duplicates']} duplicates) at {result['images_per_second']} images/s; "
          f"killed at {before}, resumed; exactly once: {result['exactly_once']} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
