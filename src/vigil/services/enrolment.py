"""Enrolment: one image, a folder per subject, or a CSV manifest, into a gallery or watchlist.

Every image is its own transaction keyed by a keyed hash of its bytes within the
collection, so an import killed at any point (even ``kill -9``) and run again enrols each
image exactly once: done images are skipped, the interrupted one is redone. The encrypted
blob is written before the row that references it is committed (a crash leaves at worst an
orphan file, collected later).

A new template reaches every collection of its model the subject is on, so enrolling into
a gallery can change a watchlist: each authorised watchlist so changed loses its
authorisation, and the result says which and why (``authorisation_withdrawn``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.errors import AmbiguousFaceError, ImageError, NoFaceError, QualityError, VigilError
from vigil.governance.permissions import Actor
from vigil.progress import progress_bar
from vigil.retro.manifests import EnrolItem, items_from_csv, items_from_dir
from vigil.services.authorisation import withdraw_for_subjects
from vigil.services.collections import manage_permission
from vigil.services.unit import use_case
from vigil.store.collections import check_category, get_collection
from vigil.store.schema import Collection, FaceImage, Subject, TemplateRow
from vigil.store.store import template_context
from vigil.store.subjects import add_member, create_subject, find_member_by_name, image_with_content, \
    index_new_template

__all__ = ["EnrolItem", "EnrolOutcome", "enrol_files", "enrol_image", "items_from_csv", "items_from_dir",
           "preview_enrolment"]

LOOKALIKE_FMR = 1e-4
ALREADY = "already enrolled (same image content)"


@dataclass
class EnrolOutcome:
    source: str
    status: str  # enrolled | skipped | rejected
    subject_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    warning: str | None = None
    authorisation_withdrawn: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, [])}
        out["authorisation_withdrawn"] = self.authorisation_withdrawn
        return out


def _report(outcomes: list[EnrolOutcome]) -> dict:
    def count(status: str) -> int:
        return sum(1 for o in outcomes if o.status == status)

    withdrawn = {w["watchlist"]: w for o in outcomes for w in o.authorisation_withdrawn}
    return {
        "enrolled": count("enrolled"), "skipped": count("skipped"),
        "rejected": [o.to_dict() for o in outcomes if o.status == "rejected"],
        "warnings": [o.to_dict() for o in outcomes if o.warning],
        "subjects": sorted({o.subject_id for o in outcomes if o.subject_id}),
        "authorisation_withdrawn": list(withdrawn.values()),
    }


class _Enrolment:
    """Enrolment into one collection by one actor (its permission checked on creation)."""

    def __init__(self, vigil, actor: Actor, kind: str, name: str, quality_gate: bool):
        with use_case(vigil, actor, manage_permission(kind)) as uow:
            coll = get_collection(uow.session, kind, name)
            self.coll_id, self.kind, self.name, self.pack = coll.id, coll.kind, coll.name, coll.pack
            self.model_id, self.category = coll.model_id, coll.category
        self.vigil, self.actor, self.quality_gate = vigil, actor, quality_gate
        self.engine = vigil.engine(self.pack)
        if self.engine.model_id != self.model_id:
            raise VigilError(f"{kind} {name!r} keeps {self.model_id} templates; the engine makes {self.engine.model_id}")
        self.lookalike_threshold = self.engine.pack.calibration.threshold_for(LOOKALIKE_FMR)

    def enrol_bytes(self, data: bytes, item: EnrolItem) -> EnrolOutcome:
        store = self.vigil.store
        digest = store.keyring.content_key(data)
        with store.session() as session:  # a read outside any use case: no permission, no audit
            if existing := image_with_content(session, self.coll_id, digest):
                return EnrolOutcome(item.source, "skipped", existing, [ALREADY])
        try:
            image = decode_image(data, max_pixels=self.vigil.settings.max_image_pixels, name=item.source)
            ambiguous = None
            try:
                found = self.engine.enrolment_face(image, name=item.source, face=item.face,
                                                   quality_gate=self.quality_gate)
            except AmbiguousFaceError as exc:
                if self.quality_gate:
                    raise
                # importing an existing collection as it is (--allow-low-quality): its clearest face, said
                ambiguous = f"{exc}; imported as it is with its clearest face"
                found = self.engine.enrolment_face(image, name=item.source, quality_gate=False,
                                                   refuse_ambiguous=False)
        except (ImageError, NoFaceError, AmbiguousFaceError) as exc:
            return EnrolOutcome(item.source, "rejected", reasons=[str(exc)])
        except QualityError as exc:
            return EnrolOutcome(item.source, "rejected", reasons=exc.reasons or [str(exc)])
        outcome = self._store(data, digest, image.shape, found, item)
        if ambiguous and outcome.status == "enrolled":
            outcome.warning = "; ".join(w for w in (outcome.warning, ambiguous) if w)
        return outcome

    def _store(self, data: bytes, digest: str, shape, found, item: EnrolItem) -> EnrolOutcome:
        store = self.vigil.store
        with use_case(self.vigil, self.actor, manage_permission(self.kind)) as uow:
            session = uow.session
            if existing := image_with_content(session, self.coll_id, digest):  # another process got there first
                return EnrolOutcome(item.source, "skipped", existing, [ALREADY])
            coll = session.get(Collection, self.coll_id)
            if coll is None:
                raise VigilError(f"{self.kind} {self.name!r} was deleted during the enrolment")
            subject = self._subject(session, coll, item)
            warning = self._lookalike(session, coll, found.vector, subject.id)
            image_row = FaceImage(subject_id=subject.id, collection_id=coll.id, content_hash=digest,
                                  blob_id=store.blobs.put(session, "face_image", data), width=int(shape[1]),
                                  height=int(shape[0]), box=found.face.box_list(), quality=found.quality.to_dict(),
                                  created_by=self.actor.username)
            session.add(image_row)
            session.flush()
            template = TemplateRow(image_id=image_row.id, subject_id=subject.id, model_id=coll.model_id,
                                   vector_enc=store.seal_vector(found.vector, template_context(image_row.id,
                                                                                               coll.model_id)),
                                   quality_score=found.quality.score)
            session.add(template)
            session.flush()
            index_new_template(session, subject.id, coll.model_id, template.id)
            withdrawn = withdraw_for_subjects(
                uow, [subject.id], f"a face image was added to subject {subject.id} through {coll.kind} {coll.name!r}",
                model_id=coll.model_id)
            uow.audit("enrolment.added", coll.kind, coll.id,
                      {"subject_id": subject.id, "image_id": image_row.id, "quality": round(found.quality.score, 3),
                       "quality_gate": "applied" if self.quality_gate else
                       ("bypassed, face failed: " + "; ".join(found.quality.reasons)
                        if found.quality.reasons else "bypassed"),
                       **({"lookalike_warning": warning} if warning else {})})
        return EnrolOutcome(item.source, "enrolled", subject.id, warning=warning, authorisation_withdrawn=withdrawn)

    def _subject(self, session, coll: Collection, item: EnrolItem) -> Subject:
        if item.subject_id:
            subject = session.get(Subject, item.subject_id)
            if subject is None:
                raise VigilError(f"no subject {item.subject_id}")
        else:
            subject = find_member_by_name(session, coll.id, item.name)
            if subject is None:
                category = check_category(item.category) if item.category else coll.category
                subject = create_subject(session, self.actor.username, item.name, category=category,
                                         reference=item.reference)
        add_member(session, coll, subject, self.actor.username)
        return subject

    def _lookalike(self, session, coll: Collection, vector: np.ndarray, subject_id: str) -> str | None:
        index = self.vigil.indexes.get(session, coll)
        if len(index) == 0:
            return None
        scores, ids = index.search(vector[None], 5)
        for score, tid in zip(scores[0], ids[0]):
            if tid < 0 or score < self.lookalike_threshold:
                break
            other = session.scalar(select(TemplateRow.subject_id).where(TemplateRow.id == int(tid)))
            if other and other != subject_id:
                return (f"looks like subject {other} already enrolled (score {score:.3f}, above the "
                        f"FMR {LOOKALIKE_FMR:g} threshold): a duplicate under another id, or a look-alike")
        return None

    def save_index(self) -> None:
        with self.vigil.store.session() as session:
            coll = session.get(Collection, self.coll_id)
            if coll is not None:
                self.vigil.indexes.save(session, coll)


def enrol_image(vigil, actor: Actor, kind: str, name: str, data: bytes, item: EnrolItem, *,
                quality_gate: bool = True) -> dict:
    """Enrol one image (bytes already read). ``status`` says enrolled, skipped or rejected."""
    enrolment = _Enrolment(vigil, actor, kind, name, quality_gate)  # checks the permission first
    if not (item.name.strip() or item.subject_id):
        raise VigilError("a subject name (or an existing subject id) is required")
    return enrolment.enrol_bytes(data, item).to_dict()


def enrol_files(vigil, actor: Actor, kind: str, name: str, items: list[tuple[Path, EnrolItem]], *,
                quality_gate: bool = True, show_progress: bool = True, with_outcomes: bool = False) -> dict:
    """Enrol many files (from a folder or a manifest), each image its own transaction.
    ``with_outcomes`` adds every item's outcome (``source``, ``status``, ``subject_id``)."""
    enrolment = _Enrolment(vigil, actor, kind, name, quality_gate)
    outcomes: list[EnrolOutcome] = []
    with progress_bar(f"Enrolling into {kind} {enrolment.name}", len(items), enabled=show_progress) as advance:
        for path, item in items:
            try:
                if item.problem:  # e.g. a folder name that is not UTF-8: reported, never read
                    outcomes.append(EnrolOutcome(item.source, "rejected", reasons=[item.problem]))
                    advance()
                    continue
                data = Path(path).read_bytes()
            except OSError as exc:
                outcomes.append(EnrolOutcome(item.source, "rejected", reasons=[f"cannot read file ({exc.strerror})"]))
            else:
                outcomes.append(enrolment.enrol_bytes(data, item))
            advance()
    enrolment.save_index()
    report = _report(outcomes)
    if with_outcomes:
        report["outcomes"] = [o.to_dict() for o in outcomes]
    return report


def preview_enrolment(vigil, actor: Actor, kind: str, name: str, data: bytes, filename: str,
                      face: int | None = None) -> dict:
    """The face that would be enrolled and its quality; nothing is stored. A group photo with
    no face chosen shows its clearest face and says that one must be chosen."""
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        pack = get_collection(uow.session, kind, name).pack
    engine = vigil.engine(pack)
    pixels = decode_image(data, max_pixels=vigil.settings.max_image_pixels, name=filename)
    faces = engine.detect(pixels)
    warning = None
    try:
        found = engine.enrolment_face(pixels, name=filename, face=face, quality_gate=False)
    except AmbiguousFaceError as exc:
        found, warning = engine.primary(pixels, name=filename), str(exc)
    return {"stored": False, "box": found.face.box_list(), "quality": found.quality.to_dict(),
            "faces_in_image": len(faces), "warning": warning}