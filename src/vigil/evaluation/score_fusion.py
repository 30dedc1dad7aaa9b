"""Fusing two models' templates of the same images for the held-out identification protocol.

The fused template is the engine's (``engine/fusion.py``): ``[sqrt(w) a, sqrt(1 - w) b]``, whose
dot products are ``w * s_a + (1 - w) * s_b``. The weight is fitted per fold on the
*calibration* half's pairs only (a logistic regression of genuine vs impostor on the two
scores, ``fusion.fit_weight``), so the test half never informs it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from vigil.engine.fusion import fit_weight
from vigil.evaluation.protocol import EvalData, rng_for

IMPOSTOR_SAMPLE = 200_000
GENUINE_CAP = 50_000


def fused(a: EvalData, b: EvalData, weight: float) -> EvalData:
    """One EvalData whose templates are the weighted concatenation (a template needs both models)."""
    if a.names != b.names:
        raise ValueError("the two models' templates are not of the same images")
    found = a.found & b.found
    vectors = np.concatenate([a.vectors * math.sqrt(weight), b.vectors * math.sqrt(1.0 - weight)], axis=1)
    vectors[~found] = 0.0
    return replace(a, vectors=vectors, found=found, gate_passed=a.gate_passed & found,
                   model_id=f"fusion[{a.model_id}+{b.model_id}]w{weight:.3f}",
                   description={**a.description, "fused_with": b.model_id, "fusion_weight": round(weight, 4)})


def fit_weight_on(a: EvalData, b: EvalData, people: np.ndarray, seed: int) -> float:
    """The weight of ``a`` fitted on pairs of images of ``people`` only."""
    rng = rng_for(seed, "fusion-weight", int(people.sum()) if people.dtype == bool else len(people))
    keep = np.isin(a.person, people) & a.found & b.found
    images = np.nonzero(keep)[0]
    genuine = [(i, j) for p in np.unique(a.person[images]) for ix in [images[a.person[images] == p]]
               for k, i in enumerate(ix) for j in ix[k + 1:]]
    genuine = np.array(genuine, dtype=np.int64).reshape(-1, 2)
    if len(genuine) > GENUINE_CAP:
        genuine = genuine[rng.choice(len(genuine), GENUINE_CAP, replace=False)]
    pairs = rng.choice(images, size=(IMPOSTOR_SAMPLE, 2))
    impostor = pairs[a.person[pairs[:, 0]] != a.person[pairs[:, 1]]]
    both = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    sa = np.einsum("ij,ij->i", a.vectors[both[:, 0]], a.vectors[both[:, 1]])
    sb = np.einsum("ij,ij->i", b.vectors[both[:, 0]], b.vectors[both[:, 1]])
    return fit_weight(sa, sb, labels)
