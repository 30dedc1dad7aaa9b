"""ExactIndex: the reference every approximate index is measured against."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.index.exact import ExactIndex
from vigil.index.factory import index_from_bytes


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_search_finds_each_template_first_with_exact_scores(rng):
    vecs = unit(rng, 200)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = ExactIndex(32)
    index.add(ids, vecs)
    queries = unit(rng, 5)
    scores, found = index.search(np.vstack([vecs[:3], queries]), 4)
    assert scores.shape == found.shape == (8, 4)
    assert list(found[:3, 0]) == [1000, 1001, 1002]
    pos = found - 1000
    expected = np.einsum("qkd,qd->qk", vecs[pos], np.vstack([vecs[:3], queries]))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_readd_replaces_and_remove_forgets(rng):
    vecs = unit(rng, 10)
    index = ExactIndex(32)
    index.add(np.arange(10), vecs)
    index.add(np.array([3]), vecs[7:8])  # id 3 now holds template 7
    assert len(index) == 10
    _, found = index.search(vecs[7:8], 2)
    assert set(found[0]) == {3, 7}
    index.remove(np.array([7, 99]))  # unknown ids are ignored
    assert len(index) == 9
    scores, found = index.search(vecs[7:8], 1)
    assert found[0, 0] == 3 and scores[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_pads_when_k_exceeds_size_and_when_empty(rng):
    index = ExactIndex(32)
    scores, found = index.search(unit(rng, 2), 3)
    assert (found == -1).all() and np.isneginf(scores).all()
    index.add(np.array([5, 6]), unit(rng, 2))
    scores, found = index.search(unit(rng, 1), 4)
    assert sorted(found[0, :2]) == [5, 6] and list(found[0, 2:]) == [-1, -1]
    assert np.isfinite(scores[0, :2]).all() and np.isneginf(scores[0, 2:]).all()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip_through_bytes(rng, dtype):
    vecs = unit(rng, 50)
    index = ExactIndex(32, dtype=dtype)
    index.add(np.arange(50) * 3, vecs)
    restored = index_from_bytes(index.to_bytes())
    assert isinstance(restored, ExactIndex) and restored.dtype == np.dtype(dtype)
    queries = unit(rng, 4)
    for a, b in zip(index.search(queries, 5), restored.search(queries, 5)):
        np.testing.assert_array_equal(a, b)
    assert restored.memory_bytes == index.memory_bytes
