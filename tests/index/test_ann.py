"""AnnIndex on synthetic data: same semantics as ExactIndex, exact scores, high recall.

The index is built small (trained at 2,000 templates, 64 candidates re-ranked) so the
approximate path runs in well under a second; large-gallery numbers: bench/index_1m.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from vigil.index.ann import AnnIndex
from vigil.index.exact import ExactIndex
from vigil.index.factory import index_from_bytes, make_index

DIM = 64


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clustered(rng: np.random.Generator, people: int, noise: float = 0.65) -> tuple[np.ndarray, np.ndarray]:
    """One enrolled template and one probe per person: mates score about 1 / (1 + noise^2)
    (0.7), others about 0 +- 1/sqrt(DIM) (0.125), so the top impostors of 5,000 reach ~0.45."""
    centres = unit(rng.standard_normal((people, DIM)))

    def sample() -> np.ndarray:
        return unit(centres + noise * unit(rng.standard_normal((people, DIM))))

    return sample(), sample()


def small_ann(**kw) -> AnnIndex:
    opts = dict(candidates=64, train_size=2000, threads=1)
    return AnnIndex(DIM, **(opts | kw))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(np.random.default_rng(3), 5000)


@pytest.fixture()
def trained(data) -> AnnIndex:
    index = small_ann()
    index.add(np.arange(len(data[0])) + 10_000, data[0])
    assert index.trained
    return index


def exact_of(index: AnnIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = index.ids
    return ExactIndex.from_arrays(ids, index.vectors_of(ids)).search(queries, k)


def test_untrained_index_is_exact(data):
    gallery, probes = data
    index = small_ann()
    index.add(np.arange(500), gallery[:500])
    index.remove(np.arange(0, 500, 3))
    index.add(np.array([3]), gallery[3:4])  # reuses a freed row
    assert not index.trained and len(index) == 334
    keep = np.union1d(np.setdiff1d(np.arange(500), np.arange(0, 500, 3)), [3])
    ref = ExactIndex.from_arrays(keep, gallery[keep]).search(probes[:20], 5)
    got = index.search(probes[:20], 5)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], atol=1e-6)


def test_trains_once_big_enough_and_agrees_with_exact(trained, data):
    _, probes = data
    scores, ids = trained.search(probes, 10)
    ref_scores, ref_ids = exact_of(trained, probes, 10)
    assert (ids[:, 0] == ref_ids[:, 0]).mean() >= 0.99
    assert (ids[:, 0] == np.arange(len(probes)) + 10_000).mean() >= 0.99  # the mate is found
    strong = ref_scores >= 0.4
    recalled = [np.isin(ref_ids[r][strong[r]], ids[r]).sum() for r in range(len(probes))]
    assert sum(recalled) >= 0.99 * strong.sum()


def test_scores_are_exact_float32_dot_products(trained, data):
    _, probes = data
    scores, ids = trained.search(probes[:50], 7)
    expected = np.einsum("qkd,qd->qk", trained.vectors_of(ids.ravel()).reshape(50, 7, DIM), probes[:50])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_remove_and_readd(trained, data):
    gallery, probes = data
    _, ids = trained.search(probes[:1], 1)
    assert ids[0, 0] == 10_000
    trained.remove(np.array([10_000, 123]))  # 123 was never added
    assert len(trained) == len(gallery) - 1
    _, ids = trained.search(probes[:1], 5)
    assert 10_000 not in ids
    trained.add(np.array([10_001]), gallery[:1])  # id 10_001 now holds person 0's template
    assert len(trained) == len(gallery) - 1
    scores, ids = trained.search(gallery[:1], 3)
    assert ids[0, 0] == 10_001 and scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (ids == 10_001).sum() == 1  # the old template of 10_001 is gone
    trained.add(np.array([10_000]), gallery[:1] * -1)
    assert len(trained) == len(gallery)


def test_templates_added_after_removals_are_found(trained, data):
    """Regression for the FAISS fast-scan remove/add bug worked around in AnnIndex."""
    gallery, _ = data
    rng = np.random.default_rng(11)
    trained.candidates = 5  # the codes alone must rank each new template near the top
    gone = rng.choice(len(gallery), 37, replace=False)
    trained.remove(gone + 10_000)
    new = unit(rng.standard_normal((45, DIM)))
    trained.add(np.arange(45) + 90_000, new)
    trained.add(gone + 10_000, gallery[gone])
    _, ids = trained.search(np.vstack([new, gallery[gone]]), 1)
    np.testing.assert_array_equal(ids[:, 0], np.concatenate([np.arange(45) + 90_000, gone + 10_000]))
    assert trained._faiss.ntotal == len(trained)


def test_removed_rows_are_recycled(trained, data):
    gallery, _ = data
    capacity = len(trained._vectors)
    ids = np.arange(200) + 10_000
    for _ in range(5):
        trained.remove(ids)
        trained.add(ids, gallery[:200])
    assert len(trained._vectors) == capacity and len(trained) == len(gallery)


def test_duplicate_ids_in_one_batch_keep_the_last(data):
    gallery, _ = data
    index = small_ann()
    index.add(np.array([1, 2, 1]), gallery[:3])
    assert len(index) == 2
    np.testing.assert_array_equal(index.vectors_of(np.array([1])), gallery[2:3])


def test_padding_and_empty(data):
    gallery, probes = data
    index = small_ann()
    scores, ids = index.search(probes[:2], 4)
    assert (ids == -1).all() and np.isneginf(scores).all()
    index.add(np.array([4, 5]), gallery[:2])
    scores, ids = index.search(probes[:1], 4)
    assert sorted(ids[0, :2]) == [4, 5] and list(ids[0, 2:]) == [-1, -1]
    assert np.isneginf(scores[0, 2:]).all()


def test_trained_index_pads_beyond_its_candidates(trained, data):
    _, probes = data
    scores, ids = trained.search(probes[:3], 100)  # more than `candidates`: list grows to k
    assert ids.shape == (3, 100) and (ids[:, :10] >= 0).all()


def test_round_trip_through_bytes(trained, data):
    gallery, probes = data
    trained.remove(np.arange(10_000, 10_050))
    restored = index_from_bytes(trained.to_bytes())
    assert isinstance(restored, AnnIndex) and restored.trained and len(restored) == len(trained)
    for a, b in zip(trained.search(probes, 10), restored.search(probes, 10)):
        np.testing.assert_array_equal(a, b)
    restored.add(np.arange(10_000, 10_050), gallery[:50])  # still mutable after restore
    assert len(restored) == len(gallery)
    assert restored.search(probes[:1], 1)[1][0, 0] == 10_000


def test_untrained_round_trip_and_memory(data):
    gallery, probes = data
    index = small_ann()
    index.add(np.arange(100), gallery[:100])
    restored = AnnIndex.from_bytes(index.to_bytes())
    np.testing.assert_array_equal(index.search(probes[:5], 3)[1], restored.search(probes[:5], 3)[1])
    assert index.memory_bytes >= 100 * DIM * 4


def test_retrain_keeps_answers(trained, data):
    _, probes = data
    before = trained.search(probes[:200], 1)[1]
    trained.retrain()
    after = trained.search(probes[:200], 1)[1]
    assert (before == after).mean() >= 0.99


def test_too_small_to_train_stays_exact(data):
    gallery, probes = data
    index = small_ann(train_size=10)
    index.add(np.arange(50), gallery[:50])
    assert not index.trained
    index.retrain()
    assert not index.trained
    ref = ExactIndex.from_arrays(np.arange(50), gallery[:50]).search(probes[:5], 3)
    np.testing.assert_array_equal(index.search(probes[:5], 3)[1], ref[1])


def test_factory_picks_by_expected_size():
    assert isinstance(make_index(DIM, 1000), ExactIndex)
    assert isinstance(make_index(DIM, 200_000), ExactIndex)
    big = make_index(128, 2_000_000)
    assert isinstance(big, AnnIndex) and big.dim == 128
    assert isinstance(make_index(DIM, 500, exact_limit=100), AnnIndex)
    with pytest.raises(ValueError):
        index_from_bytes(_npz(kind="nonsense"))


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
