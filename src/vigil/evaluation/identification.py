"""Open-set identification: how a live watchlist deployment behaves.

Each split (drawn from the seed) puts N people on a watchlist with one enrolment image
each, then searches every other image against it:

* enrolment image: drawn at random among the person's images that produced a template
  *and* pass the enrolment quality gate (Vigil refuses the others); people with no such
  image are never watchlisted;
* watchlisted people are drawn among people with two or more images, so that each has
  at least one *mated* probe; when N exceeds their number (LFW: 1,680) the rest of the
  watchlist is filled with one-image people, enrolled but never probed (reported as
  ``enrolled_never_probed``); they still compete for every search;
* mated probes: the other images of watchlisted people. An image without a template is a
  miss (a face the system never saw cannot raise an alert);
* non-mated probes: every image of a person not on the watchlist. One without a template
  produces no search and is left out of the FPIR denominator (reported).

Per search: the mate's rank (1 + the number of other watchlist entries scoring at least
as high, so ties count against the mate) and score; for a non-mated search the top score.

FPIR(t) = non-mated searches whose top score >= t / non-mated searches.
FNIR(t) = mated searches where the mate is not returned at rank 1 with score >= t
(the live definition: an alert names the top candidate) / mated searches.
Rank-k (closed set, no threshold) = mated searches with the mate's rank <= k.

Pooled figures concatenate the searches of all splits; per-split figures show the spread.
The threshold at an FPIR f is the smallest grid threshold with FPIR <= f. An FPIR below
3/n (n = non-mated searches per split) is not *supported*: zero observed false positives
would not show the rate is that low, so no FNIR is reported there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.errors import VigilError
from vigil.evaluation.bootstrap import binomial_upper_bound, smallest_supportable_rate, zero_upper_bound
from vigil.evaluation.protocol import NO_SCORE, EvalData, quantise, rate_key, rng_for, sig, to_grid, to_score
from vigil.progress import progress_bar

FPIRS = (0.1, 0.01, 0.001, 0.0001)
RANKS = (1, 5, 10)
SIZES = (100, 1000, 5000)
THRESHOLD_GRID = np.round(np.arange(0.0, 0.905, 0.01), 2)
LIVE_RATES = (1e-4, 1e-3)  # false alerts per face a deployment may accept
MAX_LISTED = 200  # probe photos named per live setting (every one, unless a setting is hopeless)


@dataclass
class Split:
    size: int
    watchlist: np.ndarray  # person codes, gallery order
    enrol: np.ndarray  # enrolment image per gallery entry
    mated: np.ndarray  # probe image indices
    mate_col: np.ndarray  # gallery column of each mated probe's mate
    nonmated: np.ndarray  # images of non-watchlisted people that have a template
    nonmated_without_template: int
    probed_people: int
    enrolled_never_probed: int
    refs: np.ndarray | None = None  # (size, r) reference images per entry, -1 padded (None: ``enrol`` only)

    @property
    def reference_counts(self) -> np.ndarray:
        return np.ones(self.size, np.int64) if self.refs is None else (self.refs >= 0).sum(axis=1)


@dataclass
class Searches:
    mate_score: np.ndarray  # int grid scores (NO_SCORE: no template)
    mate_rank: np.ndarray  # 1-based; size + 1 where the probe had no template
    nonmated_top: np.ndarray  # int grid scores
    nonmated_image: np.ndarray | None = None  # the probe image of each non-mated search
    # live decisions with each entry's own threshold (entries averaging k photos use the table
    # of k-photo entries): rate key -> (mated search alerted on its mate, non-mated search alerted)
    live: dict | None = None


def candidates(data: EvalData, images_of: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(people with 2+ images, people with 1 image) who have an enrolable image."""
    enrolable = np.array([bool(data.gate_passed[ix].any()) for ix in images_of])
    counts = np.array([len(ix) for ix in images_of])
    codes = np.arange(len(images_of))
    return codes[enrolable & (counts >= 2)], codes[enrolable & (counts == 1)]


def draw_watchlist(multi, single, size: int, rng: np.random.Generator, where: str = "the data") -> np.ndarray:
    """``size`` people: as many as possible with 2+ images (so they can be probed), the rest
    filled with people of one image; each part sorted."""
    if size > len(multi) + len(single):
        raise VigilError(f"a watchlist of {size} needs {size} enrolable people; {where} has "
                         f"{len(multi) + len(single)}")
    probed = np.sort(rng.choice(multi, size=min(size, len(multi)), replace=False))
    filler = np.sort(rng.choice(single, size=size - len(probed), replace=False)) if size > len(multi) else \
        np.zeros(0, dtype=np.int64)
    return np.concatenate([probed, filler])


def make_split(data: EvalData, images_of: list[np.ndarray], size: int, rng: np.random.Generator,
               references: int = 1, ref_rng: np.random.Generator | None = None) -> Split:
    """A watchlist and its searches. With ``references`` > 1 each listed person is enrolled
    from up to that many gate-passing images (the first drawn as with one, the others from
    ``ref_rng``), always keeping one image to probe with; the entry is their mean template."""
    multi, single = candidates(data, images_of)
    watchlist = draw_watchlist(multi, single, size, rng)
    enrol = np.empty(size, dtype=np.int64)
    refs = np.full((size, references), -1, dtype=np.int64)
    mated, mate_col = [], []
    for col, person in enumerate(watchlist):
        images = images_of[person]
        usable = images[data.gate_passed[images]]
        enrol[col] = usable[rng.integers(len(usable))]
        refs[col, 0] = enrol[col]
        if references > 1:
            extra = ref_rng.permutation(usable[usable != enrol[col]])[:max(0, min(references, len(images) - 1) - 1)]
            refs[col, 1:1 + len(extra)] = extra
        others = np.setdiff1d(images, refs[col][refs[col] >= 0]) if references > 1 else images[images != enrol[col]]
        mated.append(others)
        mate_col.append(np.full(len(others), col))
    on_list = np.zeros(len(images_of), dtype=bool)
    on_list[watchlist] = True
    non = np.nonzero(~on_list[data.person])[0]
    return Split(size=size, watchlist=watchlist, enrol=enrol, mated=np.concatenate(mated),
                 mate_col=np.concatenate(mate_col), nonmated=non[data.found[non]],
                 nonmated_without_template=int((~data.found[non]).sum()), probed_people=min(size, len(multi)),
                 enrolled_never_probed=size - min(size, len(multi)), refs=refs if references > 1 else None)


def entry_scorer(data: EvalData, split: Split):
    """Quantised scores of probe images against the split's entries (mean templates where
    an entry has several references, as the live snapshot makes them)."""
    if split.refs is None:
        return lambda rows: data.scores(rows, split.enrol)
    from vigil.engine.calibration import mean_template

    templates = np.stack([mean_template(data.vectors[r[r >= 0]], data.split) for r in split.refs]).astype(np.float64)

    def scores(rows):
        s = quantise(data.vectors[rows] @ templates.T)
        return np.where(data.found[rows][:, None], s, NO_SCORE).astype(np.int32)
    return scores


def search(data: EvalData, split: Split, block: int = 2048, live_thresholds: dict | None = None) -> Searches:
    """Every search of a split. ``live_thresholds`` (rate key -> grid threshold per entry)
    adds the live decisions: the entry with the highest score over its own threshold alerts."""
    score = entry_scorer(data, split)
    mate_score = np.empty(len(split.mated), dtype=np.int32)
    mate_rank = np.empty(len(split.mated), dtype=np.int64)
    live = {k: (np.zeros(len(split.mated), bool), np.zeros(len(split.nonmated), bool))
            for k in (live_thresholds or {})}
    for lo in range(0, len(split.mated), block):
        rows = split.mated[lo:lo + block]
        s = score(rows)
        mate = s[np.arange(len(rows)), split.mate_col[lo:lo + block]]
        rank = (s >= mate[:, None]).sum(axis=1)  # includes the mate itself; ties count against it
        no_template = ~data.found[rows]
        mate_score[lo:lo + block] = mate
        mate_rank[lo:lo + block] = np.where(no_template, split.size + 1, rank)
        for key, t in (live_thresholds or {}).items():
            margin = s.astype(np.int64) - t[None, :]
            best = margin.argmax(axis=1)
            live[key][0][lo:lo + block] = (best == split.mate_col[lo:lo + block]) & \
                (margin[np.arange(len(rows)), best] >= 0) & ~no_template
    top = np.empty(len(split.nonmated), dtype=np.int32)
    for lo in range(0, len(split.nonmated), block):
        s = score(split.nonmated[lo:lo + block])
        top[lo:lo + block] = s.max(axis=1)
        for key, t in (live_thresholds or {}).items():
            live[key][1][lo:lo + block] = (s.astype(np.int64) - t[None, :]).max(axis=1) >= 0
    return Searches(mate_score, mate_rank, top, split.nonmated, live or None)


class OpenSet:
    """FPIR and FNIR at any grid threshold for a set of searches."""

    def __init__(self, s: Searches):
        self.n_mated = len(s.mate_score)
        self.n_nonmated = len(s.nonmated_top)
        self.top_desc = np.sort(s.nonmated_top)[::-1]
        self.nonmated_top, self.nonmated_image = s.nonmated_top, s.nonmated_image
        # mated searches that alert on the mate at threshold t: rank 1 and score >= t
        self.hit_scores = np.sort(np.where(s.mate_rank == 1, s.mate_score, NO_SCORE))
        self.ranks = s.mate_rank
        # searches of one split (pooled splits reuse images): what limits the measurable FPIR
        self.n_per_split = self.n_nonmated

    def fpir(self, t: int) -> float:
        return float(np.searchsorted(-self.top_desc, -t, side="right") / max(self.n_nonmated, 1))

    def false_positives(self, t: int) -> int:
        return int(np.searchsorted(-self.top_desc, -t, side="right"))

    def fnir(self, t: int) -> float:
        return float(np.searchsorted(self.hit_scores, t, side="left") / max(self.n_mated, 1))

    def threshold_at_fpir(self, f: float) -> int:
        k = int(np.floor(f * self.n_nonmated + 1e-9))  # false positives allowed
        if k >= self.n_nonmated:
            return NO_SCORE + 1
        return int(self.top_desc[k]) + 1

    def rank(self, k: int) -> float:
        return float((self.ranks <= k).sum() / max(self.n_mated, 1))


def _spread(values: list[float]) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": sig(v.mean()), "std": sig(v.std()), "min": sig(v.min()), "max": sig(v.max())}


def live_thresholds(size: int, calibration, calibration_for, counts: np.ndarray, rates=LIVE_RATES) -> dict:
    """Rate key -> grid threshold of each entry, as a deployment sets it: per-comparison FMR
    rate / N through the table of the entry's reference count."""
    from vigil.engine.calibration import entry_threshold

    tables = {int(k): calibration if k == 1 else calibration_for(int(k)) for k in np.unique(counts)}
    tables.setdefault(1, calibration)
    out = {}
    for rate in rates:
        by_k = {k: to_grid(entry_threshold(tables, k, rate / size)) for k in tables}
        out[rate_key(rate)] = np.array([by_k[int(k)] for k in counts], np.int64)
    return out


def at_live_settings(pooled: OpenSet, size: int, calibration, rates=LIVE_RATES, names=None, live=None,
                     calibration_for=None) -> dict:
    """What a live deployment on a watchlist of this size would do, with its threshold set
    the way deployments set it (per-comparison FMR = rate / N through the calibration
    table): false alerts per non-mated face with an exact 95% upper bound, and missed
    watchlisted faces. Non-mated searches pooled over splits reuse images, so the bound
    treats every (face, watchlist) search as one trial; how many distinct probe images the
    false alerts come from is reported beside it (with their names when ``names`` is given).
    With ``live`` (pooled decisions of entries averaging several photos, each with its own
    table's threshold) the counts are those decisions'."""
    out = {}
    for rate in rates:
        key = rate_key(rate)
        t = to_grid(calibration.threshold_for(min(0.5, rate / size)))
        if live is not None:
            hits, alerted = live[key]
            fp, fnir = int(alerted.sum()), 1.0 - float(hits.mean()) if len(hits) else 0.0
        else:
            alerted = pooled.nonmated_top >= t
            fp, fnir = pooled.false_positives(t), pooled.fnir(t)
        distinct = []
        if pooled.nonmated_image is not None:
            distinct = np.unique(pooled.nonmated_image[alerted]).tolist()
        by_refs = {}
        if live is not None and calibration_for is not None:
            from vigil.engine.calibration import entry_threshold

            tables = {k: calibration if k == 1 else calibration_for(k) for k in (1, 2, 3)
                      if k == 1 or _has_table(calibration_for, k)}
            by_refs = {"threshold_by_references": {str(k): to_score(to_grid(entry_threshold(tables, k, rate / size)))
                                                   for k in tables}}
        out[key] = {
            "per_comparison_fmr": sig(rate / size), "threshold": to_score(t), **by_refs,
            "false_alerts": fp, "nonmated_searches": pooled.n_nonmated,
            "false_alerts_per_face": sig(fp / max(pooled.n_nonmated, 1)),
            "false_alerts_per_face_upper95": sig(binomial_upper_bound(fp, pooled.n_nonmated)),
            "false_alert_probe_images_distinct": len(distinct),
            **({"false_alert_probe_images": [names[i] for i in distinct[:MAX_LISTED]],
                "false_alert_probe_images_all_listed": len(distinct) <= MAX_LISTED} if names is not None else {}),
            "fnir": sig(fnir), "mated_searches": pooled.n_mated,
        }
    return out


def _has_table(calibration_for, k: int) -> bool:
    try:
        calibration_for(k)
        return True
    except VigilError:
        return False


def summarise_size(size: int, splits: list[Split], results: list[Searches], *, fpirs=FPIRS, ranks=RANKS,
                   operating_threshold: float | None = None, calibration=None, names=None,
                   calibration_for=None) -> dict:
    pooled = OpenSet(Searches(*(np.concatenate([getattr(r, f) for r in results])
                                for f in ("mate_score", "mate_rank", "nonmated_top")),
                              nonmated_image=np.concatenate([r.nonmated_image for r in results])
                              if all(r.nonmated_image is not None for r in results) else None))
    per = [OpenSet(r) for r in results]
    n_nm = [o.n_nonmated for o in per]
    pooled.n_per_split = min(n_nm)
    floor = smallest_supportable_rate(min(n_nm))
    fnir_at, th_at, detail = {}, {}, {}
    for f in fpirs:
        supported = floor is not None and f >= floor
        t = pooled.threshold_at_fpir(f)
        key = rate_key(f)
        fnir_at[key] = sig(pooled.fnir(t)) if supported else None
        th_at[key] = to_score(t) if supported else None
        split_fnir = [o.fnir(o.threshold_at_fpir(f)) for o in per] if supported else []
        split_th = [to_score(o.threshold_at_fpir(f)) for o in per] if supported else []
        detail[key] = {
            "supported": supported,
            "fnir": fnir_at[key], "threshold": th_at[key],
            "fpir_observed": sig(pooled.fpir(t)) if supported else None,
            "false_positives_pooled": pooled.false_positives(t) if supported else None,
            "per_split": {"fnir": [sig(x) for x in split_fnir], "threshold": split_th,
                          "fnir_spread": _spread(split_fnir), "threshold_spread": _spread(split_th)},
            **({} if supported else {"reason": f"needs at least {int(np.ceil(3 / f))} non-mated searches per "
                                               f"split; the data gives {min(n_nm)}"}),
        }
    out = {
        "watchlist_size": size,
        "splits": len(splits),
        "probed_people": splits[0].probed_people,
        "enrolled_never_probed": splits[0].enrolled_never_probed,
        "mated_searches_per_split": [o.n_mated for o in per],
        "nonmated_searches_per_split": n_nm,
        "nonmated_images_distinct": int(len(np.unique(np.concatenate([s.nonmated for s in splits])))),
        "mated_without_template": int(sum((r.mate_rank > s.size).sum() for r, s in zip(results, splits))),
        "nonmated_without_template_per_split": [s.nonmated_without_template for s in splits],
        "smallest_supportable_fpir": sig(floor),
        "smallest_supportable_fpir_pooled": sig(smallest_supportable_rate(pooled.n_nonmated)),
        "fnir_at_fpir": fnir_at,
        "threshold_at_fpir": th_at,
        "fpir_detail": detail,
    }
    for k in ranks:
        out[f"rank{k}"] = sig(pooled.rank(k))
        out[f"rank{k}_per_split"] = _spread([o.rank(k) for o in per])
    if size > splits[0].probed_people:
        out["note"] = (f"only {splits[0].probed_people} people have a second image to probe with; the other "
                       f"{splits[0].enrolled_never_probed} watchlist entries are one-image people, enrolled but "
                       "never probed, and the non-mated searches are the few people left off the list")
    if operating_threshold is not None:
        t = to_grid(operating_threshold)
        fp = pooled.false_positives(t)
        out["at_operating_threshold"] = {
            "threshold": to_score(t), "fpir": sig(pooled.fpir(t)), "false_positives_pooled": fp,
            "fpir_upper95_if_none": sig(zero_upper_bound(min(n_nm))) if fp == 0 else None,
            "fnir": sig(pooled.fnir(t))}
    if calibration is not None:
        live = None
        if all(r.live is not None for r in results):
            live = {key: tuple(np.concatenate([r.live[key][i] for r in results]) for i in (0, 1))
                    for key in results[0].live}
        out["at_live_settings"] = at_live_settings(pooled, size, calibration, names=names, live=live,
                                                   calibration_for=calibration_for)
    grid = [to_grid(x) for x in THRESHOLD_GRID]
    out["vs_threshold"] = {"threshold": [to_score(t) for t in grid],
                           "fpir": [sig(pooled.fpir(t)) for t in grid],
                           "fnir": [sig(pooled.fnir(t)) for t in grid]}
    lowest = 1.0 / max(pooled.n_nonmated, 1)
    det_f = np.logspace(np.log10(lowest), 0, 40)
    det_t = sorted({pooled.threshold_at_fpir(f) for f in det_f}, reverse=True)
    out["det"] = {"threshold": [to_score(t) for t in det_t], "fpir": [sig(pooled.fpir(t)) for t in det_t],
                  "fnir": [sig(pooled.fnir(t)) for t in det_t]}
    out["_pooled"] = pooled  # removed before JSON; used by threshold advice and plots
    return out


def live_by_sex(data: EvalData, splits: list[Split], results: list[Searches], calibration, size: int,
                seed: int) -> dict:
    """Missed alerts per sex at the 1-in-10,000 live setting, with identity-bootstrap intervals
    (``heldout_groups.by_sex``): what an enrolment rule (several photos) does to each group."""
    from vigil.evaluation.heldout_groups import by_sex

    key = rate_key(1e-4)
    t = to_grid(calibration.threshold_for(min(0.5, 1e-4 / size)))
    mated, missed, alerts, nonmated = [], [], [], []
    for split, res in zip(splits, results):
        if res.live is not None:
            hits, alerted = res.live[key]
        else:
            hits, alerted = (res.mate_rank == 1) & (res.mate_score >= t), res.nonmated_top >= t
        mated.append(split.mated)
        missed.append(~hits)
        nonmated.append(split.nonmated)
        alerts.append(split.nonmated[alerted])
    return by_sex(data, np.concatenate(mated), np.concatenate(missed), np.concatenate(alerts),
                  np.concatenate(nonmated), seed=seed)


def evaluate_identification(data: EvalData, *, sizes=SIZES, seed: int = 0, splits: int = 10, fpirs=FPIRS,
                            ranks=RANKS, operating_threshold: float | None = None, calibration=None,
                            references: int = 1, calibration_for=None, show_progress: bool = True) -> dict:
    """With ``references`` > 1, each listed person's entry is the mean template of up to that
    many photos, and the live settings use each entry's own table (``calibration_for(k)``)."""
    images_of = data.images_of()
    multi, single = candidates(data, images_of)
    by_size = {}
    with progress_bar("Open-set searches", len(sizes) * splits, enabled=show_progress) as advance:
        for size in sizes:
            sp, res = [], []
            for k in range(splits):
                split = make_split(data, images_of, size, rng_for(seed, "identification", size, k), references,
                                   rng_for(seed, "identification-references", size, k))
                live = None
                if references > 1 and calibration is not None:
                    live = live_thresholds(size, calibration, calibration_for, split.reference_counts)
                sp.append(split)
                res.append(search(data, split, live_thresholds=live))
                advance()
            by_size[str(size)] = summarise_size(size, sp, res, fpirs=fpirs, ranks=ranks,
                                                operating_threshold=operating_threshold, calibration=calibration,
                                                names=data.names, calibration_for=calibration_for)
            if calibration is not None and (data.sex != "").any():
                by_size[str(size)]["at_live_settings_by_sex"] = live_by_sex(data, sp, res, calibration, size, seed)
            if references > 1:
                counts = np.concatenate([s.reference_counts for s in sp])
                by_size[str(size)]["entries_by_references"] = {str(k): int((counts == k).sum()) for k in (1, 2, 3)
                                                               if (counts == k).any()}
    return {
        "seed": seed,
        "splits": splits,
        "model_id": data.model_id,
        "references": references,
        "reference_rule": "mean template" if references > 1 else "one photo",
        "people_with_2_or_more_enrolable": int(len(multi)),
        "people_with_1_enrolable": int(len(single)),
        "by_watchlist_size": by_size,
    }


def strip_private(obj):
    """Drop the in-memory helpers (keys starting with '_') before writing JSON."""
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj
