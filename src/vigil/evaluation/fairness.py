"""Demographic differentials: FMR, FNMR, failure to enrol and quality-gate rejections per group.

Groups come from labels: ``sex`` per image, ``race`` per person (see
:mod:`vigil.evaluation.protocol`). Within a group:

* FMR(t): impostor pairs with *both* images in the group scoring >= t, over all such pairs
  (images without a template take no part: they are counted as failures to enrol instead);
* FNMR(t): genuine pairs (two images of one person, both in the group) scoring < t.
  Pairs grow with the square of a person's image count, so a few much-photographed people
  dominate it (on LFW one person holds over half the genuine pairs of men); hence also
  ``fnmr_per_identity``, the mean over identities of each one's own FNMR;
* FTE: images with no template; gate rejections: templated images the enrolment quality
  gate refuses (a gate that refuses one group more often is a bias of its own).

Confidence intervals: 95% percentile intervals of a bootstrap over identities
(:mod:`vigil.evaluation.bootstrap`); when no error at all was observed the interval is
[0, exact 95% upper bound for 0 events in n pairs] (about 3/n), which is optimistic because
pairs are not independent.

Significance: for each threshold and metric, every two groups large enough to conclude are
compared with the bootstrap interval of the log of their rate ratio at a Bonferroni-
corrected level; a difference is flagged when it excludes 0. Not flagged is not "equal".

Too small to conclude (said explicitly, never reported as "no difference"):
FMR needs >= 30 identities and enough impostor pairs that >= 10 false matches would be
expected at the rate of all labelled images together; FNMR needs >= 30 identities with a
genuine pair; FTE and gate rates need >= 30 identities.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from vigil.evaluation.bootstrap import (
    identity_weights,
    log_ratio_test,
    pair_rate_replicates,
    percentile_ci,
    ratio_replicates,
    zero_upper_bound,
)
from vigil.evaluation.protocol import EvalData, rng_for, sig, to_grid, to_score
from vigil.progress import progress_bar

MIN_UNITS = 30
MIN_EXPECTED_ERRORS = 10
ALL = "all labelled"


@dataclass
class Group:
    attribute: str
    name: str
    images: np.ndarray  # image indices in the group
    unit: np.ndarray  # bootstrap unit (identity) of each image, 0..units-1
    units: int


def groups_for(data: EvalData, attribute: str) -> list[Group]:
    """The labelled groups of an attribute, plus the union of all labelled images (``ALL``)."""
    labels = data.sex if attribute == "sex" else data.race
    names = sorted({str(v) for v in labels if v})
    out = []
    for name in [*names, ALL]:
        images = np.nonzero(labels != "")[0] if name == ALL else np.nonzero(labels == name)[0]
        _, unit = np.unique(data.person[images], return_inverse=True)
        out.append(Group(attribute, name, images, unit.astype(np.int64), int(unit.max() + 1) if len(unit) else 0))
    return out


@dataclass
class GroupCounts:
    """Everything the bootstrap needs, per identity."""

    group: Group
    thresholds: np.ndarray  # ascending grid integers
    n_templ: np.ndarray  # templated images per unit
    imp_a: np.ndarray  # impostor pairs reaching thresholds[0]: units and bin
    imp_b: np.ndarray
    imp_bin: np.ndarray
    impostor_pairs: int
    gen_below: np.ndarray  # (units, T) genuine pairs scoring below each threshold
    gen_pairs: np.ndarray  # (units,)
    fte: np.ndarray  # (units,) images without template
    images: np.ndarray  # (units,)
    gate_rejected: np.ndarray  # (units,)
    reasons: Counter


def count_group(data: EvalData, g: Group, thresholds: np.ndarray, block: int = 1024) -> GroupCounts:
    T = np.asarray(thresholds, dtype=np.int64)
    K = g.units
    found = data.found[g.images]
    idx, unit = g.images[found], g.unit[found]
    n_templ = np.bincount(unit, minlength=K)
    a_parts, b_parts, bin_parts = [], [], []
    gen_below = np.zeros((K, len(T)), dtype=np.int64)
    for lo in range(0, len(idx), block):
        rows = np.arange(lo, min(lo + block, len(idx)))
        cols = np.arange(lo, len(idx))
        s = data.scores(idx[rows], idx[cols])
        upper = cols[None, :] > rows[:, None]
        same = unit[rows][:, None] == unit[cols][None, :]
        r, c = np.nonzero(upper & ~same & (s >= T[0]))
        a_parts.append(unit[rows][r])
        b_parts.append(unit[cols][c])
        bin_parts.append(np.searchsorted(T, s[r, c], side="right") - 1)
        r, c = np.nonzero(upper & same)
        if len(r):
            below = s[r, c][:, None] < T[None, :]
            np.add.at(gen_below, unit[rows][r], below.astype(np.int64))
    n_all = int(n_templ.sum())
    impostor_pairs = (n_all * n_all - int((n_templ.astype(np.int64) ** 2).sum())) // 2
    fte = np.bincount(g.unit, weights=(~data.found[g.images]).astype(np.float64), minlength=K).astype(np.int64)
    images = np.bincount(g.unit, minlength=K)
    rejected_mask = data.found[g.images] & ~data.gate_passed[g.images]
    rejected = np.bincount(g.unit, weights=rejected_mask.astype(np.float64), minlength=K).astype(np.int64)
    reasons = Counter()
    for i in g.images[rejected_mask]:
        reasons.update({r.split(":")[0] for r in data.gate_reasons[i]})
    return GroupCounts(g, T, n_templ, _cat(a_parts), _cat(b_parts), _cat(bin_parts), impostor_pairs,
                       gen_below, n_templ * (n_templ - 1) // 2, fte, images, rejected, reasons)


def _cat(parts) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class GroupReplicates:
    counts: GroupCounts
    fmr: np.ndarray  # (T,) observed
    fnmr: np.ndarray
    fmr_reps: np.ndarray  # (B, T)
    fnmr_reps: np.ndarray
    fnmr_id: np.ndarray  # (T,) mean over identities of each identity's own FNMR
    fnmr_id_reps: np.ndarray
    fte_reps: np.ndarray  # (B,)
    gate_reps: np.ndarray


def bootstrap_group(c: GroupCounts, seed: int, replicates: int) -> GroupReplicates:
    J = len(c.thresholds)
    W = identity_weights(rng_for(seed, "fairness", c.group.attribute, c.group.name), c.group.units, replicates)
    false_matches = np.array([(c.imp_bin >= j).sum() for j in range(J)])
    fmr = false_matches / c.impostor_pairs if c.impostor_pairs else np.full(J, np.nan)
    gp = c.gen_pairs.sum()
    fnmr = c.gen_below.sum(axis=0) / gp if gp else np.full(J, np.nan)
    has = c.gen_pairs > 0
    own = np.where(has[:, None], c.gen_below / np.maximum(c.gen_pairs, 1)[:, None], 0.0)
    fnmr_id = own[has].mean(axis=0) if has.any() else np.full(J, np.nan)
    return GroupReplicates(
        c, fmr, fnmr,
        pair_rate_replicates(W, c.imp_a, c.imp_b, c.imp_bin, J, c.n_templ),
        ratio_replicates(W, c.gen_below, c.gen_pairs),
        fnmr_id, ratio_replicates(W, own, has.astype(np.float64)),
        ratio_replicates(W, c.fte, c.images),
        ratio_replicates(W, c.gate_rejected, c.images - c.fte),
    )


def _rate(value: float, reps: np.ndarray, errors: int, trials: int, conclusive: bool, why: str) -> dict:
    out = {"value": sig(value), "errors": int(errors), "trials": int(trials)}
    if trials == 0:
        out.update(ci95=None, verdict="no data")
        return out
    if errors == 0:
        out["ci95"] = [0.0, sig(zero_upper_bound(trials))]
        out["ci_method"] = "no errors observed: exact 95% upper bound for 0 in n (about 3/n)"
    else:
        lo, hi = percentile_ci(reps)
        out["ci95"] = [sig(lo), sig(hi)]
        out["ci_method"] = "bootstrap over identities (percentile)"
    out["verdict"] = "ok" if conclusive else "too small to conclude"
    if not conclusive:
        out["why"] = why
    return out


def _compare(a: str, b: str, ra: np.ndarray, rb: np.ndarray, va: float, vb: float, comparisons: int) -> dict:
    test = log_ratio_test(ra, rb, comparisons)
    ratio = va / vb if vb else None
    out = {"groups": [a, b], "ratio": sig(ratio), "ratio_ci": [sig(x) for x in test["ratio_ci"]]
           if test.get("ratio_ci") else None, "ci_level": test["ci_level"], "significant": test["significant"]}
    shown = f"{ratio:.3g}" if ratio is not None else f"unbounded ({b} had none)"
    if not test["testable"]:
        out["statement"] = f"{a} vs {b}: too few errors to test"
    elif test["significant"]:
        out["statement"] = f"{a} / {b} = {shown}: statistically significant difference"
    else:
        out["statement"] = (f"{a} / {b} = {shown}: no statistically significant difference detected "
                            "(this does not show the rates are equal)")
    return out


def evaluate_attribute(data: EvalData, attribute: str, thresholds: list[tuple[str, float]], operating: float, *,
                       seed: int = 0, replicates: int = 1000, show_progress: bool = True) -> dict:
    """Per-group rates at every threshold (``[(label, score), ...]``) and the operating one."""
    labels = [lab for lab, _ in thresholds]
    grid = np.array([to_grid(t) for _, t in thresholds], dtype=np.int64)
    T = np.unique(np.append(grid, to_grid(operating)))
    op_j = int(np.searchsorted(T, to_grid(operating)))
    groups = groups_for(data, attribute)
    reps: dict[str, GroupReplicates] = {}
    with progress_bar(f"Fairness: {attribute}", len(groups), enabled=show_progress) as advance:
        for g in groups:
            reps[g.name] = bootstrap_group(count_group(data, g, T), seed, replicates)
            advance()
    ref = reps[ALL].fmr
    per_group, conclusive = {}, {"fmr": {}, "fnmr": {}}
    for name, r in reps.items():
        c = r.counts
        units_with_pairs = int((c.gen_pairs > 0).sum())
        rows = []
        for j, t in enumerate(T):
            expected = c.impostor_pairs * ref[j]
            ok_fmr = c.group.units >= MIN_UNITS and expected >= MIN_EXPECTED_ERRORS
            ok_fnmr = units_with_pairs >= MIN_UNITS
            if name != ALL:
                if ok_fmr:
                    conclusive["fmr"].setdefault(j, []).append(name)
                if ok_fnmr:
                    conclusive["fnmr"].setdefault(j, []).append(name)
            fm = int((c.imp_bin >= j).sum())
            fnm = int(c.gen_below[:, j].sum())
            rows.append({
                "threshold": to_score(t),
                "fmr": _rate(r.fmr[j], r.fmr_reps[:, j], fm, c.impostor_pairs, ok_fmr,
                             f"{c.group.units} identities, {expected:.1f} false matches expected at the "
                             f"overall rate (needs {MIN_UNITS} and {MIN_EXPECTED_ERRORS})"),
                "fnmr": _rate(r.fnmr[j], r.fnmr_reps[:, j], fnm, int(c.gen_pairs.sum()), ok_fnmr,
                              f"{units_with_pairs} identities with two or more images (needs {MIN_UNITS})"),
                "fnmr_per_identity": _rate(r.fnmr_id[j], r.fnmr_id_reps[:, j], fnm, int(c.gen_pairs.sum()), ok_fnmr,
                                           f"{units_with_pairs} identities with two or more images "
                                           f"(needs {MIN_UNITS})"),
            })
        ok_units = c.group.units >= MIN_UNITS
        small = f"{c.group.units} identities (needs {MIN_UNITS})"
        per_group[name] = {
            "attribute": attribute,
            "identities": c.group.units,
            "identities_with_genuine_pairs": units_with_pairs,
            "images": int(c.images.sum()),
            "impostor_pairs": c.impostor_pairs,
            "genuine_pairs": int(c.gen_pairs.sum()),
            "fmr": rows[op_j]["fmr"],
            "fnmr": rows[op_j]["fnmr"],
            "fnmr_per_identity": rows[op_j]["fnmr_per_identity"],
            "failure_to_enrol": _rate(c.fte.sum() / max(c.images.sum(), 1), r.fte_reps, int(c.fte.sum()),
                                      int(c.images.sum()), ok_units, small),
            "quality_gate_rejection": _rate(c.gate_rejected.sum() / max((c.images - c.fte).sum(), 1), r.gate_reps,
                                            int(c.gate_rejected.sum()), int((c.images - c.fte).sum()), ok_units,
                                            small),
            "gate_reasons": {k: v for k, v in sorted(c.reasons.items(), key=lambda kv: (-kv[1], kv[0]))},
            "across_thresholds": rows,
        }
    comparisons = {}
    # (metric, replicate attribute, whose size rule decides who can be compared)
    metrics = (("fmr", "fmr", "fmr"), ("fnmr", "fnmr", "fnmr"), ("fnmr_per_identity", "fnmr_id", "fnmr"))
    for metric, attr, sizes in metrics:
        per_t = []
        for j, t in enumerate(T):
            names = sorted(conclusive[sizes].get(j, []))
            pairs = list(combinations(names, 2))
            tests = [_compare(a, b, getattr(reps[a], f"{attr}_reps")[:, j], getattr(reps[b], f"{attr}_reps")[:, j],
                              getattr(reps[a], attr)[j], getattr(reps[b], attr)[j], len(pairs)) for a, b in pairs]
            per_t.append({"threshold": to_score(t), "comparable_groups": names,
                          "too_small": sorted(n for n in reps if n != ALL and n not in names),
                          "significant": any(x["significant"] for x in tests), "tests": tests})
        comparisons[metric] = per_t
    for metric, key in (("failure_to_enrol", "fte_reps"), ("quality_gate_rejection", "gate_reps")):
        names = sorted(n for n in reps if n != ALL and reps[n].counts.group.units >= MIN_UNITS)
        pairs = list(combinations(names, 2))
        tests = [_compare(a, b, getattr(reps[a], key), getattr(reps[b], key), per_group[a][metric]["value"] or 0.0,
                          per_group[b][metric]["value"] or 0.0, len(pairs)) for a, b in pairs]
        comparisons[metric] = {"comparable_groups": names, "significant": any(x["significant"] for x in tests),
                               "tests": tests}
    return {
        "attribute": attribute,
        "groups": per_group,
        "thresholds": [{"label": labels[list(grid).index(t)] if t in grid else "operating", "threshold": to_score(t)}
                       for t in T],
        "operating_threshold": to_score(T[op_j]),
        "worst_to_best_fmr_ratio": worst_to_best(reps, conclusive["fmr"].get(op_j, []), op_j, "fmr"),
        "worst_to_best_fnmr_ratio": worst_to_best(reps, conclusive["fnmr"].get(op_j, []), op_j, "fnmr"),
        "worst_to_best_fmr_ratio_across_thresholds": [
            {"threshold": to_score(t), **worst_to_best(reps, conclusive["fmr"].get(j, []), j, "fmr")}
            for j, t in enumerate(T)],
        "significance": comparisons,
        "significant_fmr_thresholds": [x["threshold"] for x in comparisons["fmr"] if x["significant"]],
        "significant_fnmr_thresholds": [x["threshold"] for x in comparisons["fnmr"] if x["significant"]],
        "significant_fnmr_per_identity_thresholds": [x["threshold"] for x in comparisons["fnmr_per_identity"]
                                                     if x["significant"]],
    }


def worst_to_best(reps: dict[str, GroupReplicates], names: list[str], j: int, metric: str) -> dict:
    """Highest over lowest observed rate among the groups large enough to conclude."""
    too_small = sorted(n for n in reps if n != ALL and n not in names)
    if len(names) < 2:
        return {"value": None, "ci95": None, "significant": False, "too_small": too_small,
                "statement": "fewer than two groups are large enough to compare: nothing can be concluded"}
    vals = {n: getattr(reps[n], metric)[j] for n in names}
    worst = max(names, key=lambda n: (vals[n], n))
    best = min(names, key=lambda n: (vals[n], n))
    if vals[best] == 0:
        return {"value": None, "ci95": None, "worst": worst, "best": best, "significant": False,
                "too_small": too_small, "statement": f"{best} had no errors: the ratio is unbounded"}
    ra, rb = getattr(reps[worst], f"{metric}_reps")[:, j], getattr(reps[best], f"{metric}_reps")[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = percentile_ci(ra / rb)
    test = _compare(worst, best, ra, rb, vals[worst], vals[best], max(len(names) * (len(names) - 1) // 2, 1))
    return {"value": sig(vals[worst] / vals[best]), "ci95": [sig(lo), sig(hi)], "worst": worst, "best": best,
            "significant": test["significant"], "too_small": too_small, "statement": test["statement"]}


def evaluate_fairness(data: EvalData, thresholds: list[tuple[str, float]], operating: float, *, seed: int = 0,
                      replicates: int = 1000, attributes=("sex", "race"), show_progress: bool = True) -> dict:
    by_attr = {a: evaluate_attribute(data, a, thresholds, operating, seed=seed, replicates=replicates,
                                     show_progress=show_progress) for a in attributes}
    groups = {}
    for a, res in by_attr.items():
        for name, g in res["groups"].items():
            groups[name if name != ALL else f"{ALL} ({a})"] = g
    return {
        "seed": seed,
        "bootstrap_replicates": replicates,
        "model_id": data.model_id,
        "operating_threshold": to_score(to_grid(operating)),
        "groups": groups,
        "worst_to_best_fmr_ratio": {a: r["worst_to_best_fmr_ratio"] for a, r in by_attr.items()},
        "attributes": by_attr,
        "rules": {"min_identities": MIN_UNITS, "min_expected_false_matches": MIN_EXPECTED_ERRORS,
                  "ci": "95% percentile bootstrap over identities; [0, 1-0.05^(1/n)] when no error was observed",
                  "significance": "bootstrap interval of log(rate ratio) at a Bonferroni-corrected level excludes 0"},
    }
