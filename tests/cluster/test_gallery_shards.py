"""The sharded gallery (issue #14): shard replicas answering over a real NATS server, the
searching process merging their top-k, erasure confirmed by every replica.

Most tests run replicas in this process (each on its own NATS connection, so "killing" one
drops its connection without a goodbye, as a dead process would); the database-backed test
runs ``vigil shard`` processes and kills one with SIGKILL; one test runs a private cluster
of three NATS servers and kills a server under the searches."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.cli_run import run_cli
from tests.conftest import demo_bytes, demo_path
from vigil.cluster.connection import connect
from vigil.cluster.gallery import (
    ErasureUnconfirmed, GalleryIncomplete, ShardedGallery, erase_subject_everywhere, merge_top_k, use_sharded_gallery,
)
from vigil.cluster.sealing import MAGIC, Sealer
from vigil.cluster.shards import (
    ArrayLoader, ShardServer, ShardSpec, all_replicas_subject, open_registry, search_subject, shard_of,
)
from vigil.errors import VigilError
from vigil.index.exact import ExactIndex
from vigil.store.crypto import Keyring

DIM = 128


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def new_gallery() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


class ShardHost:
    """Shard replicas on one event-loop thread, each with its own connection."""

    def __init__(self, url: str | list[str]):
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.conns: dict[ShardServer, object] = {}

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, spec: ShardSpec, loader, sealer: Sealer, url=None) -> ShardServer:
        async def go():
            nc = await connect(url or self.url, name=f"test {spec}", attempts=1)
            server = ShardServer(spec, loader, sealer)
            await server.start(nc)
            return server, nc

        server, nc = self.run(go())
        self.conns[server] = nc
        return server

    def crash(self, server: ShardServer) -> None:
        """Gone without leaving the registry: its connection closes, its heartbeats stop."""
        async def go():
            for task in server._tasks:
                task.cancel()
            await self.conns.pop(server).close()

        self.run(go())

    def stop(self, server: ShardServer) -> None:
        async def go():
            await server.stop()
            await self.conns.pop(server).close()

        self.run(go())

    def close(self) -> None:
        for server in list(self.conns):
            try:
                self.stop(server)
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture()
def ring() -> Keyring:
    return Keyring.generate()


@pytest.fixture()
def host(nats_url):
    h = ShardHost(nats_url)
    yield h
    h.close()


@pytest.fixture()
def client(nats_url, ring):
    with ShardedGallery(nats_url, ring, timeout=1.0) as handle:
        yield handle


def serve(host: ShardHost, ring: Keyring, gallery: str, ids, vectors, of: int, replicas: int = 2, url=None):
    """``replicas`` replicas of each of ``of`` shards; returns {shard: [servers]}."""
    return {i: [host.start(ShardSpec(gallery, i, of), ArrayLoader(ids, vectors), Sealer(ring),
                           url=url[r % len(url)] if isinstance(url, list) else url)
                for r in range(replicas)]
            for i in range(1, of + 1)}


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except VigilError as exc:  # e.g. the registry while JetStream elects a leader
            last, value = exc, None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


# -- pure parts -------------------------------------------------------------------------------

def test_shard_of_is_stable_balanced_and_one_based():
    ids = np.arange(1, 100_001)
    shards = shard_of(ids, 4)
    assert set(np.unique(shards)) == {1, 2, 3, 4}
    counts = np.bincount(shards)[1:]
    assert counts.min() > 0.97 * 25_000 and counts.max() < 1.03 * 25_000
    # fixed values: the assignment may never change, or shards would hold the wrong slices
    assert shard_of([0, 1, 2, 3, 42, 10_000_000], 4).tolist() == [1, 2, 3, 1, 3, 1]
    assert shard_of([7], 1).tolist() == [1]


def test_shard_spec_reads_i_of_n_and_refuses_nonsense():
    assert ShardSpec.parse("custody:2/4") == ShardSpec("custody", 2, 4)
    assert ShardSpec.parse("2/4", "a:b") == ShardSpec("a:b", 2, 4)
    for bad in ("custody:0/4", "custody:5/4", "custody:two/4", "2/4"):
        with pytest.raises(VigilError):
            ShardSpec.parse(bad)


def test_merge_orders_by_score_then_template_id_and_pads():
    a = (np.array([[0.9, 0.5, -np.inf]], np.float32), np.array([[7, 3, -1]]))
    b = (np.array([[0.5, 0.4, 0.1]], np.float32), np.array([[2, 9, 4]]))
    scores, ids = merge_top_k([a, b], 4)
    assert ids.tolist() == [[7, 2, 3, 9]]
    assert scores[0].tolist() == pytest.approx([0.9, 0.5, 0.5, 0.4])
    scores, ids = merge_top_k([(np.array([[0.3]], np.float32), np.array([[5]]))], 3)
    assert ids.tolist() == [[5, -1, -1]] and np.isneginf(scores[0, 1:]).all()


# -- over NATS, replicas in this process --------------------------------------------------------

def test_merged_top_k_equals_exact_search_over_the_whole_gallery(host, client, ring):
    gallery = new_gallery()
    ids = np.arange(1000, 1300, dtype=np.int64)
    vectors = unit_vectors(300, 1)
    servers = serve(host, ring, gallery, ids, vectors, of=3)
    assert sum(s[0].templates for s in servers.values()) == 300
    assert all(len({r.templates for r in reps}) == 1 for reps in servers.values())
    exact = ExactIndex.from_arrays(ids, vectors)
    queries = np.concatenate([vectors[:20] + 0.05 * unit_vectors(20, 2), unit_vectors(20, 3)])
    for k in (1, 10, 150):  # 150: more than any one shard holds
        scores, found, size = client.search(gallery, queries, k, of=3)
        want_scores, want_ids = exact.search(queries, k)
        assert size == 300
        assert np.array_equal(found, want_ids)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert client.count(gallery, of=3) == 300


def test_a_replica_killed_during_searches_fails_no_query(host, client, ring):
    gallery = new_gallery()
    ids, vectors = np.arange(400, dtype=np.int64), unit_vectors(400, 4)
    servers = serve(host, ring, gallery, ids, vectors, of=2)
    exact = ExactIndex.from_arrays(ids, vectors)
    queries = unit_vectors(50, 5)
    failures, wrong, done = [], 0, 0
    killer = threading.Timer(0.3, host.crash, [servers[1][0]])
    killer.start()
    stop_at = time.monotonic() + 2.0
    while time.monotonic() < stop_at or done < 100:
        q = queries[done % len(queries)][None]
        try:
            _, found, _ = client.search(gallery, q, 10, of=2)
            wrong += not np.array_equal(found, exact.search(q, 10)[1])
        except VigilError as exc:
            failures.append(str(exc))
        done += 1
    killer.join()
    assert servers[1][0] not in host.conns  # it is down
    assert failures == [] and wrong == 0, (failures[:3], wrong)
    assert done >= 100


def test_a_shard_without_a_live_replica_fails_loudly_never_partially(host, client, ring, nats_url):
    gallery = new_gallery()
    ids, vectors = np.arange(300, dtype=np.int64), unit_vectors(300, 6)
    servers = serve(host, ring, gallery, ids, vectors, of=3)
    client.search(gallery, vectors[:2], 5, of=3)
    for server in servers[2]:
        host.crash(server)
    with pytest.raises(GalleryIncomplete, match=r"^gallery incomplete: shard 2 of 3 unavailable"):
        client.search(gallery, vectors[:2], 5, of=3)
    with pytest.raises(GalleryIncomplete, match="shard 2 of 3 unavailable"):
        client.count(gallery, of=3)
    # a replica that is subscribed but hangs: the search waits, asks again, then refuses
    spec = ShardSpec(gallery, 2, 3)

    async def ignore(msg) -> None:
        pass

    async def hang():
        nc = await connect(nats_url, name="hung replica", attempts=1)
        await nc.subscribe(search_subject(spec), queue=search_subject(spec), cb=ignore)
        await nc.subscribe(all_replicas_subject(spec), cb=ignore)
        await nc.flush()
        return nc

    hung = host.run(hang())
    try:
        started = time.monotonic()
        with pytest.raises(GalleryIncomplete, match=r"shard 2 of 3 unavailable .*no answer within 1 s"):
            client.search(gallery, vectors[:2], 5, of=3)
        assert time.monotonic() - started >= 2.0  # once on the queue group, once to every replica
    finally:
        host.run(hung.close())


def test_erasure_reaches_every_replica_and_reports_a_dead_one(host, client, ring):
    gallery = new_gallery()
    ids, vectors = np.arange(5000, 5300, dtype=np.int64), unit_vectors(300, 7)
    servers = serve(host, ring, gallery, ids, vectors, of=3)
    every = [s for reps in servers.values() for s in reps]
    wait_for(lambda: len(client.replicas(gallery)) == 6, what="six replicas in the registry")
    erased = [5000, 5001, 5002, 5150]
    report = client.erase(gallery, erased)
    assert sorted(report["replicas_confirmed"]) == sorted(s.replica for s in every)
    assert report["replicas_per_shard"] == {"1/3": 2, "2/3": 2, "3/3": 2}
    assert report["templates_removed"] == 2 * len(erased)  # each template sits on both replicas of one shard
    assert report["replicas_down"] == []
    for server in every:  # gone from the memory of every replica, not just from the answers
        held = server.index.search(vectors[:1], server.templates)[1]
        assert not np.isin(erased, held).any()
    rows = [int(np.flatnonzero(ids == t)[0]) for t in erased]
    _, found, size = client.search(gallery, vectors[rows], 10, of=3)
    assert size == 296 and not np.isin(erased, found).any()
    # a replica that died without leaving: reported down once its heartbeats have stopped
    dead = servers[1][0]
    host.crash(dead)
    report = client.erase(gallery, [5003])
    assert report["replicas_down"] == [dead.replica]
    assert len(report["replicas_confirmed"]) == 5 and report["seconds"] < 8


def test_erasure_a_live_replica_does_not_confirm_is_an_error(host, client, ring):
    gallery = new_gallery()
    ids, vectors = np.arange(100, dtype=np.int64), unit_vectors(100, 8)
    servers = serve(host, ring, gallery, ids, vectors, of=1)
    slow = servers[1][0]
    slow._erase = lambda ids: time.sleep(6) or (0, 0, slow.templates)  # alive (heartbeats go on) but stuck
    wait_for(lambda: len(client.replicas(gallery)) == 2, what="two replicas in the registry")
    with pytest.raises(ErasureUnconfirmed, match=f"not confirmed within 3 s by live replica.*{slow.replica}"):
        client.erase(gallery, [1, 2], timeout=3)


def test_nothing_crosses_the_broker_in_clear(host, client, ring, nats_url):
    gallery = new_gallery()
    ids, vectors = np.arange(200, dtype=np.int64), unit_vectors(200, 9)
    serve(host, ring, gallery, ids, vectors, of=2, replicas=1)
    probe = (vectors[17] + 0.01 * unit_vectors(1, 10)[0]).astype(np.float32)
    captured: list[tuple[str, bytes]] = []

    async def keep(msg) -> None:
        captured.append((msg.subject, msg.data))

    async def tap():
        nc = await connect(nats_url, name="tap", attempts=1)
        await nc.subscribe(">", cb=keep)
        await nc.flush()
        return nc

    nc = host.run(tap())
    try:
        _, found, _ = client.search(gallery, probe[None], 10, of=2)
        assert found[0, 0] == 17
        client.erase(gallery, [17])
        time.sleep(1.5)  # heartbeats to the registry
    finally:
        host.run(nc.close())
    token = f"vigil.gallery.{gallery}."
    ours = [(s, d) for s, d in captured if s.startswith(token)]
    assert {s for s, _ in ours} >= {f"{token}2.1", f"{token}2.2", f"{token}erase"}
    assert all(d.startswith(MAGIC) for _, d in ours)  # requests and erasures sealed
    assert any(s.startswith("$KV.vigil_gallery_replicas.") for s, _ in captured)
    secrets = [probe.tobytes()] + [v.tobytes() for v in vectors] + [v.astype(np.float16).tobytes() for v in vectors]
    for subject, data in captured:  # every message on the broker, answers and heartbeats included
        assert not any(s in data for s in secrets), f"a template in clear on {subject}"


def test_a_shard_of_another_site_or_a_wrong_model_is_a_clear_error(host, client, ring):
    gallery = new_gallery()
    serve(host, ring, gallery, np.arange(50, dtype=np.int64), unit_vectors(50, 11), of=1, replicas=1)
    with pytest.raises(VigilError, match="does not hold"):
        with ShardedGallery(host.url, Keyring.generate(), timeout=1.0) as stranger:
            stranger.search(gallery, unit_vectors(1, 12), 5, of=1)
    with pytest.raises(VigilError, match="holds 128-d templates; the probe has 64 dimensions"):
        client.search(gallery, np.ones((1, 64), np.float32) / 8, 5, of=1)
    with pytest.raises(VigilError, match="is not sharded here"):
        client.search(gallery, unit_vectors(1, 12), 5)


def test_three_server_cluster_survives_a_server_killed_under_searches(nats_cluster, ring):
    """Replicas of each shard on servers 1 and 2, the searching process on server 3; server 1
    is killed with SIGKILL while searches run: none fails, and erasure still works (the
    registry is kept on all three servers)."""
    gallery = new_gallery()
    ids, vectors = np.arange(300, dtype=np.int64), unit_vectors(300, 13)
    exact = ExactIndex.from_arrays(ids, vectors)
    urls = nats_cluster.urls
    host = ShardHost(urls[0])
    try:
        servers = serve(host, ring, gallery, ids, vectors, of=2, url=[urls[0], urls[1]])
        with ShardedGallery(urls[2], ring, timeout=1.0) as handle:
            queries = vectors[:40] + 0.05 * unit_vectors(40, 14)
            _, found, _ = handle.search(gallery, queries, 10, of=2)
            assert np.array_equal(found, exact.search(queries, 10)[1])
            registry = handle._run(open_registry(handle.nc))
            assert handle._run(registry.status()).stream_info.config.num_replicas == 3
            failures, done = [], 0
            killer = threading.Timer(0.3, nats_cluster.kill, [0])
            killer.start()
            stop_at = time.monotonic() + 4.0
            while time.monotonic() < stop_at:
                q = queries[done % len(queries)][None]
                try:
                    _, found, _ = handle.search(gallery, q, 10, of=2)
                    assert np.array_equal(found, exact.search(q, 10)[1])
                except VigilError as exc:
                    failures.append(str(exc))
                done += 1
            killer.join()
            assert failures == [] and done > 20
            every = sorted(s.replica for reps in servers.values() for s in reps)
            # the replicas on the dead server reconnect to the others and keep beating
            wait_for(lambda: sorted(r["replica"] for r in handle.replicas(gallery)) == every, timeout=20,
                     what="every replica in the registry after the server's death")
            report = handle.erase(gallery, [3, 4])
            assert sorted(report["replicas_confirmed"]) == every
        for i in range(3):  # the brokers' JetStream folders (the registry) hold no template
            for path in nats_cluster.store_dir(i).rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert not any(v.tobytes() in data for v in vectors), path
    finally:
        host.close()


# -- database-backed shards, as processes -------------------------------------------------------

def _add_synthetic_subjects(vigil, gallery: str, vectors: np.ndarray) -> list[int]:
    """Subjects with one template each, written as enrolment writes them (sealed template,
    change-log row); returns their template ids."""
    from vigil.store.collections import get_collection
    from vigil.store.schema import FaceImage, TemplateRow
    from vigil.store.store import template_context
    from vigil.store.subjects import add_member, create_subject

    out = []
    with vigil.store.session() as session:
        coll = get_collection(session, "gallery", gallery)
        for n, vector in enumerate(vectors):
            subject = create_subject(session, "test", f"synthetic {n}")
            image = FaceImage(subject_id=subject.id, collection_id=coll.id, content_hash=f"synthetic-{n}",
                              blob_id=vigil.store.blobs.put(session, "face_image", b"synthetic"), width=1, height=1)
            session.add(image)
            session.flush()
            row = TemplateRow(image_id=image.id, subject_id=subject.id, model_id=coll.model_id,
                              vector_enc=vigil.store.seal_vector(vector, template_context(image.id, coll.model_id)))
            session.add(row)
            session.flush()
            add_member(session, coll, subject, "test")
            out.append(row.id)
    return out


class ShardProcess:
    """``vigil shard ... --json`` as a process; ``info`` is the line it prints once serving."""

    def __init__(self, url: str, gallery: str, which: str, log: Path):
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigil", "shard", "--nats", url, "--gallery", gallery, "--shard", which,
             "--json"], stdout=subprocess.PIPE, stderr=self.log, env=os.environ.copy())
        self.info: dict | None = None

    def ready(self, timeout: float = 90.0) -> dict:
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not readable:
            raise AssertionError(f"vigil shard not serving after {timeout} s: {Path(self.log.name).read_text()}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"vigil shard exited {self.proc.wait()}: {Path(self.log.name).read_text()}")
        self.info = json.loads(line)
        return self.info

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(20)
        self.log.close()


@pytest.fixture()
def shard_processes():
    procs: list[ShardProcess] = []
    yield procs
    for p in procs:
        if p.proc.poll() is None:
            p.kill(signal.SIGTERM)


def test_database_shards_serve_the_search_service_survive_a_kill_and_never_resurrect_an_erasure(
        home, nats_url, shard_processes, tmp_path):
    from vigil.config import get_settings
    from vigil.retro.manifests import EnrolItem
    from vigil.services import forget_contexts, get_vigil
    from vigil.services.collections import create_collection
    from vigil.services.enrolment import enrol_image
    from vigil.services.search import run_search

    forget_contexts()
    vigil = get_vigil(get_settings())
    admin = vigil.cli_actor()
    gallery = new_gallery()
    create_collection(vigil, admin, "gallery", gallery)
    synthetic = _add_synthetic_subjects(vigil, gallery, unit_vectors(240, 20))
    obama = enrol_image(vigil, admin, "gallery", gallery, demo_bytes("obama.jpg"), EnrolItem("o", "Barack Obama"))
    biden = enrol_image(vigil, admin, "gallery", gallery, demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    assert obama["status"] == biden["status"] == "enrolled"
    with vigil.store.session() as session:
        local = vigil.indexes.get(session, _collection(session, gallery))
        obama_tid = _template_of(session, obama["subject_id"])
    all_ids = np.array(synthetic + [obama_tid, _template_id(vigil, biden["subject_id"])])
    target = int(shard_of([obama_tid], 2)[0])  # the shard that holds Obama's template

    for which in ("1/2", "1/2", "2/2", "2/2"):
        shard_processes.append(ShardProcess(nats_url, gallery, which, tmp_path / f"shard-{len(shard_processes)}.log"))
    infos = [p.ready() for p in shard_processes]
    assert sorted(i["templates"] for i in infos) == sorted(
        int((shard_of(all_ids, 2) == s).sum()) for s in (1, 1, 2, 2))

    handle = use_sharded_gallery(vigil, nats_url, {gallery: 2}, timeout=1.0)
    try:
        # the search service, through the seam, finds what the local index finds
        probe = demo_path("obama_speech.jpg", tmp_path)
        sharded = run_search(vigil, admin, "gallery", gallery, case_ref="C-1", reason="test", path=probe, top=5)
        vigil.gallery_search = None
        plain = run_search(vigil, admin, "gallery", gallery, case_ref="C-1", reason="test", path=probe, top=5)
        vigil.gallery_search = handle
        assert sharded["gallery_templates"] == plain["gallery_templates"] == 242
        assert [(c["subject_id"], c["score"]) for c in sharded["faces"][0]["candidates"]] == \
            [(c["subject_id"], c["score"]) for c in plain["faces"][0]["candidates"]]
        assert sharded["faces"][0]["candidates"][0]["subject_id"] == obama["subject_id"]

        # a replica of Obama's shard killed (SIGKILL) while searches run: none fails
        queries = local.vectors_of(all_ids[:30])
        victim = next(p for p in shard_processes if p.info["shard"] == target)
        failures, done = [], 0
        killer = threading.Timer(0.3, victim.kill)
        killer.start()
        stop_at = time.monotonic() + 2.5
        while time.monotonic() < stop_at:
            q = queries[done % len(queries)][None]
            try:
                _, found, _ = handle.search(gallery, q, 10)
                assert np.array_equal(found, local.search(q, 10)[1])
            except VigilError as exc:
                failures.append(str(exc))
            done += 1
        killer.join()
        assert failures == [] and done > 20

        # erase Obama: the database, then every live replica, confirmed and audited
        result = erase_subject_everywhere(vigil, admin, obama["subject_id"], "test erasure", handle)
        (report,) = result["shards"]
        live = sorted(p.info["replica"] for p in shard_processes if p.proc.poll() is None)
        assert report["gallery"] == gallery and sorted(report["replicas_confirmed"]) == live
        # the one live replica of its shard dropped it, on this broadcast or just before when it
        # replayed the database's change log (every database-backed replica does, every 5 s)
        assert report["templates_removed"] in (0, 1)
        assert victim.info["replica"] not in report["replicas_confirmed"]

        # the killed replica comes back: rebuilt from the database, it does not hold Obama;
        # the other replica of that shard leaves, so the new one alone answers for the shard
        again = ShardProcess(nats_url, gallery, f"{target}/2", tmp_path / "restarted.log")
        shard_processes.append(again)
        assert again.ready()["templates"] == victim.info["templates"] - 1
        for p in shard_processes[:4]:
            if p.info["shard"] == target and p.proc.poll() is None:
                p.kill(signal.SIGTERM)
        obama_vector = local.vectors_of([obama_tid])
        _, found, size = handle.search(gallery, obama_vector, 10)
        assert size == 241 and obama_tid not in found
        assert handle.search(gallery, obama_vector, 10)[1][0, 0] != obama_tid
    finally:
        handle.close()
        vigil.gallery_search = None
    with vigil.store.session() as session:
        actions = _audit_actions(session)
    assert actions.count("gallery.shard_loaded") == 5
    assert "subject.erased_from_shards" in actions
    forget_contexts()


def _collection(session, name):
    from vigil.store.collections import get_collection

    return get_collection(session, "gallery", name)


def _template_of(session, subject_id: str) -> int:
    from sqlalchemy import select

    from vigil.store.schema import TemplateRow

    return int(session.scalar(select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)))


def _template_id(vigil, subject_id: str) -> int:
    with vigil.store.session() as session:
        return _template_of(session, subject_id)


def _audit_actions(session) -> list[str]:
    from sqlalchemy import select

    from vigil.store.schema import AuditEntry

    return list(session.scalars(select(AuditEntry.action)))


def test_vigil_shard_refuses_mistakes_in_one_line(home, nats_url):
    bad = run_cli(home, "shard", "--nats", nats_url, "--gallery", "nowhere", "--shard", "3/2")
    assert bad.returncode == 1 and "shards are numbered 1..N" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli(home, "shard", "--nats", nats_url, "--gallery", "nowhere", "--shard", "1/2", "--dtype", "int8")
    assert bad.returncode == 1 and "use float32 or float16" in bad.stderr
    missing = run_cli(home, "shard", "--nats", nats_url, "--gallery", "nowhere", "--shard", "1/2")
    assert missing.returncode == 4 and "no gallery 'nowhere'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_an_unreachable_nats_is_a_clear_error_and_a_stop_while_connecting_ends_vigil_shard(home, tmp_path):
    from vigil.cluster.connection import ClusterUnavailable

    with pytest.raises(ClusterUnavailable, match=r"NATS at nats://127.0.0.1:1 is unreachable after 1 attempt"):
        ShardedGallery("nats://127.0.0.1:1", Keyring.generate(), connect_attempts=1)
    log = tmp_path / "shard.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "vigil", "shard", "--nats", "nats://127.0.0.1:1", "--gallery",
                                 "g", "--shard", "1/2"], stdout=subprocess.PIPE, stderr=err, env=os.environ.copy())
        wait_for(lambda: "unreachable" in log.read_text(), timeout=60, what="a first failed connection")
        proc.send_signal(signal.SIGTERM)  # while it is still trying: it stops now, not after every attempt
        assert proc.wait(10) == 0
    assert "Traceback" not in log.read_text() and proc.stdout.read() == b""
