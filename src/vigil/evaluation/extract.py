"""Turning a list of image files into templates, timed, with failures counted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.engine.face_engine import FaceEngine
from vigil.engine.images import read_image_file
from vigil.errors import ImageError
from vigil.progress import progress_bar


@dataclass
class Extraction:
    paths: list[Path]
    vectors: np.ndarray  # (n, d), zero rows where no template came out
    found: np.ndarray  # bool (n,): a template came out
    gate_passed: np.ndarray  # bool (n,): the face would pass the enrolment quality gate
    gate_reasons: list[list[str]]
    seconds_engine: float  # detect + align + embed, decoding excluded
    seconds_total: float

    @property
    def failures_to_enrol(self) -> int:
        return int((~self.found).sum())

    @property
    def images_per_second(self) -> float:
        return len(self.paths) / self.seconds_engine if self.seconds_engine else 0.0


def extract(engine: FaceEngine, paths: list[Path], *, batch: int = 16, show_progress: bool = True,
            description: str = "Extracting templates") -> Extraction:
    n = len(paths)
    vectors = np.zeros((n, engine.pack.dim), dtype=np.float32)
    found = np.zeros(n, dtype=bool)
    passed = np.zeros(n, dtype=bool)
    reasons: list[list[str]] = [[] for _ in range(n)]
    engine_seconds = 0.0
    start_total = time.perf_counter()
    with progress_bar(description, n, enabled=show_progress) as advance:
        for start in range(0, n, batch):
            chunk = list(range(start, min(n, start + batch)))
            images, ok = [], []
            for i in chunk:
                try:
                    images.append(read_image_file(paths[i]))
                    ok.append(i)
                except ImageError as exc:
                    reasons[i] = [str(exc)]
            t0 = time.perf_counter()
            results = engine.primary_batch(images)
            engine_seconds += time.perf_counter() - t0
            for i, res in zip(ok, results):
                if res is None:
                    reasons[i] = ["no face found"]
                    continue
                vectors[i] = res.vector
                found[i] = True
                passed[i] = res.quality.passed
                reasons[i] = res.quality.reasons
            advance(len(chunk))
    return Extraction(list(paths), vectors, found, passed, reasons, engine_seconds,
                      time.perf_counter() - start_total)
