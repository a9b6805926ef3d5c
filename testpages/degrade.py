"""Controlled, graded degradations of rendered pages (pure functions on uint8 arrays).

Each function takes a grayscale page (white paper, black ink) and returns a new
page; randomness comes only from the explicit `seed`, so a corpus is reproducible.
Angles follow OpenCV's `getRotationMatrix2D` convention: counterclockwise positive.
"""
from __future__ import annotations

import cv2
import numpy as np


def skew(img: np.ndarray, degrees: float, fill: int = 255) -> np.ndarray:
    """Rotate the page content by `degrees` (CCW positive) on a canvas large enough to keep it all."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=fill)


def rotate90(img: np.ndarray, quarter_turns_ccw: int) -> np.ndarray:
    """Turn the page by multiples of 90 degrees counterclockwise (1 = sideways, 2 = upside down)."""
    return np.ascontiguousarray(np.rot90(img, quarter_turns_ccw % 4))


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img.copy()
    return cv2.GaussianBlur(img, (0, 0), sigma)


def motion_blur(img: np.ndarray, length: int) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    return cv2.filter2D(img, -1, k)


def gaussian_noise(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = img.astype(np.float32) + rng.normal(0, sigma, img.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def salt_pepper(img: np.ndarray, amount: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = img.copy()
    r = rng.random(img.shape)
    out[r < amount / 2] = 0
    out[r > 1 - amount / 2] = 255
    return out


def shadow(img: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Uneven lighting: a smooth dark gradient from one side (page curl / lid shadow).

    `strength` 0..1 is the darkening at the darkest point (0.7 leaves 30% of the light).
    """
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    side = rng.integers(0, 4)
    ramp = [1 - x, x, 1 - y, y][side]
    light = 1.0 - strength * np.clip(ramp * 1.6 - 0.3, 0, 1) ** 1.5
    return np.clip(img.astype(np.float32) * light, 0, 255).astype(np.uint8)


def darken(img: np.ndarray, factor: float) -> np.ndarray:
    """Under-exposed scan: paper grey, ink black (factor 0.4 = paper at 40% brightness)."""
    return np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def fade(img: np.ndarray, contrast: float) -> np.ndarray:
    """Faded scan: ink lifted towards the paper (contrast 0.2 = ink at 80% of white)."""
    f = img.astype(np.float32)
    return np.clip(255 - (255 - f) * contrast, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def downsample(img: np.ndarray, from_dpi: int, to_dpi: int) -> np.ndarray:
    """A scan made at `to_dpi` instead of `from_dpi` (the result is smaller)."""
    s = to_dpi / from_dpi
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def cut_off(img: np.ndarray, fraction: float, edge: str = "right") -> np.ndarray:
    """Content running off an edge: the page shifted so `fraction` of the text block is lost."""
    h, w = img.shape[:2]
    ink_cols = np.where((img < 128).any(axis=0))[0]
    ink_rows = np.where((img < 128).any(axis=1))[0]
    out = np.full_like(img, 255)
    if edge in ("right", "left"):
        if ink_cols.size == 0:
            return img.copy()
        span = ink_cols[-1] - ink_cols[0]
        if edge == "right":
            shift = int(w - ink_cols[-1] + fraction * span)
            out[:, shift:] = img[:, : w - shift]
        else:
            shift = int(ink_cols[0] + fraction * span)
            out[:, : w - shift] = img[:, shift:]
    else:
        if ink_rows.size == 0:
            return img.copy()
        span = ink_rows[-1] - ink_rows[0]
        if edge == "bottom":
            shift = int(h - ink_rows[-1] + fraction * span)
            out[shift:, :] = img[: h - shift, :]
        else:
            shift = int(ink_rows[0] + fraction * span)
            out[: h - shift, :] = img[shift:, :]
    return out


def black_border(img: np.ndarray, width_px: int, edges: str = "lrtb") -> np.ndarray:
    """Scanner-lid black borders along the given edges."""
    out = img.copy()
    if "l" in edges:
        out[:, :width_px] = 10
    if "r" in edges:
        out[:, -width_px:] = 10
    if "t" in edges:
        out[:width_px, :] = 10
    if "b" in edges:
        out[-width_px:, :] = 10
    return out


def blank(shape: tuple[int, int] = (3508, 2480), paper: int = 245, noise: float = 3.0, seed: int = 0) -> np.ndarray:
    """An empty sheet: paper tone with a little sensor noise and a few specks of dust."""
    rng = np.random.default_rng(seed)
    page = np.clip(rng.normal(paper, noise, shape), 0, 255).astype(np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        cv2.circle(page, (int(x), int(y)), int(rng.integers(1, 4)), 60, -1)
    return page
