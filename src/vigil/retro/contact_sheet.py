"""HTML contact sheet of a search: probe faces beside their candidates (an export)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import cv2
from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.governance.permissions import Actor, require
from vigil.retro.probes import crop_of
from vigil.store.exports import check_target, record_export
from vigil.store.schema import FaceImage


def _img_tag(image, alt: str, size: int = 140) -> str:
    h, w = image.shape[:2]
    scale = size / max(h, w)
    thumb = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", thumb, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
    data = base64.b64encode(buf.tobytes()).decode() if ok else ""
    return f'<img src="data:image/jpeg;base64,{data}" alt="{html.escape(alt)}">'


def export_contact_sheet(vigil, actor: Actor, result: dict, probe_faces, path: Path, per_face: int = 10) -> str:
    require(actor, "search.export")
    target = check_target(path, directory=False)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Search {result['search_id']}"
             "</title><style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:.5em;"
             "text-align:center}figcaption{font-size:.8em}.probe{border:3px solid #124}</style></head><body>",
             f"<h1>Search {result['search_id']}: case {html.escape(result['case_ref'])}</h1>",
             f"<p>Gallery {html.escape(result['gallery'])} ({result['gallery_subjects']} subjects). "
             f"Reason: {html.escape(result['reason'])}. Candidates are leads for review, not identifications.</p>"]
    with vigil.store.session() as session:
        for i, (face, probe) in enumerate(zip(result["faces"], probe_faces), 1):
            parts.append(f"<h2>Face {i} (quality {face['quality']:.2f})</h2>")
            parts.extend(f"<p><strong>{html.escape(w)}</strong></p>" for w in face["warnings"])
            parts.append(f"<figure class='probe'>{_img_tag(probe.crop, 'probe face')}<figcaption>probe</figcaption></figure>")
            for cand in face["candidates"][:per_face]:
                image = session.scalar(select(FaceImage).where(FaceImage.subject_id == cand["subject_id"])
                                       .order_by(FaceImage.id).limit(1))
                if image is None:
                    continue
                pixels = decode_image(vigil.store.blobs.get(image.blob_id))
                crop = crop_of(pixels, image.box) if image.box else pixels
                parts.append(f"<figure>{_img_tag(crop, cand['name'])}<figcaption>#{cand['rank']} "
                             f"{html.escape(cand['name'])}<br>{cand['subject_id']}<br>score {cand['score']:.3f} "
                             f"(FMR {cand['fmr']:.1e})</figcaption></figure>")
        parts.append("</body></html>")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(parts))
        record_export(vigil.store, session, actor, "contact_sheet", target,
                      {"search_id": result["search_id"], "case_ref": result["case_ref"]})
    return str(target)
