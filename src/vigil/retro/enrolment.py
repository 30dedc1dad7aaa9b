"""Enrolment: one image, a folder per subject, or a CSV manifest.

Every image is its own transaction keyed by a keyed hash of its bytes within the
collection, so an import killed at any point (even ``kill -9``) and run again enrols each
image exactly once: done images are skipped, the interrupted one is redone. The encrypted
blob is written before the row that references it is committed (a crash leaves at worst an
orphan file, collected later).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from vigil.engine.face_engine import AnalysedFace, FaceEngine
from vigil.engine.images import decode_image
from vigil.errors import ImageError, NoFaceError, QualityError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.progress import progress_bar
from vigil.store.collections import check_category, mark_changed
from vigil.store.schema import Collection, FaceImage, IndexChange, Membership, Subject, TemplateRow
from vigil.store.store import template_context
from vigil.store.subjects import add_member, create_subject, find_member_by_name

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
LOOKALIKE_FMR = 1e-4


@dataclass
class EnrolItem:
    source: str  # a path or label, for reports only (never stored)
    name: str
    category: str | None = None
    reference: str = ""
    subject_id: str | None = None


@dataclass
class EnrolOutcome:
    source: str
    status: str  # enrolled | skipped | rejected
    subject_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class EnrolReport:
    outcomes: list[EnrolOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def to_dict(self) -> dict:
        return {
            "enrolled": self.count("enrolled"),
            "skipped": self.count("skipped"),
            "rejected": [o.to_dict() for o in self.outcomes if o.status == "rejected"],
            "warnings": [o.to_dict() for o in self.outcomes if o.warning],
            "subjects": sorted({o.subject_id for o in self.outcomes if o.subject_id}),
        }


def items_from_dir(folder: Path) -> list[tuple[Path, EnrolItem]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise VigilError(f"{folder}: not a folder")
    items = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(person.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS and f.is_file():
                items.append((f, EnrolItem(str(f), person.name.replace("_", " "))))
    if not items:
        raise VigilError(f"{folder}: no images found (expected one sub-folder of images per subject)")
    return items


def items_from_csv(manifest: Path) -> list[tuple[Path, EnrolItem]]:
    manifest = Path(manifest)
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VigilError(f"{manifest}: cannot read the manifest ({exc.__class__.__name__})") from None
    reader = csv.DictReader(text.splitlines())
    required = {"path", "name"}
    if not reader.fieldnames or not required <= {f.strip() for f in reader.fieldnames}:
        raise VigilError(f"{manifest}: the manifest needs the columns path,name[,category,reference]")
    items = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        if not row.get("path") or not row.get("name"):
            raise VigilError(f"{manifest}: line {line} lacks a path or a name")
        path = Path(row["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        items.append((path, EnrolItem(str(path), row["name"], row.get("category") or None, row.get("reference", ""))))
    return items


class Enroller:
    def __init__(self, store, engine: FaceEngine, indexes, actor: Actor, collection: Collection,
                 *, quality_gate: bool = True):
        if engine.model_id != collection.model_id:
            raise VigilError(f"{collection.kind} {collection.name!r} keeps {collection.model_id} templates; "
                             f"the engine makes {engine.model_id}")
        require(actor, "gallery.manage" if collection.kind == "gallery" else "watchlist.manage")
        self.store, self.engine, self.indexes = store, engine, indexes
        self.actor, self.collection = actor, collection
        self.quality_gate = quality_gate
        self.lookalike_threshold = engine.pack.calibration.threshold_for(LOOKALIKE_FMR)

    # -- one image -------------------------------------------------------------------------------
    def enrol_bytes(self, data: bytes, item: EnrolItem) -> EnrolOutcome:
        digest = self.store.keyring.content_key(data)
        with self.store.session() as session:
            if existing := self._existing(session, digest):
                return EnrolOutcome(item.source, "skipped", existing, ["already enrolled (same image content)"])
        try:
            image = decode_image(data, max_pixels=self.store.settings.max_image_pixels, name=item.source)
            found = (self.engine.enrolment_face(image, name=item.source) if self.quality_gate
                     else self.engine.primary(image, name=item.source))
        except (ImageError, NoFaceError) as exc:
            return EnrolOutcome(item.source, "rejected", reasons=[str(exc)])
        except QualityError as exc:
            return EnrolOutcome(item.source, "rejected", reasons=exc.reasons or [str(exc)])
        return self._store(data, digest, image.shape, found, item)

    def _existing(self, session, digest: str) -> str | None:
        return session.scalar(select(FaceImage.subject_id).where(
            FaceImage.collection_id == self.collection.id, FaceImage.content_hash == digest))

    def _store(self, data: bytes, digest: str, shape, found: AnalysedFace, item: EnrolItem) -> EnrolOutcome:
        with self.store.session() as session:
            if existing := self._existing(session, digest):  # another process got there first
                return EnrolOutcome(item.source, "skipped", existing, ["already enrolled (same image content)"])
            coll = session.get(Collection, self.collection.id)
            subject = self._subject(session, coll, item)
            warning = self._lookalike(session, coll, found.vector, subject.id)
            blob_id = self.store.blobs.put(session, "face_image", data)
            image_row = FaceImage(subject_id=subject.id, collection_id=coll.id, content_hash=digest, blob_id=blob_id,
                                  width=int(shape[1]), height=int(shape[0]), box=found.face.box_list(),
                                  quality=found.quality.to_dict(), created_by=self.actor.username)
            session.add(image_row)
            session.flush()
            template = TemplateRow(image_id=image_row.id, subject_id=subject.id, model_id=coll.model_id,
                                   vector_enc=self.store.seal_vector(found.vector,
                                                                     template_context(image_row.id, coll.model_id)),
                                   quality_score=found.quality.score)
            session.add(template)
            session.flush()
            member_of = session.scalars(select(Membership.collection_id).join(
                Collection, Collection.id == Membership.collection_id).where(
                Membership.subject_id == subject.id, Collection.model_id == coll.model_id)).all()
            for cid in member_of:
                session.add(IndexChange(collection_id=cid, op="add", template_id=template.id))
            mark_changed(session, self.store.audit, self.actor, coll, "enrolment")
            self.store.audit.record(session, self.actor, "enrolment.added", coll.kind, coll.id,
                                    {"subject_id": subject.id, "image_id": image_row.id,
                                     "quality": round(found.quality.score, 3),
                                     "quality_gate": "applied" if self.quality_gate else
                                     ("bypassed, face failed: " + "; ".join(found.quality.reasons)
                                      if found.quality.reasons else "bypassed"),
                                     **({"lookalike_warning": warning} if warning else {})})
        return EnrolOutcome(item.source, "enrolled", subject.id, warning=warning)

    def _subject(self, session, coll: Collection, item: EnrolItem) -> Subject:
        if item.subject_id:
            subject = session.get(Subject, item.subject_id)
            if subject is None:
                raise VigilError(f"no subject {item.subject_id}")
        else:
            subject = find_member_by_name(session, coll.id, item.name)
            if subject is None:
                category = check_category(item.category) if item.category else coll.category
                subject = create_subject(session, self.actor, item.name, category=category, reference=item.reference)
        add_member(session, coll, subject, self.actor)
        return subject

    def _lookalike(self, session, coll: Collection, vector: np.ndarray, subject_id: str) -> str | None:
        index = self.indexes.get(session, coll)
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

    # -- many images ---------------------------------------------------------------------------
    def enrol_many(self, items: list[tuple[Path, EnrolItem]], *, show_progress: bool = True) -> EnrolReport:
        report = EnrolReport()
        with progress_bar(f"Enrolling into {self.collection.kind} {self.collection.name}", len(items),
                          enabled=show_progress) as advance:
            for path, item in items:
                try:
                    data = Path(path).read_bytes()
                except OSError as exc:
                    report.outcomes.append(EnrolOutcome(item.source, "rejected",
                                                        reasons=[f"cannot read file ({exc.strerror})"]))
                    advance()
                    continue
                report.outcomes.append(self.enrol_bytes(data, item))
                advance()
        with self.store.session() as session:
            self.indexes.save(session, session.get(Collection, self.collection.id))
        return report
