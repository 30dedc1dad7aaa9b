"""The index seam. Ids are int64 template ids; vectors are unit rows (cosine = dot)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    dim: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, k), best first; missing slots are id -1, score -inf."""
        ...

    def to_bytes(self) -> bytes: ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a (q, n) score matrix: (scores, column indices), best first."""
    n = scores.shape[1]
    k_eff = min(k, n)
    if k_eff == 0:
        return np.zeros((scores.shape[0], 0), scores.dtype), np.zeros((scores.shape[0], 0), np.int64)
    if k_eff < n:
        part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    else:
        part = np.tile(np.arange(n), (scores.shape[0], 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)


def pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] >= k:
        return scores, ids
    extra = k - scores.shape[1]
    return (np.pad(scores.astype(np.float32), ((0, 0), (0, extra)), constant_values=-np.inf),
            np.pad(ids, ((0, 0), (0, extra)), constant_values=-1))
