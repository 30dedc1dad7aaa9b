"""Retrospective search (RFR): every face in a probe against a gallery, ranked candidates.

Refused without a case reference and a reason; every search, and every refusal, is recorded
(search record + audit entry). Candidates carry the calibrated false match rate of their
score and the number of false candidates expected at that score in a gallery this size.
The system proposes; a person decides. An HTML contact sheet is an export of its own
(``search.export``, checked before the search runs, recorded with the search).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from vigil.errors import VigilError
from vigil.governance.permissions import Actor
from vigil.live.tracker import Tracker
from vigil.retro.contact_sheet import render_contact_sheet
from vigil.retro.crops import face_crop, jpeg_data_url
from vigil.retro.probes import ProbeFace, image_probe_faces, looks_like_video, video_probe_faces
from vigil.services.exports import record_export
from vigil.services.unit import refuse, use_case
from vigil.store.collections import collection_size, get_collection
from vigil.store.exports import check_target
from vigil.store.schema import SearchRecord, Subject, TemplateRow
from vigil.store.subjects import first_image
from vigil.timeutil import iso

CLOSE_CALL_MARGIN = 0.03
MAX_TOP = 200


def run_search(vigil, actor: Actor, kind: str, name: str, *, case_ref: str, reason: str, top: int = 50,
               data: bytes | None = None, path: Path | None = None, probe_name: str = "probe",
               keep_probe: bool = True, crops: bool = False, sheet: Path | None = None,
               show_progress: bool = False) -> dict:
    """Search a probe (``data`` or ``path``, image or video) against a gallery or watchlist.
    ``crops`` adds each probe face as a JPEG data URL; ``sheet`` also writes a contact sheet."""
    with use_case(vigil, actor, "search.run") as uow:
        if sheet is not None:
            uow.require("search.export")
        coll = get_collection(uow.session, kind, name)
        coll_id, coll_kind, coll_name, pack, model_id = coll.id, coll.kind, coll.name, coll.pack, coll.model_id
    if not case_ref.strip() or not reason.strip():
        refuse(vigil, actor, "search.refused", coll_kind, coll_id,
               "a search needs a case reference (--case) and a reason (--reason)",
               {"case_ref": case_ref, "reason": reason})
    if not 1 <= top <= MAX_TOP:
        raise VigilError(f"--top must be between 1 and {MAX_TOP}")
    if data is None and path is None:
        raise VigilError("no probe given")
    target = check_target(sheet, directory=False) if sheet is not None else None
    engine = vigil.engine(pack)
    label = str(path) if path else probe_name
    is_video = looks_like_video(data or b"", label)
    if path is not None and not is_video:
        data = Path(path).read_bytes()
    if is_video:
        faces = video_probe_faces(engine, Tracker, data=data, path=path, show_progress=show_progress)
    else:
        faces = image_probe_faces(engine, data, label, vigil.settings.max_image_pixels)
    cal = engine.pack.calibration
    with use_case(vigil, actor, "search.run") as uow:
        session = uow.session
        coll = get_collection(session, coll_kind, coll_id)
        remote = vigil.gallery_search(coll) if vigil.gallery_search is not None else None
        index = remote if remote is not None else vigil.indexes.get(session, coll)
        gallery_templates = len(index)
        gallery_subjects = collection_size(session, coll.id)
        out_faces = [_rank(session, index, f, top, cal, gallery_templates) for f in faces]
        probe_blob = vigil.store.blobs.put(session, "search_probe", data) if keep_probe and data and not is_video \
            else None
        record = SearchRecord(actor=actor.username, case_ref=case_ref.strip(), reason=reason.strip(),
                              collection_id=coll.id, collection_name=coll.name,
                              probe_kind="video" if is_video else "image", top_k=top, faces=len(out_faces),
                              results=[{"box": f["box"], "quality": f["quality"],
                                        "candidates": [{"subject_id": c["subject_id"], "score": c["score"]}
                                                       for c in f["candidates"][:10]]} for f in out_faces],
                              probe_blob_id=probe_blob)
        session.add(record)
        session.flush()
        uow.audit("search.run", coll.kind, coll.id, {
            "search_id": record.id, "case_ref": record.case_ref, "reason": record.reason,
            "gallery": coll.name, "probe": record.probe_kind, "faces": len(out_faces), "top": top,
            "top_candidates": [f["candidates"][0]["subject_id"] for f in out_faces if f["candidates"]]})
        result = {
            "id": record.id, "created_at": iso(record.created_at), "case_ref": case_ref, "reason": reason,
            "gallery": coll_name, "model_id": model_id, "gallery_subjects": gallery_subjects,
            "gallery_templates": gallery_templates, "probe": record.probe_kind,
            "threshold_fmr_1e-4": cal.threshold_for(1e-4), "calibration": cal.dataset, "faces": out_faces,
        }
        if target is not None:
            result["contact_sheet"] = _write_sheet(uow, vigil, result, faces, target)
    if crops:
        for face, probe in zip(result["faces"], faces):
            face["crop"] = jpeg_data_url(probe.crop)
    return result


def _write_sheet(uow, vigil, result: dict, faces: list[ProbeFace], target: Path) -> str:
    wanted = {c["subject_id"] for f in result["faces"] for c in f["candidates"][:10]}
    candidate_crops = {}
    for sid in wanted:
        image = first_image(uow.session, sid)
        if image is not None:
            candidate_crops[sid] = face_crop(vigil.store.blobs.get(image.blob_id), image.box, 0.25)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_contact_sheet(result, [f.crop for f in faces], candidate_crops))
    record_export(uow, "contact_sheet", target, {"search_id": result["id"], "case_ref": result["case_ref"]})
    return str(target)


def _rank(session, index, face: ProbeFace, top: int, cal, gallery_templates: int) -> dict:
    scores, ids = index.search(face.vector[None].astype(np.float32), min(len(index), top * 3) or 1)
    pairs = [(float(s), int(t)) for s, t in zip(scores[0], ids[0]) if t >= 0]
    owners = {}
    if pairs:
        owners = dict(session.execute(select(TemplateRow.id, TemplateRow.subject_id)
                                      .where(TemplateRow.id.in_([t for _, t in pairs]))).all())
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
