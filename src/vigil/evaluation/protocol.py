"""The evaluation data set: one template per image, who it shows, and their labels.

Every evaluation (verification, open-set identification, demographic differentials)
starts from the same :class:`EvalData`, so they all see the same templates, the same
failures to enrol and the same quality-gate verdicts.

Determinism. ONNX Runtime may return slightly different floats with a different thread
count, and BLAS may sum in a different order. So scores are computed in float64 and then
*quantised* to integers on a 1e-5 grid (:func:`quantise`) before anything is thresholded,
ranked or counted: every threshold in the evaluation is an integer on that grid, every
count is exact, and the JSON only changes if a template moves a score across a grid line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zlib import crc32

import numpy as np

SCALE = 100_000  # scores are integers in units of 1e-5
NO_SCORE = -SCALE - 1  # an image without a template: below every real score, never a match


def quantise(scores: np.ndarray) -> np.ndarray:
    """Cosine scores -> int32 on the 1e-5 grid."""
    return np.rint(np.asarray(scores, dtype=np.float64) * SCALE).astype(np.int32)


def to_score(q) -> float:
    """Grid integer -> score (exactly 5 decimals, so JSON is stable)."""
    return round(float(q) / SCALE, 5)


def to_grid(score: float) -> int:
    return int(np.rint(score * SCALE))


def sig(x, digits: int = 6):
    """Round to significant digits (None for None/NaN/inf): stable JSON that does not
    pretend to more precision than the counts behind it."""
    if x is None:
        return None
    x = float(x)
    if not np.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def rate_key(rate: float) -> str:
    """JSON key of a rate: 0.001, 0.0001, 0.00001 (never 1e-05)."""
    return np.format_float_positional(float(rate), trim="-")


def rng_for(seed: int, *keys) -> np.random.Generator:
    """An independent, reproducible stream for (seed, keys...). Strings are hashed with
    crc32 (stable across runs, unlike ``hash``), so adding or removing one part of an
    evaluation never shifts the random numbers another part sees."""
    parts = [int(seed)] + [k if isinstance(k, int) else crc32(str(k).encode()) for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(parts)))


@dataclass
class EvalData:
    """Templates of a labelled image set. ``person`` holds integer codes into ``people``."""

    names: list[str]  # image file names
    person: np.ndarray  # int (n,)
    people: list[str]
    vectors: np.ndarray  # float64 (n, d); zero rows where no template came out
    found: np.ndarray  # bool (n,)
    gate_passed: np.ndarray  # bool (n,)
    gate_reasons: list[list[str]]
    sex: np.ndarray = field(default=None)  # str (n,): 'male' / 'female' / '' unknown
    race: np.ndarray = field(default=None)  # str (n,): the person's label, '' unlabelled
    model_id: str = "synthetic"
    description: dict = field(default_factory=dict)
    split: tuple[int, float] | None = None  # a fused model's (first dimension, weight): see mean_template

    def __post_init__(self):
        n = len(self.names)
        self.person = np.asarray(self.person, dtype=np.int64)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float64)
        self.found = np.asarray(self.found, dtype=bool)
        self.gate_passed = np.asarray(self.gate_passed, dtype=bool) & self.found
        if self.sex is None:
            self.sex = np.full(n, "", dtype=object)
        if self.race is None:
            self.race = np.full(n, "", dtype=object)
        self.sex = np.asarray(self.sex, dtype=object)
        self.race = np.asarray(self.race, dtype=object)

    @property
    def n(self) -> int:
        return len(self.names)

    def images_of(self) -> list[np.ndarray]:
        """Image indices per person code, in file order."""
        order = np.argsort(self.person, kind="stable")
        bounds = np.searchsorted(self.person[order], np.arange(len(self.people) + 1))
        return [order[bounds[k]:bounds[k + 1]] for k in range(len(self.people))]

    def scores(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Quantised scores (len(rows), len(cols)); NO_SCORE where either side has no template."""
        s = quantise(self.vectors[rows] @ self.vectors[cols].T)
        ok = self.found[rows][:, None] & self.found[cols][None, :]
        return np.where(ok, s, NO_SCORE).astype(np.int32)


def race_group(label: str) -> str:
    """One group per single label; people with several labels form one 'multiple' group
    (too few of each mix to say anything about it on its own)."""
    label = (label or "").strip()
    if not label:
        return ""
    return "multiple" if "," in label else label


def load_lfw(settings, engine, data: Path, *, show_progress: bool = True) -> EvalData:
    """All images of an LFW folder, extracted through the template cache (template_cache.py)."""
    from vigil.evaluation.lfw_data import LFW
    from vigil.evaluation.template_cache import cached_extract

    lfw = LFW(data)
    ids = lfw.identities()
    paths, person, people = [], [], []
    for code, (name, files) in enumerate(sorted(ids.items())):
        people.append(name)
        paths.extend(files)
        person.extend([code] * len(files))
    ext = cached_extract(settings, engine, paths, show_progress=show_progress,
                         description=f"Templates ({engine.pack.name})")
    sex_of = lfw.sex_labels()
    race_of = lfw.race_labels()
    names = [p.name for p in paths]
    sex = np.array([sex_of.get(nm, "") for nm in names], dtype=object)
    race = np.array([race_group(race_of.get(people[c], "")) for c in person], dtype=object)
    counts = np.bincount(np.asarray(person), minlength=len(people))
    description = {
        "name": "LFW-a (Labeled Faces in the Wild, aligned variant)",
        "root": str(Path(data).expanduser()),
        "images": len(paths),
        "people": len(people),
        "people_with_2_or_more_images": int((counts >= 2).sum()),
        "images_without_template": int((~ext.found).sum()),
        "images_failing_quality_gate": int((ext.found & ~ext.gate_passed).sum()),
        "sex_labelled_images": int((sex != "").sum()),
        "race_labelled_people": int(sum(1 for p in people if race_of.get(p))),
        "notes": [
            "Grayscale news photographs of public figures, 250x250, already roughly aligned (LFW-a): "
            "easier than live CCTV (pose, light, distance, motion blur, colour).",
            "Sex labels per image: Afifi & Abdelhamed (arXiv:1706.04277), hand-checked; names in both "
            "lists are treated as unknown.",
            "Race labels per person: usc-sail/mica-race-from-face for 866 people; people with several "
            "labels are grouped as 'multiple'. Labels were assigned by annotators from photographs.",
            "22 reviewed label errors are corrected (evaluation/lfw_errata.json: aliases of one person "
            "merged, misfiled photographs dropped); twins and siblings stay distinct people.",
            "The shipped calibration table of this model was built from the same LFW images, so "
            "thresholds chosen from it are not independent of this test data.",
        ],
    }
    from vigil.engine.fusion import template_split

    return EvalData(names=names, person=np.asarray(person), people=people,
                    vectors=ext.vectors.astype(np.float64), found=ext.found, gate_passed=ext.gate_passed,
                    gate_reasons=ext.gate_reasons, sex=sex, race=race, model_id=engine.model_id,
                    description=description, split=template_split(engine.pack.embedder))
