"""Face quality: a score in [0, 1] with human-readable reasons.

Each factor is measured, turned into a sub-score in [0, 1] and, against the limits in
:class:`vigil.config.QualitySettings`, into a reason when it fails. Pose is estimated from
the five landmarks only (no 3D model): roll from the eye line, yaw from the nose's offset
from the eyes' midpoint, pitch from where the nose sits between eyes and mouth. They are
coarse estimates, good enough to reject profile and tilted shots, not angles to quote.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from vigil.config import QualitySettings
from vigil.engine.align import ARCFACE_112, similarity_transform
from vigil.engine.faces import Face

# Nose height between eye line and mouth line on the ArcFace template (frontal face).
_FRONTAL_NOSE_RATIO = (71.7366 - 51.6) / (92.28 - 51.6)


@dataclass
class QualityReport:
    score: float
    eye_distance: float
    detection_score: float
    yaw: float
    pitch: float
    roll: float
    sharpness: float
    brightness: float
    contrast: float
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in data.items()}


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, rough, from 5 landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, nose, mouth_l, mouth_r = lm
    dx, dy = right_eye - left_eye
    roll = math.degrees(math.atan2(dy, dx))
    eye_dist = math.hypot(dx, dy)
    if eye_dist < 1e-6:
        return 90.0, 90.0, roll
    # Undo roll so the eye line is horizontal.
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]])
    pts = (lm - left_eye) @ rot.T
    eye_mid = (pts[0] + pts[1]) / 2
    mouth_mid = (pts[3] + pts[4]) / 2
    offset = (pts[2][0] - eye_mid[0]) / (eye_dist / 2)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset * 0.85))))
    span = mouth_mid[1] - eye_mid[1]
    if span <= 1e-6:
        pitch = 90.0
    else:
        ratio = (pts[2][1] - eye_mid[1]) / span
        pitch = (ratio - _FRONTAL_NOSE_RATIO) * 120.0
    return yaw, pitch, roll


def image_measures(aligned: np.ndarray) -> tuple[float, float, float]:
    """(sharpness 0..1, mean brightness 0..255, contrast) on the central face region."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY) if aligned.ndim == 3 else aligned
    h, w = gray.shape
    centre = gray[int(h * 0.25) : int(h * 0.9), int(w * 0.2) : int(w * 0.8)]
    lap = cv2.Laplacian(centre, cv2.CV_64F)
    sharp_var = float(lap.var())
    sharpness = 1.0 - math.exp(-sharp_var / 150.0)
    return sharpness, float(centre.mean()), float(centre.std())


def _ramp(value: float, bad: float, good: float) -> float:
    if good == bad:
        return 1.0
    return float(min(1.0, max(0.0, (value - bad) / (good - bad))))


MAX_OUTSIDE = 0.05  # share of the face that may lie outside the image before it counts as cut off
# The face in the aligned 112x112 crop, forehead to chin and cheek to cheek (ArcFace template)
_FACE_GRID = np.stack(np.meshgrid(np.linspace(14, 98, 15), np.linspace(16, 108, 15)), -1).reshape(-1, 2)


def outside_share(face: Face, image_shape: tuple[int, ...]) -> float:
    """How much of the face lies outside an image of ``image_shape`` (0 = all inside). Measured
    from the landmarks, not the detector's box (which is clipped to the image): the face's
    extent in the aligned crop is mapped back into the image and counted where it falls."""
    matrix = similarity_transform(face.landmarks, ARCFACE_112)
    forward = np.vstack([matrix, [0.0, 0.0, 1.0]])
    back = np.linalg.inv(forward)[:2]
    points = _FACE_GRID @ back[:, :2].T + back[:, 2]
    h, w = image_shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
    return float(1.0 - inside.mean())


def assess(face: Face, aligned: np.ndarray, limits: QualitySettings | None = None,
           image_shape: tuple[int, ...] | None = None) -> QualityReport:
    """The quality gate's verdict on one face. With ``image_shape`` a face cut by the image's
    edge is caught too (its aligned crop is padded with black, and it scores as sharp)."""
    limits = limits or QualitySettings()
    yaw, pitch, roll = estimate_pose(face.landmarks)
    sharpness, brightness, contrast = image_measures(aligned)
    eye = face.eye_distance
    reasons: list[str] = []
    if eye < limits.min_eye_distance:
        reasons.append(f"face too small: {eye:.0f} px between the eyes (minimum {limits.min_eye_distance:.0f})")
    if face.score < limits.min_detection_score:
        reasons.append(f"uncertain detection: confidence {face.score:.2f} (minimum {limits.min_detection_score:.2f})")
    if abs(yaw) > limits.max_yaw_degrees:
        reasons.append(f"head turned: yaw about {yaw:.0f} degrees (limit {limits.max_yaw_degrees:.0f})")
    if abs(roll) > limits.max_roll_degrees:
        reasons.append(f"head tilted: roll about {roll:.0f} degrees (limit {limits.max_roll_degrees:.0f})")
    if abs(pitch) > 35.0:
        reasons.append(f"head tipped up or down: pitch about {pitch:.0f} degrees (limit 35)")
    if sharpness < limits.min_sharpness:
        reasons.append(f"blurred: sharpness {sharpness:.2f} (minimum {limits.min_sharpness:.2f})")
    if brightness < limits.min_brightness:
        reasons.append(f"under-exposed: brightness {brightness:.0f}/255 (minimum {limits.min_brightness:.0f})")
    if brightness > limits.max_brightness:
        reasons.append(f"over-exposed: brightness {brightness:.0f}/255 (maximum {limits.max_brightness:.0f})")
    outside = outside_share(face, image_shape) if image_shape is not None else 0.0
    if outside > MAX_OUTSIDE:
        reasons.append(f"face cut off by the image edge: {outside:.0%} of it is outside the picture")
    parts = [
        _ramp(-outside, -0.4, -MAX_OUTSIDE),
        _ramp(eye, limits.min_eye_distance * 0.5, limits.min_eye_distance * 2.0),
        _ramp(face.score, 0.3, 0.95),
        _ramp(-abs(yaw), -60.0, -10.0),
        _ramp(-abs(roll), -45.0, -10.0),
        _ramp(-abs(pitch), -50.0, -15.0),
        _ramp(sharpness, 0.0, 0.5),
        min(_ramp(brightness, 10.0, 70.0), _ramp(-brightness, -250.0, -190.0)),
    ]
    score = float(np.prod(parts) ** (1.0 / len(parts)))  # geometric mean: any zero sinks it
    if not reasons and score < limits.min_score_enrol:
        reasons.append(f"low overall quality: {score:.2f} (minimum {limits.min_score_enrol:.2f})")
    return QualityReport(score=score, eye_distance=eye, detection_score=face.score, yaw=yaw,
                         pitch=pitch, roll=roll, sharpness=sharpness, brightness=brightness,
                         contrast=contrast, reasons=reasons)
