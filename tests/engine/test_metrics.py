import numpy as np
import pytest

from vigil.evaluation.metrics import best_threshold_accuracy, eer, kfold_accuracy, tar_at_far


def test_perfectly_separated_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    acc, th = best_threshold_accuracy(scores, labels)
    assert acc == 1.0 and 0.3 < th < 0.7
    rate, _ = eer(scores[labels == 1], scores[labels == 0])
    assert rate == 0.0


def test_known_accuracy_with_overlap():
    scores = np.array([0.1, 0.2, 0.6, 0.4, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    acc, _ = best_threshold_accuracy(scores, labels)
    assert acc == pytest.approx(5 / 6)


def test_tar_at_far_counts_impostors_above():
    impostor = np.linspace(0, 1, 1000, endpoint=False)  # 0.000 ... 0.999
    genuine = np.array([0.9985, 0.9995, 0.5])
    tar, th = tar_at_far(genuine, impostor, 1e-3)
    assert (impostor >= th).sum() <= 1
    assert tar == pytest.approx(1 / 3) or tar == pytest.approx(2 / 3)
    assert np.isnan(tar_at_far(genuine, impostor[:10], 1e-3)[0])  # too few impostors to say


def test_eer_of_symmetric_gaussians():
    rng = np.random.default_rng(0)
    gen, imp = rng.normal(1, 1, 200_000), rng.normal(-1, 1, 200_000)
    rate, th = eer(gen, imp)
    assert rate == pytest.approx(0.1587, abs=0.004)  # Phi(-1)
    assert abs(th) < 0.02


def test_kfold_fits_threshold_on_other_folds():
    rng = np.random.default_rng(1)
    labels = np.tile([1, 0], 500).astype(bool)
    scores = np.where(labels, rng.normal(1, 0.5, 1000), rng.normal(-1, 0.5, 1000))
    folds = np.repeat(np.arange(10), 100)
    mean, std, per = kfold_accuracy(scores, labels, folds)
    assert len(per) == 10 and 0.97 < mean <= 1.0 and std >= 0
