"""Face crops as JPEG for people to look at (the console, contact sheets): decoded and
encoded in memory only, never written to disk."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from vigil.engine.images import decode_image, encode_jpeg
from vigil.engine.images import crop_around


def face_crop(data: bytes, box: list | None, margin: float = 0.3) -> np.ndarray:
    image = decode_image(data)
    return crop_around(image, box, margin) if box else image


def face_crop_jpeg(data: bytes, box: list | None, size: int = 224) -> bytes:
    crop = face_crop(data, box)
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return encode_jpeg(crop, 88)


def jpeg_data_url(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image, 85)).decode()
