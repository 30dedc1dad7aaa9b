#!/usr/bin/env python
"""Sharded gallery benchmark (issue #14): a 10M-template gallery across shard processes on NATS.

    python -m bench.cluster_gallery [--templates 10000000] [--shards 4] [--replicas 2]
                                    [--nats nats://127.0.0.1:4222] [--workdir /tmp/vigil-cluster-gallery]

Gallery: one real SFace template per LFW person (the ``_0001`` image, LFW errata applied, as
``bench.index_1m``) plus synthetic distractors from the same :class:`DistractorModel` (its
match to real impostor scores is checked in ``index_1m.json``) up to ``--templates``.
Probes: each person's ``_0002`` image (1,682), so every probe's mate is in the gallery.

The gallery is written once, already sliced by :func:`vigil.cluster.shards.shard_of`, to one
float32 file per shard; every replica process (``--replicas`` per shard, each its own NATS
connection, one BLAS thread) serves its shard with :class:`ShardServer` and an
:class:`ArrayLoader` over a read-only memory map of that file: the same server as the
database-backed ``vigil shard``, with a different loader. The replicas of one shard on this
one machine therefore share its pages (the operating system's page cache); on separate
machines each replica holds its own copy. The exact reference (float32 top-10 of every probe
over the whole gallery) is computed in this process while the files are written.

Measured through :class:`vigil.cluster.gallery.ShardedGallery` (scatter to every shard,
exact merge): top-1 agreement with exact search and recall of the exact top-10 above the
FMR 1e-4 threshold over all probes, single-query latency p50/p99, milliseconds per million
templates scanned, queries failed while one replica is killed (SIGKILL) under a stream of
searches, and the time to erase one subject from every replica of every shard (broadcast
until every replica has confirmed). Memory: the bytes each shard holds, each replica's
resident memory, and the machine's used memory at its peak.

``python -m bench.cluster_gallery serve ...`` is the replica process the benchmark starts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path("/tmp/vigil-cluster-gallery")
K = 10
CHUNK = 25_000  # distractors generated, written and scored against every probe at a time


# -- the replica process --------------------------------------------------------------------------

def serve(args) -> int:
    """One replica: map the shard's file, serve it until SIGTERM (or death by SIGKILL)."""
    from vigil.cluster.connection import connect
    from vigil.cluster.sealing import Sealer
    from vigil.cluster.shards import ArrayLoader, ShardServer, ShardSpec
    from vigil.store.crypto import Keyring

    ring = Keyring.from_env_value(os.environ["VIGIL_BENCH_KEY"])
    meta = json.loads((args.workdir / "gallery.json").read_text())
    n = meta["shard_sizes"][str(args.shard)]
    ids = np.memmap(args.workdir / f"shard{args.shard}.ids", np.int64, "r", shape=(n,))
    vectors = np.memmap(args.workdir / f"shard{args.shard}.f32", np.float32, "r", shape=(n, meta["dim"]))
    spec = ShardSpec(meta["gallery"], args.shard, meta["shards"])
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        nc = await connect(args.nats, name=f"bench replica {spec}", attempts=3)
        server = ShardServer(spec, ArrayLoader(ids, vectors, presliced=True), Sealer(ring))
        await server.start(nc)
        print(json.dumps({"replica": server.replica, "shard": args.shard, "templates": server.templates,
                          "load_s": round(server.load_s, 3), "pid": os.getpid()}), flush=True)
        await stop.wait()
        await server.stop()
        await nc.drain()

    asyncio.run(main())
    return 0


class Replica:
    def __init__(self, args, shard: int, key: str, log: Path):
        env = {**os.environ, "VIGIL_BENCH_KEY": key, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}
        self.shard = shard
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.cluster_gallery", "serve", "--shard", str(shard),
                                      "--workdir", str(args.workdir), "--nats", args.nats],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log)
        self.info: dict = {}

    def ready(self, timeout: float = 120) -> dict:
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise RuntimeError(f"replica of shard {self.shard} not serving after {timeout} s ({self.log.name})")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"replica of shard {self.shard} exited: see {self.log.name}")
        self.info = json.loads(line)
        return self.info

    def rss(self) -> dict:
        """Resident memory (MiB) of the process, split into its private and shared (file) pages."""
        fields = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                    key, value = line.split(":")
                    fields[key] = round(int(value.split()[0]) / 1024, 1)
        except OSError:
            pass
        return fields

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


# -- building the gallery ---------------------------------------------------------------------

def mem_used_gib() -> float:
    info = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    return (info["MemTotal"] - info["MemAvailable"]) / 2**20


def mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 2**20
    return 0.0


def build_gallery(args, real: np.ndarray, probes: np.ndarray, model, gallery: str):
    """Write each shard's ids and float32 templates; return the exact top-K of every probe."""
    from vigil.cluster.shards import shard_of
    from vigil.index.base import top_k
    from vigil.progress import progress_bar

    args.workdir.mkdir(parents=True, exist_ok=True)
    files = {i: (open(args.workdir / f"shard{i}.ids", "wb"), open(args.workdir / f"shard{i}.f32", "wb"))
             for i in range(1, args.shards + 1)}
    sizes = {i: 0 for i in files}
    best_s = np.full((len(probes), K), -np.inf, np.float32)
    best_i = np.full((len(probes), K), -1, np.int64)
    total = args.templates
    with progress_bar("Gallery: generate, slice, exact top-10", total) as advance:
        for start in range(0, total, CHUNK):
            n = min(CHUNK, total - start)
            ids = np.arange(start, start + n, dtype=np.int64)
            block = np.empty((n, real.shape[1]), np.float32)
            from_real = max(0, min(len(real) - start, n))
            block[:from_real] = real[start : start + from_real]
            if from_real < n:  # distractor i is the same vector whatever the chunking
                block[from_real:] = model.sample(n - from_real, seed=1_000_003 + start)
            owner = shard_of(ids, args.shards)
            for i, (f_ids, f_vec) in files.items():
                mine = owner == i
                f_ids.write(ids[mine].tobytes())
                f_vec.write(np.ascontiguousarray(block[mine]).tobytes())
                sizes[i] += int(mine.sum())
            s, cols = top_k(probes @ block.T, K)
            both_s = np.concatenate([best_s, s], axis=1)
            both_i = np.concatenate([best_i, ids[cols]], axis=1)
            order = np.lexsort((both_i, -both_s), axis=1)[:, :K]
            best_s, best_i = np.take_along_axis(both_s, order, 1), np.take_along_axis(both_i, order, 1)
            advance(n)
    for f_ids, f_vec in files.values():
        f_ids.close()
        f_vec.close()
    meta = {"gallery": gallery, "shards": args.shards, "dim": int(real.shape[1]), "templates": total,
            "shard_sizes": {str(i): n for i, n in sizes.items()}}
    (args.workdir / "gallery.json").write_text(json.dumps(meta))
    return best_s, best_i, sizes


# -- measuring ----------------------------------------------------------------------------------

def latency(handle, gallery: str, queries: np.ndarray, label: str) -> dict:
    from vigil.progress import progress_bar

    times = []
    with progress_bar(label, len(queries)) as advance:
        for q in queries:
            start = time.perf_counter()
            handle.search(gallery, q[None], K)
            times.append(time.perf_counter() - start)
            advance()
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_ms": round(float(ms.mean()), 1), "queries": len(queries)}


def replica_death(handle, gallery: str, queries: np.ndarray, victim: Replica, ref_ids: np.ndarray,
                  after: int) -> dict:
    """Single-query searches in a stream; the victim is killed (SIGKILL) from another thread
    while query ``after`` is in flight. Every answer is checked against the exact top-K."""
    from vigil.errors import VigilError
    from vigil.progress import progress_bar

    failed, wrong, times, errors = 0, 0, [], []
    retries_before = handle.retries
    killed_at = None
    with progress_bar("Searches while a replica is killed", len(queries)) as advance:
        for n, q in enumerate(queries):
            if n == after:
                threading.Timer(0.02, victim.kill).start()  # lands while this query is being answered
                killed_at = n
            start = time.perf_counter()
            try:
                _, ids, _ = handle.search(gallery, q[None], K)
                wrong += int(not np.array_equal(ids[0], ref_ids[n]))
            except VigilError as exc:
                failed += 1
                errors.append(str(exc))
            times.append(time.perf_counter() - start)
            advance()
    ms = np.array(times) * 1000
    return {"queries": len(queries), "killed_during_query": killed_at, "failed_queries": failed,
            "answers_differing_from_exact": wrong, "requests_answered_on_retry": handle.retries - retries_before,
            "max_ms": round(float(ms.max()), 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "errors": errors[:3]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="one replica process (started by the benchmark)")
    s.add_argument("--shard", type=int, required=True)
    s.add_argument("--workdir", type=Path, required=True)
    s.add_argument("--nats", required=True)
    parser.add_argument("--templates", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=2, help="replica processes per shard")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="shard files (deleted at the end unless --keep)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lfw_sface_all.npz"), help="LFW SFace templates")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8, help="probes per request in the quality pass")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds before a shard is asked again (the product's default)")
    parser.add_argument("--min-free-gib", type=float, default=3.0,
                        help="memory to leave to the machine's other work (the gallery is sized to fit)")
    parser.add_argument("--keep", action="store_true", help="keep the shard files and the exact reference")
    parser.add_argument("--reuse", action="store_true",
                        help="measure again on the files a --keep run left (same --templates and --shards)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return run(args)


def run(args) -> int:
    from rich.console import Console

    from bench.common import RESULTS, write_result
    from bench.index_1m import DistractorModel, Reference, fmr_threshold, gallery_and_probes, load_templates
    from vigil.cluster.gallery import ShardedGallery
    from vigil.cluster.shards import shard_of
    from vigil.store.crypto import Keyring

    console = Console(stderr=True)
    started = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    templates = load_templates(args.cache, args.data)
    if templates is None:
        print(f"skipped: no template cache at {args.cache} and no LFW at {args.data}")
        return 0
    rows_g, rows_p, mates = gallery_and_probes(templates)
    real, probes = templates.vectors[rows_g], templates.vectors[rows_p]
    template_bytes = real.shape[1] * 4 + 8  # float32 vector + int64 id

    # the largest gallery that fits: the shard files are mapped once (replicas share the pages),
    # an erasure copies one shard in each of its replicas, and each query's scores are transient
    avail = mem_available_gib() - args.min_free_gib
    per_template_peak = template_bytes * (1 + args.replicas / args.shards) + 4 * 3 * args.batch
    fits = int(avail * 2**30 / per_template_peak)
    requested = args.templates
    size_note = "as requested"
    if fits < requested:
        args.templates = max(len(real), fits // 100_000 * 100_000)
        size_note = (f"reduced from {requested:,}: {mem_available_gib():.1f} GiB available, "
                     f"{args.min_free_gib} GiB left to other work")
    console.print(f"gallery {args.templates:,} templates ({size_note}); {mem_available_gib():.1f} GiB available")

    ring = Keyring.generate()
    key = base64.b64encode(ring.keys[ring.active]).decode()
    gallery = f"lfw-bench-{uuid.uuid4().hex[:8]}"
    threshold, threshold_source = fmr_threshold()
    model = DistractorModel(templates.vectors[templates.usable])
    t = time.perf_counter()
    saved = args.workdir / "reference.npz"
    meta_path = args.workdir / "gallery.json"
    meta = json.loads(meta_path.read_text()) if args.reuse and meta_path.is_file() and saved.is_file() else None
    reused = bool(meta and meta["templates"] == args.templates and meta["shards"] == args.shards)
    if reused:
        gallery = meta["gallery"]  # the files of an earlier run (--reuse): same gallery, same reference
        ref = np.load(saved)
        ref_s, ref_i = ref["scores"], ref["ids"]
        sizes = {int(i): n for i, n in meta["shard_sizes"].items()}
        console.print(f"reusing the gallery files in {args.workdir}")
    else:
        if args.workdir.exists():
            shutil.rmtree(args.workdir)
        ref_s, ref_i, sizes = build_gallery(args, real, probes, model, gallery)
        np.savez(saved, scores=ref_s, ids=ref_i)
    build_s = time.perf_counter() - t
    ref = Reference(ref_s, ref_i, mates, threshold)
    exact_quality = ref.quality(ref_i)
    used_before = mem_used_gib()
    peak_used = used_before

    replicas: list[Replica] = []
    logs = args.workdir / "logs"
    logs.mkdir(exist_ok=True)
    result: dict = {}
    try:
        t = time.perf_counter()
        for shard in range(1, args.shards + 1):
            for r in range(args.replicas):
                replicas.append(Replica(args, shard, key, logs / f"shard{shard}-{r}.log"))
        for replica in replicas:
            replica.ready()
        start_s = time.perf_counter() - t
        with ShardedGallery(args.nats, ring, {gallery: args.shards}, timeout=args.timeout) as handle:
            server_version = handle.nc._server_info.get("version")
            handle.search(gallery, probes[:4], K)  # warm: the pages are in memory
            from vigil.progress import progress_bar

            t = time.perf_counter()
            found_s, found_i = [], []
            with progress_bar("All probes through the shards", len(probes)) as advance:
                for start in range(0, len(probes), args.batch):
                    sc, ids, size = handle.search(gallery, probes[start : start + args.batch], K)
                    found_s.append(sc)
                    found_i.append(ids)
                    advance(len(ids))
                    peak_used = max(peak_used, mem_used_gib())
            quality_s = time.perf_counter() - t
            found_i = np.concatenate(found_i)
            quality = ref.quality(found_i)
            assert size == args.templates, (size, args.templates)
            rng = np.random.default_rng(0)
            sample = np.sort(rng.choice(len(probes), min(args.latency_queries, len(probes)), replace=False))
            lat = latency(handle, gallery, probes[sample], "Single-query latency")
            peak_used = max(peak_used, mem_used_gib())
            rss = [{"shard": r.shard, **r.rss()} for r in replicas]

            # a replica dies under a stream of searches
            victim = next(r for r in replicas if r.shard == 1)
            death_rows = np.arange(min(200, len(probes)))
            death = replica_death(handle, gallery, probes[death_rows], victim, ref_i[death_rows], after=40)
            # it comes back (so every shard has all its replicas again) before the erasure
            back = Replica(args, 1, key, logs / "shard1-restarted.log")
            replicas.append(back)
            back.ready()
            deadline = time.monotonic() + 30
            while len(handle.replicas(gallery)) != args.shards * args.replicas and time.monotonic() < deadline:
                time.sleep(0.5)  # the dead replica's registry entry expires (5 s)

            # erase one subject (the mate of the first probe: one template) from every replica
            subject_template = int(mates[0])
            t_shard = int(shard_of([subject_template], args.shards)[0])
            listed = len(handle.replicas(gallery))
            report = handle.erase(gallery, [subject_template])
            peak_used = max(peak_used, mem_used_gib())
            _, after_ids, _ = handle.search(gallery, real[subject_template][None], K)
            erase = {"template": subject_template, "shard": t_shard, "replicas_listed": listed,
                     "replicas_confirmed": len(report["replicas_confirmed"]),
                     "replicas_per_shard": report["replicas_per_shard"], "replicas_down": report["replicas_down"],
                     "templates_removed": report["templates_removed"], "seconds": report["seconds"],
                     "returned_after_erasure": bool(subject_template in after_ids)}
    finally:
        for replica in replicas:
            replica.kill(signal.SIGTERM)
        load_end = [round(x, 2) for x in os.getloadavg()]

    shard_bytes = {str(i): n * template_bytes for i, n in sizes.items()}
    scanned_m = args.templates / 1e6
    result = {
        "gallery_templates": args.templates,
        "gallery_size_note": size_note,
        "gallery_top1_equals_exact": quality["top1_agreement"],
        "gallery_recall_exact_top10_above_fmr_1e-4": quality["recall_top10_above_threshold"],
        "gallery_rank1": quality["rank1"],
        "exact_rank1": exact_quality["rank1"],
        "exact_top10_above_threshold": quality["exact_top10_above_threshold"],
        "gallery_p50_ms": lat["p50_ms"],
        "gallery_p99_ms": lat["p99_ms"],
        "ms_per_million_scanned": round(lat["p50_ms"] / scanned_m, 2),
        "extrapolated_p50_ms_at_100m_same_machine": round(lat["p50_ms"] / scanned_m * 100, 0),
        "erase_s": erase["seconds"],
        "failed_queries_after_replica_kill": death["failed_queries"],
        "shards": args.shards, "replicas_per_shard": args.replicas,
        "template": {"dtype": "float32", "dim": int(real.shape[1]), "bytes": template_bytes,
                     "note": "512-byte float32 vector + 8-byte id; exact search (no compression, no ANN)"},
        "memory": {
            "bytes_per_shard": shard_bytes,
            "gib_per_shard": {i: round(b / 2**30, 2) for i, b in shard_bytes.items()},
            "replica_rss_mib_after_latency": rss,
            "replicas_share_pages": "the replicas of a shard on this one machine map the same read-only file "
                                    "(one copy in the page cache); on separate machines each holds its own",
            "machine_used_gib_before_replicas": round(used_before, 2),
            "machine_used_gib_peak": round(peak_used, 2),
        },
        "quality_pass": {"probes": len(probes), "probes_per_request": args.batch, "seconds": round(quality_s, 1)},
        "latency": lat,
        "replica_killed": death,
        "erase": erase,
        "threshold": threshold, "threshold_source": threshold_source,
        "data": {"source": templates.source, "gallery_real": len(real), "probes": len(probes),
                 "distractors": args.templates - len(real),
                 "distractor_model": {"name": "bench.index_1m.DistractorModel", **model.params,
                                      "validated_in": "index_1m.json (distribution_check)"}},
        "timings_s": {"build_and_exact_reference": round(build_s, 1) if not reused else "reused (--reuse)", "start_replicas": round(start_s, 1),
                      "total": round(time.perf_counter() - started, 1)},
        "replica_processes": {"count": args.shards * args.replicas, "blas_threads_each": 1,
                              "load_s": [r.info.get("load_s") for r in replicas if r.info]},
        "load_average_at_start": load_start, "load_average_at_end": load_end,
        "versions": {"numpy": np.__version__, "nats-py": _version("nats-py"),
                     "nats-server-at-bench": server_version},
        "requirements": {
            "gallery_templates_ge_10m": args.templates >= 10_000_000,
            "top1_equals_exact_ge_0.995": quality["top1_agreement"] >= 0.995,
            "failed_queries_after_replica_kill_eq_0": death["failed_queries"] == 0,
            "erased_template_not_returned": not erase["returned_after_erasure"],
        },
    }
    out = args.out or RESULTS / "cluster_gallery.json"
    if out == RESULTS / "cluster_gallery.json":
        path = write_result("cluster_gallery", result)
    else:
        out.write_text(json.dumps(result, indent=1, default=float) + "\n")
        path = out
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    console.print_json(json.dumps({k: result[k] for k in (
        "gallery_templates", "gallery_top1_equals_exact", "gallery_recall_exact_top10_above_fmr_1e-4",
        "gallery_p50_ms", "gallery_p99_ms", "ms_per_million_scanned", "erase_s",
        "failed_queries_after_replica_kill", "requirements")}))
    console.print(f"written to {path}")
    return 0


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
