"""The engine's front door: image in, faces with quality and templates out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vigil.config import QualitySettings, Settings
from vigil.engine.align import align_face
from vigil.engine.faces import Face, framing_weight, primary_face, reading_order
from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder
from vigil.engine.packs import Pack, get_pack
from vigil.engine.quality import QualityReport, assess
from vigil.engine.templates import Template
from vigil.errors import AmbiguousFaceError, NoFaceError, QualityError, VigilError

# Still images: if nothing is found at the configured confidence, look again at a lower one,
# then upscaled (small photos). Nothing assumes where the face is.
FALLBACK_THRESHOLD = 0.3
# Enrolment: another face framed at least this much as the chosen one (size and centrality,
# faces.framing_weight) makes the photo ambiguous: a group photo, not a portrait with a bystander
COMPARABLE_FRAMING = 0.5


@dataclass
class AnalysedFace:
    face: Face
    quality: QualityReport
    vector: np.ndarray
    model_id: str

    @property
    def template(self) -> Template:
        return Template(self.model_id, self.vector)


@dataclass
class Verification:
    score: float
    match: bool
    threshold: float
    fmr: float
    fmr_bounded: bool
    target_fmr: float
    model_id: str
    quality_a: QualityReport
    quality_b: QualityReport
    # which faces were compared (1-based, in reading order), out of how many, and where
    face_a: int = 1
    face_b: int = 1
    faces_a: int = 1
    faces_b: int = 1
    box_a: list[int] = field(default_factory=list)
    box_b: list[int] = field(default_factory=list)
    chosen: str = "only"  # "only": one face each; "best": the best pair of several; "given": --face-a/-b

    def to_dict(self) -> dict:
        return {
            "face_a": {"index": self.face_a, "of": self.faces_a, "box": self.box_a},
            "face_b": {"index": self.face_b, "of": self.faces_b, "box": self.box_b},
            "chosen": self.chosen,
            "score": round(self.score, 6),
            "match": self.match,
            "threshold": round(self.threshold, 6),
            "fmr": self.fmr,
            "fmr_is_upper_bound": self.fmr_bounded,
            "target_fmr": self.target_fmr,
            "model_id": self.model_id,
            "quality_a": self.quality_a.to_dict(),
            "quality_b": self.quality_b.to_dict(),
        }


class FaceEngine:
    def __init__(self, pack: Pack, quality: QualitySettings | None = None):
        self.pack = pack
        self.quality_limits = quality or QualitySettings()

    @classmethod
    def from_settings(cls, settings: Settings, pack: str | None = None) -> "FaceEngine":
        return cls(get_pack(pack, settings), settings.quality)

    @property
    def model_id(self) -> str:
        return self.pack.model_id

    def detect(self, image: np.ndarray, *, still: bool = True) -> list[Face]:
        faces = self.pack.detector.detect(image)
        if faces or not still:
            return faces
        faces = self.pack.detector.detect(image, threshold=FALLBACK_THRESHOLD)
        if not faces and max(image.shape[:2]) < 800:
            faces = self.pack.detector.detect(image, threshold=FALLBACK_THRESHOLD, upscale=2.0)
        return faces

    def analyse(self, image: np.ndarray, faces: list[Face] | None = None) -> list[AnalysedFace]:
        faces = self.detect(image) if faces is None else faces
        if not faces:
            return []
        crops = [align_face(image, f.landmarks) for f in faces]
        reports = [assess(f, c, self.quality_limits, image.shape) for f, c in zip(faces, crops)]
        embedder = self.pack.embedder
        if isinstance(embedder, OnnxArcFaceEmbedder) and embedder.size == 112:
            vectors = embedder.embed_aligned(crops)
        else:
            vectors = embedder.embed(image, faces)
        return [AnalysedFace(f, q, v, self.model_id) for f, q, v in zip(faces, reports, vectors)]

    def primary_batch(self, images: list[np.ndarray]) -> list[AnalysedFace | None]:
        """The primary face of each image (None where no face is found), embedded in one batch."""
        chosen = [primary_face(self.detect(im), im.shape) for im in images]
        todo = [i for i, f in enumerate(chosen) if f is not None]
        out: list[AnalysedFace | None] = [None] * len(images)
        embedder = self.pack.embedder
        if isinstance(embedder, OnnxArcFaceEmbedder) and embedder.size == 112:
            crops = [align_face(images[i], chosen[i].landmarks) for i in todo]
            vectors = embedder.embed_aligned(crops)
            for k, i in enumerate(todo):
                report = assess(chosen[i], crops[k], self.quality_limits, images[i].shape)
                out[i] = AnalysedFace(chosen[i], report, vectors[k], self.model_id)
        else:
            for i in todo:
                out[i] = self.analyse(images[i], [chosen[i]])[0]
        return out

    def primary(self, image: np.ndarray, *, name: str = "image") -> AnalysedFace:
        faces = self.detect(image)
        face = primary_face(faces, image.shape)
        if face is None:
            raise NoFaceError(f"{name}: no face found")
        return self.analyse(image, [face])[0]

    def enrolment_face(self, image: np.ndarray, *, name: str = "image", face: int | None = None,
                       quality_gate: bool = True, refuse_ambiguous: bool = True) -> AnalysedFace:
        """The face to enrol: face number ``face`` (1-based, reading order), else the photo's
        only face or its clear subject. A photo with another face of comparable size (a group
        photo) is refused rather than enrolled as an arbitrary one of them; with the quality
        gate on, a face that fails it is refused with the reasons."""
        faces = reading_order(self.detect(image))
        if not faces:
            raise NoFaceError(f"{name}: no face found")
        if face is not None:
            if not 1 <= face <= len(faces):
                raise VigilError(f"{name} has {len(faces)} face(s): choose a face from 1 to {len(faces)}")
            chosen = faces[face - 1]
        else:
            chosen = primary_face(faces, image.shape)
            weight = framing_weight(chosen, image.shape)
            rivals = [f for f in faces if f is not chosen
                      and framing_weight(f, image.shape) >= COMPARABLE_FRAMING * weight]
            if rivals and refuse_ambiguous:
                raise AmbiguousFaceError(
                    f"{name}: {len(rivals) + 1} faces of comparable size; choose the one to enrol with --face "
                    f"NUMBER (1 to {len(faces)}, left to right, as 'vigil detect' numbers them)")
        found = self.analyse(image, [chosen])[0]
        if quality_gate and not found.quality.passed:
            raise QualityError(f"{name}: rejected by the quality gate: " + "; ".join(found.quality.reasons),
                               found.quality.reasons)
        return found

    def numbered_faces(self, image: np.ndarray, *, name: str,
                       index: int | None = None) -> tuple[int, list[tuple[int, AnalysedFace]]]:
        """How many faces an image has, and each (or only face ``index``) with its 1-based
        number in reading order."""
        faces = reading_order(self.detect(image))
        if not faces:
            raise NoFaceError(f"{name}: no face found")
        picked = list(enumerate(faces, 1))
        if index is not None:
            if not 1 <= index <= len(faces):
                raise VigilError(f"{name} has {len(faces)} face(s): choose a face from 1 to {len(faces)}")
            picked = [picked[index - 1]]
        analysed = self.analyse(image, [f for _, f in picked])
        return len(faces), [(number, found) for (number, _), found in zip(picked, analysed)]

    def verify(self, image_a: np.ndarray, image_b: np.ndarray, *, target_fmr: float = 1e-4,
               names: tuple[str, str] = ("A", "B"), face_a: int | None = None,
               face_b: int | None = None) -> Verification:
        """Compare two images. With several faces in an image and none chosen, every face is
        compared and the best-scoring pair is reported with where those faces are: a group
        photo is never silently reduced to one arbitrary "main" face."""
        count_a, a_faces = self.numbered_faces(image_a, name=names[0], index=face_a)
        count_b, b_faces = self.numbered_faces(image_b, name=names[1], index=face_b)
        score, (ia, a), (ib, b) = max(((x[1].template.similarity(y[1].template), x, y)
                                       for x in a_faces for y in b_faces), key=lambda t: t[0])
        cal = self.pack.calibration
        threshold = cal.threshold_for(target_fmr)
        fmr, bounded = cal.fmr_at(score)
        pairs = len(a_faces) * len(b_faces)
        chosen = "best" if pairs > 1 else ("given" if face_a or face_b else "only")
        return Verification(score=score, match=score >= threshold, threshold=threshold, fmr=fmr,
                            fmr_bounded=bounded, target_fmr=target_fmr, model_id=self.model_id,
                            quality_a=a.quality, quality_b=b.quality, face_a=ia, face_b=ib, faces_a=count_a,
                            faces_b=count_b, box_a=a.face.box_list(), box_b=b.face.box_list(), chosen=chosen)
