"""Cache of evaluation templates, so repeated evaluations of the same data with the same
model skip extraction.

Why it is not encrypted: the evaluation layer sits below the store (it may import only the
engine and the foundation modules), and what it caches are templates of *public* benchmark
images (LFW and the like) that anyone can recompute from the published photographs. So the
cache is a plain ``.npz`` file in the data directory's ``cache/`` folder, written
atomically with mode 0600 in a folder with mode 0700: readable by the user who ran the
evaluation and nobody else. Templates of a site's own people never pass through here: those
are enrolled through the services and sealed by the store. To evaluate on private photos,
pass ``use_cache=False`` (``vigil eval ... --no-cache``) or delete ``cache/eval-*.npz``.

Key: model id + the list of files (names, sizes, mtimes). Any change re-extracts.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from vigil.config import Settings
from vigil.engine.face_engine import FaceEngine
from vigil.evaluation.extract import Extraction, extract
from vigil.fsutil import atomic_write

FILE_MODE = 0o600
DIR_MODE = 0o700


def cache_key(model_id: str, paths: list[Path]) -> str:
    digest = hashlib.sha256(model_id.encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:24]


def cache_path(settings: Settings, model_id: str, paths: list[Path]) -> Path:
    return settings.home / "cache" / f"eval-{cache_key(model_id, paths)}.npz"


def save(target: Path, ext: Extraction) -> None:
    buf = io.BytesIO()
    np.savez(buf, vectors=ext.vectors, found=ext.found, gate_passed=ext.gate_passed,
             reasons=np.array(["\x1f".join(r) for r in ext.gate_reasons]),
             seconds_engine=ext.seconds_engine, seconds_total=ext.seconds_total)
    atomic_write(target, buf.getvalue(), mode=FILE_MODE, dir_mode=DIR_MODE)


def load(target: Path, paths: list[Path]) -> Extraction | None:
    """The cached extraction, or None when the file is missing, unreadable or for other paths."""
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            ext = Extraction(list(paths), z["vectors"], z["found"], z["gate_passed"],
                             [r.split("\x1f") if r else [] for r in z["reasons"].tolist()],
                             float(z["seconds_engine"]), float(z["seconds_total"]))
    except (OSError, ValueError, KeyError):
        target.unlink(missing_ok=True)
        return None
    if len(ext.vectors) != len(paths):
        target.unlink(missing_ok=True)
        return None
    return ext


def cached_extract(settings: Settings, engine: FaceEngine, paths: list[Path], *, show_progress: bool = True,
                   description: str = "Extracting templates", use_cache: bool = True) -> Extraction:
    target = cache_path(settings, engine.model_id, paths)
    if use_cache:
        hit = load(target, paths)
        if hit is not None:
            return hit
    ext = extract(engine, paths, show_progress=show_progress, description=description)
    if use_cache:
        save(target, ext)
    return ext
