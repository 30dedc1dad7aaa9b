"""LFW verification protocol (View 2): 10-fold accuracy, pooled TAR at FAR and EER.

Each fold's threshold (and, for the fusion pack, each fold's fusion weight) is fitted on
the other nine folds. Pooled metrics use the 6,000 out-of-fold scores. An image with no
template (a failure to enrol) makes its pairs score -1 (a non-match), so failures cost
accuracy instead of being dropped. The enrolment quality gate is not applied here;
its rejections are counted and reported separately.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from vigil.engine.face_engine import FaceEngine
from vigil.engine.fusion import FusionEmbedder, fit_weight
from vigil.evaluation.extract import extract
from vigil.evaluation.lfw_data import LFW
from vigil.evaluation.metrics import best_threshold_accuracy, eer, kfold_accuracy, tar_at_far


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "libraries": library_versions(),
            "load_average_1_5_15_min": load}


NUMERIC_LIBRARIES = ("numpy", "onnxruntime", "opencv-python-headless", "opencv-python", "dlib-bin", "faiss-cpu")


def library_versions() -> dict:
    """Versions of the numeric libraries behind a figure (from package metadata, nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in NUMERIC_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def pair_scores(vectors: np.ndarray, found: np.ndarray, index: dict, pairs) -> np.ndarray:
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    scores = np.einsum("ij,ij->i", vectors[ia], vectors[ib])
    return np.where(found[ia] & found[ib], scores, -1.0)


def evaluate_lfw(engine: FaceEngine, data: Path, *, show_progress: bool = True, settings=None,
                 use_cache: bool = False) -> dict:
    """``use_cache`` reuses templates from an earlier run (the template cache, 0600); speed figures then
    come from the run that extracted them."""
    lfw = LFW(data)
    pairs = lfw.pairs("pairs.txt")
    keys = sorted({p.a for p in pairs} | {p.b for p in pairs})
    index = {k: i for i, k in enumerate(keys)}
    paths = [lfw.path(*k) for k in keys]
    if use_cache and settings is not None:
        from vigil.evaluation.template_cache import cached_extract

        ext = cached_extract(settings, engine, paths, show_progress=show_progress, description=f"LFW ({engine.pack.name})")
    else:
        ext = extract(engine, paths, show_progress=show_progress, description=f"LFW ({engine.pack.name})")
    labels = np.array([p.genuine for p in pairs])
    folds = np.array([p.fold for p in pairs])
    result: dict = {}
    embedder = engine.pack.embedder
    if isinstance(embedder, FusionEmbedder):
        a, b = embedder.split(ext.vectors)
        sa = pair_scores(a, ext.found, index, pairs)
        sb = pair_scores(b, ext.found, index, pairs)
        scores = np.zeros(len(pairs))  # out-of-fold fused scores, for the pooled metrics
        weights, per_fold = [], []
        for k in np.unique(folds):
            train = folds != k
            w = fit_weight(sa[train], sb[train], labels[train])
            weights.append(w)
            fused = w * sa + (1 - w) * sb
            _, th = best_threshold_accuracy(fused[train], labels[train])  # same weight, same training part
            per_fold.append(float(((fused[~train] >= th) == labels[~train]).mean()))
            scores[~train] = fused[~train]
        result["fusion_weights_per_fold"] = weights
        result["fusion_accuracy_per_fold"] = per_fold
        result["fusion_weight_shipped"] = embedder.weight
        # "fusion" is SFace + dlib; "fusion:A+B" names its two models
        first, second = engine.pack.name.split(":", 1)[1].split("+") if ":" in engine.pack.name else ("sface", "dlib")
        result["component_accuracy"] = {
            first: kfold_accuracy(sa, labels, folds)[0],
            second: kfold_accuracy(sb, labels, folds)[0],
        }
    else:
        scores = pair_scores(ext.vectors, ext.found, index, pairs)
    if isinstance(embedder, FusionEmbedder):
        acc, std = float(np.mean(result["fusion_accuracy_per_fold"])), float(np.std(result["fusion_accuracy_per_fold"]))
        per_fold = result.pop("fusion_accuracy_per_fold")
    else:
        acc, std, per_fold = kfold_accuracy(scores, labels, folds)
    genuine, impostor = scores[labels], scores[~labels]
    tar3, th3 = tar_at_far(genuine, impostor, 1e-3)
    rate, eer_th = eer(genuine, impostor)
    result.update({
        "protocol": "LFW View 2 (pairs.txt): 10 folds x 600 pairs, threshold fitted on the other 9 folds",
        "pack": engine.pack.name,
        "model_id": engine.model_id,
        "pairs": len(pairs),
        "accuracy": acc,
        "accuracy_std": std,
        "accuracy_per_fold": per_fold,
        "tar_at_far_1e-3": tar3,
        "threshold_at_far_1e-3": th3,
        "eer": rate,
        "eer_threshold": eer_th,
        "best_single_threshold_accuracy": best_threshold_accuracy(scores, labels)[0],
        "images": len(keys),
        "failures_to_enrol": ext.failures_to_enrol,
        "failed_images": [str(ext.paths[i].name) for i in np.nonzero(~ext.found)[0]],
        "quality_gate_rejections": int((ext.found & ~ext.gate_passed).sum()),
        "images_per_second": ext.images_per_second,
        "images_per_second_with_decoding": len(keys) / ext.seconds_total,
        "machine": machine_description(),
    })
    return result
