"""Embedding a track's shots for live matching: one model, or two fused as a lazy cascade.

Single-model packs (SFace, a site's ArcFace-style ``custom`` model) embed every shot at once.

The fusion pack scores ``w * s_sface + (1 - w) * s_dlib`` (see :mod:`vigil.engine.fusion`),
and dlib's ResNet costs about twenty times SFace per face. So every shot gets its SFace
vector and its 150x150 dlib chip (cheap) straight away, and the dlib descriptor only when
the SFace part leaves some watchlist entry within reach of its threshold even if dlib were
to score a perfect 1.0 (:meth:`WatchlistMatcher.best_fused`). That bound is exact, so run
in line the cascade raises the same alerts as embedding everything with both models (in
real time dlib answers from a worker process, :mod:`vigil.live.second_model_worker`). The
chips are kept in the track's memory with its other shots and dropped with it.

The dlib pack alone cannot run live: its HOG detector has none of the batched,
multi-scale detection the live pipeline relies on. Watchlists and deployments refuse it
(:func:`vigil.engine.packs.check_live_pack`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.engine.faces import Face
from vigil.engine.fusion import FusionEmbedder
from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder, l2_normalise
from vigil.engine.packs import check_live_pack
from vigil.errors import ModelError


@dataclass
class ShotVectors:
    """One shot's templates: the first model's now, the second's (if any) on demand."""

    primary: np.ndarray
    chip: np.ndarray | None = None
    secondary: np.ndarray | None = None


class ShotEmbedder:
    def __init__(self, pack):
        check_live_pack(pack.name)
        embedder = pack.embedder
        if isinstance(embedder, FusionEmbedder):
            self.first, self.second, self.weight = embedder.first, embedder.second, embedder.weight
        else:
            self.first, self.second, self.weight = embedder, None, 1.0
        if not isinstance(self.first, OnnxArcFaceEmbedder):
            raise ModelError(f"live recognition needs an ArcFace-style ONNX recogniser, not {type(self.first).__name__}")
        if self.second is not None:
            self.second.load()  # fails before the first frame if the dlib extra is missing

    @property
    def cascade(self) -> bool:
        return self.second is not None

    @property
    def split(self) -> tuple[int, float] | None:
        """(dimension of the first model's part, its weight) for the matcher; None for one model."""
        return (self.first.dim, self.weight) if self.cascade else None

    def embed(self, image: np.ndarray, faces: list[Face], crops: list[np.ndarray]) -> list[ShotVectors]:
        """Shots for faces of one frame; ``crops`` are their 112x112 aligned crops."""
        if not faces:
            return []
        if self.first.size == 112:
            primary = self.first.embed_aligned(crops)
        else:
            primary = self.first.embed(image, faces)
        chips = self.second.chips(image, faces) if self.cascade else [None] * len(faces)
        return [ShotVectors(p, c) for p, c in zip(primary, chips)]

    def complete(self, shots: list[ShotVectors]) -> int:
        """Compute the second model's vector where it is missing; returns how many were computed."""
        todo = [s for s in shots if s.secondary is None and s.chip is not None]
        if not todo:
            return 0
        for shot, vector in zip(todo, self.second.embed_chips([s.chip for s in todo])):
            shot.secondary = vector
        return len(todo)


def weighted_template(vectors: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The quality-weighted mean of unit templates, back on the unit sphere."""
    return l2_normalise((np.stack(vectors) * weights[:, None]).sum(0))
