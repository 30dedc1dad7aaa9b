#!/usr/bin/env python
"""The same LFW images through Vigil and through the face_recognition library, in one run.

    python bench/engine_vs_face_recognition.py [--data ../shared/data/lfw] [--limit N] [--json]

face_recognition (dlib HOG detector + 68-point landmarks + ResNet descriptor; install with
``pip install --no-deps face_recognition`` beside ``dlib-bin`` and ``face_recognition_models``)
is the most used Python peer. Both see the images of LFW's View 2 pairs (7,701 images;
``--limit`` takes the first N pairs of each fold for a quick run), one image at a time:
detect, align and embed. Accuracy: 10-fold, threshold fitted on the other nine folds; an
image with no face makes its pairs count as non-matches. Times exclude JPEG decoding.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.common import import_face_recognition, lfw_root, skip, write_result
from vigil.config import Settings
from vigil.engine.face_engine import FaceEngine
from vigil.engine.images import read_image_file
from vigil.evaluation.lfw_data import LFW
from vigil.evaluation.metrics import kfold_accuracy
from vigil.progress import progress_bar


def run_vigil(engine: FaceEngine, images: dict) -> tuple[dict, float]:
    out, seconds = {}, 0.0
    with progress_bar("Vigil", len(images)) as advance:
        for key, img in images.items():
            t0 = time.perf_counter()
            faces = engine.detect(img)
            if faces:
                from vigil.engine.faces import primary_face

                out[key] = engine.analyse(img, [primary_face(faces, img.shape)])[0].vector
            seconds += time.perf_counter() - t0
            advance()
    return out, seconds


def run_peer(fr, images: dict) -> tuple[dict, float]:
    out, seconds = {}, 0.0
    with progress_bar("face_recognition", len(images)) as advance:
        for key, img in images.items():
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            t0 = time.perf_counter()
            boxes = fr.face_locations(rgb, model="hog")
            if boxes:
                h, w = rgb.shape[:2]
                centre = np.array([w / 2, h / 2])
                box = min(boxes, key=lambda b: np.linalg.norm([(b[1] + b[3]) / 2 - centre[0],
                                                               (b[0] + b[2]) / 2 - centre[1]]))
                out[key] = np.asarray(fr.face_encodings(rgb, [box])[0])
            seconds += time.perf_counter() - t0
            advance()
    return out, seconds


def accuracy(pairs, feats: dict, distance: bool) -> tuple[float, int]:
    scores = []
    for p in pairs:
        if p.a in feats and p.b in feats:
            a, b = feats[p.a], feats[p.b]
            scores.append(-float(np.linalg.norm(a - b)) if distance else float(a @ b))
        else:
            scores.append(-1e9)
    labels = np.array([p.genuine for p in pairs])
    folds = np.array([p.fold for p in pairs])
    return kfold_accuracy(np.array(scores), labels, folds)[0], 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--limit", type=int, default=0, help="pairs per fold side (300 = all)")
    parser.add_argument("--pack", default="sface")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = lfw_root(args.data)
    if root is None:
        skip("LFW not found (../shared/data/lfw); pass --data")
    try:
        fr = import_face_recognition()
    except ImportError as exc:
        skip(f"face_recognition is not installed ({exc}); pip install --no-deps face_recognition")
    lfw = LFW(root)
    pairs = lfw.pairs()
    if args.limit:
        pairs = [p for i, p in enumerate(pairs) if (i % 300) < args.limit]
    keys = sorted({p.a for p in pairs} | {p.b for p in pairs})
    images = {k: read_image_file(lfw.path(*k)) for k in keys}
    engine = FaceEngine.from_settings(Settings(), args.pack)
    engine.detect(next(iter(images.values())))  # load models before timing
    vigil_feats, vigil_s = run_vigil(engine, images)
    peer_feats, peer_s = run_peer(fr, images)
    vigil_acc, _ = accuracy(pairs, vigil_feats, distance=False)
    peer_acc, _ = accuracy(pairs, peer_feats, distance=True)
    n = len(keys)
    result = {
        "images": n, "pairs": len(pairs), "pack": args.pack, "model_id": engine.model_id,
        "vigil": {"accuracy": vigil_acc, "failures_to_enrol": n - len(vigil_feats),
                  "seconds_per_image": vigil_s / n, "images_per_second": n / vigil_s},
        "face_recognition": {"accuracy": peer_acc, "failures_to_enrol": n - len(peer_feats),
                             "seconds_per_image": peer_s / n, "images_per_second": n / peer_s},
        "speed_ratio_vigil_over_peer": (n / vigil_s) / (n / peer_s),
        "note": "one image at a time, detection + alignment + embedding, decoding excluded",
    }
    path = write_result(f"engine_vs_face_recognition_{args.pack}", result)
    if args.json:
        print(json.dumps(result))
    else:
        v, p = result["vigil"], result["face_recognition"]
        print(f"{n} LFW images, {len(pairs)} pairs")
        print(f"Vigil ({args.pack}):      accuracy {v['accuracy'] * 100:.2f}%  FTE {v['failures_to_enrol']:4d}  "
              f"{v['images_per_second']:.1f} images/s")
        print(f"face_recognition: accuracy {p['accuracy'] * 100:.2f}%  FTE {p['failures_to_enrol']:4d}  "
              f"{p['images_per_second']:.1f} images/s")
        print(f"Vigil is {result['speed_ratio_vigil_over_peer']:.1f}x faster per image (same run). -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
