"""Open-set identification with a threshold calibrated on held-out people: the protocol for
comparing score normalisation and several reference photos per person fairly.

Why a second protocol: the standard one (``identification.py``) sets the live threshold
from the shipped calibration table, which was built from the same LFW images it is tested
on. A normalised score has no shipped table, and its threshold must come from data disjoint
from the people it is tested on, or the comparison would flatter it. So:

* the people are split in two halves (seeded). Each half serves once as the **test** half
  and once as the **calibration** half (2 folds, ``splits`` watchlists each, pooled);
* in the calibration half, ``cohort_people`` people (one gate-passing image each) form the
  **cohort**, a stand-in for the templates a site collects from its own data; the rest give
  the **calibration comparisons**: every calibration entry (a gate-passing image, plus up to
  ``references - 1`` other images of the same person) against every templated image of
  another calibration person, scored exactly as the test scores them;
* the live threshold for a watchlist of N people and an accepted rate r per face is the
  smallest grid score whose calibration FMR is <= r / N (the deployment's own rule);
* the test half is searched as in ``identification.py`` (watchlist of N drawn among its
  people, mated and non-mated probes from it), with the normalised score for ranking and for
  the threshold alike.

The baseline (raw cosine, one reference) is calibrated the same way, so every configuration
in a table is compared on the same searches with the same kind of threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vigil.engine.score_norm import CohortNormaliser
from vigil.errors import VigilError
from vigil.evaluation.identification import Searches, Split, draw_watchlist
from vigil.evaluation.multiref import EntryScorer, pick_references
from vigil.evaluation.protocol import EvalData, quantise, rng_for, sig, to_score

NO_TEMPLATE = np.iinfo(np.int32).min // 2  # below any normalised score
KEEP_TOP = 5000  # calibration scores kept: enough for FMR down to KEEP_TOP / comparisons


@dataclass(frozen=True)
class Variant:
    score_norm: str | None = None  # None, "symmetric" or "entry" (see engine/score_norm.py)
    references: int = 1
    rule: str = "max"  # how a multi-reference entry scores: "max" or "mean" (mean template)
    top_k: int = 100
    cohort_people: int = 1000

    def __post_init__(self):
        from vigil.engine.score_norm import MODES
        from vigil.evaluation.multiref import RULES

        if self.score_norm is not None and self.score_norm not in MODES:
            raise VigilError(f"--score-norm must be none, {' or '.join(MODES)}; got {self.score_norm!r}")
        if self.rule not in RULES:
            raise VigilError(f"--reference-rule must be {' or '.join(RULES)}; got {self.rule!r}")
        if not 1 <= self.references <= 3:
            raise VigilError("--references must be 1, 2 or 3")

    def describe(self) -> dict:
        return asdict(self)


class HeldoutCalibration:
    """FMR -> threshold from the highest calibration impostor scores (grid integers)."""

    def __init__(self, top_desc: np.ndarray, comparisons: int, model_id: str):
        self.top_desc, self.comparisons, self.model_id = top_desc, comparisons, model_id

    def grid_threshold_for(self, fmr: float) -> int:
        k = int(np.floor(fmr * self.comparisons + 1e-9))
        if k >= len(self.top_desc):
            raise VigilError(f"FMR {fmr:g} needs more than {KEEP_TOP} calibration scores kept")
        return int(self.top_desc[k]) + 1

    def threshold_for(self, fmr: float) -> float:
        return to_score(self.grid_threshold_for(fmr))

    def supported(self, fmr: float) -> bool:
        return fmr * self.comparisons >= 3

    def summary(self) -> dict:
        return {"comparisons": self.comparisons, "smallest_supported_fmr": sig(3 / max(self.comparisons, 1))}


class Scoring:
    """Raw or cohort-normalised scores of probes against entries, on the 1e-5 grid."""

    def __init__(self, data: EvalData, variant: Variant, cohort_images: np.ndarray):
        self.data, self.variant = data, variant
        self.norm = None
        if variant.score_norm:
            self.norm = CohortNormaliser(data.vectors[cohort_images], top_k=variant.top_k,
                                         mode=variant.score_norm, cohort_labels=data.person[cohort_images])
            self._probe_stats = self.norm.stats(data.vectors, labels=data.person)

    def scores(self, probes: np.ndarray, entries: EntryScorer) -> np.ndarray:
        raw = entries.raw(self.data.vectors[probes])
        if self.norm is not None:
            entry_stats = entries.cached_stats(self.norm)
            probe_stats = type(entry_stats)(self._probe_stats.mean[probes], self._probe_stats.std[probes])
            raw = self.norm.normalise(raw, probe_stats, entry_stats)
        q = quantise(raw)
        return np.where(self.data.found[probes][:, None], q, NO_TEMPLATE).astype(np.int32)


def partition(data: EvalData, seed: int) -> np.ndarray:
    """Half (0 or 1) of every person, seeded."""
    half = np.zeros(len(data.people), dtype=np.int64)
    order = rng_for(seed, "heldout-partition").permutation(len(data.people))
    half[order[len(order) // 2:]] = 1
    return half


def check_feasible(data: EvalData, half: np.ndarray, size: int, variant: Variant) -> None:
    """Each half must hold a watchlist of ``size`` people, and a cohort and calibration people besides."""
    images_of = data.images_of()
    enrolable = np.array([bool(data.gate_passed[ix].any()) for ix in images_of])
    for fold in (0, 1):
        have = int((enrolable & (half == fold)).sum())
        if have < max(size, 4):
            raise VigilError(f"the held-out protocol splits the people in two halves; a half has {have} enrolable "
                             f"people, too few for a watchlist of {size} (or for a cohort and calibration "
                             f"people, which need at least 4)")


def calibrate(data: EvalData, variant: Variant, people: np.ndarray, seed: int, fold: int,
              block: int = 1024) -> tuple[HeldoutCalibration, np.ndarray]:
    """The cohort (image indices) and the calibration built from the other ``people``."""
    rng = rng_for(seed, "heldout-calibration", fold)
    images_of = data.images_of()
    enrolable = [p for p in people if data.gate_passed[images_of[p]].any()]
    chosen = rng.choice(len(enrolable), size=min(variant.cohort_people, len(enrolable) // 2), replace=False)
    cohort_people = np.sort(np.asarray(enrolable)[chosen])
    cohort = np.array([rng.choice(images_of[p][data.gate_passed[images_of[p]]]) for p in cohort_people])
    rest = np.setdiff1d(np.asarray(people), cohort_people)
    entry_images = np.concatenate([images_of[p][data.gate_passed[images_of[p]]] for p in rest])
    refs = pick_references(data, images_of, entry_images, variant.references, rng)
    entries = EntryScorer(data, refs, variant.rule)
    scoring = Scoring(data, variant, cohort)
    probes = np.concatenate([images_of[p] for p in rest])
    probes = probes[data.found[probes]]
    entry_person = data.person[entry_images]
    top, comparisons = np.zeros(0, dtype=np.int32), 0
    for lo in range(0, len(probes), block):
        rows = probes[lo:lo + block]
        s = scoring.scores(rows, entries)
        impostor = data.person[rows][:, None] != entry_person[None, :]
        vals = s[impostor]
        comparisons += len(vals)
        if len(vals) > KEEP_TOP:
            vals = np.partition(vals, len(vals) - KEEP_TOP)[-KEEP_TOP:]
        top = np.sort(np.concatenate([top, vals]))[::-1][:KEEP_TOP]
    return HeldoutCalibration(top, comparisons, data.model_id), cohort


def make_test_split(data: EvalData, people: np.ndarray, size: int, references: int,
                    rng: np.random.Generator) -> tuple[Split, np.ndarray]:
    """A watchlist drawn among ``people`` (the test half) and its searches, with references."""
    images_of = data.images_of()
    multi = [p for p in people if len(images_of[p]) >= 2 and data.gate_passed[images_of[p]].any()]
    single = [p for p in people if len(images_of[p]) == 1 and data.gate_passed[images_of[p]].any()]
    watchlist = draw_watchlist(multi, single, size, rng, "half the data").astype(np.int64)
    refs = np.full((size, references), -1, dtype=np.int64)
    mated, mate_col = [], []
    for col, person in enumerate(watchlist):
        images = images_of[person]
        usable = rng.permutation(images[data.gate_passed[images]])
        keep = max(1, min(references, len(usable), len(images) - 1))  # a probed person keeps a probe
        refs[col, :keep] = usable[:keep]
        others = np.setdiff1d(images, usable[:keep])
        mated.append(others)
        mate_col.append(np.full(len(others), col))
    in_test = np.zeros(len(data.people), dtype=bool)
    in_test[people] = True
    in_test[watchlist] = False
    non = np.nonzero(in_test[data.person])[0]
    split = Split(size=size, watchlist=watchlist, enrol=refs[:, 0], mated=np.concatenate(mated),
                  mate_col=np.concatenate(mate_col), nonmated=non[data.found[non]],
                  nonmated_without_template=int((~data.found[non]).sum()), probed_people=min(size, len(multi)),
                  enrolled_never_probed=size - min(size, len(multi)))
    return split, refs


def search(data: EvalData, split: Split, entries: EntryScorer, scoring: Scoring, block: int = 2048) -> Searches:
    mate_score = np.empty(len(split.mated), dtype=np.int32)
    mate_rank = np.empty(len(split.mated), dtype=np.int64)
    for lo in range(0, len(split.mated), block):
        rows = split.mated[lo:lo + block]
        s = scoring.scores(rows, entries)
        mate = s[np.arange(len(rows)), split.mate_col[lo:lo + block]]
        rank = (s >= mate[:, None]).sum(axis=1)
        mate_score[lo:lo + block] = mate
        mate_rank[lo:lo + block] = np.where(data.found[rows], rank, split.size + 1)
    top = np.concatenate([scoring.scores(split.nonmated[lo:lo + block], entries).max(axis=1)
                          for lo in range(0, len(split.nonmated), block)] or [np.zeros(0, np.int32)])
    return Searches(mate_score, mate_rank, top, split.nonmated)


def evaluate_heldout(data: EvalData, variant: Variant, *, size: int = 1000, seed: int = 0, splits: int = 10,
                     second: EvalData | None = None, show_progress: bool = True) -> dict:
    """Both folds, ``splits`` watchlists in all, pooled; JSON-ready (private helpers removed).
    With ``second`` (another model's templates of the same images) the two are fused, with
    the weight fitted on each fold's calibration half."""
    from vigil.evaluation.heldout_summary import live_by_sex, summarise_folds
    from vigil.evaluation.identification import strip_private
    from vigil.evaluation.score_fusion import fit_weight_on, fused
    from vigil.progress import progress_bar

    model_id, weights, first = data.model_id, [], data

    half = partition(data, seed)
    check_feasible(data, half, size, variant)
    per_fold = [splits // 2 + (splits % 2 if f == 0 else 0) for f in (0, 1)]
    all_splits, results, calibrations = [], [], []
    with progress_bar("Held-out calibration and searches", splits + 2, enabled=show_progress) as advance:
        for fold in (0, 1):
            test_people = np.nonzero(half == fold)[0]
            cal_people = np.nonzero(half != fold)[0]
            if second is not None:
                weights.append(fit_weight_on(first, second, cal_people, seed))
                data = fused(first, second, weights[-1])
                model_id = data.model_id.rsplit("]w", 1)[0] + "]"
            cal, cohort = calibrate(data, variant, cal_people, seed, fold)
            calibrations.append(cal)
            scoring = Scoring(data, variant, cohort)
            advance()
            for k in range(per_fold[fold]):
                split, refs = make_test_split(data, test_people, size, variant.references,
                                              rng_for(seed, "heldout-split", fold, k))
                entries = EntryScorer(data, refs, variant.rule)
                all_splits.append(split)
                results.append(search(data, split, entries, scoring))
                advance()
    summary = summarise_folds(size, all_splits, results, calibrations, data.names)
    summary["at_live_settings_by_sex"] = live_by_sex(data, all_splits, results, calibrations, size, seed)
    out = {"protocol": "held-out calibration (2 folds over people)", "seed": seed, "splits": splits,
           "model_id": model_id, "variant": variant.describe(),
           **({"fusion_weight_per_fold": [round(w, 4) for w in weights]} if weights else {}),
           "calibration_folds": [c.summary() for c in calibrations], **summary}
    return strip_private(out)
