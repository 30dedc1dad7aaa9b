"""Exact search: one BLAS matrix product over all templates (float32, or float16 storage
to halve memory, upcast per block for the product)."""

from __future__ import annotations

import io

import numpy as np

from vigil.index.base import pad, top_k


class ExactIndex:
    kind = "exact"

    def __init__(self, dim: int, dtype: str = "float32", block: int = 262_144):
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.block = block
        self._vectors = np.zeros((0, dim), self.dtype)
        self._ids = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        self._flush()
        return len(self._ids)

    def _flush(self) -> None:
        if self._pending:
            ids = np.concatenate([self._ids] + [p[0] for p in self._pending])
            vecs = np.concatenate([self._vectors] + [p[1] for p in self._pending])
            self._ids, self._vectors = ids, vecs
            self._pending.clear()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64).reshape(-1)
        vectors = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        self.remove(ids)  # re-adding an id replaces it
        self._pending.append((ids, vectors.astype(self.dtype)))

    def remove(self, ids: np.ndarray) -> None:
        self._flush()
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) == 0 or len(self._ids) == 0:
            return
        keep = ~np.isin(self._ids, ids)
        if not keep.all():
            self._ids, self._vectors = self._ids[keep], self._vectors[keep]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        self._flush()
        pos = {int(i): n for n, i in enumerate(self._ids)}
        return np.stack([self._vectors[pos[int(i)]].astype(np.float32) for i in ids])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        self._flush()
        q = np.asarray(queries, np.float32).reshape(-1, self.dim)
        if self.dtype == np.float32:
            return q @ self._vectors.T
        out = np.empty((len(q), len(self._ids)), np.float32)
        for start in range(0, len(self._ids), self.block):
            out[:, start : start + self.block] = q @ self._vectors[start : start + self.block].astype(np.float32).T
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        q = np.asarray(queries, np.float32).reshape(-1, self.dim)
        if len(self._ids) == 0:
            return pad(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k)
        scores, cols = top_k(self.scores(q), k)
        return pad(scores, self._ids[cols], k)

    def to_bytes(self) -> bytes:
        self._flush()
        buf = io.BytesIO()
        np.savez(buf, kind=self.kind, dtype=str(self.dtype), ids=self._ids, vectors=self._vectors)
        return buf.getvalue()

    @classmethod
    def from_arrays(cls, ids: np.ndarray, vectors: np.ndarray, dtype: str = "float32") -> "ExactIndex":
        index = cls(vectors.shape[1], dtype)
        index._ids = np.asarray(ids, np.int64)
        index._vectors = np.asarray(vectors, index.dtype)
        return index

    @property
    def memory_bytes(self) -> int:
        self._flush()
        return self._vectors.nbytes + self._ids.nbytes
