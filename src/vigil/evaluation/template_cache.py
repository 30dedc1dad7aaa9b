"""Encrypted cache of evaluation templates, so repeated evaluations of the same data with
the same model skip extraction. Templates are biometric data even for public data sets,
so the cache is sealed with the data directory's key like everything else Vigil stores.

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
from vigil.store.crypto import Keyring, load_keyring


def _keyring(settings: Settings) -> Keyring:
    path = settings.home / "keys" / "data.key"
    if not settings.key and not path.exists():
        Keyring.generate(path)
    return load_keyring(settings.home, settings.key)


def cache_key(model_id: str, paths: list[Path]) -> str:
    digest = hashlib.sha256(model_id.encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:24]


def cached_extract(settings: Settings, engine: FaceEngine, paths: list[Path], *, show_progress: bool = True,
                   description: str = "Extracting templates", use_cache: bool = True) -> Extraction:
    key = cache_key(engine.model_id, paths)
    folder = settings.home / "cache"
    target = folder / f"eval-{key}.bin"
    context = f"eval-cache:{key}".encode()
    if use_cache and target.is_file():
        try:
            raw = _keyring(settings).decrypt(target.read_bytes(), context)
            z = np.load(io.BytesIO(raw), allow_pickle=False)
            return Extraction(list(paths), z["vectors"], z["found"], z["gate_passed"],
                              [r.split("\x1f") if r else [] for r in z["reasons"].tolist()],
                              float(z["seconds_engine"]), float(z["seconds_total"]))
        except Exception:
            target.unlink(missing_ok=True)
    ext = extract(engine, paths, show_progress=show_progress, description=description)
    if use_cache:
        buf = io.BytesIO()
        np.savez(buf, vectors=ext.vectors, found=ext.found, gate_passed=ext.gate_passed,
                 reasons=np.array(["\x1f".join(r) for r in ext.gate_reasons]),
                 seconds_engine=ext.seconds_engine, seconds_total=ext.seconds_total)
        atomic_write(target, _keyring(settings).encrypt(buf.getvalue(), context))
    return ext
