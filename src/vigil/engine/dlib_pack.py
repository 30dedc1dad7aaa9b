"""The optional dlib pack (``pip install vigil[dlib]``): HOG or CNN detector, 5-point
landmarks and the ResNet face descriptor from ``face_recognition_models``.

The descriptor is used as a unit vector compared by cosine similarity, like every other
Vigil template. It aligns its own way (dlib's 150x150 chip from its own 5 landmarks), so
it takes the image and a detected face, not a pre-cut crop. Faces from another detector
(YuNet, in the fusion pack) are turned into the box dlib's landmark model expects from
their eyes and mouth (fitted on 382 LFW faces found by both detectors).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from vigil.engine import model_files as mf
from vigil.engine.faces import Face
from vigil.engine.onnx_embedder import l2_normalise
from vigil.errors import ModelError

_lock = threading.Lock()


def _dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError:
        raise ModelError("the dlib pack needs the optional extra: pip install 'vigil[dlib]'") from None
    return dlib


@lru_cache(maxsize=1)
def shape_predictor():
    return _dlib().shape_predictor(str(mf.locate(mf.DLIB_SHAPE5)))


@lru_cache(maxsize=1)
def resnet():
    return _dlib().face_recognition_model_v1(str(mf.locate(mf.DLIB_RESNET)))


@lru_cache(maxsize=2)
def detector(kind: str):
    dlib = _dlib()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(str(mf.locate(mf.DLIB_CNN)))
    return dlib.get_frontal_face_detector()


def rect_from_landmarks(landmarks: np.ndarray):
    """The square box dlib's own detector would draw around a face with these landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye = (lm[0] + lm[1]) / 2
    mouth = (lm[3] + lm[4]) / 2
    span = float(np.linalg.norm(mouth - eye))
    centre = (eye + mouth) / 2 + np.array([0.0, -0.05 * span])
    half = 1.22 * span
    return _dlib().rectangle(int(round(centre[0] - half)), int(round(centre[1] - half)),
                             int(round(centre[0] + half)), int(round(centre[1] + half)))


def _arcface_points(shape) -> np.ndarray:
    """ArcFace-order 5 points estimated from dlib's (4 eye corners + nose base) set."""
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float32)
    eye_a, eye_b = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2
    left, right = (eye_a, eye_b) if eye_a[0] < eye_b[0] else (eye_b, eye_a)
    nose = p[4]
    across = right - left
    down = np.array([-across[1], across[0]])  # perpendicular, pointing down the face
    mid = (left + right) / 2
    mouth_mid = mid + down * 1.05
    return np.stack([left, right, nose - down * 0.12, mouth_mid - across * 0.4, mouth_mid + across * 0.4])


class DlibDetector:
    model_id = "dlib-hog"

    def __init__(self, kind: str = "hog", upsample: int = 1):
        self.kind = kind
        self.upsample = upsample
        self.model_id = f"dlib-{kind}"

    def detect(self, image: np.ndarray, *, threshold: float | None = None, upscale: float = 1.0) -> list[Face]:
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        upsample = self.upsample + (1 if upscale > 1 else 0)
        with _lock:
            if self.kind == "cnn":
                found = [(d.rect, float(d.confidence)) for d in detector("cnn")(rgb, upsample)]
            else:
                rects, scores, _ = detector("hog").run(rgb, upsample, -0.5 if threshold is not None else 0.0)
                found = list(zip(rects, [float(s) for s in scores]))
            faces = []
            for rect, score in found:
                shape = shape_predictor()(rgb, rect)
                box = np.array([rect.left(), rect.top(), rect.width(), rect.height()], dtype=np.float32)
                conf = float(1.0 / (1.0 + np.exp(-2.0 * score))) if self.kind == "hog" else min(1.0, score)
                faces.append(Face(box=box, landmarks=_arcface_points(shape), score=conf,
                                  extra={"dlib_rect": rect, "dlib_shape": shape}))
        return faces


class DlibEmbedder:
    model_id = "dlib-resnet-v1"
    dim = 128

    def __init__(self, flip: bool = True):
        self.flip = flip
        self.model_id = "dlib-resnet-v1" + ("-flip" if flip else "")

    def load(self) -> None:
        """Load both dlib models now (a clear error without the extra; no stall at the first face)."""
        shape_predictor()
        resnet()

    def chips(self, image: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        dlib = _dlib()
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        out = []
        with _lock:
            for face in faces:
                shape = face.extra.get("dlib_shape")
                if shape is None:
                    shape = shape_predictor()(rgb, face.extra.get("dlib_rect") or rect_from_landmarks(face.landmarks))
                out.append(np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25)))
        return out

    def embed(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_chips(self.chips(image, faces))

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) unit rows for 150x150 RGB chips cut by :meth:`chips` (the costly step)."""
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        batch = chips + ([np.ascontiguousarray(c[:, ::-1]) for c in chips] if self.flip else [])
        with _lock:
            desc = np.array(resnet().compute_face_descriptor(batch), dtype=np.float32)
        if self.flip:
            n = len(chips)
            desc = l2_normalise(desc[:n]) + l2_normalise(desc[n:])
        return l2_normalise(desc)
