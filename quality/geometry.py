"""Skew and orientation estimation on binary ink masks (pure numpy / OpenCV).

Conventions (binding, see docs/quality.md):
* `skew` is the angle of the text lines as scanned, counter-clockwise positive, in
  OpenCV's getRotationMatrix2D convention; correcting means rotating by -skew.
* `rotation` is the counter-clockwise quarter-turn (0/90/180/270) applied after
  deskewing to make the text upright.  A page turned 90° CCW by the scanner needs
  rotation 270; an upside-down page needs 180.
"""
from __future__ import annotations

import math
import numpy as np


def _points(mask: np.ndarray, max_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    if ys.size > max_points:
        rng = np.random.default_rng(seed)
        idx = rng.choice(ys.size, max_points, replace=False)
        ys, xs = ys[idx], xs[idx]
    return xs.astype(np.float32), ys.astype(np.float32)


def _profile_scores(xs, ys, angles_deg, bin_px: float = 1.0) -> np.ndarray:
    """Projection-profile sharpness (sum of squared bin counts) for each candidate line angle.

    Points on a text line skewed by `a` (CCW) share p = x*sin(a) + y*cos(a).
    """
    out = np.empty(len(angles_deg), np.float64)
    if xs.size == 0:
        out[:] = 0
        return out
    r = math.hypot(float(xs.max()) + 1, float(ys.max()) + 1)
    for i, a in enumerate(angles_deg):
        t = math.radians(a)
        p = (xs * math.sin(t) + ys * math.cos(t) + r) / bin_px
        h = np.bincount(p.astype(np.int32))
        out[i] = float(np.dot(h, h))
    return out / (xs.size ** 2)


def _parabolic(angles, scores, i):
    if 0 < i < len(scores) - 1:
        y0, y1, y2 = scores[i - 1], scores[i], scores[i + 1]
        d = y0 - 2 * y1 + y2
        if d < 0:
            off = 0.5 * (y0 - y2) / d
            return angles[i] + off * (angles[1] - angles[0])
    return angles[i]


def line_angle_projection(mask_coarse: np.ndarray, mask_fine: np.ndarray | None = None,
                          fine_scale: float = 1.0) -> tuple[float, float]:
    """Dominant text-line angle in (-90, 90] by projection profiles.

    Coarse 1° search over all directions on `mask_coarse`, then a 0.1° search with
    parabolic interpolation on `mask_fine` (a higher-resolution mask of the same page).
    Returns (angle, peak ratio): the ratio of the best score to the median is a confidence.
    """
    xs, ys = _points(mask_coarse, 12000)
    if xs.size < 50:
        return 0.0, 0.0
    coarse = np.arange(-90.0, 90.0, 1.0)
    sc = _profile_scores(xs, ys, coarse, bin_px=1.0)
    i = int(np.argmax(sc))
    conf = float(sc[i] / max(np.median(sc), 1e-12))
    a0 = _parabolic(coarse, sc, i)
    # medium refinement on coarse mask
    med = np.arange(a0 - 1.2, a0 + 1.21, 0.2)
    sm = _profile_scores(xs, ys, med)
    a1 = _parabolic(med, sm, int(np.argmax(sm)))
    if mask_fine is not None:
        fx, fy = _points(mask_fine, 60000, seed=1)
        if fx.size >= 200:
            fine = np.arange(a1 - 0.45, a1 + 0.451, 0.075)
            sf = _profile_scores(fx, fy, fine)
            a1 = _parabolic(fine, sf, int(np.argmax(sf)))
            fine2 = np.arange(a1 - 0.06, a1 + 0.061, 0.02)
            sf2 = _profile_scores(fx, fy, fine2)
            a1 = _parabolic(fine2, sf2, int(np.argmax(sf2)))
    a1 = ((a1 + 90.0) % 180.0) - 90.0
    if a1 <= -90.0:
        a1 += 180.0
    return float(a1), conf


def line_angle_fourier(mask: np.ndarray) -> float:
    """Dominant text-line angle in (-90, 90] from the 2-D power spectrum (alternative method).

    Text lines form a periodic pattern whose spectral energy lies along the line normal.
    """
    m = mask.astype(np.float32)
    h, w = m.shape
    n = 1 << int(math.ceil(math.log2(max(h, w, 8))))
    pad = np.zeros((n, n), np.float32)
    pad[:h, :w] = m - m.mean()
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    f = np.fft.fftshift(np.abs(np.fft.fft2(pad * win)))
    c = n // 2
    yy, xx = np.mgrid[-c:n - c, -c:n - c]
    rad = np.hypot(xx, yy)
    sel = (rad > n / 120) & (rad < n / 4)
    ang = np.degrees(np.arctan2(yy[sel], xx[sel]))  # direction of spectral energy
    wts = f[sel] ** 2
    # energy direction is the line normal; line angle a has normal at (90 - a) in image coords
    bins = np.arange(-90.0, 90.01, 0.25)
    a_line = ((-(ang - 90.0)) + 90.0) % 180.0 - 90.0
    hist, edges = np.histogram(a_line, bins=bins, weights=wts)
    hist = np.convolve(hist, np.ones(3) / 3, mode="same")
    i = int(np.argmax(hist))
    a = 0.5 * (edges[i] + edges[i + 1])
    return float(-a if False else a)


def wrap45(a: float) -> float:
    """Wrap an angle to (-45, 45]."""
    a = ((a + 45.0) % 90.0) - 45.0
    if a <= -45.0:
        a += 90.0
    return a


def decompose(total_ccw: float) -> tuple[float, int]:
    """Split the content's total CCW rotation T into (skew in (-45,45], rotation r) with T = skew - r."""
    s = wrap45(total_ccw)
    r = int(round((s - total_ccw) / 90.0)) * 90 % 360
    return s, r


def _line_bands(profile: np.ndarray, min_h: int = 3) -> list[tuple[int, int]]:
    """Runs of rows whose ink exceeds a fraction of the typical line density."""
    if profile.max() <= 0:
        return []
    thr = 0.06 * np.percentile(profile[profile > 0], 90)
    on = profile > thr
    bands = []
    i, n = 0, len(on)
    while i < n:
        if on[i]:
            j = i
            while j < n and on[j]:
                j += 1
            if j - i >= min_h:
                bands.append((i, j))
            i = j
        else:
            i += 1
    return bands


def updown_evidence(page: np.ndarray) -> tuple[float, int]:
    """Evidence that a deskewed (lines horizontal) Persian/Arabic page is upright.

    Arabic script hangs off a strong baseline near the bottom of each line's core:
    the row of maximum ink sits below the line's ink centroid, and the ink mass sits
    below the middle of the line band because tall ascenders (alef, lam, kaf) reach
    further above the baseline than tails reach below.  `page` is a grey image (white
    paper) or a boolean ink mask.  Grey ink profiles keep the asymmetry under blur.
    Returns (score, lines used): score > 0 means upright.
    """
    if page.dtype == np.bool_:
        ink = page.astype(np.float64)
        mprof = ink.sum(axis=1)
    else:
        ink = 255.0 - page.astype(np.float64)
        ink[ink < 20] = 0
        mprof = (page < 128).sum(axis=1).astype(np.float64)
    prof = ink.sum(axis=1)
    bands = _line_bands(mprof if mprof.max() > 0 else prof)
    votes = []
    for y0, y1 in bands:
        p = prof[y0:y1]
        if p.sum() <= 0 or y1 - y0 < 4:
            continue
        ys = np.arange(len(p), dtype=np.float64)
        cen = float((p * ys).sum() / p.sum())
        h = float(len(p))
        votes.append((float(np.argmax(p)) - cen) / h + (cen - (h - 1) / 2.0) / h)
    if not votes:
        return 0.0, 0
    return float(np.median(votes)), len(votes)
