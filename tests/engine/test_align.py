import numpy as np
import pytest

from vigil.engine.align import ARCFACE_112, align_face, similarity_transform


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


def test_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.4, 2.5, np.array([30.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.uniform(0, 100, size=(5, 2))
    dst = (scale * src @ rot.T) + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9)
    assert np.allclose(m[:, 2], shift, atol=1e-9)
    assert np.allclose(_apply(m, src), dst, atol=1e-9)


def test_least_squares_with_noise_is_close():
    rng = np.random.default_rng(1)
    src = ARCFACE_112 * 3 + 40
    dst = ARCFACE_112 + rng.normal(0, 0.3, size=ARCFACE_112.shape)
    m = similarity_transform(src, dst)
    assert np.abs(_apply(m, src) - dst).max() < 1.5
    # pure similarity: the 2x2 part is a scaled rotation
    a, b = m[0, 0], m[1, 0]
    assert np.allclose(m[:, :2], [[a, -b], [b, a]], atol=1e-9)


def test_never_returns_a_reflection():
    src = ARCFACE_112.copy()
    mirrored = src.copy()
    mirrored[:, 0] = 112 - mirrored[:, 0]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_degenerate_points_are_refused():
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), ARCFACE_112)
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 3)), ARCFACE_112)


def test_align_puts_landmarks_on_the_template():
    # Draw five dots at rotated, scaled landmark positions, align, and find them again.
    image = np.zeros((400, 400, 3), np.uint8)
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = (ARCFACE_112 - 56) @ rot.T * 2.0 + 200
    for x, y in pts:
        image[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    crop = align_face(image, pts)
    assert crop.shape == (112, 112, 3)
    for tx, ty in ARCFACE_112:
        patch = crop[int(ty) - 2 : int(ty) + 3, int(tx) - 2 : int(tx) + 3]
        assert patch.max() > 100, f"no dot near template point ({tx}, {ty})"
