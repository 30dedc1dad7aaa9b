"""Score-level fusion of two recognisers as one template.

With unit vectors ``a`` (SFace) and ``b`` (dlib) and weight ``w``, the fused template
``[sqrt(w) a, sqrt(1 - w) b]`` is itself a unit vector, and the dot product of two fused
templates is ``w * s_sface + (1 - w) * s_dlib``: a weighted sum of the two cosine scores,
which is z-score fusion up to an affine map (the weight absorbs the two score scales).
So fusion needs nothing special downstream: the index, calibration and thresholds treat
it as one more 256-dimensional model.
"""

from __future__ import annotations

import math

import numpy as np


class FusionEmbedder:
    def __init__(self, first, second, weight: float):
        if not 0.0 <= weight <= 1.0:
            raise ValueError("fusion weight must be within [0, 1]")
        self.first, self.second, self.weight = first, second, weight
        self.dim = first.dim + second.dim
        self.model_id = f"fusion[{first.model_id}+{second.model_id}]w{weight:.3f}"

    def embed(self, image: np.ndarray, faces) -> np.ndarray:
        return combine(self.first.embed(image, faces), self.second.embed(image, faces), self.weight)

    def split(self, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recover the two unit-vector parts of fused templates (0 < weight < 1)."""
        return split(fused, self.first.dim, self.weight)


def template_split(embedder) -> tuple[int, float] | None:
    """(first model's dimension, weight) of a fused embedder's templates; None for one model."""
    if isinstance(embedder, FusionEmbedder) and 0.0 < embedder.weight < 1.0:
        return embedder.first.dim, embedder.weight
    return None


def combine(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    return np.concatenate([a * math.sqrt(weight), b * math.sqrt(1.0 - weight)], axis=1).astype(np.float32)


def split(fused: np.ndarray, first_dim: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < weight < 1.0:
        raise ValueError("cannot split a fusion whose weight is 0 or 1")
    fused = np.atleast_2d(fused)
    return fused[:, :first_dim] / math.sqrt(weight), fused[:, first_dim:] / math.sqrt(1.0 - weight)


def fit_weight(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray, iterations: int = 50) -> float:
    """The weight of the first score in ``w * a + (1 - w) * b``, from a logistic regression of
    genuine vs impostor on the two scores (Newton's method, a little L2 for stability).

    Used inside each evaluation fold's training part, and on pairsDevTrain for the shipped
    weight. A smooth fit is steadier than picking the weight with the best training accuracy.
    """
    x = np.stack([np.asarray(scores_a, float), np.asarray(scores_b, float), np.ones(len(scores_a))], axis=1)
    y = np.asarray(labels, float)
    beta = np.zeros(3)
    ridge = np.diag([1e-3, 1e-3, 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
        grad = x.T @ (p - y) + ridge @ beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    a, b = max(beta[0], 0.0), max(beta[1], 0.0)
    return float(a / (a + b)) if a + b > 0 else 0.5
