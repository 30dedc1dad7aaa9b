"""Alerts: a person decides every one, and every decision is kept.

A decision (confirmed match / false alert / could not verify), its outcome (no action /
engaged / arrested), notes and case reference are appended to ``alert_decisions``; nothing
is overwritten. The first decision needs ``alert.decide``; changing it is a *revision*: it
needs ``alert.revise`` (supervisors and administrators) and a reason, and its audit entry
says what it revised. The alert row keeps the latest decision (denormalised) so that
reports and retention read one row.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from vigil.engine.align import ARCFACE_112, similarity_transform
from vigil.engine.faces import Face, primary_face
from vigil.engine.images import crop_around, decode_image, encode_jpeg
from vigil.errors import NotFoundError, VigilError
from vigil.governance.permissions import Actor
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import use_case
from vigil.store.exports import add_export_record, check_target
from vigil.store.schema import Alert, AlertDecision, Collection, Deployment, FaceImage, Subject
from vigil.timeutil import iso, utcnow

DECISIONS = ("confirmed", "false_alert", "unverified")
OUTCOMES = ("no_action", "engaged", "arrested")
IMAGES = ("probe", "frame", "watchlist", "probe_face", "watchlist_face")
# A score this far or less above its threshold is "just above" it: the margin within which a
# runner-up counts as a look-alike (vigil.live.matcher.LOOKALIKE_MARGIN); WELL_ABOVE and more
# is "well above" (a tenth of the cosine scale: a genuine pair's score spread, not a near miss).
JUST_ABOVE = 0.05
WELL_ABOVE = 0.10


def alert_payload(alert: Alert, deployment_name: str = "") -> dict:
    """An alert as the API, the stream and the sinks send it. The score is also said in words
    against the threshold (``score_words``, ``runner_up_words``). When the alert row is
    attached to a session (it always is in the services), the subject's reference (warrant or
    case number) and the watchlist's name and expiry are read with it; None when the subject
    was erased or the watchlist deleted since."""
    return {"type": "alert", "id": alert.id, "deployment_id": alert.deployment_id,
            "deployment": deployment_name, "subject_id": alert.subject_id, "name": alert.subject_name,
            "category": alert.category, "score": round(alert.score, 5), "threshold": round(alert.threshold, 5),
            "fmr": alert.fmr, "camera": alert.camera, "time": round(alert.source_time, 3),
            "utc": iso(alert.created_at), "track_id": alert.track_id, "decision": alert.decision,
            "outcome": alert.outcome, "decided_by": alert.decided_by, "notes": alert.notes or None,
            "runner_up": alert.runner_up, "lookalike_warning": lookalike_warning(alert),
            "score_words": score_words(alert.score, alert.threshold),
            "runner_up_words": runner_up_words(alert.runner_up), **_listing(alert)}


def _listing(alert: Alert) -> dict:
    """The subject's reference and the watchlist entry's name and expiry, read now."""
    session = object_session(alert)
    subject = session.get(Subject, alert.subject_id) if session is not None and alert.subject_id else None
    watchlist = session.get(Collection, alert.watchlist_id) if session is not None and alert.watchlist_id else None
    return {"reference": (subject.reference or None) if subject is not None else None,
            "subject_on_record": subject is not None, "watchlist_id": alert.watchlist_id,
            "watchlist": watchlist.name if watchlist is not None else None,
            "watchlist_expires_at": iso(watchlist.expires_at) if watchlist is not None else None,
            "watchlist_status": watchlist.status if watchlist is not None else None}


def score_words(score: float, threshold: float) -> str:
    """The score against the threshold in words: "0.620, well above the threshold 0.480"."""
    margin = round(score - threshold, 3)
    if margin < 0:
        where = "below"
    elif margin <= JUST_ABOVE:
        where = "just above"
    elif margin < WELL_ABOVE:
        where = "above"
    else:
        where = "well above"
    return f"{score:.3f}, {where} the threshold {threshold:.3f} ({margin:+.3f})"


def runner_up_words(other: dict | None) -> str | None:
    """The runner-up in words: who, and how near they came to their own threshold."""
    if not other:
        return None
    margin = round(other["score"] - other["threshold"], 3)
    where = "also above" if margin >= 0 else "just below" if other.get("lookalike") else "below"
    close = ": a look-alike" if other.get("lookalike") else ""
    return f"{other['name']}: {other['score']:.3f}, {where} their threshold {other['threshold']:.3f} ({margin:+.3f}){close}"


def lookalike_warning(alert: Alert) -> str | None:
    """What the operator reads when another listed person scored nearly as high (a relative,
    a twin): compare with both before deciding."""
    other = alert.runner_up
    if not other or not other.get("lookalike"):
        return None
    return (f"look-alike: {other['name']} ({other['subject_id']}) on the same watchlist scored {other['score']:.3f} "
            f"against their threshold {other['threshold']:.3f}; compare the face with both before deciding")


def _decision_row(d: AlertDecision) -> dict:
    return {"seq": d.seq, "decided_by": d.decided_by, "decided_at": iso(d.decided_at), "decision": d.decision,
            "outcome": d.outcome, "notes": d.notes or None, "case_ref": d.case_ref or None,
            "reason": d.reason or None}


def _history(session, alert_id: int) -> list[dict]:
    rows = session.scalars(select(AlertDecision).where(AlertDecision.alert_id == alert_id)
                           .order_by(AlertDecision.seq))
    return [_decision_row(d) for d in rows]


def _get(session, alert_id) -> Alert:
    alert = session.get(Alert, int(alert_id))
    if alert is None:
        raise NotFoundError(f"no alert {alert_id} (it may have been deleted by retention)")
    return alert


def _listed(alert: Alert, dep_name: str) -> dict:
    payload = alert_payload(alert, dep_name)
    payload.update(undecided=alert.decision is None, has_images=alert.probe_blob_id is not None,
                   case_ref=alert.case_ref or None)
    return payload


def list_alerts(vigil, actor: Actor, *, deployment_id=None, subject_id: str | None = None,
                undecided_only: bool = False, decision: str | None = None, after_id: int = 0,
                cursor: str | None = None, limit: int | None = None) -> Page:
    """Alerts newest first, one page at a time: all, one deployment's or one subject's (the
    history an operator checks), only those awaiting a decision, or those with one decision."""
    if decision is not None and decision not in DECISIONS:
        raise VigilError(f"decision must be one of {', '.join(DECISIONS)}")
    with use_case(vigil, actor, "alert.view") as uow:
        query = select(Alert, Deployment.name).join(Deployment, Deployment.id == Alert.deployment_id)
        if deployment_id is not None:
            query = query.where(Alert.deployment_id == int(deployment_id))
        if subject_id:
            query = query.where(Alert.subject_id == subject_id)
        if undecided_only:
            query = query.where(Alert.decision.is_(None))
        if decision is not None:
            query = query.where(Alert.decision == decision)
        if after_id:
            query = query.where(Alert.id > int(after_id))
        return keyset_page(uow.session, query, list_name="alerts", order=[Alert.id], descending=True, scalars=False,
                           key_of=lambda row: (row[0].id,), item_of=lambda row: _listed(*row),
                           cursor=cursor, limit=limit)


def alerts_after(vigil, actor: Actor, after_id: int, limit: int = 500) -> list[dict]:
    """Alerts raised after ``after_id``, oldest first: what a live stream sends next."""
    with use_case(vigil, actor, "alert.view") as uow:
        rows = uow.session.execute(select(Alert, Deployment.name).join(Deployment, Deployment.id == Alert.deployment_id)
                                   .where(Alert.id > int(after_id)).order_by(Alert.id).limit(limit)).all()
        return [_listed(*row) for row in rows]


def latest_alert_id(vigil, actor: Actor) -> int:
    """The newest alert's id (0 when there is none): where a new live stream starts."""
    with use_case(vigil, actor, "alert.view") as uow:
        return int(uow.session.scalar(select(func.max(Alert.id))) or 0)


def show_alert(vigil, actor: Actor, alert_id: int) -> dict:
    """One alert with its latest decision and ``history``: every decision, oldest first."""
    with use_case(vigil, actor, "alert.view") as uow:
        alert = _get(uow.session, alert_id)
        dep = uow.session.get(Deployment, alert.deployment_id)
        return {**alert_payload(alert, dep.name if dep else ""), "case_ref": alert.case_ref or None,
                "has_images": alert.probe_blob_id is not None, "has_clip": alert.clip_blob_id is not None,
                "history": _history(uow.session, alert.id)}


def decision_history(vigil, actor: Actor, alert_id: int) -> list[dict]:
    """Every decision on an alert, oldest first (for the subject-access export and reviews)."""
    with use_case(vigil, actor, "alert.view") as uow:
        return _history(uow.session, _get(uow.session, alert_id).id)


def decide(vigil, actor: Actor, alert_id: int, *, decision: str, outcome: str = "no_action", notes: str = "",
           case_ref: str = "", reason: str = "") -> dict:
    """Append a decision. A second one revises the first: ``alert.revise`` and a reason needed."""
    if decision not in DECISIONS:
        raise VigilError(f"decision must be one of {', '.join(DECISIONS)}")
    if outcome not in OUTCOMES:
        raise VigilError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if decision == "false_alert" and outcome == "arrested":
        raise VigilError("an arrest on a false alert must be recorded as 'confirmed' or 'unverified' with notes")
    with use_case(vigil, actor, "alert.decide") as uow:
        alert = _get(uow.session, alert_id)
        last = uow.session.scalar(select(func.max(AlertDecision.seq)).where(AlertDecision.alert_id == alert.id)) or 0
        revising = last > 0 or alert.decision is not None
        previous = {"decision": alert.decision, "outcome": alert.outcome, "decided_by": alert.decided_by}
        if revising:
            uow.require("alert.revise")
            if not reason.strip():
                raise VigilError(f"alert {alert.id} was already decided ({alert.decision}, by {alert.decided_by}); "
                                 "changing a decision needs a reason (--reason)")
        now = utcnow()
        case_ref = case_ref or alert.case_ref or ""
        uow.session.add(AlertDecision(alert_id=alert.id, seq=last + 1, decided_by=actor.username, decided_at=now,
                                      decision=decision, outcome=outcome, notes=notes, case_ref=case_ref,
                                      reason=reason.strip()))
        alert.decision, alert.outcome, alert.notes, alert.case_ref = decision, outcome, notes, case_ref
        alert.decided_by, alert.decided_at = actor.username, now
        details = {"decision": decision, "outcome": outcome, "seq": last + 1, "revision": revising,
                   "deployment_id": alert.deployment_id, "subject_id": alert.subject_id,
                   "case_ref": case_ref or None, "notes_length": len(notes)}
        if revising:
            details.update(revises_seq=last, previous_decision=previous["decision"],
                           previous_outcome=previous["outcome"], previous_decided_by=previous["decided_by"],
                           reason=reason.strip())
        uow.audit("alert.decision_revised" if revising else "alert.decided", "alert", alert.id, details)
        uow.session.flush()
        dep = uow.session.get(Deployment, alert.deployment_id)
        return {**alert_payload(alert, dep.name if dep else ""), "case_ref": case_ref or None,
                "history": _history(uow.session, alert.id)}


def alert_image(vigil, actor: Actor, alert_id: int, which: str) -> bytes:
    """One of an alert's images as JPEG, decrypted in memory:

    - ``probe``: the face the camera saw as stored, its box plus 30% of the redacted frame;
    - ``frame``: the redacted camera frame (everything but the alerted face washed out);
    - ``watchlist``: the watchlist photograph as enrolled, whole (a portrait, or a group photo);
    - ``probe_face`` / ``watchlist_face``: each face aligned as the recogniser aligns it (the
      5-point similarity to the 112x112 template) with a margin, both ``FACE_SIDE`` pixels
      square, so that the operator compares like with like (see :func:`aligned_face`).
    """
    if which not in IMAGES:
        raise NotFoundError(f"no such image {which!r} (one of {', '.join(IMAGES)})")
    source = which.removesuffix("_face")
    with use_case(vigil, actor, "alert.view") as uow:
        alert = _get(uow.session, alert_id)
        blob = {"probe": alert.probe_blob_id, "frame": alert.frame_blob_id,
                "watchlist": alert.watchlist_blob_id}[source]
        if not blob:
            raise NotFoundError("no such image (deleted by retention, or not recorded)")
        data = vigil.store.blobs.get(blob)
        if which == source:
            return data
        box = _enrolled_box(uow.session, vigil, alert, data) if source == "watchlist" else None
    image = decode_image(data, name=f"alert {alert_id} {source}")
    return encode_jpeg(aligned_face(vigil, image, box, centred=source == "probe"), 90)


def _enrolled_box(session, vigil, alert: Alert, data: bytes) -> list | None:
    """The face box recorded when the watchlist photograph was enrolled (the alert keeps a copy
    of the photograph's bytes; the subject's image row with the same keyed hash holds the box),
    or None when that row is gone (erasing the subject also deletes the alert's images)."""
    digest = vigil.store.keyring.content_key(data)
    row = session.scalar(select(FaceImage).where(FaceImage.subject_id == alert.subject_id,
                                                 FaceImage.content_hash == digest).limit(1))
    return list(row.box) if row is not None and row.box else None


# The aligned faces shown side by side: FACE_SIDE pixels square, the recogniser's 112x112
# template scaled so that it fills FACE_FILL of the side (the rest is margin: forehead, chin,
# ears), so the operator sees what the recogniser compared and a little around it. The card
# shows them at half size (sharp on high-density screens); the enlarged view at full size.
FACE_SIDE = 448
FACE_FILL = 0.8
SMALL_SIDE = 320  # an image smaller than this is enlarged before detection (small probe crops)


def aligned_face(vigil, image: np.ndarray, box: list | None = None, *, centred: bool = False) -> np.ndarray:
    """The face in ``image`` aligned to the recogniser's template, ``FACE_SIDE`` square.

    The face is found again in the stored image (landmarks are not stored): the one that
    overlaps ``box`` most when a box is known (the face chosen at enrolment, also in a group
    photo); with ``centred`` (the probe crop, centred on the alerted face and washed out
    around it) the large central one; otherwise the photo's only face. Where none of these
    holds, the box (or the whole image) is shown instead, centred and padded to the square,
    not aligned."""
    scale = 1.0
    if max(image.shape[:2]) < SMALL_SIDE:
        scale = SMALL_SIDE / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    if box:
        box = [v * scale for v in box]
    face = _pick_face(vigil.engine(None).detect(image), box, image.shape, known_single=centred)
    if face is None:
        return _padded(crop_around(image, box, 0.25) if box else image)
    side = FACE_SIDE * FACE_FILL
    template = ARCFACE_112 * (side / 112.0) + (FACE_SIDE - side) / 2
    matrix = similarity_transform(face.landmarks, template)
    return cv2.warpAffine(image, matrix, (FACE_SIDE, FACE_SIDE), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))


def _pick_face(faces: list[Face], box: list | None, shape, *, known_single: bool) -> Face | None:
    if not faces:
        return None
    if not box:
        # without the enrolment's box, a photo of several people does not say whose face was
        # listed: show it whole rather than guess (the probe crop is centred on its one face)
        return primary_face(faces, shape) if known_single or len(faces) == 1 else None
    best = max(faces, key=lambda f: _overlap(f.box, box))
    return best if _overlap(best.box, box) > 0.3 else None


def _overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = [float(v) for v in a[:4]]
    bx, by, bw, bh = [float(v) for v in b[:4]]
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _padded(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to fit ``FACE_SIDE`` square, centred on grey."""
    h, w = image.shape[:2]
    scale = FACE_SIDE / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    out = np.full((FACE_SIDE, FACE_SIDE, 3), 128, np.uint8)
    y0, x0 = (FACE_SIDE - resized.shape[0]) // 2, (FACE_SIDE - resized.shape[1]) // 2
    out[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized
    return out


def read_clip(vigil, actor: Actor, alert_id: int, *, destination: str) -> bytes:
    """An alert's evidence clip (other faces already blurred), recorded as an export to ``destination``."""
    with use_case(vigil, actor, "alert.export") as uow:
        alert = _get(uow.session, alert_id)
        if not alert.clip_blob_id:
            raise NotFoundError(f"alert {alert_id} has no evidence clip (clips are recorded only when "
                                "live.evidence_clip_seconds > 0, and deleted with the alert's images by retention)")
        data = vigil.store.blobs.get(alert.clip_blob_id)
        details = {"alert_id": alert.id, "deployment_id": alert.deployment_id, "bytes": len(data)}
        row = add_export_record(uow.session, actor.username, "evidence_clip", Path(destination), details)
        uow.audit("export.written", "evidence_clip", row.id, {"path": destination, **details})
    return data


def export_clip(vigil, actor: Actor, alert_id: int, out) -> dict:
    """Write the evidence clip to a path the user names (an audited export)."""
    target = check_target(Path(out), directory=False)
    data = read_clip(vigil, actor, alert_id, destination=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"alert_id": int(alert_id), "path": str(target), "bytes": len(data)}
