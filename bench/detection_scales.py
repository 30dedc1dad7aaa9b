#!/usr/bin/env python
"""Detection strategy for large frames: recall, false detections and time, measured.

    python bench/detection_scales.py [--data ../shared/data/samples/detection] [--json]

The annotated photos (PASCAL VOC, hand-drawn face boxes in dlib's imglab XML: 43 faces in
training.xml + testing.xml) are pasted into a 3840x2160 (4K) frame at several scales, so
that faces range from about 20 px (a person far away) to 300 px. Three strategies:

- ``downscale``: one pass with the frame's longest side reduced to 640 px (the usual way);
- ``full``: one pass at full resolution (tiled above 1,920 px, 128 px overlap);
- ``global+detail``: Vigil's default for stills: a 640 px pass for large faces plus the full
  resolution pass for small ones, merged by non-maximum suppression.

A face counts as found when a detection's centre lies inside its annotated box; a detection
inside no annotated box (and not in the pasted photo's unannotated area) is a false one.
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED, skip, write_result

SCALES = (0.5, 1.0, 2.0, 4.0)


def load(folder: Path) -> list[tuple[np.ndarray, list[list[float]]]]:
    out = []
    for xml in ("training.xml", "testing.xml"):
        root = ET.parse(folder / xml).getroot()
        for image in root.iter("image"):
            pixels = cv2.imread(str(folder / image.get("file")))
            boxes = [[float(b.get("left")), float(b.get("top")), float(b.get("width")), float(b.get("height"))]
                     for b in image.iter("box") if b.get("ignore") != "1"]
            if pixels is not None and boxes:
                out.append((pixels, boxes))
    return out


def canvases(samples, scale: float, rng: np.random.Generator):
    for pixels, boxes in samples:
        img = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.full((2160, 3840, 3), 110, np.uint8)
        h, w = img.shape[:2]
        if h > 2160 or w > 3840:
            img = img[:2160, :3840]
            h, w = img.shape[:2]
        x0, y0 = int(rng.integers(0, 3840 - w + 1)), int(rng.integers(0, 2160 - h + 1))
        canvas[y0 : y0 + h, x0 : x0 + w] = img
        gt = [[x0 + b[0] * scale, y0 + b[1] * scale, b[2] * scale, b[3] * scale] for b in boxes
              if (b[0] + b[2]) * scale <= w and (b[1] + b[3]) * scale <= h]
        yield canvas, gt, (x0, y0, w, h)


def score(faces, gt, region) -> tuple[int, int]:
    found = 0
    centres = [f.center for f in faces]
    for x, y, w, h in gt:
        if any(x <= cx <= x + w and y <= cy <= y + h for cx, cy in centres):
            found += 1
    rx, ry, rw, rh = region
    false = sum(1 for cx, cy in centres if not (rx <= cx <= rx + rw and ry <= cy <= ry + rh))
    return found, false


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "samples" / "detection")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (args.data / "testing.xml").is_file():
        skip(f"annotated detection photos not found in {args.data}")
    from vigil.config import Settings
    from vigil.engine.face_engine import FaceEngine

    detector = FaceEngine.from_settings(Settings()).pack.detector
    samples = load(args.data)
    strategies = {
        "downscale": lambda img: detector.detect_scales(img, [640 / max(img.shape[:2])]),
        "full": lambda img: detector.detect_scales(img, [1.0]),
        "global+detail": lambda img: detector.detect(img),
    }
    results = {}
    for scale in SCALES:
        row = {}
        for name, fn in strategies.items():
            rng = np.random.default_rng(0)
            found = total = false = 0
            seconds = 0.0
            for canvas, gt, region in canvases(samples, scale, rng):
                t0 = time.perf_counter()
                faces = fn(canvas)
                seconds += time.perf_counter() - t0
                f, x = score(faces, gt, region)
                found, false, total = found + f, false + x, total + len(gt)
            row[name] = {"recall": found / total if total else None, "faces": total, "false_detections": false,
                         "ms_per_4k_frame": 1000 * seconds / len(samples)}
        median_px = float(np.median([b[2] * scale for _, bs in samples for b in bs]))
        results[f"scale_{scale}"] = {"median_face_px": median_px, **row}
    write_result("detection_scales", {"frame": "3840x2160", "photos": len(samples), "results": results,
                                      "method": __doc__.strip().splitlines()[3:16]})
    if args.json:
        print(json.dumps(results))
    else:
        for key, row in results.items():
            print(f"{key} (median face {row['median_face_px']:.0f} px): " + "; ".join(
                f"{n} recall {r['recall'] * 100:.0f}% FP {r['false_detections']} {r['ms_per_4k_frame']:.0f} ms"
                for n, r in row.items() if isinstance(r, dict)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
