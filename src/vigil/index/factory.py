"""Choosing an index for a gallery size, and restoring either kind from its bytes.

Exact search is one BLAS product and needs no training: up to ``exact_limit`` templates
(200,000 by default, roughly 2-3 ms per single query on two cores) it is the right answer.
It grows linearly (12-15 ms at 1M, see docs/index.md), so above the limit the approximate
index (:mod:`vigil.index.ann`, about 1.8 ms at 1M) takes over; its scores are still exact
float32 cosines.
"""

from __future__ import annotations

import io

import numpy as np

from vigil.index.ann import AnnIndex
from vigil.index.exact import ExactIndex


def make_index(dim: int, expected_size: int, exact_limit: int = 200_000) -> ExactIndex | AnnIndex:
    if expected_size <= exact_limit:
        return ExactIndex(dim)
    return AnnIndex(dim)


def index_from_bytes(data: bytes) -> ExactIndex | AnnIndex:
    """Restore what ``to_bytes()`` of either index produced (the kind is stored inside)."""
    saved = np.load(io.BytesIO(data), allow_pickle=False)
    kind = str(saved["kind"])
    if kind == AnnIndex.kind:
        return AnnIndex.from_bytes(data)
    if kind == ExactIndex.kind:
        return ExactIndex.from_arrays(saved["ids"], saved["vectors"], dtype=str(saved["dtype"]))
    raise ValueError(f"unknown index kind {kind!r}")
