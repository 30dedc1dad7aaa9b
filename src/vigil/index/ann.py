"""Approximate search for large galleries: a compressed scan of *every* template proposes
candidates, then each candidate is re-scored exactly against its float32 template.

Why this shape (numbers in ``docs/index.md``, reproduced by ``bench/index_1m.py``)
------------------------------------------------------------------------------------
* Face templates are a hard case for partitioned or graph indexes: a mate typically
  scores 0.5-0.8 and at 1M templates dozens of distractors score 0.43-0.5, so the mate
  is not reliably in the query's nearest cells (IVF) or reachable greedily (HNSW). On a
  1M SFace gallery, IVF scanning an eighth of its lists and HNSW with a beam of 2,048
  still missed exact search's top-1 for 4-11% of mated probes.
* Scanning all templates is affordable if the scan is cheap: 4-bit product-quantisation
  codes (FAISS "fast scan", 32 bytes per 128-d template, SIMD lookup tables in registers)
  cover 1M templates in about 1.5 ms on one core and keep the true top-10 within the best
  ``candidates`` (1,000) of the estimates.
* Callers turn scores into calibrated false match rates, so a score must be the true
  float32 cosine, never the code's estimate: the candidates are re-ranked here with
  numpy against the float32 templates this index keeps.

The default FAISS index is ``IVF1,PQ<d/2>x4fs``: one inverted list (every query scans all
of it) because inverted-file indexes store caller-chosen ids and remove them in place,
whereas the flat fast-scan index renumbers on removal. ``spec``/``nprobe`` accept any
FAISS IVF factory string; partitioned lists (nprobe < nlist) trade recall for speed, and
on face templates they need a quarter of the lists probed (see docs/index.md).

Rows and ids
------------
Templates live in row-numbered float32 storage and FAISS is keyed by row number. Re-adding
an id retires its old row; removing an id deletes its row from the list (``remove_ids``),
so searches never see it, and a later add recycles the row. A sorted copy of the live ids
maps an id to its row.

Training
--------
The product quantiser needs codebooks. Until the gallery holds ``train_size`` templates
the index is untrained and searches are exact over the stored rows (about 1 ms then);
once it reaches that size it trains on (a sample of) what it holds and encodes everything.
Templates added later are encoded with the same codebooks, which is fine while they come
from the same model and a similar population; :meth:`retrain` refits the codebooks (a few
seconds per million templates) and is worth running after a change of face model or when
the gallery has become mostly unlike the templates it was trained on. Codebook drift can
only lengthen the candidate list needed, never change a returned score.
"""

from __future__ import annotations

import io
import json

import faiss
import numpy as np

from vigil.index.base import pad, top_k

MIN_TRAINING = 1_000  # fewer templates than this give useless codebooks: stay exact


def default_spec(dim: int) -> str:
    """4-bit PQ with two dimensions per sub-quantiser (32 bytes for 128-d), one list."""
    if dim % 2:
        raise ValueError("the default fast-scan spec needs an even dimension")
    return f"IVF1,PQ{dim // 2}x4fs"


class AnnIndex:
    """Compressed full scan for candidates + exact float32 re-ranking (module docstring).
    Like ExactIndex it is not thread-safe: callers serialise changes against searches."""

    kind = "ann"

    def __init__(self, dim: int, *, spec: str | None = None, nprobe: int | None = None,
                 candidates: int = 1000, train_size: int = 65_536, threads: int | None = None,
                 seed: int = 1234):
        self.dim = dim
        self.spec = spec or default_spec(dim)
        self.nprobe = nprobe  # None: every list
        self.candidates = candidates
        self.train_size = train_size
        self.threads = threads
        self.seed = seed
        if threads is not None:
            faiss.omp_set_num_threads(threads)  # process-wide: FAISS has one OpenMP pool
        self._vectors = np.zeros((0, dim), np.float32)
        self._row_ids = np.zeros(0, np.int64)  # id held by each row, -1 for a free row
        self._used = 0  # rows [0, _used) have been handed out at least once
        self._free = np.zeros(0, np.int64)  # retired rows below _used, reused first
        self._sorted_ids = np.zeros(0, np.int64)  # live ids, ascending ...
        self._sorted_rows = np.zeros(0, np.int64)  # ... and their rows
        self._faiss: faiss.Index | None = None

    # -- size and lookup -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sorted_ids)

    @property
    def trained(self) -> bool:
        return self._faiss is not None

    @property
    def ids(self) -> np.ndarray:
        """The ids held, ascending."""
        return self._sorted_ids.copy()

    def _find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the sorted arrays, found mask) for ``ids``."""
        pos = np.searchsorted(self._sorted_ids, ids)
        pos = np.minimum(pos, max(len(self._sorted_ids) - 1, 0))
        found = self._sorted_ids[pos] == ids if len(self._sorted_ids) else np.zeros(len(ids), bool)
        return pos, found

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64).reshape(-1)
        pos, found = self._find(ids)
        if not found.all():
            raise KeyError(f"unknown template ids: {ids[~found][:5].tolist()}")
        return self._vectors[self._sorted_rows[pos]].copy()

    # -- mutation --------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64).reshape(-1)
        vectors = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if len(ids) == 0:
            return
        # within one batch the last occurrence of an id wins, as with successive adds
        _, first_of_reversed = np.unique(ids[::-1], return_index=True)
        if len(first_of_reversed) != len(ids):
            keep = np.sort(len(ids) - 1 - first_of_reversed)
            ids, vectors = ids[keep], vectors[keep]
        self.remove(ids)  # re-adding an id replaces it
        rows = self._take_rows(len(ids))
        self._vectors[rows] = vectors
        self._row_ids[rows] = ids
        self._insert_sorted(ids, rows)
        if self._faiss is not None:
            self._faiss.add_with_ids(np.ascontiguousarray(vectors), rows)
        elif len(self) >= self.train_size:
            self.retrain()

    def remove(self, ids: np.ndarray) -> None:
        ids = np.unique(np.asarray(ids, np.int64).reshape(-1))
        pos, found = self._find(ids)
        pos = pos[found]
        if len(pos) == 0:
            return
        rows = self._sorted_rows[pos]
        if self._faiss is not None:
            self._faiss.remove_ids(faiss.IDSelectorBatch(rows))
            self._reencode_partial_blocks()
        self._row_ids[rows] = -1
        self._free = np.concatenate([self._free, rows])
        self._sorted_ids = np.delete(self._sorted_ids, pos)
        self._sorted_rows = np.delete(self._sorted_rows, pos)

    def _reencode_partial_blocks(self) -> None:
        """Work around a FAISS 1.15 fast-scan bug: ``remove_ids`` moves codes out of a list's
        last, partly filled block of 32 but leaves their old 4-bit codes behind, and a later
        add ORs new codes into those bytes, corrupting them (new templates then go missing
        from the candidates). Truncating each list to whole blocks and re-encoding the tail
        from the float32 rows leaves zeroed slots behind, as after a fresh add."""
        ivf = faiss.extract_index_ivf(self._faiss)
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if not isinstance(lists, faiss.BlockInvertedLists):
            return
        for lst in range(ivf.nlist):
            size = lists.list_size(lst)
            whole = size - size % lists.n_per_block
            if whole == size:
                continue
            tail = faiss.rev_swig_ptr(lists.get_ids(lst), size)[whole:].copy()
            lists.resize(lst, whole)
            ivf.ntotal -= len(tail)
            ivf.add_with_ids(np.ascontiguousarray(self._vectors[tail]), tail)

    def _take_rows(self, n: int) -> np.ndarray:
        """``n`` row numbers: recycled ones first, then fresh ones (storage grows by 1.25x)."""
        reuse, self._free = self._free[:n], self._free[n:]
        fresh = n - len(reuse)
        if self._used + fresh > len(self._vectors):
            capacity = max(self._used + fresh, int(len(self._vectors) * 1.25), 1024)
            vectors = np.empty((capacity, self.dim), np.float32)
            vectors[: self._used] = self._vectors[: self._used]
            row_ids = np.full(capacity, -1, np.int64)
            row_ids[: self._used] = self._row_ids[: self._used]
            self._vectors, self._row_ids = vectors, row_ids
        rows = np.concatenate([reuse, np.arange(self._used, self._used + fresh, dtype=np.int64)])
        self._used += fresh
        return rows

    def _insert_sorted(self, ids: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(ids)
        ids, rows = ids[order], rows[order]
        at = np.searchsorted(self._sorted_ids, ids)
        self._sorted_ids = np.insert(self._sorted_ids, at, ids)
        self._sorted_rows = np.insert(self._sorted_rows, at, rows)

    def retrain(self) -> None:
        """Fit the quantiser to (a sample of) the templates held now and re-encode them all.
        With fewer than ``MIN_TRAINING`` templates the index goes back to exact search."""
        live = self._sorted_rows
        if len(live) < MIN_TRAINING:
            self._faiss = None
            return
        rng = np.random.default_rng(self.seed)
        sample = live if len(live) <= self.train_size else rng.choice(live, self.train_size, replace=False)
        index = faiss.index_factory(self.dim, self.spec, faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(self._vectors[np.sort(sample)]))
        index.add_with_ids(np.ascontiguousarray(self._vectors[live]), live)
        self._faiss = index

    # -- search ----------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        k = max(int(k), 0)
        if len(self) == 0 or k == 0:
            return pad(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k)
        if self._faiss is None:  # untrained: exact over the rows, free rows masked out
            scores = q @ self._vectors[: self._used].T
            scores[:, self._row_ids[: self._used] < 0] = -np.inf
            best, rows = top_k(scores, min(k, len(self)))
            return pad(best, self._row_ids[rows], k)
        ivf = faiss.extract_index_ivf(self._faiss)
        params = faiss.SearchParametersIVF(nprobe=min(self.nprobe or ivf.nlist, ivf.nlist))
        _, cand = self._faiss.search(q, min(max(self.candidates, k), len(self)), params=params)
        return self._rerank(q, cand, k)

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Exact float32 dot products of each query with its candidate rows, top-k of them.
        Chunked so a large batch never gathers more than ``chunk * candidates`` rows."""
        out_scores = np.full((len(q), k), -np.inf, np.float32)
        out_ids = np.full((len(q), k), -1, np.int64)
        for start in range(0, len(q), chunk):
            rows = cand[start : start + chunk]
            valid = rows >= 0
            gathered = self._vectors[np.where(valid, rows, 0)]  # (chunk, candidates, dim)
            scores = np.matmul(gathered, q[start : start + chunk, :, None])[..., 0]
            scores[~valid] = -np.inf
            best, cols = top_k(scores, k)
            best_rows = np.take_along_axis(rows, cols, axis=1)
            found = np.isfinite(best)
            out_scores[start : start + chunk, : best.shape[1]] = best
            out_ids[start : start + chunk, : best.shape[1]] = np.where(found, self._row_ids[best_rows], -1)
        return out_scores, out_ids

    # -- persistence and accounting --------------------------------------------------

    def config(self) -> dict:
        return {"dim": self.dim, "spec": self.spec, "nprobe": self.nprobe, "candidates": self.candidates,
                "train_size": self.train_size, "seed": self.seed}

    def to_bytes(self) -> bytes:
        """npz of the config, live ids, their rows and float32 templates, and the FAISS index."""
        rows = self._sorted_rows
        codes = faiss.serialize_index(self._faiss) if self._faiss is not None else np.zeros(0, np.uint8)
        buf = io.BytesIO()
        np.savez(buf, kind=self.kind, config=json.dumps(self.config()), rows_used=self._used,
                 ids=self._sorted_ids, rows=rows, vectors=self._vectors[rows], faiss=codes)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, threads: int | None = None) -> "AnnIndex":
        saved = np.load(io.BytesIO(data), allow_pickle=False)
        if str(saved["kind"]) != cls.kind:
            raise ValueError(f"not an {cls.kind} index: {saved['kind']}")
        index = cls(threads=threads, **json.loads(str(saved["config"])))
        used = int(saved["rows_used"])
        ids, rows = saved["ids"].astype(np.int64), saved["rows"].astype(np.int64)
        index._vectors = np.zeros((used, index.dim), np.float32)
        index._vectors[rows] = saved["vectors"]
        index._row_ids = np.full(used, -1, np.int64)
        index._row_ids[rows] = ids
        index._used = used
        index._free = np.flatnonzero(index._row_ids < 0).astype(np.int64)
        index._sorted_ids, index._sorted_rows = ids, rows
        if len(saved["faiss"]):
            index._faiss = faiss.deserialize_index(saved["faiss"])
        return index

    @property
    def memory_bytes(self) -> int:
        """Bytes held: float32 rows (allocated capacity), id maps, FAISS codes, ids, centroids."""
        own = self._vectors.nbytes + self._row_ids.nbytes + self._sorted_ids.nbytes + self._sorted_rows.nbytes
        return own + (ivf_memory_bytes(self._faiss) if self._faiss is not None else 0)


def ivf_memory_bytes(index: faiss.Index) -> int:
    """Codes and ids in the inverted lists, plus the coarse centroids and PQ codebooks."""
    ivf = faiss.extract_index_ivf(index)
    block = getattr(ivf, "bbs", 0)  # fast-scan lists are stored in blocks of `bbs` codes
    total = 0
    for lst in range(ivf.nlist):
        n = ivf.invlists.list_size(lst)
        codes = -(-n // block) * block * ivf.code_size if block else n * ivf.code_size
        total += codes + n * 8
    pq = getattr(ivf, "pq", None)
    codebooks = pq.centroids.size() * 4 if pq is not None else 0
    return total + ivf.nlist * ivf.d * 4 + codebooks
