"""Shared helpers for benchmarks: locating the shared data, writing results with the machine."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def lfw_root(arg: str | None = None) -> Path | None:
    path = Path(arg) if arg else SHARED / "lfw"
    return path if (path / "lfw").is_dir() else None


def skip(message: str) -> None:
    print(f"skipped: {message}")
    sys.exit(0)


def write_result(name: str, data: dict) -> Path:
    from vigil.evaluation.lfw import machine_description

    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine_description(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return path


def import_face_recognition():
    """The face_recognition peer, imported without pkg_resources (gone from current setuptools):
    face_recognition_models only uses it to find its files, so a small shim does that job."""
    import importlib.util
    import types

    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")

            def resource_filename(package, resource):
                spec = importlib.util.find_spec(package)
                return str(Path(list(spec.submodule_search_locations)[0]) / resource)

            shim.resource_filename = resource_filename
            sys.modules["pkg_resources"] = shim
    import face_recognition

    return face_recognition
