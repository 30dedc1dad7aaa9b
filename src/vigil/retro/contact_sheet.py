"""HTML contact sheet of a search: probe faces beside their candidates' enrolled faces.

Rendering only: the search use case (``vigil.services.search``) checks the export
permission, fetches the candidates' images and records the export."""

from __future__ import annotations

import base64
import html

import cv2
import numpy as np


def _img_tag(image: np.ndarray, alt: str, size: int = 140) -> str:
    h, w = image.shape[:2]
    scale = size / max(h, w)
    thumb = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", thumb, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
    data = base64.b64encode(buf.tobytes()).decode() if ok else ""
    return f'<img src="data:image/jpeg;base64,{data}" alt="{html.escape(alt)}">'


def render_contact_sheet(result: dict, probe_crops: list[np.ndarray], candidate_crops: dict[str, np.ndarray],
                         per_face: int = 10) -> str:
    """``candidate_crops`` maps a subject id to its first enrolled face (absent: not shown)."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Search {result['id']}"
             "</title><style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:.5em;"
             "text-align:center}figcaption{font-size:.8em}.probe{border:3px solid #124}"
             ".above img{outline:4px solid #1565c0}</style></head><body>",
             f"<h1>Search {result['id']}: case {html.escape(result['case_ref'])}</h1>",
             f"<p>Gallery {html.escape(result['gallery'])} ({result['gallery_subjects']} subjects). "
             f"Reason: {html.escape(result['reason'])}. Candidates are leads for review, not identifications.</p>"]
    threshold = result.get("threshold_fmr_1e-4")
    if threshold is not None:
        parts.append(f"<p>Threshold for a 1 in 10,000 false match rate: score {threshold:.3f}. Candidates at or "
                     "above it are outlined in blue and marked <em>above threshold</em>.</p>")
    for i, (face, probe) in enumerate(zip(result["faces"], probe_crops), 1):
        parts.append(f"<h2>Face {i} (quality {face['quality']:.2f})</h2>")
        parts.extend(f"<p><strong>{html.escape(w)}</strong></p>" for w in face["warnings"])
        parts.append(f"<figure class='probe'>{_img_tag(probe, 'probe face')}<figcaption>probe</figcaption></figure>")
        for cand in face["candidates"][:per_face]:
            crop = candidate_crops.get(cand["subject_id"])
            if crop is None:
                continue
            above = threshold is not None and cand["score"] >= threshold
            parts.append(f"<figure{' class=above' if above else ''}>{_img_tag(crop, cand['name'])}<figcaption>"
                         f"#{cand['rank']} {html.escape(cand['name'])}<br>{cand['subject_id']}<br>score "
                         f"{cand['score']:.3f} (FMR {cand['fmr']:.1e}){'<br><b>above threshold</b>' if above else ''}"
                         "</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
