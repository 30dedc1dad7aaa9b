"""The evaluation's template cache: public-dataset templates, kept unencrypted but private
(0600 in a 0700 folder), and no dependency on the store (the layering forbids it)."""

import ast
import stat
from pathlib import Path

import numpy as np

import vigil.evaluation.template_cache as tc
from vigil.evaluation.extract import Extraction


def test_the_cache_does_not_import_the_store():
    tree = ast.parse(Path(tc.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.startswith("vigil.store") for m in imported)


def test_round_trip_private_file_and_a_stale_or_foreign_file_is_a_miss(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(3)]
    ext = Extraction(paths, np.eye(3, dtype=np.float32), np.array([True, True, False]),
                     np.array([True, False, False]), [[], ["blurred"], ["no face found"]], 1.5, 2.0)
    target = tmp_path / "cache" / "eval-x.npz"
    tc.save(target, ext)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    back = tc.load(target, paths)
    assert np.array_equal(back.vectors, ext.vectors) and back.gate_reasons == ext.gate_reasons
    assert back.found.tolist() == [True, True, False] and back.seconds_engine == 1.5
    assert tc.load(target, paths[:2]) is None and not target.exists()  # other paths: dropped
    target.write_bytes(b"an old encrypted cache")
    assert tc.load(target, paths) is None and not target.exists()
