"""Images for the console: decrypted in memory, served with no-store, never cached on disk."""

from __future__ import annotations

import base64

import numpy as np

from vigil.engine.images import decode_image, encode_jpeg
from vigil.retro.probes import crop_of


def face_crop_jpeg(data: bytes, box: list | None, size: int = 224) -> bytes:
    import cv2

    image = decode_image(data)
    crop = crop_of(image, box, 0.3) if box else image
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return encode_jpeg(crop, 88)


def jpeg_data_url(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image, 85)).decode()
