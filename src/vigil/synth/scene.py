"""The scene of the synthetic crowd: background, where each person walks, what passes in front.

Geometry is a pinhole camera mounted a little above head height looking along a ground
plane, so the numbers a live system cares about stay physically plausible: a face's width
in pixels is ``focal * 0.16 m / depth``; a head's image height grows with its width (far
heads sit near the horizon, near ones lower); walking speed is 1-1.6 m/s, so small far
faces cross the frame slowly and large near ones quickly (and get motion blur).

Two kinds of walk: *crossing* (left to right or back at a roughly constant depth, entering
and leaving at the frame edges) and *approaching* (appearing far away, growing as the
person comes nearer, leaving by a side edge as they pass the camera).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FACE_M = 0.16  # face box width in metres (YuNet's box, roughly ear to ear)
HORIZON = 0.28  # horizon height as a fraction of the frame


@dataclass
class Walk:
    """One person's path: face centre and face width (px) as a function of time."""

    kind: str  # "crossing" | "approaching"
    start: float  # seconds
    duration: float
    f0: float  # face width at the start
    f1: float  # face width at the end (the nearest point for approaching walks)
    x0: float  # crossing: start x; approaching: x of the vanishing point
    x1: float  # crossing: end x; approaching: lateral offset in face-width units
    height: float  # per-person head height factor (taller people sit a little lower)
    gain: float  # lighting on this person
    phase: float  # gait phase for the bob and scale jitter
    colour: tuple[int, int, int]  # clothing
    k: float = 3.0  # head y = horizon + k * face width * height
    split: float = 1.0  # approaching: share of the walk spent approaching; then out sideways
    x_exit: float = 0.0  # approaching: where the sideways exit ends (off frame)

    def state(self, t: float, horizon: float) -> tuple[float, float, float] | None:
        """(centre x, centre y, face width) at time ``t``, or None when not walking."""
        u = (t - self.start) / self.duration
        if u < 0.0 or u > 1.0:
            return None
        if self.kind == "crossing":
            fw = self.f0 + (self.f1 - self.f0) * u
            x = self.x0 + (self.x1 - self.x0) * u
        elif u <= self.split:  # depth falls linearly, so the inverse width interpolates linearly
            a = u / self.split
            fw = 1.0 / ((1.0 - a) / self.f0 + a / self.f1)
            x = self.x0 + self.x1 * fw
        else:  # at the nearest point: turn and leave by the side edge
            fw = self.f1
            a = (u - self.split) / (1.0 - self.split)
            x_near = self.x0 + self.x1 * fw
            x = x_near + (self.x_exit - x_near) * a
        gait = 2.0 * np.pi * 1.8 * (t - self.start) + self.phase
        y = horizon + self.k * fw * self.height + 0.04 * fw * abs(np.sin(gait))
        return float(x), float(y), float(fw * (1.0 + 0.015 * np.sin(gait)))

    def stride(self, t: float) -> float:
        """-1..1: where the legs are in the gait cycle (for drawing)."""
        return float(np.sin(np.pi * 1.8 * (t - self.start) + self.phase / 2))


@dataclass
class Occluder:
    """A plain rectangle (a passing van, a sign, a pillar-like panel) crossing in front."""

    start: float
    duration: float
    x0: float
    x1: float
    y: int
    w: int
    h: int
    colour: tuple[int, int, int]

    def rect(self, t: float) -> tuple[int, int, int, int] | None:
        u = (t - self.start) / self.duration
        if u < 0.0 or u > 1.0:
            return None
        return int(round(self.x0 + (self.x1 - self.x0) * u)), self.y, self.w, self.h


@dataclass
class Layout:
    width: int
    height: int
    focal: float
    horizon: float
    k: float
    walks: list[Walk] = field(default_factory=list)
    occluders: list[Occluder] = field(default_factory=list)


def layout(width: int, height: int, min_face: float, max_face: float) -> Layout:
    """Camera constants: a ~55 degree horizontal field of view; ``k`` keeps the largest
    face's box inside the frame."""
    horizon = HORIZON * height
    k = min(3.2, (0.93 * height - horizon - 0.7 * 1.3 * max_face * 1.06) / max(max_face, 1.0))
    return Layout(width, height, focal=float(width), horizon=horizon, k=max(0.3, k))


def _muted(rng: np.random.Generator, lo: int = 40, hi: int = 170, sat: int = 150) -> tuple[int, int, int]:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(min(40, sat // 2), sat), rng.integers(lo, hi)]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def plan_walk(lay: Layout, rng: np.random.Generator, near_face: float, min_face: float) -> Walk:
    """A natural-speed walk whose nearest face width is ``near_face`` (start time set later)."""
    speed = rng.uniform(1.0, 1.6)  # m/s
    height = rng.uniform(0.94, 1.06)
    common = dict(height=height, gain=rng.uniform(0.82, 1.12), phase=rng.uniform(0, 2 * np.pi),
                  colour=_muted(rng), k=lay.k)
    if rng.random() < 0.55:
        f_far = near_face * rng.uniform(0.85, 1.0)
        f0, f1 = (f_far, near_face) if rng.random() < 0.5 else (near_face, f_far)
        margin = 1.6 * near_face
        x0, x1 = (-margin, lay.width + margin) if rng.random() < 0.5 else (lay.width + margin, -margin)
        px_per_s = speed * (f0 + f1) / 2 / FACE_M
        return Walk("crossing", 0.0, abs(x1 - x0) / px_per_s, f0, f1, x0, x1, **common)
    f_far = max(6.0, near_face * rng.uniform(0.4, 0.65), min(min_face * 0.6, near_face))
    side = 1.0 if rng.random() < 0.5 else -1.0
    # The vanishing point sits on the far side of the centre, so the approach sweeps across the
    # frame; the nearest point is just inside the near edge (the face fully visible at its
    # largest), from where the person turns and walks out of the frame.
    vanish = lay.width / 2 - side * rng.uniform(0.0, 0.3) * lay.width
    x_near = lay.width - 0.7 * near_face if side > 0 else 0.7 * near_face
    x_near = vanish + side * max(side * (x_near - vanish), 0.1 * lay.width)
    lateral = (x_near - vanish) / near_face
    x_exit = lay.width + 1.6 * near_face if side > 0 else -1.6 * near_face
    depth_m = FACE_M * lay.focal * (1.0 / f_far - 1.0 / near_face)
    x_far = vanish + lateral * f_far
    approach = np.hypot(depth_m, FACE_M * abs(x_near - x_far) / near_face) / speed
    leave = abs(x_exit - x_near) / (speed * near_face / FACE_M)
    total = max(0.5, approach + leave)
    return Walk("approaching", 0.0, total, f_far, near_face, vanish, lateral, split=approach / total,
                x_exit=x_exit, **common)


def plan_occluders(lay: Layout, rng: np.random.Generator, seconds: float, fraction: float) -> list[Occluder]:
    """Rectangles crossing the frame, one at a time, on screen for about ``fraction`` of the video."""
    out: list[Occluder] = []
    if fraction <= 0:
        return out
    t = rng.uniform(0, 2.0)
    while t < seconds:
        w = int(rng.uniform(0.05, 0.14) * lay.width)
        h = int(rng.uniform(0.3, 0.75) * lay.height)
        y = int(rng.uniform(lay.horizon - 0.1 * lay.height, lay.height - h))
        speed = rng.uniform(0.25, 0.6) * lay.width
        x0, x1 = (-w, lay.width) if rng.random() < 0.5 else (lay.width, -w)
        duration = (lay.width + w) / speed
        out.append(Occluder(t, duration, x0, x1, max(0, y), w, h, _muted(rng, 50, 200)))
        t += duration * (1.0 + (1.0 - fraction) / max(fraction, 1e-3) * rng.uniform(0.5, 1.5))
    return out


def procedural_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Wall or sky gradient, plain block "buildings" along the horizon, a paved ground plane,
    low-frequency blotches. No windows or small repeated dark blobs: a pair of dark squares
    over a third is exactly what a face detector looks for."""
    horizon = int(HORIZON * height)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, low = np.float32(_muted(rng, 120, 230, 70)), np.float32(_muted(rng, 90, 200, 70))
    img = np.broadcast_to(top * (1 - ys) + low * ys, (height, width, 3)).astype(np.float32).copy()
    x = 0
    while x < width:
        w = int(rng.uniform(0.06, 0.22) * width)
        top_y = int(horizon - rng.uniform(0.05, 0.22) * height)
        colour = np.float32(_muted(rng, 70, 190, 90))
        shade = np.linspace(1.08, 0.92, max(1, horizon - top_y + 1), dtype=np.float32)[:, None, None]
        img[top_y:horizon + 1, x:x + w] = colour * shade
        x += w + int(rng.uniform(0.0, 0.05) * width)
    far, near = np.float32(_muted(rng, 100, 190, 60)), np.float32(_muted(rng, 50, 130, 60))
    gy = np.linspace(0.0, 1.0, height - horizon, dtype=np.float32)[:, None, None]
    img[horizon:] = far * (1 - gy) + near * gy
    vanish = (int(width * rng.uniform(0.35, 0.65)), horizon)
    paving = np.zeros((height, width), np.float32)
    for i in range(-8, 9):  # joints between paving strips, converging on the horizon
        cv2.line(paving, vanish, (int(vanish[0] + i * width * 0.35), height), 1.0, max(1, width // 640), cv2.LINE_AA)
    img *= (1.0 - 0.1 * paving)[:, :, None]
    # Blotches mostly in brightness (dirt, shade), a little in colour.
    small = (max(2, height // 48), max(2, width // 48))
    light = rng.normal(0.0, 1.0, small + (1,)).astype(np.float32) * 8.0
    tint = rng.normal(0.0, 1.0, small + (3,)).astype(np.float32) * 2.5
    img += cv2.resize(light + tint, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def fit_background(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale a user's image to cover the frame, centre-cropped."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih)
    resized = cv2.resize(image, (max(width, round(iw * scale)), max(height, round(ih * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
