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

from ._img import impulse_fraction, rotate_bound, to_gray_u8
from ._img import rules_mask as _rules  # (kept under its old name: measures and blur_map import it from here)
from .geometry import _line_bands, decompose, line_angle_projection, updown_evidence

WORK_SIDE = 1000      # long side of the working copy used for background and statistics
FINE_SIDE = 1800      # long side of the mask used for fine skew refinement
TARGET_LINE_PX = 44   # text-line band height (px) we upscale small text towards
MAX_UPSCALE = 3.0
MIN_SKEW_CONF = 1.6   # projection peak / median below this: no line structure found
WEAK_SKEW_CONF = 1.3  # handwriting's uneven baselines: a weaker peak, accepted when the page is handwritten


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
    noise_sigma: float = 0.0          # raw grain sigma relative to the page's contrast (x255)
    impulse: float = 0.0              # raw salt-and-pepper fraction
    work: np.ndarray | None = field(default=None, repr=False)  # raw page downscaled by 1/work_scale
    line_bands: list = field(default_factory=list)  # text-line (top, bottom) rows in .image


def _background(work: np.ndarray) -> np.ndarray:
    """Paper brightness map: grey closing removes ink strokes, then smoothing."""
    k = max(3, int(round(max(work.shape) / 70)) | 1)
    bg = cv2.morphologyEx(work, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.medianBlur(bg, 3)
    bg = cv2.GaussianBlur(bg, (0, 0), max(1.0, k / 2))
    return np.maximum(bg, 1)


def _border_widths(work: np.ndarray) -> tuple[int, int, int, int]:
    """Scanner-lid black borders: a uniform near-black run from an edge ending in a sharp jump to paper.

    A shadow is a smooth ramp and is not a border: the profile must reach 60% of the paper
    level within 2% of the page after the dark run.
    """
    out = []
    paper = float(np.percentile(work[::4, ::4], 90))
    for axis, rev in ((0, False), (1, False), (0, True), (1, True)):  # left, top, right, bottom
        prof = np.median(work[::4, :], axis=0) if axis == 0 else np.median(work[:, ::4], axis=1)
        prof = prof[::-1] if rev else prof
        n, lim = 0, int(len(prof) * 0.4)
        while n < lim and prof[n] < 60:
            n += 1
        if 0 < n < lim:
            step = max(2, int(0.02 * len(prof)))
            nxt = float(prof[min(len(prof) - 1, n + step)])
            if nxt < 0.6 * paper or float(prof[:n].mean()) > 45:
                n = 0  # smooth ramp (shadow) or grey: not a lid border
        else:
            n = 0
        out.append(n)
    return tuple(out)  # type: ignore[return-value]


def _ink_level(norm_work: np.ndarray) -> tuple[float, float]:
    """(typical ink darkness, paper noise sigma) after illumination normalisation (0 black .. 255 white)."""
    hist = np.bincount(norm_work.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist) / max(hist.sum(), 1)
    lo = float(min(int(np.searchsorted(cdf, 0.004)), 250))
    med = float(np.searchsorted(cdf, 0.5))
    q25 = float(np.searchsorted(cdf, 0.25))
    sigma = max(0.5, (med - q25) / 0.674)
    return lo, sigma


def _noise_probe(g: np.ndarray) -> tuple[float, float]:
    """(impulse fraction, Gaussian sigma) on a central full-resolution crop of the raw page."""
    h, w = g.shape
    cs = min(512, h, w)
    y0, x0 = (h - cs) // 2, (w - cs) // 2
    c = g[y0:y0 + cs, x0:x0 + cs]
    med = cv2.medianBlur(c, 3)
    span = max(float(np.percentile(c, 95)) - float(np.percentile(c, 1)), 1.0)
    impulse = impulse_fraction(c)
    flat = cv2.erode(med, np.ones((7, 7), np.uint8)) > np.percentile(med, 60) - 0.2 * span
    r = (c.astype(np.float32) - cv2.GaussianBlur(med, (0, 0), 1.5).astype(np.float32))[flat]
    sigma = float(np.sqrt(np.mean(r * r))) * 255.0 / span if r.size > 100 else 0.0
    return impulse, sigma


def _shrink(img: np.ndarray, k: int) -> np.ndarray:
    """Integer-factor area downscale (OpenCV's fast path): crop to a multiple of k, then resize."""
    if k <= 1:
        return img
    h, w = img.shape
    hk, wk = max(1, h // k), max(1, w // k)
    return cv2.resize(img[:hk * k, :wk * k], (wk, hk), interpolation=cv2.INTER_AREA)


def _line_height_for_upscale(bands, lh: float) -> float:
    """The text-line height that decides the upscale: the median band, unless it is a sliver.

    Blurred lines fall apart into thin slivers (only their darkest cores are ink); on a page sharp at
    the top and blurred below they outnumber the real lines, the median band is one of them and the
    page was upscaled 2.6x (a 60-Mpx corrected image for an A4 page at 300 dpi, ~1 s more of every
    later step) for lines that are 46 px high. As `ocr.layout.text_line_height`: when the median band
    is under half the tall bands' height (90th percentile), bands under that half are not lines."""
    hs = [b - a for a, b in bands]
    if len(hs) < 3:
        return lh
    tall = float(np.percentile(hs, 90))
    if lh >= 0.5 * tall:
        return lh
    return float(np.median([h for h in hs if h >= 0.5 * tall]))


def correct_page(gray, *, orientation_hint=None, weak_lines: bool = True) -> CorrectedPage:
    """Normalise, orient and deskew a scanned page.

    `orientation_hint`: optional callable(img_upright_candidate) -> float evidence (>0 upright)
    used only when the built-in baseline statistic is inconclusive (kept outside, e.g. Tesseract OSD).
    `weak_lines`: a projection peak between WEAK_SKEW_CONF and MIN_SKEW_CONF is taken as the line angle
    when the page so corrected is handwritten (quality/handwriting.py); otherwise it is no line structure.
    """
    g = to_gray_u8(gray)
    h, w = g.shape
    if h < 16 or w < 16:
        return CorrectedPage(image=g.copy(), skew_recoverable=True, paper_level=float(np.median(g)),
                             paper_min=float(g.min()), ink_level=255.0)
    k = max(1, int(np.ceil(max(h, w) / WORK_SIDE)))
    kf = max(1, k // 2)
    work = _shrink(g, k)
    ws = 1.0 / k
    border = _border_widths(work)
    bl, bt, br, bb = border
    work_f = work
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
    kb = 4 if min(work.shape) >= 64 else 1
    tiny = _shrink(work_f, kb)
    bg_t = _background(tiny)
    bg = cv2.resize(bg_t, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_LINEAR)
    inner = bg_t[bt // kb:bg_t.shape[0] - bb // kb, bl // kb:bg_t.shape[1] - br // kb]
    if inner.size == 0:
        inner = bg_t
    paper_level = float(np.median(inner))
    paper_min = float(np.percentile(inner, 2))
    bg_full = cv2.resize(bg_t, (w, h), interpolation=cv2.INTER_LINEAR)
    norm = cv2.divide(g, bg_full, scale=255)
    dead = bg_t < 12  # paper darker than 12 grey levels: nothing recoverable, do not amplify noise
    if dead.any() and not dead.all():
        dm = cv2.resize(dead.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        norm[dm > 0] = 255
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
    # denoise before stretching: median for salt-and-pepper, smoothing for grain
    impulse, gsig = _noise_probe(g)
    if impulse > 0.004:
        norm = cv2.medianBlur(norm, 3)
        if impulse > 0.05:
            norm = cv2.medianBlur(norm, 3)
    elif gsig > 25:
        norm = cv2.medianBlur(norm, 5) if gsig > 50 else cv2.GaussianBlur(norm, (0, 0), 1.0)
    fine = _shrink(norm, kf)
    norm_work = _shrink(fine, 2) if k >= 2 and kf * 2 == k else _shrink(norm, k)
    ink, nsig = _ink_level(norm_work)
    # contrast stretch: ink -> 0, paper (255) stays 255 -- unless the "ink" is just paper noise
    lo = min(ink, 250.0) if (255.0 - ink) > 5.0 * nsig else min(ink, 200.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) / max(min(250.0, 254.0 - 0.2 * (254.0 - lo)) - lo, 3.0), 0, 1)
    lut = (255.0 * lut).astype(np.uint8)
    if lo > 8:
        norm = cv2.LUT(norm, lut)
        norm_work = cv2.LUT(norm_work, lut)
        fine = cv2.LUT(fine, lut)
    mask_c = norm_work < 128
    mask_f = fine < 128
    # a form's frame and table borders are not text lines: left in, a frame's long vertical sides can
    # outweigh the text and turn the page sideways
    rc = _rules(mask_c)
    if rc.any():
        mask_c = mask_c & ~rc
        mask_f = mask_f & ~_rules(mask_f)
    npts = int(np.count_nonzero(mask_c))
    angle, conf = line_angle_projection(mask_c, mask_f) if npts >= 80 else (0.0, 0.0)
    has_lines = conf >= MIN_SKEW_CONF
    # handwriting: each line drifts its own way, the peak is weaker; tried, and kept only if handwritten
    weak = weak_lines and not has_lines and npts >= 2000 and conf >= WEAK_SKEW_CONF
    has_lines = has_lines or weak
    total = angle if has_lines else 0.0
    ori_conf = 0.0
    lh, bands = 0.0, []
    if has_lines:
        upg, _ = rotate_bound(norm_work, -angle, fill=255, interp=cv2.INTER_LINEAR)
        rot = upg < 128
        ruled = _rules(rot)
        if ruled.any():  # a frame's or a table's rules carry no up/down evidence: whiten them
            upg = upg.copy()
            upg[ruled] = 255
            rot = rot & ~ruled
        ev, nlines = updown_evidence(upg)
        if abs(ev) < 0.06 and fine is not norm_work:  # weak at working scale: look closer
            upf, _ = rotate_bound(fine, -angle, fill=255, interp=cv2.INTER_LINEAR)
            rf = _rules(upf < 128)
            if rf.any():
                upf[rf] = 255
            ev, nlines = updown_evidence(upf)
        if abs(ev) < 0.01 and orientation_hint is not None:
            try:
                ev = float(orientation_hint(upg))
            except Exception:  # an optional helper must never break correction
                pass
        ori_conf = abs(ev)
        if ev < 0:
            total = angle + 180.0
            rot = rot[::-1, ::-1]
        # (rules removed above: a frame's vertical side puts ink on every row and would merge the whole
        # page into one "line", line height = page height)
        bands = [(a / ws, b / ws) for a, b in _line_bands(rot.sum(axis=1).astype(np.float64))]
        if bands:
            lh = float(np.median([b - a for a, b in bands]))
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
    up = 1.0
    lh_up = _line_height_for_upscale(bands, lh)
    if 0 < lh_up < TARGET_LINE_PX * 0.75:
        up = min(MAX_UPSCALE, TARGET_LINE_PX / lh_up)
        if out.size * up * up > 60_000_000:
            up = max(1.0, (60_000_000 / out.size) ** 0.5)
        if up > 1.05:
            out = cv2.resize(out, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
            M = M * up
            lh *= up
            bands = [(a * up, b * up) for a, b in bands]
        else:
            up = 1.0
    if weak:
        from .baselines import handwriting_evidence
        if not handwriting_evidence(out).handwritten:
            return correct_page(gray, orientation_hint=orientation_hint, weak_lines=False)
    return CorrectedPage(image=out, rotation=int(r), skew_degrees=float(round(skew, 3)),
                         skew_recoverable=bool(has_lines or npts < 2000), skew_confidence=float(conf),
                         orientation_confidence=float(ori_conf), upscale=float(up), matrix=M,
                         paper_level=paper_level, paper_min=paper_min, ink_level=float(ink), border=border,
                         noise_sigma=float(gsig), impulse=float(impulse), background=bg, work_scale=float(ws),
                         ink_points=npts, line_height_px=lh, work=work,
                         line_bands=[(int(a), int(b)) for a, b in bands])
