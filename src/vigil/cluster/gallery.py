"""Searching a sharded gallery: scatter a probe to every shard, merge their top-k exactly, and
never return a partial answer as if it were complete (``docs/cluster.md``, "Sharded gallery").

* :class:`GalleryClient` (async, on a connection the caller owns) sends each request to the
  shard's queue group; a shard that does not answer in ``timeout`` seconds (or has no
  replica subscribed) is asked once more on the subject every replica of it hears, and the
  first answer wins. A shard still silent fails the whole search with
  :class:`GalleryIncomplete` ("gallery incomplete: shard 2 of 4 unavailable").
* :meth:`GalleryClient.erase` broadcasts an erasure and returns only when every replica the
  registry lists has confirmed it; a listed replica that stays alive (its heartbeat moves)
  without confirming makes it fail loudly.
* :class:`ShardedGallery` is the same for synchronous code (its own event-loop thread): the
  provider the composition root sets as ``vigil.gallery_search`` so that
  ``services.search.run_search`` searches the shards instead of a local index
  (:func:`use_sharded_gallery`), and the handle :func:`erase_subject_everywhere` uses.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vigil.cluster.connection import ClusterUnavailable, connect
from vigil.cluster.sealing import SealError, Sealer, pack, unpack
from vigil.cluster.shards import (
    MAX_QUERIES_PER_REQUEST, REQUEST_HEADER, STATUS_HEADER, ShardSpec, all_replicas_subject, erase_channel,
    erase_subject, gallery_token, open_registry, search_subject,
)
from vigil.errors import ConflictError, VigilError

DEFAULT_TIMEOUT_S = 5.0
ERASE_TIMEOUT_S = 15.0
REGISTRY_PATIENCE_S = 15.0


class GalleryIncomplete(ConflictError):
    """A shard of the gallery gave no answer: the search is refused rather than partial.

    A conflict with the present state (HTTP 409, exit code 5), as the rest of Vigil answers a
    state that forbids the action: the request is valid (400 and 422 would tell the caller to
    change it) and the same request succeeds once a replica of every shard serves again."""


class ErasureUnconfirmed(ConflictError):
    """A live replica did not confirm an erasure in time."""


def merge_top_k(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k of the union of each shard's top-k, per query: best score first, ties by
    template id. Exact, since a template in the union's top-k is in its own shard's top-k."""
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    out_scores, out_ids = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    if out_scores.shape[1] < k:  # fewer candidates than k in the whole gallery
        extra = k - out_scores.shape[1]
        out_scores = np.pad(out_scores, ((0, 0), (0, extra)), constant_values=-np.inf)
        out_ids = np.pad(out_ids, ((0, 0), (0, extra)), constant_values=-1)
    return out_scores, np.where(np.isfinite(out_scores), out_ids, -1)


def _unavailable(gallery: str, missing: list[tuple[int, str]], of: int) -> GalleryIncomplete:
    shards = ", ".join(str(s) for s, _ in missing)
    noun = "shard" if len(missing) == 1 else "shards"
    why = "; ".join(f"shard {s}: {reason}" for s, reason in missing)
    return GalleryIncomplete(f"gallery incomplete: {noun} {shards} of {of} unavailable "
                             f"(gallery {gallery!r}; {why}); no partial results are returned")


@dataclass
class ShardAnswer:
    shard: int
    replica: str
    size: int
    arrays: list = field(default_factory=list)
    retried: bool = False


class GalleryClient:
    """Scatter-gather over a gallery's shards on a connected nats-py client ``nc``."""

    def __init__(self, nc, sealer: Sealer, *, timeout: float = DEFAULT_TIMEOUT_S):
        self.nc, self.sealer, self.timeout = nc, sealer, timeout
        self.retries = 0  # requests answered only on the second attempt (a replica was lost)

    async def _ask(self, spec: ShardSpec, header: dict, *arrays: np.ndarray) -> ShardAnswer:
        from nats.errors import Error as NatsError, NoRespondersError, TimeoutError as NatsTimeout

        rid = uuid.uuid4().hex
        body = self.sealer.seal(pack(header, *arrays), f"{spec.channel}:{rid}:request".encode())
        reason = "no answer"
        for attempt, subject in enumerate((search_subject(spec), all_replicas_subject(spec))):
            try:
                msg = await self.nc.request(subject, body, timeout=self.timeout, headers={REQUEST_HEADER: rid})
            except NoRespondersError:
                reason = "no replica is serving it"
                continue
            except (NatsTimeout, asyncio.TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
                continue
            except NatsError as exc:  # the connection to NATS is closed or reconnecting
                reason = f"NATS: {exc or type(exc).__name__}"
                continue
            headers = msg.headers or {}
            if headers.get(STATUS_HEADER) == "error":
                raise VigilError(msg.data.decode(errors="replace"))
            try:
                answer, out = unpack(self.sealer.open(msg.data, f"{spec.channel}:{rid}:answer".encode()))
            except SealError as exc:
                raise VigilError(f"shard {spec.shard} of {spec.of} of gallery {spec.gallery!r}: {exc}") from None
            if answer.get("shard") != spec.shard or answer.get("of") != spec.of:
                raise VigilError(f"shard {spec.shard} of {spec.of}: answered by a replica of shard "
                                 f"{answer.get('shard')}/{answer.get('of')}")
            if attempt:
                self.retries += 1
            return ShardAnswer(spec.shard, answer["replica"], int(answer["size"]), out, bool(attempt))
        raise _ShardMissing(reason)

    async def _scatter(self, gallery: str, of: int, header: dict, *arrays: np.ndarray) -> list[ShardAnswer]:
        specs = [ShardSpec(gallery, i, of) for i in range(1, of + 1)]
        results = await asyncio.gather(*(self._ask(s, header, *arrays) for s in specs), return_exceptions=True)
        missing = [(s.shard, str(r)) for s, r in zip(specs, results) if isinstance(r, _ShardMissing)]
        if missing:
            raise _unavailable(gallery, missing, of)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    async def search(self, gallery: str, of: int, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(scores, template ids, gallery size): the exact top-``k`` of every shard's slice
        together, or :class:`GalleryIncomplete`."""
        q = np.ascontiguousarray(np.asarray(queries, np.float32))
        if q.ndim != 2:
            raise VigilError("queries must be a 2-d array (one template per row)")
        k = int(k)
        if k < 1:
            raise VigilError("k must be at least 1")
        all_scores, all_ids, size = [], [], 0
        for start in range(0, max(len(q), 1), MAX_QUERIES_PER_REQUEST):
            chunk = q[start : start + MAX_QUERIES_PER_REQUEST]
            answers = await self._scatter(gallery, of, {"op": "search", "k": k}, chunk)
            scores, ids = merge_top_k([(a.arrays[0], a.arrays[1]) for a in answers], k)
            all_scores.append(scores)
            all_ids.append(ids)
            size = sum(a.size for a in answers)
        return np.concatenate(all_scores), np.concatenate(all_ids), size

    async def count(self, gallery: str, of: int) -> int:
        """Templates in the gallery: every shard's count (each shard must answer)."""
        return sum(a.size for a in await self._scatter(gallery, of, {"op": "count"}))

    async def replicas(self, gallery: str | None = None) -> list[dict]:
        """The live replicas in the registry (heartbeats within the registry's lifetime),
        with the registry revision of each entry as ``revision``."""
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.errors import ServiceUnavailableError

        async def read() -> list[dict]:
            kv = await open_registry(self.nc)
            watcher = await kv.watch(f"{gallery_token(gallery)}.>" if gallery else ">", ignore_deletes=True)
            out = []
            try:
                async for entry in watcher:
                    if entry is None:  # the end of the current values
                        break
                    if entry.value:
                        out.append({**json.loads(entry.value), "key": entry.key, "revision": entry.revision})
            finally:
                await watcher.stop()
            return [r for r in out if gallery is None or r["gallery"] == gallery]

        deadline = time.monotonic() + REGISTRY_PATIENCE_S
        while True:  # JetStream may be electing a leader after a server's loss: a few seconds
            try:
                return await read()
            except (NatsTimeout, asyncio.TimeoutError, ServiceUnavailableError, ClusterUnavailable) as exc:
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(f"the gallery shard registry (JetStream) is not answering: "
                                             f"{exc or type(exc).__name__}") from exc
                await asyncio.sleep(0.5)

    async def erase(self, gallery: str, template_ids, *, timeout: float = ERASE_TIMEOUT_S) -> dict:
        """Remove ``template_ids`` from every replica of every shard of ``gallery``; return
        once every replica the registry listed has confirmed, or is shown dead (no heartbeat
        for 2.5 of its intervals since the erasure began: it holds nothing when it comes
        back, since it rebuilds from the database). Raises :class:`ErasureUnconfirmed` if a
        replica that is still beating does not confirm within ``timeout`` seconds."""
        started = time.perf_counter()
        ids = np.unique(np.asarray(list(template_ids), np.int64))
        expected = {r["replica"]: r for r in await self.replicas(gallery)}
        rid = uuid.uuid4().hex
        channel = erase_channel(gallery)
        acks: dict[str, dict] = {}
        refusals: list[str] = []
        down: dict[str, dict] = {}
        arrived = asyncio.Event()

        async def on_reply(msg) -> None:
            if (msg.headers or {}).get(STATUS_HEADER) == "error":
                refusals.append(msg.data.decode(errors="replace"))
            else:
                try:
                    ack, _ = unpack(self.sealer.open(msg.data, f"{channel}:{rid}:answer".encode()))
                except SealError as exc:
                    refusals.append(str(exc))
                    return
                acks[ack["replica"]] = ack
            arrived.set()

        def waiting() -> list[str]:
            return [r for r in expected if r not in acks and r not in down]

        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, cb=on_reply)
        kv = await open_registry(self.nc) if expected else None
        alive: list[dict] = []
        try:
            body = self.sealer.seal(pack({"op": "erase"}, ids), f"{channel}:{rid}:request".encode())
            await self.nc.publish(erase_subject(gallery), body, reply=inbox, headers={REQUEST_HEADER: rid})
            sent = time.monotonic()
            deadline = sent + timeout
            while waiting() and not refusals and time.monotonic() < deadline:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), max(0.0, min(0.5, deadline - time.monotonic())))
                except asyncio.TimeoutError:
                    pass
                for replica in waiting():
                    entry = expected[replica]
                    if time.monotonic() - sent < 2.5 * float(entry.get("heartbeat_s", 1.0)):
                        continue
                    if not await self._beating(kv, entry):
                        down[replica] = entry
            alive = [expected[r] for r in waiting()]
        finally:
            await sub.unsubscribe()
        if refusals:
            raise ErasureUnconfirmed(f"erasure from gallery {gallery!r} refused by a shard: {refusals[0]}")
        kept = [a for a in acks.values() if a.get("still_held")]
        if kept:
            raise ErasureUnconfirmed(f"erasure from gallery {gallery!r}: replica {kept[0]['replica']} of shard "
                                     f"{kept[0]['shard']} of {kept[0]['of']} still holds {kept[0]['still_held']} "
                                     "of the templates after removing them")
        if alive:
            names = ", ".join(f"{e['replica']} (shard {e['shard']} of {e['of']})" for e in alive)
            raise ErasureUnconfirmed(
                f"erasure from gallery {gallery!r} not confirmed within {timeout:g} s by live replica(s) {names}; "
                "the database no longer holds the templates and a database-backed replica replays that before "
                "every search, but its memory is not confirmed clean: run the erasure again")
        by_shard: dict[str, int] = {}
        for ack in acks.values():
            key = f"{ack['shard']}/{ack['of']}"
            by_shard[key] = by_shard.get(key, 0) + 1
        return {"gallery": gallery, "templates": len(ids),
                "templates_removed": int(sum(a["removed"] for a in acks.values())),
                "replicas_confirmed": sorted(acks), "replicas_per_shard": dict(sorted(by_shard.items())),
                "replicas_down": sorted(down), "seconds": round(time.perf_counter() - started, 3)}

    @staticmethod
    async def _beating(kv, entry: dict) -> bool:
        """Has this replica written a heartbeat since ``entry`` was read?"""
        from nats.js.errors import KeyNotFoundError

        try:
            now = await kv.get(entry["key"])
        except KeyNotFoundError:  # left the registry (stopped) or expired
            return False
        except Exception:  # the registry is not answering: cannot tell, so not shown dead
            return True
        return bool(now.value) and now.revision != entry["revision"]


class _ShardMissing(Exception):
    pass


# -- synchronous handle ---------------------------------------------------------------------

class ShardedGallery:
    """A :class:`GalleryClient` on its own connection and event-loop thread, for synchronous
    callers. ``galleries`` maps each sharded gallery's name to its number of shards. Called
    with a collection (``provider(collection)``) it returns a :class:`GalleryView` for a
    sharded gallery and None otherwise: the ``vigil.gallery_search`` seam."""

    def __init__(self, servers: str | list[str], keyring, galleries: dict[str, int] | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, name: str = "vigil-gallery-client",
                 connect_attempts: int | None = 3, credentials: str | None = None):
        self.galleries = dict(galleries or {})
        for gallery, of in self.galleries.items():
            ShardSpec(gallery, 1, of)  # validates the count
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        try:
            self.nc = self._run(connect(servers, name=name, attempts=connect_attempts,
                                        credentials=str(credentials) if credentials else None))
        except BaseException:
            self._stop_loop()
            raise
        self.client = GalleryClient(self.nc, Sealer(keyring), timeout=timeout)

    def _run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _of(self, gallery: str, of: int | None) -> int:
        of = of or self.galleries.get(gallery)
        if not of:
            raise VigilError(f"gallery {gallery!r} is not sharded here (known: {', '.join(self.galleries) or 'none'})")
        return of

    def search(self, gallery: str, queries: np.ndarray, k: int, *, of: int | None = None):
        return self._run(self.client.search(gallery, self._of(gallery, of), queries, k))

    def count(self, gallery: str, *, of: int | None = None) -> int:
        return self._run(self.client.count(gallery, self._of(gallery, of)))

    def replicas(self, gallery: str | None = None) -> list[dict]:
        return self._run(self.client.replicas(gallery))

    def erase(self, gallery: str, template_ids, *, timeout: float = ERASE_TIMEOUT_S) -> dict:
        return self._run(self.client.erase(gallery, template_ids, timeout=timeout))

    def erase_sharded(self, targets: dict[str, list[int]], *, timeout: float = ERASE_TIMEOUT_S) -> list[dict]:
        """The ``vigil.shard_eraser`` seam: erase each sharded gallery's template ids of
        ``targets`` ({gallery: template ids}) from every replica; one report per gallery."""
        return [self.erase(gallery, ids, timeout=timeout) for gallery, ids in targets.items()
                if gallery in self.galleries]

    @property
    def retries(self) -> int:
        return self.client.retries

    def __call__(self, collection) -> "GalleryView | None":
        if getattr(collection, "kind", "gallery") != "gallery" or collection.name not in self.galleries:
            return None
        return GalleryView(self, collection.name, self.galleries[collection.name])

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def close(self) -> None:
        if not self._thread.is_alive():  # closed already
            return
        try:
            self._run(self.nc.close(), timeout=5)
        except Exception:
            pass
        self._stop_loop()

    def __enter__(self) -> "ShardedGallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GalleryView:
    """One sharded gallery seen as an index (``len`` and ``search``), for the search service.
    ``len`` asks every shard once per view (so a missing shard fails before the search)."""

    def __init__(self, handle: ShardedGallery, gallery: str, of: int):
        self.handle, self.gallery, self.of = handle, gallery, of
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            self._size = self.handle.count(self.gallery, of=self.of)
        return self._size

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids, self._size = self.handle.search(self.gallery, queries, k, of=self.of)
        return scores, ids


def use_sharded_gallery(vigil, servers: str | list[str], galleries: dict[str, int], **options) -> ShardedGallery:
    """Make ``vigil``'s searches of ``galleries`` (name -> number of shards) go to their shards,
    and its erasures of their subjects reach every replica: the composition root's one call
    when it holds a connection of its own. Returns the handle (close it at shutdown).
    :func:`use_configured_galleries` is the same from the settings, connecting when needed."""
    handle = ShardedGallery(servers, vigil.store.keyring, galleries, **options)
    vigil.gallery_search = handle
    vigil.shard_eraser = handle.erase_sharded
    return handle


def erase_subject_everywhere(vigil, actor, subject_id: str, reason: str, handle: ShardedGallery, *,
                             timeout: float = ERASE_TIMEOUT_S) -> dict:
    """Erase a subject from the database (the service's erasure, audited) and then from every
    replica of every shard of each gallery it was on, whether or not ``handle`` searches it;
    done only when all have confirmed. The service audits the confirmation
    (``subject.erased_from_shards``) and puts the reports in its answer (``shards``)."""
    from vigil.services.subjects import erase_subject

    def eraser(targets: dict[str, list[int]]) -> list[dict]:
        return [handle.erase(gallery, ids, timeout=timeout) for gallery, ids in targets.items()]

    return erase_subject(vigil, actor, subject_id, reason, shard_eraser=eraser)


# -- from the settings ------------------------------------------------------------------------

RECONNECT_EVERY_S = 5.0


class ConfiguredGalleries:
    """The sharded galleries the settings name (``cluster.nats``, ``cluster.sharded_galleries``,
    :class:`vigil.config.ClusterSettings`), as the ``vigil.gallery_search`` and
    ``vigil.shard_eraser`` seams of a composition root.

    Searches of a named gallery go to its shards; every other gallery is searched locally. NATS
    is reached when a named gallery is first searched or erased from (or by :meth:`try_connect`,
    which ``vigil serve`` calls at startup to say at once whether it is reachable), so a CLI
    command that never touches one never waits for NATS. While NATS is unreachable, a search of
    a named gallery fails with :class:`GalleryIncomplete` and an erasure from one with
    :class:`ClusterUnavailable`: never the local index instead, which this process may not hold
    (and should not: the gallery is sharded because it is too large for one). The connection is
    tried again at most every ``RECONNECT_EVERY_S`` seconds; once made, nats-py keeps it."""

    def __init__(self, keyring, servers: list[str], galleries: dict[str, int], *, credentials=None,
                 timeout: float = DEFAULT_TIMEOUT_S, erase_timeout: float = ERASE_TIMEOUT_S,
                 name: str = "vigil-gallery-client"):
        if not servers:
            raise VigilError(f"cluster.sharded_galleries names {', '.join(sorted(galleries))} but cluster.nats "
                             "names no NATS server: set cluster.nats (VIGIL_CLUSTER__NATS), e.g. "
                             "nats://10.0.0.5:4222")
        if credentials and not Path(credentials).is_file():
            raise VigilError(f"cluster.credentials {credentials}: no such file")
        for gallery, of in galleries.items():
            ShardSpec(gallery, 1, of)  # validates the count
        self.keyring, self.servers, self.galleries = keyring, list(servers), dict(galleries)
        self.credentials = str(credentials) if credentials else None
        self.timeout, self.erase_timeout, self.name = float(timeout), float(erase_timeout), name
        self.key = (tuple(self.servers), tuple(sorted(self.galleries.items())), self.credentials, self.timeout,
                    self.erase_timeout)
        self._handle: ShardedGallery | None = None
        self._error: str | None = None
        self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ConfiguredGalleries {self.describe()}>"

    @property
    def connected(self) -> bool:
        return self._handle is not None

    def describe(self) -> str:
        """One line: what is sharded, where, and whether NATS answered."""
        galleries = ", ".join(f"{g!r} ({n} shard{'s' if n > 1 else ''})" for g, n in sorted(self.galleries.items()))
        where = ", ".join(self.servers)
        if self._handle is not None:
            return f"sharded galleries {galleries}: searched on their shards over NATS at {where}"
        if self._error is not None:
            return (f"sharded galleries {galleries}: {self._error}; their searches and erasures fail until it is "
                    f"reachable (tried again at most every {RECONNECT_EVERY_S:g} s); they are never searched locally")
        return f"sharded galleries {galleries}: searched on their shards over NATS at {where} (not yet connected)"

    def connect(self, *, force: bool = False) -> ShardedGallery:
        """The connected handle; raises :class:`ClusterUnavailable` (with the reason) if NATS
        cannot be reached. Within ``RECONNECT_EVERY_S`` of a failed try, fails at once."""
        with self._lock:
            if self._handle is not None:
                return self._handle
            if not force and self._error is not None and time.monotonic() - self._tried_at < RECONNECT_EVERY_S:
                raise ClusterUnavailable(self._error)
            self._tried_at = time.monotonic()
            try:
                self._handle = ShardedGallery(self.servers, self.keyring, self.galleries, timeout=self.timeout,
                                              name=self.name, connect_attempts=1, credentials=self.credentials)
            except ClusterUnavailable as exc:
                self._error = str(exc)
                raise
            self._error = None
            return self._handle

    def try_connect(self) -> bool:
        """Connect now if possible (startup); False, with :meth:`describe` saying why, if not."""
        try:
            self.connect(force=True)
            return True
        except ClusterUnavailable:
            return False

    def __call__(self, collection) -> GalleryView | None:
        """The ``vigil.gallery_search`` seam: a view of the shards for a named gallery, None
        (the local index) for any other collection."""
        if getattr(collection, "kind", "gallery") != "gallery" or collection.name not in self.galleries:
            return None
        of = self.galleries[collection.name]
        try:
            handle = self.connect()
        except ClusterUnavailable as exc:
            raise GalleryIncomplete(f"gallery incomplete: all {of} shard(s) of gallery {collection.name!r} "
                                    f"unavailable ({exc}); no partial results are returned and the gallery is "
                                    "not searched locally instead") from None
        return GalleryView(handle, collection.name, of)

    def erase(self, targets: dict[str, list[int]]) -> list[dict]:
        """The ``vigil.shard_eraser`` seam: remove each named gallery's template ids of
        ``targets`` from every replica of every shard; one report per gallery, or an error."""
        mine = {g: ids for g, ids in targets.items() if g in self.galleries}
        if not mine:
            return []
        return self.connect().erase_sharded(mine, timeout=self.erase_timeout)

    def close(self) -> None:
        """End the connection (shutdown, a context dropped); a later use connects again."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def use_configured_galleries(vigil, settings=None) -> ConfiguredGalleries | None:
    """Install the sharded galleries ``settings`` (default: the context's) name on ``vigil``:
    the composition roots' call (``vigil serve``, the CLI's context). None, and nothing
    changed, when the settings name none. Idempotent: the same settings keep the installed
    provider (and its connection); other settings replace it. Connects lazily (above). Raises
    :class:`VigilError` with the setting's name for a malformed value."""
    cluster = (settings or vigil.settings).cluster
    galleries = cluster.shard_counts()
    if not galleries:
        return None
    provider = ConfiguredGalleries(vigil.store.keyring, cluster.servers(), galleries,
                                   credentials=cluster.credentials, timeout=cluster.timeout_seconds,
                                   erase_timeout=cluster.erase_timeout_seconds)
    current = vigil.gallery_search
    if isinstance(current, ConfiguredGalleries) and current.key == provider.key:
        return current
    if isinstance(current, ConfiguredGalleries):
        current.close()
    vigil.gallery_search = provider
    vigil.shard_eraser = provider.erase
    return provider


__all__ = ["ClusterUnavailable", "ConfiguredGalleries", "ErasureUnconfirmed", "GalleryClient", "GalleryIncomplete",
           "GalleryView", "ShardedGallery", "erase_subject_everywhere", "merge_top_k", "use_configured_galleries",
           "use_sharded_gallery"]
