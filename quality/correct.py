"""Correction before judging: illumination/contrast normalisation, orientation and deskew.

`correct_page(gray)` returns a `CorrectedPage` whose `.image` is upright, deskewed,
white paper / black ink, lid borders whitened and small text upscaled: ready for OCR.
Everything is pure numpy/OpenCV; heavy work runs on downscaled copies, full-resolution
work is limited to one divide, one LUT, one rotation and (for low-resolution scans) one resize.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ._img import downscale, rotate_bound, to_gray_u8
from .geometry import _line_bands, decompose, line_angle_projection, updown_evidence

WORK_SIDE = 1000      # long side of the working copy used for background and statistics
FINE_SIDE = 1800      # long side of the mask used for fine skew refinement
TARGET_LINE_PX = 44   # text-line band height (px) we upscale small text towards
MAX_UPSCALE = 3.0
MIN_SKEW_CONF = 1.6   # projection peak / median below this: no line structure found


@dataclass
class CorrectedPage:
    image: np.ndarray                 # 2-D uint8, upright, deskewed, normalised
    rotation: int = 0                 # CCW quarter turn applied after deskew (0/90/180/270)
    skew_degrees: float = 0.0         # text-line skew as scanned, CCW positive
    skew_recoverable: bool = True
    skew_confidence: float = 0.0      # projection-profile peak ratio (>~2 = clear lines)
    orientation_confidence: float = 0.0  # |up/down evidence| (baseline statistic)
    upscale: float = 1.0              # resize factor applied (low-resolution scans)
    matrix: np.ndarray = field(default_factory=lambda: np.eye(2, 3))  # raw (x,y,1) -> corrected (x,y)
    paper_level: float = 255.0        # raw paper brightness (median of background)
    paper_min: float = 255.0          # raw paper brightness, 2nd percentile (shadows)
    ink_level: float = 0.0            # ink level after illumination normalisation (0 = black)
    border: tuple[int, int, int, int] = (0, 0, 0, 0)  # raw lid-border widths (left, top, right, bottom) px
    background: np.ndarray | None = None  # raw illumination map at working scale
    work_scale: float = 1.0           # working copy / raw
    ink_points: int = 0               # ink pixels in the coarse mask
    line_height_px: float = 0.0       # median text-line band height in the corrected image


def _background(work: np.ndarray) -> np.ndarray:
    """Paper brightness map: grey closing removes ink strokes, then smoothing."""
    k = max(7, int(round(max(work.shape) / 70)) | 1)
    bg = cv2.morphologyEx(work, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.medianBlur(bg, 5)
    bg = cv2.GaussianBlur(bg, (0, 0), k / 2)
    return np.maximum(bg, 1)


def _border_widths(work: np.ndarray) -> tuple[int, int, int, int]:
    """Scanner-lid black borders: a uniform near-black run from an edge ending in a sharp jump."""
    out = []
    h, w = work.shape
    for axis, rev in ((0, False), (1, False), (0, True), (1, True)):  # left, top, right, bottom
        lines = work if axis == 0 else work.T  # columns of `work` along axis 0 -> profile over x
        prof = np.median(lines, axis=0) if axis == 0 else np.median(work, axis=1)
        prof = prof[::-1] if rev else prof
        n = 0
        lim = int(len(prof) * 0.4)
        while n < lim and prof[n] < 70:
            n += 1
        if n >= 1 and n < lim:
            nxt = prof[min(len(prof) - 1, n + max(2, len(prof) // 100))]
            if nxt < 2.0 * max(prof[:n].mean(), 15):
                n = 0  # smooth ramp (shadow), not a lid border
        elif n >= lim:
            n = 0
        out.append(n)
    return tuple(out)  # type: ignore[return-value]


def _ink_level(norm_work: np.ndarray) -> float:
    """Typical ink darkness after illumination normalisation (0 black .. 255 invisible)."""
    hist = np.bincount(norm_work.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    # paper dominates; ink is the dark tail. Take the 1st percentile-ish of the dark tail
    cdf = np.cumsum(hist) / max(total, 1)
    lo = int(np.searchsorted(cdf, 0.004))
    return float(min(lo, 250))


def correct_page(gray, *, orientation_hint=None) -> CorrectedPage:
    """Normalise, orient and deskew a scanned page.

    `orientation_hint`: optional callable(img_upright_candidate) -> float evidence (>0 upright)
    used only when the built-in baseline statistic is inconclusive (kept outside, e.g. Tesseract OSD).
    """
    g = to_gray_u8(gray)
    h, w = g.shape
    if h < 16 or w < 16:
        return CorrectedPage(image=g.copy(), skew_recoverable=True, paper_level=float(np.median(g)),
                             paper_min=float(g.min()), ink_level=255.0)
    work, ws = downscale(g, WORK_SIDE)
    border = _border_widths(work)
    bl, bt, br, bb = border
    if any(border):  # lid borders: fill with paper before estimating the illumination
        work_f = work.copy()
        core = work[bt:work.shape[0] - bb, bl:work.shape[1] - br]
        pv = int(np.percentile(core, 90)) if core.size else 255
        if bl:
            work_f[:, :bl + 1] = pv
        if bt:
            work_f[:bt + 1, :] = pv
        if br:
            work_f[:, work.shape[1] - br - 1:] = pv
        if bb:
            work_f[work.shape[0] - bb - 1:, :] = pv
        bg = _background(work_f)
    else:
        bg = _background(work)
    inner = bg[bt:bg.shape[0] - bb, bl:bg.shape[1] - br]
    if inner.size == 0:
        inner = bg
    paper_level = float(np.median(inner))
    paper_min = float(np.percentile(inner, 2))
    bg_full = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR) if ws < 1.0 else bg
    norm = cv2.divide(g, bg_full, scale=255)
    if any(border):
        fb = [int(round(b / ws)) + 2 if b else 0 for b in border]
        if fb[0]:
            norm[:, :fb[0]] = 255
        if fb[1]:
            norm[:fb[1], :] = 255
        if fb[2]:
            norm[:, w - fb[2]:] = 255
        if fb[3]:
            norm[h - fb[3]:, :] = 255
    norm_work = cv2.resize(norm, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_AREA) if ws < 1 else norm
    ink = _ink_level(norm_work)
    # contrast stretch: ink -> 0, paper (255) stays 255; mild gamma keeps strokes solid
    lo = min(ink, 200.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) / max(250.0 - lo, 5.0), 0, 1)
    lut = (255.0 * lut ** 1.0).astype(np.uint8)
    if lo > 8:
        norm = cv2.LUT(norm, lut)
        norm_work = cv2.LUT(norm_work, lut)
    fine, fs = downscale(norm, FINE_SIDE)
    mask_c = norm_work < 128
    mask_f = fine < 128
    # drop isolated specks from the coarse mask (noise, dust)
    npts = int(mask_c.sum())
    angle, conf = line_angle_projection(mask_c, mask_f) if npts >= 80 else (0.0, 0.0)
    has_lines = conf >= MIN_SKEW_CONF
    total = angle if has_lines else 0.0
    ori_conf = 0.0
    if has_lines:
        m8 = mask_c.astype(np.uint8) * 255
        rot, _ = rotate_bound(m8, -angle, fill=0, interp=cv2.INTER_NEAREST)
        ev, nlines = updown_evidence(rot > 127)
        if abs(ev) < 0.01 and orientation_hint is not None:
            try:
                up, _ = rotate_bound(norm_work, -angle)
                ev = float(orientation_hint(up))
            except Exception:  # an optional helper must never break correction
                pass
        ori_conf = abs(ev)
        if ev < 0:
            total = angle + 180.0
    skew, r = decompose(total)
    if not has_lines:
        skew, r = 0.0, 0
    out = np.ascontiguousarray(np.rot90(norm, r // 90)) if r else norm
    # affine raw -> rotated (np.rot90 CCW by k quarter turns)
    M = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    hh, ww = h, w
    for _ in range(r // 90):  # one CCW quarter turn: (x, y) -> (y, W-1-x)
        q = np.array([[0.0, 1, 0], [-1, 0, ww - 1]])
        M = q @ np.vstack([M, [0, 0, 1]])
        hh, ww = ww, hh
    if abs(skew) >= 0.05:
        out, R = rotate_bound(out, -skew, fill=255, interp=cv2.INTER_LINEAR)
        M = R @ np.vstack([M, [0, 0, 1]])
    # text-line height in the corrected image (for upscaling small text)
    lh = 0.0
    if has_lines:
        cw, cs = downscale(out, WORK_SIDE)
        bands = _line_bands((cw < 128).sum(axis=1).astype(np.float64))
        if bands:
            lh = float(np.median([b - a for a, b in bands])) / cs
    up = 1.0
    if 0 < lh < TARGET_LINE_PX * 0.75:
        up = min(MAX_UPSCALE, TARGET_LINE_PX / lh)
        if out.size * up * up > 60_000_000:
            up = max(1.0, (60_000_000 / out.size) ** 0.5)
        if up > 1.05:
            out = cv2.resize(out, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
            M = M * up
            lh *= up
        else:
            up = 1.0
    return CorrectedPage(image=out, rotation=int(r), skew_degrees=float(round(skew, 3)),
                         skew_recoverable=bool(has_lines or npts < 2000), skew_confidence=float(conf),
                         orientation_confidence=float(ori_conf), upscale=float(up), matrix=M,
                         paper_level=paper_level, paper_min=paper_min, ink_level=float(ink), border=border,
                         background=bg, work_scale=float(ws), ink_points=npts, line_height_px=lh)
