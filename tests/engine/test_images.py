"""Bad input: every odd file is either decoded correctly or refused with a clear ImageError."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image

from vigil.engine.images import decode_image, read_image_file, validate_array
from vigil.errors import ImageError


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(w=64, h=48):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, :, 0] = 200  # red in RGB
    return Image.fromarray(arr, "RGB")


def test_rgb_jpeg_becomes_bgr():
    out = decode_image(_encode(_rgb(), "PNG"))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert out[0, 0, 2] == 200 and out[0, 0, 0] == 0  # BGR: red is the last channel


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image_file(p)


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image_file(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        read_image_file(tmp_path)


def test_not_an_image():
    with pytest.raises(ImageError, match="not a recognised image"):
        decode_image(b"%PDF-1.4 this is not an image at all" * 10)


def test_truncated_jpeg():
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])


def test_corrupt_body():
    data = bytearray(_encode(_rgb(128, 128), "PNG"))
    data[60:200] = b"\x00" * 140
    with pytest.raises(ImageError):
        decode_image(bytes(data))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header():
    with pytest.raises(ImageError, match="megapixel limit"):
        decode_image(_png_header_only(100_000, 100_000))


def test_huge_file_refused_before_reading(tmp_path):
    p = tmp_path / "big.jpg"
    p.write_bytes(b"\xff" * 2048)
    with pytest.raises(ImageError, match="over the"):
        read_image_file(p, max_bytes=1024)


def test_cmyk_jpeg_converted():
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red
    out = decode_image(_encode(cmyk, "JPEG"))
    assert out.shape == (40, 40, 3)
    assert out[20, 20, 2] > 200 and out[20, 20, 0] < 60


def test_sixteen_bit_png_scaled_to_eight_bits():
    arr = np.full((32, 32), 65535 // 2, np.uint16)
    out = decode_image(_encode(Image.fromarray(arr), "PNG"))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert 120 <= out[0, 0, 0] <= 135


def test_rgba_composited_on_white():
    arr = np.zeros((32, 32, 4), np.uint8)  # fully transparent black
    out = decode_image(_encode(Image.fromarray(arr, "RGBA"), "PNG"))
    assert out.min() == 255


def test_grayscale_and_palette():
    gray = decode_image(_encode(Image.new("L", (30, 30), 77), "PNG"))
    assert gray.shape == (30, 30, 3) and (gray == 77).all()
    pal = decode_image(_encode(_rgb(32, 32).convert("P"), "GIF"))
    assert pal.shape == (32, 32, 3)


def test_exif_rotation_applied():
    img = Image.new("RGB", (60, 30), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert out.shape[:2] == (60, 30)


def test_tiny_image_refused():
    with pytest.raises(ImageError, match="too small"):
        decode_image(_encode(Image.new("RGB", (4, 4)), "PNG"))


def test_validate_array_shapes():
    assert validate_array(np.zeros((20, 20), np.uint8)).shape == (20, 20, 3)
    assert validate_array(np.zeros((20, 20, 4), np.uint8)).shape == (20, 20, 3)
    assert validate_array(np.ones((20, 20, 3), np.float32)).max() == 255
    for bad in (np.zeros((0, 3)), np.zeros((2, 2, 2, 2)), np.zeros((9, 9, 7)), "not an array"):
        with pytest.raises(ImageError):
            validate_array(bad)


@given(st.binary(max_size=4096))
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_bytes_never_escape_as_other_errors(data):
    try:
        out = decode_image(data)
    except ImageError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from(["L", "RGB", "RGBA", "I;16", "P", "CMYK", "1", "LA"]),
       st.sampled_from(["PNG", "BMP", "TIFF", "JPEG", "GIF", "WEBP"]))
@hsettings(max_examples=150, deadline=None)
def test_odd_shapes_and_modes(width, height, mode, fmt):
    try:
        data = _encode(Image.new(mode, (width, height)), fmt)
    except (OSError, ValueError, KeyError):
        return  # PIL cannot write that combination: nothing to test
    try:
        out = decode_image(data)
    except ImageError as exc:
        assert "too small" in str(exc) or "format" in str(exc) or "unsupported" in str(exc)
        assert min(width, height) < 16 or "format" in str(exc) or "unsupported" in str(exc)
        return
    assert out.shape == (height, width, 3)


def test_engine_refuses_bad_image_cleanly(tmp_path):
    from vigil.cli import app
    from typer.testing import CliRunner

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a garbage")
    result = CliRunner().invoke(app, ["detect", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ImageError)
