"""Gallery shards: processes that each hold one slice of a gallery's templates in memory and
answer search requests for it over NATS (``docs/cluster.md``, "Sharded gallery").

Shard ``i`` of ``N`` (numbered 1..N, as people count) of gallery ``G`` holds the templates
whose id :func:`shard_of` maps to ``i``: a fixed mix of the id, so the assignment needs no
table and never changes while ``N`` does not. Its slice is an exact index (no approximate
search), so the merge the searching process does is exactly the gallery's top-k.

Entry points
------------
``serve_shards(vigil, nats_url, specs, stop_event, *, actor=None, dtype="float32",
on_ready=None) -> None``
    Serve every :class:`ShardSpec` in ``specs`` (or ``"gallery:i/N"`` strings) from this
    process until ``stop_event`` (a :class:`threading.Event`) is set; blocks. Each slice is
    loaded from the database through the service layer (decrypted with this site's keys)
    and kept in step with its change log. ``on_ready(servers)`` is called once every shard
    answers. Raises :class:`~vigil.errors.VigilError` (a missing gallery, NATS unreachable,
    NATS without JetStream) before serving anything. This is what ``vigil shard`` and
    ``vigil node --shards`` run.
:class:`ShardServer`
    One replica of one shard on a connection the caller owns (``await start(nc)``,
    ``await stop()``), with a loader: :class:`DatabaseLoader` (production) or
    :class:`ArrayLoader` (templates given as arrays: the benchmark's synthetic gallery and
    tests; the same server, no database).

Wire protocol (every payload sealed, :mod:`vigil.cluster.sealing`)
------------------------------------------------------------------
* ``vigil.gallery.<G>.<N>.<i>``, queue group of the same name: search and count requests;
  the replicas of a shard share the load and any live one answers. ``<G>`` is the gallery
  name when it is a plain token, else ``x`` and a hash of it (:func:`gallery_token`).
* ``vigil.gallery.<G>.<N>.<i>.all``: the same requests to every replica of the shard (the
  searching process's retry; it takes the first answer).
* ``vigil.gallery.<G>.erase``: erasure broadcast to every replica of every shard of ``G``,
  whatever its ``N``; each replica removes the templates and acknowledges.
* JetStream key-value bucket ``vigil_gallery_replicas``: one key ``<G>.<N>.<i>.<replica>``
  per live replica, rewritten every ``HEARTBEAT_S`` seconds and expiring ``REGISTRY_TTL_S``
  after the last write; the eraser learns from it which replicas must acknowledge.

A request carries its id in the ``Vigil-Request`` header; the id and the channel are the
associated data of the sealed payloads, so an answer cannot be passed off as another's.
An answer with header ``Vigil-Status: error`` holds a plain-text reason (never a template).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vigil.cluster.connection import ClusterUnavailable, connect
from vigil.cluster.sealing import Sealer, pack, unpack
from vigil.errors import VigilError
from vigil.index.exact import ExactIndex

log = logging.getLogger("vigil.cluster.shards")

REQUEST_HEADER = "Vigil-Request"
STATUS_HEADER = "Vigil-Status"
REGISTRY_BUCKET = "vigil_gallery_replicas"
HEARTBEAT_S = 1.0
REGISTRY_TTL_S = 5.0
SYNC_S = 5.0  # a database-backed replica also replays the change log this often when idle
MAX_QUERIES_PER_REQUEST = 256


# -- what goes where ------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardSpec:
    gallery: str
    shard: int  # 1..of
    of: int

    def __post_init__(self):
        if not self.gallery:
            raise VigilError("a shard needs a gallery name")
        if not (isinstance(self.of, int) and isinstance(self.shard, int) and 1 <= self.shard <= self.of <= 4096):
            raise VigilError(f"shard {self.shard}/{self.of}: shards are numbered 1..N, with N from 1 to 4096")

    @classmethod
    def parse(cls, text: str, gallery: str | None = None) -> "ShardSpec":
        """``"2/4"`` (with ``gallery``) or ``"custody:2/4"``."""
        raw = text.strip()
        if gallery is None:
            gallery, sep, raw = raw.rpartition(":")
            if not sep:
                raise VigilError(f"shard {text!r}: write GALLERY:I/N, for example custody:2/4")
        match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", raw)
        if not match:
            raise VigilError(f"shard {text!r}: write I/N, for example 2/4 (the second of four)")
        return cls(gallery, int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.gallery}:{self.shard}/{self.of}"

    @property
    def channel(self) -> str:
        """The name sealed payloads are bound to."""
        return f"gallery:{self.gallery}:{self.shard}/{self.of}"


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def shard_of(ids: np.ndarray | Iterable[int], of: int) -> np.ndarray:
    """The shard (1..of) of each template id: SplitMix64's finaliser of the id, modulo ``of``.
    Stable across processes, machines and versions of numpy (integer arithmetic only)."""
    x = np.asarray(ids, np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(of)).astype(np.int64) + 1


def gallery_token(gallery: str) -> str:
    """The gallery's name as one NATS subject token."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", gallery):
        return gallery
    return "x" + hashlib.sha256(gallery.encode()).hexdigest()[:20]


def search_subject(spec: ShardSpec) -> str:
    return f"vigil.gallery.{gallery_token(spec.gallery)}.{spec.of}.{spec.shard}"


def all_replicas_subject(spec: ShardSpec) -> str:
    return search_subject(spec) + ".all"


def erase_subject(gallery: str) -> str:
    return f"vigil.gallery.{gallery_token(gallery)}.erase"


def erase_channel(gallery: str) -> str:
    return f"gallery:{gallery}:erase"


def registry_key(spec: ShardSpec, replica: str) -> str:
    return f"{gallery_token(spec.gallery)}.{spec.of}.{spec.shard}.{replica}"


def _registry_replicas(nc) -> int:
    """Three copies of the registry in a cluster of three servers or more (it survives the
    loss of one), one on a single server."""
    info = getattr(nc, "_server_info", None) or {}
    servers = len(set(info.get("connect_urls") or [])) if info.get("cluster") else 1
    return 3 if servers >= 3 else 1


async def open_registry(nc):
    """The JetStream key-value bucket of live replicas, created on first use."""
    from nats.js.errors import BucketNotFoundError

    js = nc.jetstream()
    try:
        try:
            return await js.key_value(REGISTRY_BUCKET)
        except BucketNotFoundError:
            try:
                return await js.create_key_value(bucket=REGISTRY_BUCKET, ttl=REGISTRY_TTL_S, history=1,
                                                 replicas=_registry_replicas(nc),
                                                 description="Vigil gallery shard replicas (heartbeats)")
            except Exception:  # another replica created it at the same moment
                return await js.key_value(REGISTRY_BUCKET)
    except Exception as exc:
        raise ClusterUnavailable(f"the gallery shard registry needs JetStream on the NATS server "
                                 f"(nats-server -js): {exc or type(exc).__name__}") from exc


# -- loaders --------------------------------------------------------------------------------

class ArrayLoader:
    """Templates given as arrays; the shard keeps those whose id hashes to it (or all of them
    with ``presliced=True``, when the caller already sliced them with :func:`shard_of`).
    ``vectors`` may be a read-only memory map: the index then searches it in place."""

    database = False

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, *, dtype: str = "float32", presliced: bool = False):
        self.ids, self.vectors, self.dtype, self.presliced = ids, vectors, dtype, presliced

    def load(self, spec: ShardSpec, label: str) -> ExactIndex:
        ids, vectors = np.asarray(self.ids, np.int64), self.vectors
        if not self.presliced:
            mine = shard_of(ids, spec.of) == spec.shard
            ids, vectors = ids[mine], np.asarray(vectors)[mine]
        elif len(ids):
            wrong = shard_of(ids, spec.of) != spec.shard
            if wrong.any():
                raise VigilError(f"shard {spec}: {int(wrong.sum())} of the given templates belong to other shards")
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise VigilError(f"shard {spec}: {len(ids)} ids but vectors of shape {vectors.shape}")
        return ExactIndex.from_arrays(ids, vectors, dtype=self.dtype)

    def sync(self, index: ExactIndex) -> ExactIndex:
        return index


class DatabaseLoader:
    """The shard's slice of a gallery in the database (through the service layer, decrypted
    with this site's keys), replayed from the change log before every search and erasure."""

    database = True

    def __init__(self, vigil, *, dtype: str = "float32", actor=None):
        self.vigil, self.dtype, self.actor = vigil, dtype, actor
        self._slice = None

    def load(self, spec: ShardSpec, label: str) -> ExactIndex:
        from vigil.services.gallery_slices import GallerySlice

        self._slice = GallerySlice(self.vigil, spec.gallery, lambda ids: shard_of(ids, spec.of) == spec.shard,
                                   dtype=self.dtype)
        if self.actor is not None:
            return self._slice.load(label, self.actor)
        return self._slice.load(label)

    def sync(self, index: ExactIndex) -> ExactIndex:
        return self._slice.current()


def _held(index: ExactIndex, ids: np.ndarray) -> int:
    """How many of ``ids`` the index holds (its id array, read after ``len`` merges pending adds)."""
    len(index)
    return int(np.isin(np.asarray(ids, np.int64), index._ids).sum())


# -- the server -----------------------------------------------------------------------------

class ShardServer:
    """One replica of one shard. Searches and erasures run one at a time on a worker thread
    (the index is not thread-safe), so heartbeats go on while a long search runs."""

    def __init__(self, spec: ShardSpec, loader, sealer: Sealer, *, replica: str | None = None,
                 heartbeat_s: float = HEARTBEAT_S, sync_s: float = SYNC_S):
        self.spec, self.loader, self.sealer = spec, loader, sealer
        self.replica = replica or uuid.uuid4().hex[:12]
        self.heartbeat_s, self.sync_s = heartbeat_s, sync_s
        self.index: ExactIndex | None = None
        self.nc = None
        self._kv = None
        self._subs: list = []
        self._tasks: list[asyncio.Task] = []
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"shard-{spec.shard}of{spec.of}")
        self.served = 0
        self.load_s = 0.0

    def __repr__(self) -> str:
        return f"<ShardServer {self.spec} replica {self.replica}>"

    @property
    def templates(self) -> int:
        return len(self.index) if self.index is not None else 0

    async def _on_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def start(self, nc) -> None:
        """Load the slice, subscribe, register. Raises VigilError if the slice cannot load."""
        self.nc = nc
        started = time.perf_counter()
        self.index = await self._on_worker(self.loader.load, self.spec, f"{self.spec} replica {self.replica}")
        self.load_s = time.perf_counter() - started
        self._kv = await open_registry(nc)
        queue = search_subject(self.spec)
        self._subs = [await nc.subscribe(queue, queue=queue, cb=self._on_search),
                      await nc.subscribe(all_replicas_subject(self.spec), cb=self._on_search),
                      await nc.subscribe(erase_subject(self.spec.gallery), cb=self._on_erase)]
        await nc.flush()
        await self._heartbeat()
        self._tasks = [asyncio.create_task(self._heartbeats())]
        if self.loader.database:
            self._tasks.append(asyncio.create_task(self._syncs()))
        log.info("shard %s replica %s serving %d templates", self.spec, self.replica, self.templates)

    async def stop(self) -> None:
        """Leave: stop answering and remove this replica from the registry."""
        for task in self._tasks:
            task.cancel()
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may already be gone
                pass
        self._subs, self._tasks = [], []
        if self._kv is not None:
            try:
                await self._kv.delete(registry_key(self.spec, self.replica))
            except Exception:
                pass
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- registry ---------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        value = {"gallery": self.spec.gallery, "shard": self.spec.shard, "of": self.spec.of,
                 "replica": self.replica, "templates": self.templates, "host": socket.gethostname(),
                 "pid": os.getpid(), "loader": "database" if self.loader.database else "arrays",
                 "served": self.served, "heartbeat_s": self.heartbeat_s}
        await self._kv.put(registry_key(self.spec, self.replica), json.dumps(value).encode())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected: nats-py reconnects; the next beat retries
                log.debug("shard %s heartbeat failed: %s", self.spec, exc)

    async def _syncs(self) -> None:
        while True:
            await asyncio.sleep(self.sync_s)
            try:
                self.index = await self._on_worker(self.loader.sync, self.index)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("shard %s could not replay the database's changes: %s", self.spec, exc)

    # -- requests ---------------------------------------------------------------------------
    async def _answer(self, msg, rid: str, body: bytes, channel: str) -> None:
        sealed = self.sealer.seal(body, f"{channel}:{rid}:answer".encode())
        await self.nc.publish(msg.reply, sealed, headers={REQUEST_HEADER: rid, STATUS_HEADER: "ok"})

    async def _refuse(self, msg, rid: str, reason: str) -> None:
        await self.nc.publish(msg.reply, reason.encode(), headers={REQUEST_HEADER: rid, STATUS_HEADER: "error"})

    def _search(self, queries: np.ndarray, k: int):
        self.index = self.loader.sync(self.index)
        scores, ids = self.index.search(queries, k)
        return scores.astype(np.float32), ids.astype(np.int64), len(self.index)

    def _count(self) -> int:
        self.index = self.loader.sync(self.index)
        return len(self.index)

    def _erase(self, ids: np.ndarray) -> tuple[int, int, int]:
        """(templates removed by this erasure, templates of ``ids`` still held afterwards (0
        unless something is badly wrong), templates held now)."""
        before = len(self.index)
        self.index.remove(ids)  # before the replay, so the count says what this broadcast removed
        removed = before - len(self.index)
        self.index = self.loader.sync(self.index)
        return removed, _held(self.index, ids), len(self.index)

    async def _on_search(self, msg) -> None:
        rid = (msg.headers or {}).get(REQUEST_HEADER)
        if not rid or not msg.reply:
            return
        try:
            header, arrays = unpack(self.sealer.open(msg.data, f"{self.spec.channel}:{rid}:request".encode()))
            op = header.get("op")
            info = {"shard": self.spec.shard, "of": self.spec.of, "replica": self.replica}
            if op == "search":
                (queries,) = arrays
                k = int(header["k"])
                if queries.ndim != 2 or queries.shape[1] != self.index.dim:
                    raise VigilError(f"shard {self.spec} holds {self.index.dim}-d templates; the probe has "
                                     f"{queries.shape[-1]} dimensions (another model?)")
                if not 1 <= k <= 10_000 or len(queries) > MAX_QUERIES_PER_REQUEST:
                    raise VigilError(f"shard {self.spec}: k={k} or {len(queries)} queries out of range")
                scores, ids, size = await self._on_worker(self._search, queries, k)
                body = pack({**info, "size": size}, scores, ids)
            elif op == "count":
                body = pack({**info, "size": await self._on_worker(self._count)})
            else:
                raise VigilError(f"shard {self.spec}: unknown request {op!r}")
            self.served += 1
            await self._answer(msg, rid, body, self.spec.channel)
        except VigilError as exc:
            await self._refuse(msg, rid, str(exc))
        except Exception as exc:  # a bug or a database outage: say so rather than go silent
            log.exception("shard %s failed a request", self.spec)
            await self._refuse(msg, rid, f"shard {self.spec} failed: {type(exc).__name__}: {exc}")

    async def _on_erase(self, msg) -> None:
        rid = (msg.headers or {}).get(REQUEST_HEADER)
        if not rid or not msg.reply:
            return
        channel = erase_channel(self.spec.gallery)
        try:
            _, arrays = unpack(self.sealer.open(msg.data, f"{channel}:{rid}:request".encode()))
            removed, still_held, size = await self._on_worker(self._erase, arrays[0].astype(np.int64))
            body = pack({"shard": self.spec.shard, "of": self.spec.of, "replica": self.replica,
                         "removed": removed, "still_held": still_held, "size": size})
            await self._answer(msg, rid, body, channel)
        except VigilError as exc:
            await self._refuse(msg, rid, f"replica {self.replica} of shard {self.spec}: {exc}")
        except Exception as exc:
            log.exception("shard %s failed an erasure", self.spec)
            await self._refuse(msg, rid, f"replica {self.replica} of shard {self.spec} failed the erasure: "
                                         f"{type(exc).__name__}: {exc}")


# -- serving from a process -----------------------------------------------------------------

def _specs(specs) -> list[ShardSpec]:
    out = [s if isinstance(s, ShardSpec) else ShardSpec.parse(str(s)) for s in specs]
    if not out:
        raise VigilError("no shard to serve: give GALLERY:I/N")
    if len(set(out)) != len(out):
        raise VigilError("the same shard is listed twice")
    return out


async def run_shards(vigil, nc, specs, stop, *, actor=None, dtype: str = "float32",
                     on_ready: Callable[[list[ShardServer]], None] | None = None) -> None:
    """Serve ``specs`` on connection ``nc`` until ``stop`` (an :class:`asyncio.Event` or a
    :class:`threading.Event`) is set; then leave the registry. For callers with their own loop."""
    sealer = Sealer(vigil.store.keyring)
    servers: list[ShardServer] = []
    try:
        for spec in _specs(specs):
            server = ShardServer(spec, DatabaseLoader(vigil, dtype=dtype, actor=actor), sealer)
            await server.start(nc)
            servers.append(server)
        if on_ready is not None:
            on_ready(servers)
        if isinstance(stop, asyncio.Event):
            await stop.wait()
        else:
            while not stop.is_set():
                await asyncio.sleep(0.2)
    finally:
        for server in servers:
            await server.stop()


def serve_shards(vigil, nats_url: str | list[str], specs, stop_event: threading.Event, *, actor=None,
                 dtype: str = "float32", on_ready: Callable[[list[ShardServer]], None] | None = None,
                 connect_attempts: int | None = 5) -> None:
    """Serve gallery shards from this process until ``stop_event`` is set (module docstring)."""
    specs = _specs(specs)

    async def main() -> None:
        connecting = asyncio.ensure_future(connect(nats_url, name=f"vigil-shard {' '.join(map(str, specs))}",
                                                   attempts=connect_attempts))
        while not connecting.done():  # a stop while NATS is still being reached ends it at once
            await asyncio.wait([connecting], timeout=0.2)
            if stop_event.is_set() and not connecting.done():
                connecting.cancel()
                return
        nc = connecting.result()
        try:
            await run_shards(vigil, nc, specs, stop_event, actor=actor, dtype=dtype, on_ready=on_ready)
        finally:
            try:
                await nc.drain()
            except Exception:
                await nc.close()

    asyncio.run(main())
