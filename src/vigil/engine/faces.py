"""The face record every stage passes along."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """A detected face in image coordinates.

    ``box`` is ``[x, y, w, h]``; ``landmarks`` is ``(5, 2)`` in the ArcFace order as seen
    in the image: eye on the image's left, eye on the right, nose tip, mouth corner on the
    left, mouth corner on the right. ``extra`` lets a pack keep its own landmark set (dlib).
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    extra: dict = field(default_factory=dict)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def center(self) -> np.ndarray:
        x, y, w, h = self.box
        return np.array([x + w / 2, y + h / 2], dtype=np.float32)

    def box_list(self) -> list[int]:
        return [int(round(v)) for v in self.box]

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> "Face":
        off = np.array(offset, dtype=np.float32)
        box = self.box.astype(np.float32) * factor
        box[:2] += off
        return Face(box=box, landmarks=self.landmarks * factor + off, score=self.score, extra=dict(self.extra))


def primary_face(faces: list[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face a photograph of one person is about: large and near the centre.

    Photographs are framed on their subject, so a face's size counts for most, discounted by
    its distance from the centre (a bystander at the edge loses to the subject at the middle).
    """
    if not faces:
        return None
    return max(faces, key=lambda face: framing_weight(face, image_shape))


def framing_weight(face: Face, image_shape: tuple[int, ...]) -> float:
    """How much a photograph looks framed on this face: its area, discounted by its distance
    from the centre and by an uncertain detection."""
    h, w = image_shape[:2]
    centre = np.array([w / 2, h / 2], dtype=np.float32)
    size = float(face.box[2] * face.box[3])
    dist = float(np.linalg.norm(face.center - centre)) / float(np.hypot(w, h))
    return size * float(np.exp(-8.0 * dist * dist)) * (0.5 + 0.5 * face.score)


def reading_order(faces: list[Face]) -> list[Face]:
    """Faces left to right (then top to bottom): the order ``vigil detect`` numbers them in and
    ``--face-a/--face-b INDEX`` counts in, starting at 1."""
    return sorted(faces, key=lambda f: (round(float(f.box[0])), round(float(f.box[1]))))
