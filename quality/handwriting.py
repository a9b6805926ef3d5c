"""Handwriting: recognise handwritten pages and handwritten parts of printed pages from the image alone.

Tesseract cannot read handwriting; that is no fault of the scan. A handwritten page is therefore judged
by its image (sharp for its stroke width, contrasty, complete, enough resolution) and passed with the
warning `handwritten`, its text layer holding only the words OCR read confidently (issue 12, class 8).

What tells handwriting from print, measured on the corrected (upright) page:

* **baseline jitter**: printed words of one line sit on one baseline (after deskew, to a pixel);
  handwritten words each sit a little above or below their neighbours. For every pen group (a connected
  component wide enough to have a baseline: letters joined along it) the baseline is the centroid of its
  densest rows; the jitter is the median step between the baselines of neighbouring groups on a line,
  relative to the text height. Printed corpus pages of every font and degradation measure <= 0.085
  (blur sigma 3 px; clean pages <= 0.05); the handwriting set 0.086-0.36 (limit 0.10).

Both are robust to what degrades a printed scan: blur and grain move no baseline, a skew is removed by
the correction and a photo's perspective by the page frame. A printed page set in a Nastaliq typeface
(words descend diagonally) would measure as handwritten: such pages are rare in court files, and it
only means the page is judged by its image.

`robust_line_angle` is the skew estimate for pages whose projection profile is too irregular for the
fine estimator (uneven handwritten baselines): coarser bins absorb the wobble of each line.
`hand_regions` finds handwritten parts of a printed page (a signature, filled-in fields): ink that no
OCR word covers, in groups the image shows sharp and dark (not a blurred or faded part of the print).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ._img import rules_mask, to_gray_u8
from .baselines import JITTER_MIN, WORK_SIDE, HandwritingEvidence, _groups, _shrink, handwriting_evidence  # noqa: F401

def robust_line_angle(mask: np.ndarray, bins=(3.0, 6.0)) -> tuple[float, float]:
    """Text-line angle of an irregular (handwritten) page: the projection with coarse bins.

    Returns (angle in (-90, 90], peak ratio of the best coarse bin size)."""
    from .geometry import _parabolic, _points, _profile_scores

    xs, ys = _points(mask, 12000)
    if xs.size < 50:
        return 0.0, 0.0
    best = (0.0, 0.0)
    coarse = np.arange(-90.0, 90.0, 1.0)
    for b in bins:
        sc = _profile_scores(xs, ys, coarse, bin_px=b)
        i = int(np.argmax(sc))
        conf = float(sc[i] / max(np.median(sc), 1e-12))
        if conf > best[1]:
            a0 = _parabolic(coarse, sc, i)
            med = np.arange(a0 - 1.2, a0 + 1.21, 0.2)
            sm = _profile_scores(xs, ys, med, bin_px=b)
            a1 = ((_parabolic(med, sm, int(np.argmax(sm))) + 90.0) % 180.0) - 90.0
            best = (float(a1), conf)
    return best


def handwritten_gate(m, policy) -> list[str]:
    """Reasons to hold a handwritten page, from its image alone (the OCR reading does not count).

    Real faults only: blank, cut off, blurred for its stroke width, noisy, too dark or faded, too few
    pixels for its strokes. `m`: the page's PageMeasures; `policy`: the GatePolicy."""
    from .gate import _ordered

    e, r, hw = policy.early, policy.reasons, policy.handwriting
    if m.blank:
        return ["too_dark"] if m.paper_level < r.too_dark_paper_max else ["blank"]
    out = []
    if m.cut_off and e.hold_cut_off and (m.cut_off_fraction >= e.cut_off_min_fraction or m.border_fraction > 0):
        out.append("cut_off")
    if 0 < m.char_height_px < e.char_height_min_px or 0 < m.stroke_width_px < hw.stroke_min_px:
        out.append("low_resolution")
    # (the stroke width measure widens with blur and cannot judge it: blur is judged against the text
    # height, as for print, a little stricter; blur also greys the ink, which then measures as faded)
    blur_ratio = m.blur_sigma_px / max(m.stroke_width_px, 1.0) if math.isfinite(m.blur_sigma_px) else 1e3
    blurred = m.stroke_width_px <= 0 or m.blur_rel >= hw.blur_rel_max or (
        m.contrast < r.faded_contrast_min and blur_ratio >= hw.blur_stroke_min)
    if blurred:
        out.append("blurred")
    if m.noise > min(r.noise_max, hw.noise_max) or m.impulse_noise > r.impulse_noise_max:
        out.append("noisy")
    if m.paper_level <= r.too_dark_paper_max and m.dynamic_range < r.too_dark_dynamic_range_min:
        out.append("too_dark")
    elif not blurred and (m.contrast < r.faded_contrast_min or m.dynamic_range < r.too_dark_dynamic_range_min):
        out.append("too_dark" if m.paper_level < 128 else "faded")
    return _ordered(out)


def _box(w):
    get = (lambda k: w[k]) if isinstance(w, dict) else (lambda k: getattr(w, k))
    return float(get("left")), float(get("top")), float(get("width")), float(get("height")), float(get("conf"))


def hand_parts(image: np.ndarray, words, *, text_height_px: float, page_blur_px: float,
               min_conf: float = 60.0, blur_max: float = 2.0) -> list[tuple[int, int, int, int]]:
    """Handwritten parts of a printed page (a signature, filled-in fields): (left, top, width, height) boxes.

    A part is ink, at least a word wide, that no confidently read OCR word covers, and that is not print:
    printed text in it (groups on one baseline: a line Tesseract dropped) or edges much softer than the
    page's (a blurred part of the print) rule it out. `words`: the page's OCR words (objects or dicts
    with left, top, width, height, conf) in `image`'s pixels."""
    from .measures import _edge_blur

    g = to_gray_u8(image)
    s, sc = _shrink(g, WORK_SIDE)
    ink = (s < 128).astype(np.uint8)
    r = rules_mask(ink > 0)
    if r.any():
        ink[r] = 0
    th = max(6.0, float(text_height_px or 40.0) * sc)
    pad = int(0.3 * th)
    for w in words or []:
        x, y, ww, hh, conf = _box(w)
        if conf >= min_conf:
            ink[max(0, int(y * sc) - pad):int((y + hh) * sc) + pad, max(0, int(x * sc) - pad):int((x + ww) * sc) + pad] = 0
    kx, ky = int(1.5 * th) | 1, int(0.6 * th) | 1
    blobs = cv2.dilate(ink, np.ones((ky, kx), np.uint8))
    n, lab, st, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _ = st[i]
        if w < 2.0 * th or h < 0.6 * th:
            continue
        part = ink[y:y + h, x:x + w] & (lab[y:y + h, x:x + w] == i)
        if part.sum() < max(0.01 * w * h, 0.5 * th * th):
            continue  # specks, dots and word ends left outside the read words' boxes
        nb, _, pst, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        if nb <= 1 or pst[1:, cv2.CC_STAT_HEIGHT].max() < 0.8 * th or pst[1:, cv2.CC_STAT_WIDTH].max() < 1.5 * th:
            continue  # no stroke as tall and as long as a written word: crumbs of print
        # a signature or a handwritten note: one stroke system as large as a signature (print left unread
        # comes in words and crumbs; a handwritten word or two in a field is not told from them)
        big = int(np.argmax(pst[1:, cv2.CC_STAT_AREA])) + 1
        if w < 8.0 * th or h < 2.0 * th or pst[big, cv2.CC_STAT_AREA] < 0.6 * part.sum():
            continue
        grp, href = _groups(part > 0)
        if len(grp) >= 4:
            grp = grp[np.argsort(grp[:, 0])]
            steps = [abs(grp[k + 1, 1] - grp[k, 1]) / max(href, 1.0) for k in range(len(grp) - 1)
                     if abs(grp[k + 1, 1] - grp[k, 1]) < 0.8 * href]
            if len(steps) >= 3 and float(np.median(steps)) < JITTER_MIN:
                continue  # groups on a common baseline: printed words
        crop = g[int(y / sc):int((y + h) / sc), int(x / sc):int((x + w) / sc)].copy()
        near = cv2.resize(cv2.dilate(part, np.ones((5, 5), np.uint8)), (crop.shape[1], crop.shape[0]),
                          interpolation=cv2.INTER_NEAREST) if crop.size else None
        if near is not None:
            crop[near == 0] = 255  # the part's own strokes only: sharp print in its box must not lend it edges
        sig = _edge_blur(crop) if crop.size else float("inf")
        if not math.isfinite(sig) or sig > blur_max * max(page_blur_px, 0.8) + 0.5:
            continue  # soft edges: a blurred part of the page, not pen ink
        out.append((int(x / sc), int(y / sc), int(w / sc) + 1, int(h / sc) + 1))
    return out
