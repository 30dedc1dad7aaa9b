"""Live matching on a fused watchlist: the lazy cascade raises exactly the alerts full fusion
would, consults the second model only when it could matter, and runs a whole deployment."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.conftest import demo_bytes
from tests.live.conftest import obama_watchlist
from tests.live.test_deployments import make, run
from vigil.engine.fusion import combine
from vigil.engine.onnx_embedder import l2_normalise
from vigil.errors import ModelError
from vigil.services.deployments import authorise_deployment
from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment
from vigil.live.matcher import WatchlistEntry, WatchlistMatcher

WEIGHT = 0.18


class FixedThresholds:
    """A stand-in calibration: every per-comparison FMR maps to the same score."""

    def __init__(self, threshold):
        self.threshold = threshold

    def threshold_for(self, fmr):
        return self.threshold


def unit(rng, n, dim=128):
    return l2_normalise(rng.normal(size=(n, dim)).astype(np.float32))


def fused_matcher(rng, n=200, threshold=0.9):
    first, second = unit(rng, n), unit(rng, n)
    entries = [WatchlistEntry(f"s{i}", f"n{i}", "wanted", 1, None) for i in range(n)]
    matcher = WatchlistMatcher(entries, combine(first, second, WEIGHT), FixedThresholds(threshold),
                               false_alert_rate=1e-4, split=(128, WEIGHT))
    return matcher, first, second


def probe_near(rng, vector, noise):
    return l2_normalise(vector + noise * rng.normal(size=vector.shape).astype(np.float32))


def test_cascade_gives_the_same_decision_and_score_as_full_fusion():
    rng = np.random.default_rng(7)
    matcher, first, second = fused_matcher(rng)
    calls = passes = skipped = 0
    for k in range(400):
        target = k % len(first)
        noise = [0.01, 0.03, 0.1, 1.0][k % 4]  # from near copies of an entry to strangers
        a, b = probe_near(rng, first[target], noise), probe_near(rng, second[target], noise)

        def second_fn(b=b):
            nonlocal calls
            calls += 1
            return b

        before = calls
        i, score, threshold = matcher.best_fused(a, second_fn)
        j, full_score, full_threshold = matcher.best(combine(a[None], b[None], WEIGHT)[0])
        assert (score >= threshold) == (full_score >= full_threshold)
        if calls > before:
            assert (i, score) == (j, pytest.approx(full_score, abs=1e-5))
        else:
            skipped += 1
            assert score < threshold and full_score < full_threshold
            # the returned score bounds every fused score from above
            assert score >= full_score - 1e-6
        passes += full_score >= full_threshold
    assert passes >= 150 and skipped >= 80 and calls >= 250  # every branch was exercised


def test_cascade_consults_the_second_model_only_within_reach():
    rng = np.random.default_rng(3)
    matcher, first, _ = fused_matcher(rng, threshold=0.95)
    never = lambda: pytest.fail("the second model was consulted for a probe that cannot reach any threshold")  # noqa: E731
    stranger = -first[0]  # far from every entry's first part
    i, score, threshold = matcher.best_fused(l2_normalise(stranger), never)
    assert score < threshold
    # a probe whose first part equals an entry's is within reach: the second model decides
    seen = []

    def second():
        seen.append(1)
        return unit(rng, 1)[0]

    matcher.best_fused(first[5], second)
    assert seen == [1]


def test_single_model_matcher_refuses_the_cascade():
    rng = np.random.default_rng(1)
    matcher = WatchlistMatcher([WatchlistEntry("s", "n", "wanted", 1, None)], unit(rng, 1), FixedThresholds(0.5),
                               false_alert_rate=1e-4)
    with pytest.raises(ValueError, match="split"):
        matcher.best_fused(unit(rng, 1)[0], lambda: None)


@pytest.fixture()
def fused_watchlist(vigil, admin):
    pytest.importorskip("dlib", reason="the fusion pack needs the optional dlib extra: pip install 'vigil[dlib]'")
    return obama_watchlist(vigil, admin, "fusion")["obama"]


def test_deployment_on_a_fused_watchlist_alerts_through_the_cascade(vigil, admin, fused_watchlist, video):
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    result = run(vigil, admin, dep["id"])
    assert [a["subject_id"] for a in result.alerts] == [fused_watchlist]
    alert = result.alerts[0]
    assert alert["score"] >= alert["threshold"] > 0.8  # the fused score scale (dlib's part dominates)
    summary = result.summary
    assert 1 <= summary["second_model_embeddings"] <= summary["embeddings"]


def test_dlib_pack_watchlist_is_refused_and_cannot_be_deployed(vigil, admin, video):
    from vigil.services.collections import create_collection
    from vigil.store.schema import Collection

    with pytest.raises(ModelError, match="cannot run live"):
        create_collection(vigil, admin, "watchlist", "wanted", pack="dlib", purpose="test", category="wanted")
    # a gallery may use it (retrospective search on stills)
    create_collection(vigil, admin, "gallery", "stills", pack="dlib", purpose="test")
    # a watchlist from before the rule, turned to dlib behind the API's back, is refused at deployment
    coll = create_collection(vigil, admin, "watchlist", "wanted", pack="sface", purpose="test", category="wanted")
    with vigil.store.session() as s:
        s.get(Collection, coll["id"]).pack = "dlib"
    with pytest.raises(ModelError, match="cannot run live"):
        make(vigil, admin, video)


def test_second_model_worker_answers_like_the_in_process_model_and_forgets(fused_watchlist, vigil):
    from vigil.engine.dlib_pack import DlibEmbedder
    from vigil.engine.images import decode_image
    from vigil.live.second_model_worker import SecondModelWorker

    image = decode_image(demo_bytes("obama_and_biden.jpg"))
    faces = vigil.engine().detect(image)
    local = DlibEmbedder(flip=True)
    chips = local.chips(image, faces)
    worker = SecondModelWorker(flip=True)
    try:
        rid = worker.submit(chips)
        forgotten = worker.submit(chips[:1])
        worker.forget(forgotten)  # its track ended: the answer must not be kept
        deadline = time.monotonic() + 30
        answer = None
        while answer is None and time.monotonic() < deadline:
            answer = worker.take(rid)
            time.sleep(0.01)
        assert answer is not None and np.allclose(answer, local.embed_chips(chips), atol=1e-5)
        while worker.pending and time.monotonic() < deadline:
            worker.take(-1)
            time.sleep(0.01)
        assert worker.pending == 0 and worker.take(forgotten) is None and not worker._done
    finally:
        worker.close()
    assert not worker.alive


def test_real_time_deployment_on_a_fused_watchlist_uses_the_worker(vigil, admin, fused_watchlist, video):
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    runner = DeploymentRunner(vigil, admin, dep["id"], [], RunOptions(fast=False))
    assert runner.worker is not None and runner.worker.alive
    result = runner.run()
    assert [a["subject_id"] for a in result.alerts] == [fused_watchlist]
    assert result.summary["second_model_embeddings"] >= 1
    assert not runner.worker.alive  # stopped with the run


def test_a_dead_worker_falls_back_to_the_in_line_model(vigil, admin, fused_watchlist, video):
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    runner = DeploymentRunner(vigil, admin, dep["id"], [], RunOptions(fast=False))
    runner.worker._process.kill()
    runner.worker._process.join(timeout=10)
    result = runner.run()
    assert [a["subject_id"] for a in result.alerts] == [fused_watchlist]  # still found, in line
    assert result.summary["second_model_worker_failed"] is True
