"""Drawing one frame of the synthetic crowd: heads, bodies, occluders, camera grain.

Every drawing call also writes the person's index into an ``owner`` map (one int16 per
pixel, -1 for background, -2 for occluders). After the frame is drawn, the share of a
face box still owned by its person is exactly how much of the face is visible, which is
what the truth file reports: a face half hidden behind a nearer person's shoulder or a
passing van is not one the live system should be expected to recognise.
"""

from __future__ import annotations

import cv2
import numpy as np

from vigil.synth.faces import Sprite

BLUR_MIN_SPEED = 2.5  # px per frame before motion blur shows
EXPOSURE = 0.15  # fraction of the frame interval the shutter is open (~1/170 s at 25 fps: daylight CCTV)


def motion_kernel(vx: float, vy: float) -> np.ndarray | None:
    """A normalised line kernel along the motion, as long as the distance moved while exposed."""
    speed = float(np.hypot(vx, vy))
    length = int(round(speed * EXPOSURE))
    if speed < BLUR_MIN_SPEED or length < 2:
        return None
    size = length + (1 - length % 2)
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = vx / speed * length / 2, vy / speed * length / 2
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, 1, cv2.LINE_AA)
    return kernel / kernel.sum()


def composite(frame: np.ndarray, patch: np.ndarray, ox: int, oy: int) -> tuple[slice, slice, np.ndarray] | None:
    """Alpha-blend a premultiplied BGRA float patch at (ox, oy); returns the frame slices and the
    patch's alpha there (None when the patch falls outside the frame)."""
    h, w = frame.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(w, ox + pw), min(h, oy + ph)
    if x0 >= x1 or y0 >= y1:
        return None
    sub = patch[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    alpha = sub[:, :, 3:4]
    region = frame[y0:y1, x0:x1]
    region[:] = np.clip(region * (1.0 - alpha) + sub[:, :, :3] + 0.5, 0, 255).astype(np.uint8)
    return slice(y0, y1), slice(x0, x1), alpha[:, :, 0]


def paste_head(frame: np.ndarray, owner: np.ndarray, idx: int, sprite: Sprite, cx: float, cy: float,
               face_w: float, gain: float, velocity: tuple[float, float]) -> np.ndarray:
    """Draw ``sprite`` so its face box is ``face_w`` wide and centred on (cx, cy).
    Returns the face box as pasted, ``[x, y, w, h]`` in frame pixels (floats)."""
    src = sprite.rgba
    sh, sw = src.shape[:2]
    scale = face_w / float(sprite.face_box[2])
    nw, nh = max(2, int(round(sw * scale))), max(2, int(round(sh * scale)))
    patch = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    sx, sy = nw / sw, nh / sh
    fb = sprite.face_box * np.array([sx, sy, sx, sy], np.float32)
    ox, oy = int(round(cx - fb[0] - fb[2] / 2)), int(round(cy - fb[1] - fb[3] / 2))
    box = np.array([ox + fb[0], oy + fb[1], fb[2], fb[3]], np.float32)
    if gain != 1.0:
        patch[:, :, :3] *= gain
    kernel = motion_kernel(*velocity)
    px, py = ox, oy
    if kernel is not None:
        pad = kernel.shape[0] // 2
        patch = cv2.filter2D(cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), -1, kernel)
        px, py = ox - pad, oy - pad
    done = composite(frame, patch, px, py)
    if done is not None:
        ys, xs, alpha = done
        owner[ys, xs][alpha > 0.5] = idx
    h, w = owner.shape
    bx0, by0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    bx1, by1 = min(w, int(round(box[0] + box[2]))), min(h, int(round(box[1] + box[3])))
    if bx0 < bx1 and by0 < by1:
        owner[by0:by1, bx0:bx1] = idx
    return box


def draw_body(frame: np.ndarray, owner: np.ndarray, idx: int, box: np.ndarray,
              colour: tuple[int, int, int], gain: float, stride: float) -> None:
    """Neck-to-feet silhouette: torso in one clothing colour, two darker legs swinging with the
    gait; feet about 10 face widths below the face (a 1.7 m person). Plain and flat, so it
    adds no face-like texture."""
    x, y, w, h = (float(v) for v in box)
    cx = x + w / 2
    neck, shoulder = y + 1.02 * h, y + 1.22 * h
    hip, feet = shoulder + 4.0 * w, y + h / 2 + 10.3 * w
    torso = [[cx - 0.42 * w, neck], [cx + 0.42 * w, neck], [cx + 1.2 * w, shoulder + 0.3 * w],
             [cx + 1.05 * w, hip], [cx - 1.05 * w, hip], [cx - 1.2 * w, shoulder + 0.3 * w]]
    swing = 0.45 * w * stride
    legs = [[[cx - 0.95 * w, hip - 0.2 * w], [cx - 0.05 * w, hip - 0.2 * w], [cx - 0.25 * w + swing, feet],
             [cx - 0.75 * w + swing, feet]],
            [[cx + 0.05 * w, hip - 0.2 * w], [cx + 0.95 * w, hip - 0.2 * w], [cx + 0.75 * w - swing, feet],
             [cx + 0.25 * w - swing, feet]]]
    trousers = tuple(float(c) * gain * 0.55 for c in colour)
    top = tuple(float(c) * gain for c in colour)
    for pts, shade in [(legs[0], trousers), (legs[1], trousers), (torso, top)]:
        poly = np.round(np.array(pts) * 4).astype(np.int32)  # 2 fractional bits: smooth sub-pixel motion
        cv2.fillPoly(frame, [poly], shade, cv2.LINE_AA, shift=2)
        cv2.fillPoly(owner, [poly], idx, cv2.LINE_8, shift=2)


def draw_occluder(frame: np.ndarray, owner: np.ndarray, rect: tuple[int, int, int, int],
                  colour: tuple[int, int, int]) -> None:
    x, y, w, h = rect
    cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), colour, -1)
    cv2.rectangle(owner, (x, y), (x + w - 1, y + h - 1), -2, -1)


def visible_share(owner: np.ndarray, idx: int, box: np.ndarray) -> float:
    """The fraction of the whole face box that is in the frame and still owned by person ``idx``
    (a box half outside the frame is at most half visible)."""
    h, w = owner.shape
    bx, by, bw, bh = (int(round(float(v))) for v in box)
    x0, y0, x1, y1 = max(0, bx), max(0, by), min(w, bx + bw), min(h, by + bh)
    if x0 >= x1 or y0 >= y1 or bw <= 0 or bh <= 0:
        return 0.0
    return float(np.count_nonzero(owner[y0:y1, x0:x1] == idx)) / (bw * bh)


class Camera:
    """Per-frame exposure drift and sensor noise, from a small precomputed bank so grain costs
    one saturating add per frame instead of a fresh random image."""

    def __init__(self, width: int, height: int, rng: np.random.Generator, sigma: float = 2.5, bank: int = 4):
        self.rng = rng
        self.noise = [np.clip(rng.normal(0, sigma, (height, width, 3)), -40, 40).astype(np.int16)
                      for _ in range(bank)]
        self.phase = rng.uniform(0, 2 * np.pi)

    def finish(self, frame: np.ndarray, index: int, fps: float) -> np.ndarray:
        gain = 1.0 + 0.025 * np.sin(2 * np.pi * index / fps / 7.0 + self.phase) + self.rng.normal(0, 0.004)
        frame = cv2.convertScaleAbs(frame, alpha=float(gain))
        return cv2.add(frame, self.noise[index % len(self.noise)], dtype=cv2.CV_8U)
