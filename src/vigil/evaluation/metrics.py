"""Verification metrics on score sets (higher score = more alike)."""

from __future__ import annotations

import numpy as np


def best_threshold_accuracy(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy when deciding ``score >= threshold``."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], labels[order]
    n = len(s)
    # Threshold between position i-1 and i: predictions >= threshold are s[i:].
    genuine_above = np.concatenate([[y.sum()], y.sum() - np.cumsum(y)])  # genuine in s[i:]
    impostor_below = np.concatenate([[0], np.cumsum(~y)])  # impostors in s[:i]
    correct = genuine_above + impostor_below
    # Only cut between distinct scores.
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = s[1:] != s[:-1]
    correct = np.where(valid, correct, -1)
    i = int(np.argmax(correct))
    if i == 0:
        threshold = s[0] - 1e-6
    elif i == n:
        threshold = s[-1] + 1e-6
    else:
        threshold = (s[i - 1] + s[i]) / 2
    return float(correct[i] / n), float(threshold)


def far_frr(genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    genuine = np.sort(np.asarray(genuine, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / max(len(impostor), 1)
    frr = np.searchsorted(genuine, thresholds, side="left") / max(len(genuine), 1)
    return far, frr


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """Smallest threshold with at most ``far`` of impostors scoring >= it (strictly above a score)."""
    imp = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    k = int(np.floor(far * len(imp)))
    if k >= len(imp):
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.inf))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the given FAR, or (nan, nan) if the impostor set is too small."""
    if len(impostor) == 0 or far * len(impostor) < 1.0 - 1e-9:
        return float("nan"), float("nan")
    th = threshold_at_far(impostor, far)
    return float((np.asarray(genuine) >= th).mean()), th


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold) where FAR and FRR cross (linear between grid points)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    far, frr = far_frr(genuine, impostor, thresholds)
    diff = far - frr
    idx = int(np.argmax(diff <= 0)) if np.any(diff <= 0) else len(diff) - 1
    if idx == 0:
        return float((far[0] + frr[0]) / 2), float(thresholds[0])
    # interpolate between idx-1 (far > frr) and idx (far <= frr)
    d0, d1 = diff[idx - 1], diff[idx]
    t = d0 / (d0 - d1) if d0 != d1 else 0.5
    rate = far[idx - 1] + t * (far[idx] - far[idx - 1])
    th = thresholds[idx - 1] + t * (thresholds[idx] - thresholds[idx - 1])
    return float(rate), float(th)


def roc_curve(genuine: np.ndarray, impostor: np.ndarray, points: int = 200) -> dict:
    """FAR/TAR on a log-spaced FAR grid (for plots and JSON)."""
    fars = np.logspace(np.log10(max(1.0 / max(len(impostor), 1), 1e-6)), 0, points)
    rows = [tar_at_far(genuine, impostor, f) for f in fars]
    return {"far": fars.tolist(), "tar": [r[0] for r in rows], "threshold": [r[1] for r in rows]}


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float]]:
    """Mean and std of accuracy over folds, each fold's threshold fitted on the others."""
    accs = []
    for k in np.unique(folds):
        test = folds == k
        _, th = best_threshold_accuracy(scores[~test], labels[~test])
        accs.append(float(((scores[test] >= th) == labels[test].astype(bool)).mean()))
    return float(np.mean(accs)), float(np.std(accs)), accs
