"""Decoding and validating images from untrusted sources.

Everything becomes an 8-bit, 3-channel BGR ``numpy`` array (OpenCV's layout) or a clear
:class:`~vigil.errors.ImageError`. EXIF orientation is applied, alpha is composited on
white, CMYK/16-bit/palette/grayscale are converted, and decompression bombs are refused
from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vigil.errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MIN_SIDE = 16
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}

# We enforce our own limit, with our own message, before decoding.
Image.MAX_IMAGE_PIXELS = None


def read_image_file(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"{path}: file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    return decode_image(path.read_bytes(), max_pixels=max_pixels, name=str(path))


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "image") -> np.ndarray:
    """Decode untrusted bytes into a BGR uint8 array, or raise ImageError."""
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a recognised image format") from None
    except Exception as exc:  # PIL raises many types on hostile headers
        raise ImageError(f"{name}: unreadable image header ({exc.__class__.__name__})") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
            f"{max_pixels / 1e6:.0f} megapixel limit (refused before decoding)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} is too small to hold a face")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{name}: corrupt or truncated image data ({_short(exc)})") from None
    return pil_to_bgr(img, name=name)


def pil_to_bgr(img: Image.Image, *, name: str = "image") -> np.ndarray:
    mode = img.mode
    try:
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            arr = np.asarray(img, dtype=np.float64)
            peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
            gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        if mode == "F":
            arr = np.asarray(img, dtype=np.float64)
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            gray = np.clip((np.nan_to_num(arr) - lo) * scale, 0, 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        rgb = img.convert("RGB")
    except Exception as exc:
        raise ImageError(f"{name}: unsupported pixel format {mode!r} ({_short(exc)})") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, ::-1])


def validate_array(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Accept an in-memory frame (BGR, gray, BGRA) and return contiguous BGR uint8."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.size == 0 or image.ndim not in (2, 3):
        raise ImageError(f"{name}: array of shape {image.shape} is not an image")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name}: {image.shape[2]} channels is not an image layout")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif np.issubdtype(image.dtype, np.floating):
            finite = np.nan_to_num(image.astype(np.float32))
            scale = 255.0 if finite.max(initial=0) <= 1.0 else 1.0
            image = np.clip(finite * scale, 0, 255).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(image)


def crop_around(image: np.ndarray, box, margin: float = 0.25) -> np.ndarray:
    """A copy of the region ``box`` (x, y, w, h) widened by ``margin`` of its size on each side,
    clipped to the image."""
    x, y, w, h = [float(v) for v in box]
    mx, my = w * margin, h * margin
    x0, y0 = int(max(0, x - mx)), int(max(0, y - my))
    x1, y1 = int(min(image.shape[1], x + w + mx)), int(min(image.shape[0], y + h + my))
    return image[y0:y1, x0:x1].copy()


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ImageError("could not encode image as JPEG")
    return buf.tobytes()


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:120]
