"""Retrospective search (RFR): every face in a probe against a gallery, ranked candidates.

Refused without a case reference and a reason; every search, and every refusal, is recorded
(search record + audit entry). Candidates carry the calibrated false match rate of their
score and the number of false candidates expected at that score in a gallery this size.
The system proposes; a person decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from vigil.errors import PolicyError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.retro.probes import ProbeFace, image_probe_faces, looks_like_video, video_probe_faces
from vigil.store.collections import collection_size
from vigil.store.schema import Collection, Membership, SearchRecord, Subject, TemplateRow
from vigil.timeutil import iso

CLOSE_CALL_MARGIN = 0.03
MAX_TOP = 200


@dataclass
class SearchRequest:
    collection: Collection
    case_ref: str
    reason: str
    top: int = 50
    probe_name: str = "probe"


def _refuse(vigil, actor: Actor, request: SearchRequest, why: str) -> None:
    with vigil.store.session() as session:
        vigil.store.audit.record(session, actor, "search.refused", request.collection.kind, request.collection.id,
                                 {"why": why, "case_ref": request.case_ref, "reason": request.reason})
    raise PolicyError(why)


def run_search(vigil, actor: Actor, request: SearchRequest, *, data: bytes | None = None,
               path: Path | None = None, keep_probe: bool = True) -> dict:
    require(actor, "search.run")
    if not request.case_ref.strip() or not request.reason.strip():
        _refuse(vigil, actor, request, "a search needs a case reference (--case) and a reason (--reason)")
    if not 1 <= request.top <= MAX_TOP:
        raise VigilError(f"--top must be between 1 and {MAX_TOP}")
    coll = request.collection
    engine = vigil.engine_for(coll)
    if data is None and path is None:
        raise VigilError("no probe given")
    name = str(path) if path else request.probe_name
    is_video = looks_like_video(data or b"", name) if data is not None else looks_like_video(b"", name)
    if path is not None and not is_video:
        data = Path(path).read_bytes()
    if is_video:
        faces = video_probe_faces(engine, data=data, path=path)
    else:
        faces = image_probe_faces(engine, data, name, vigil.settings.max_image_pixels)
    cal = engine.pack.calibration
    with vigil.store.session() as session:
        coll = session.get(Collection, coll.id)
        index = vigil.indexes.get(session, coll)
        gallery_templates = len(index)
        gallery_subjects = collection_size(session, coll.id)
        out_faces = [_rank(session, index, f, request.top, cal, gallery_templates) for f in faces]
        probe_blob = None
        if keep_probe and data is not None and not is_video:
            probe_blob = vigil.store.blobs.put(session, "search_probe", data)
        record = SearchRecord(actor=actor.username, case_ref=request.case_ref.strip(), reason=request.reason.strip(),
                              collection_id=coll.id, collection_name=coll.name,
                              probe_kind="video" if is_video else "image", top_k=request.top, faces=len(out_faces),
                              results=[{"box": f["box"], "quality": f["quality"],
                                        "candidates": [{"subject_id": c["subject_id"], "score": c["score"]}
                                                       for c in f["candidates"][:10]]} for f in out_faces],
                              probe_blob_id=probe_blob)
        session.add(record)
        session.flush()
        vigil.store.audit.record(session, actor, "search.run", coll.kind, coll.id, {
            "search_id": record.id, "case_ref": record.case_ref, "reason": record.reason,
            "gallery": coll.name, "probe": record.probe_kind, "faces": len(out_faces), "top": request.top,
            "top_candidates": [f["candidates"][0]["subject_id"] for f in out_faces if f["candidates"]]})
        search_id, created = record.id, iso(record.created_at)
    return {
        "search_id": search_id, "created_at": created, "case_ref": request.case_ref, "reason": request.reason,
        "gallery": coll.name, "model_id": coll.model_id, "gallery_subjects": gallery_subjects,
        "gallery_templates": gallery_templates, "probe": "video" if is_video else "image",
        "threshold_fmr_1e-4": cal.threshold_for(1e-4), "calibration": cal.dataset,
        "faces": out_faces, "_probe_faces": faces,
    }


def _rank(session, index, face: ProbeFace, top: int, cal, gallery_templates: int) -> dict:
    scores, ids = index.search(face.vector[None].astype(np.float32), min(len(index), top * 3) or 1)
    pairs = [(float(s), int(t)) for s, t in zip(scores[0], ids[0]) if t >= 0]
    owners = {}
    if pairs:
        rows = session.execute(select(TemplateRow.id, TemplateRow.subject_id)
                               .where(TemplateRow.id.in_([t for _, t in pairs]))).all()
        owners = dict(rows)
    best: dict[str, float] = {}
    for score, tid in pairs:  # one candidate per subject: the best of its templates
        sid = owners.get(tid)
        if sid and score > best.get(sid, -2.0):
            best[sid] = score
    ranked = sorted(best.items(), key=lambda kv: -kv[1])[:top]
    names = dict(session.execute(select(Subject.id, Subject.display_name)
                                 .where(Subject.id.in_([s for s, _ in ranked]))).all()) if ranked else {}
    candidates = []
    for rank, (sid, score) in enumerate(ranked, start=1):
        fmr, bounded = cal.fmr_at(score)
        candidates.append({"rank": rank, "subject_id": sid, "name": names.get(sid, ""), "score": round(score, 5),
                           "fmr": fmr, "fmr_is_upper_bound": bounded,
                           "expected_false_candidates_at_this_score": fmr * gallery_templates})
    warnings = []
    if len(candidates) >= 2 and candidates[0]["score"] - candidates[1]["score"] < CLOSE_CALL_MARGIN \
            and candidates[0]["score"] >= cal.threshold_for(1e-3):
        warnings.append(f"too close to call: {candidates[0]['subject_id']} and {candidates[1]['subject_id']} score "
                        f"within {CLOSE_CALL_MARGIN} of each other (look-alikes or twins); compare them carefully")
    if not face.quality.passed:
        warnings.append("poor probe quality: " + "; ".join(face.quality.reasons))
    out = {"box": face.box, "quality": round(face.quality.score, 4), "quality_reasons": face.quality.reasons,
           "candidates": candidates, "warnings": warnings}
    if face.time is not None:
        out.update(time=round(face.time, 3), track_id=face.track_id, shots=face.shots)
    return out


def gallery_template_count(session, coll: Collection) -> int:
    return int(session.scalar(select(func.count()).select_from(TemplateRow).join(
        Membership, Membership.subject_id == TemplateRow.subject_id).where(
        Membership.collection_id == coll.id, TemplateRow.model_id == coll.model_id)) or 0)
