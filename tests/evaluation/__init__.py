"""Tests of the evaluation suite on synthetic templates and score sets whose right answers
are known by construction (no LFW, no models, no network).

:func:`make_data` builds an :class:`~vigil.evaluation.protocol.EvalData` of unit vectors:
each person has a random direction, each image that direction plus noise, and a group
may share an extra common direction (``group_pull``) so that impostors inside that group
look more alike - a built-in FMR differential.
"""

from __future__ import annotations

import numpy as np

from vigil.evaluation.protocol import EvalData


def make_data(people: int = 300, *, seed: int = 0, dim: int = 64, noise: float = 0.12,
              counts=(1, 1, 2, 3, 5), groups: dict[str, float] | None = None, attribute: str = "sex",
              fte: dict[str, float] | None = None, gate_fail: dict[str, float] | None = None) -> EvalData:
    """``groups``: name -> pull towards a group direction (0 = none), assigned round robin.
    ``fte`` / ``gate_fail``: name -> share of images without template / failing the gate."""
    rng = np.random.default_rng(seed)
    groups = groups or {"male": 0.0, "female": 0.0}
    names = list(groups)
    person_group = np.array([names[p % len(names)] for p in range(people)], dtype=object)
    n_img = rng.choice(counts, size=people)
    person = np.repeat(np.arange(people), n_img)
    centre = rng.normal(size=(people, dim))
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    direction = {g: v / np.linalg.norm(v) for g, v in zip(names, rng.normal(size=(len(names), dim)))}
    for p in range(people):
        pull = groups[person_group[p]]
        centre[p] = centre[p] + pull * direction[person_group[p]]
        centre[p] /= np.linalg.norm(centre[p])
    v = centre[person] + rng.normal(size=(len(person), dim)) * noise
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    g = person_group[person]
    found = np.ones(len(person), dtype=bool)
    gate = np.ones(len(person), dtype=bool)
    for name, share in (fte or {}).items():
        found &= ~((g == name) & (rng.random(len(person)) < share))
    for name, share in (gate_fail or {}).items():
        gate &= ~((g == name) & (rng.random(len(person)) < share))
    v[~found] = 0.0
    reasons = [["under-exposed: brightness 30/255 (minimum 40)"] if not ok else [] for ok in gate]
    empty = np.full(len(person), "", dtype=object)
    return EvalData(names=[f"p{person[i]}_{i:05d}.jpg" for i in range(len(person))], person=person,
                    people=[f"p{i}" for i in range(people)], vectors=v, found=found, gate_passed=gate,
                    gate_reasons=reasons, sex=g if attribute == "sex" else empty,
                    race=g if attribute == "race" else empty)
