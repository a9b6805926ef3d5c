"""Input coercion and small image helpers shared by the quality modules (no I/O)."""
from __future__ import annotations

import cv2
import numpy as np

MAX_PIXELS = 120_000_000  # refuse to work on absurd sizes (≈ A0 at 600 dpi)


def to_gray_u8(img) -> np.ndarray:
    """Coerce any reasonable image array to 2-D uint8 grayscale (white paper, dark ink).

    Accepts 2-D or 3-D (gray+alpha, RGB/BGR, RGBA) arrays, bool/uint8/uint16/int/float dtypes.
    Alpha is composited onto white. Empty arrays become a 1x1 white page.
    """
    a = np.asarray(img)
    if a.size == 0:
        return np.full((1, 1), 255, np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim > 3:
        a = a.reshape(a.shape[0], a.shape[1], -1)[:, :, :4]
    if a.ndim == 1:
        a = a[None, :]
    # dtype -> float scale 0..1 only when needed, else keep uint8 path fast
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        f = a.astype(np.float32)
        f = np.nan_to_num(f, nan=255.0, posinf=255.0, neginf=0.0)
        mx = float(f.max()) if f.size else 1.0
        if mx <= 1.0 and float(f.min()) >= 0.0:
            f = f * 255.0
        elif mx > 255.0:
            f = f * (255.0 / mx)
        a = np.clip(f, 0, 255).astype(np.uint8)
    if a.ndim == 3:
        c = a.shape[2]
        if c == 2:
            g, al = a[:, :, 0].astype(np.float32), a[:, :, 1].astype(np.float32) / 255.0
            return np.clip(g * al + 255.0 * (1 - al), 0, 255).astype(np.uint8)
        if c >= 4:
            rgb = a[:, :, :3]
            al = a[:, :, 3].astype(np.float32) / 255.0
            g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_BGR2GRAY).astype(np.float32)
            return np.clip(g * al + 255.0 * (1 - al), 0, 255).astype(np.uint8)
        return cv2.cvtColor(np.ascontiguousarray(a[:, :, :3]), cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(a)


def downscale(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Area-downscale so the longer side is at most `max_side`; returns (image, scale)."""
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return img, 1.0
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), s


def rotate_bound(img: np.ndarray, angle: float, fill: int = 255, interp=cv2.INTER_LINEAR):
    """Rotate by `angle` degrees CCW on a canvas that keeps everything; returns (image, 2x3 matrix)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    out = cv2.warpAffine(img, m, (max(1, nw), max(1, nh)), flags=interp, borderValue=fill)
    return out, m


_RING = np.ones((3, 3), np.uint8)
_RING[1, 1] = 0


def impulse_fraction(crop: np.ndarray) -> float:
    """Share of isolated salt-or-pepper pixels: a pixel on the far side of the ink/paper midpoint
    from all 8 of its neighbours (thin strokes at low resolution have neighbours along the stroke)."""
    if crop.size < 9 or min(crop.shape) < 3:
        return 0.0
    lo, hi = float(np.percentile(crop, 1)), float(np.percentile(crop, 95))
    if hi - lo < 20:
        return 0.0
    mid = 0.5 * (lo + hi)
    nmin = cv2.erode(crop, _RING)   # darkest neighbour
    nmax = cv2.dilate(crop, _RING)  # brightest neighbour
    pepper = (crop < mid) & (nmin > mid)
    salt = (crop > mid) & (nmax < mid)
    return float((pepper | salt).mean())


def rules_mask(mask: np.ndarray) -> np.ndarray:
    """Long straight horizontal and vertical rules (frames, table borders) in a boolean ink mask."""
    h, w = mask.shape
    m = mask.astype(np.uint8)
    kv = max(15, h // 12)
    kh = max(15, w // 6)
    # An opening by a (kh x 1) line works on each row alone, and a row with fewer than kh ink pixels cannot
    # hold a run of kh: only the rows (and, for the vertical line, the columns) that can are opened. Same
    # result as opening the whole mask, at a fraction of the cost on a page of text (~0.05 s -> ~0.01 s).
    found = np.zeros_like(m)
    rows = np.flatnonzero(np.count_nonzero(m, axis=1) >= kh)
    if rows.size:
        found[rows] = cv2.morphologyEx(np.ascontiguousarray(m[rows]), cv2.MORPH_OPEN,
                                       cv2.getStructuringElement(cv2.MORPH_RECT, (kh, 1)))
    cols = np.flatnonzero(np.count_nonzero(m, axis=0) >= kv)
    if cols.size:
        vert = cv2.morphologyEx(np.ascontiguousarray(m[:, cols]), cv2.MORPH_OPEN,
                                cv2.getStructuringElement(cv2.MORPH_RECT, (1, kv)))
        found[:, cols] |= vert
    rules = cv2.dilate(found, np.ones((3, 3), np.uint8))
    return rules > 0


def percentiles_u8(a: np.ndarray, qs) -> list[float]:
    """`np.percentile(a, q)` for each q of an 8-bit array (the same values: linear interpolation between
    order statistics), from one histogram instead of a partial sort per percentile (5-20x faster on tiles)."""
    a = np.ascontiguousarray(a)
    n = a.size
    if n == 0:
        return [float("nan") for _ in qs]
    cum = np.cumsum(np.bincount(a.ravel(), minlength=256))
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        k = int(np.floor(pos))
        lo = int(np.searchsorted(cum, k, side="right"))  # the k-th smallest value (0-based)
        hi = int(np.searchsorted(cum, min(k + 1, n - 1), side="right"))
        out.append(float(lo + (pos - k) * (hi - lo)))
    return out


def percentile_f(a: np.ndarray, q: float) -> float:
    """`np.percentile(a, q)` (linear interpolation) by one partition, without its per-call overhead."""
    v = np.asarray(a).ravel()
    n = v.size
    pos = q / 100.0 * (n - 1)
    k = int(np.floor(pos))
    k1 = min(k + 1, n - 1)
    part = np.partition(v, (k, k1))
    return float(part[k] + (pos - k) * (part[k1] - part[k]))
