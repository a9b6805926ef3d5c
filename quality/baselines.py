"""Baseline jitter: how handwritten the text of an upright page looks (see quality/handwriting.py).

Kept apart from quality/handwriting.py so that the correction (quality/correct.py), which tries a weak
skew estimate on handwritten pages, can use it without an import cycle. Pure numpy/OpenCV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ._img import rules_mask, to_gray_u8

WORK_SIDE = 3600  # long side of the copy the groups are measured on (an A4 page at 300 dpi: full resolution)
JITTER_MIN = 0.10  # median baseline step between neighbouring pen groups / text height: print <= 0.085, hand 0.086-0.36
MIN_PAIRS = 20     # neighbouring pairs needed to judge
MIN_TEXT_PX = 16.0  # median pen-group height (px) below which nothing is judged (blur and grain break strokes up)


@dataclass
class HandwritingEvidence:
    jitter: float = 0.0          # median baseline step between neighbouring pen groups / text height
    pairs: int = 0               # neighbouring pairs measured
    text_height_px: float = 0.0  # median height of the pen groups (image pixels)
    handwritten: bool = False

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _shrink(g: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    k = max(1, int(math.ceil(max(g.shape) / side)))
    if k == 1:
        return g, 1.0
    h, w = g.shape
    return cv2.resize(g[:h // k * k, :w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA), 1.0 / k


def _groups(ink: np.ndarray):
    """Pen groups wide enough to have a baseline: rows (x centre, baseline row, height, x0, x1), and the
    median group height. The baseline is the centroid of the densest run of rows (sub-pixel)."""
    n, lab, st, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n <= 2:
        return np.zeros((0, 5)), 0.0
    area = st[1:, cv2.CC_STAT_AREA]
    hs = st[1:, cv2.CC_STAT_HEIGHT]
    keep = area >= max(8, np.percentile(area, 50) * 0.3)
    if keep.sum() < 10:
        return np.zeros((0, 5)), 0.0
    href = float(np.median(hs[keep]))
    rows = []
    for i in np.flatnonzero(keep) + 1:
        x, y, w, h, a = st[i]
        if w < 1.2 * href or h > 3.0 * href or w > 40 * href or h < 0.3 * href:
            continue  # single letters (no baseline to speak of), rules, merged blots
        prof = (lab[y:y + h, x:x + w] == i).sum(axis=1).astype(np.float64)
        b = int(np.argmax(prof))
        if prof[b] < 0.35 * w:  # no horizontal baseline stroke: a letter pile or a scribble
            continue
        lo = hi = b
        while lo > 0 and prof[lo - 1] >= 0.6 * prof[b]:
            lo -= 1
        while hi < h - 1 and prof[hi + 1] >= 0.6 * prof[b]:
            hi += 1
        rr = np.arange(lo, hi + 1)
        rows.append((x + w / 2.0, y + float((prof[rr] * rr).sum() / prof[rr].sum()), h, x, x + w))
    return np.array(rows, np.float64).reshape(-1, 5), href


def handwriting_evidence(image: np.ndarray, exclude=()) -> HandwritingEvidence:
    """Measure how handwritten the text of an upright, normalised page (white paper, dark ink) looks.

    `exclude`: (left, top, width, height) boxes in `image`'s pixels left out of the measure: the blurred
    parts of a page. Blurred, grainy print falls apart into blobs whose baselines jump like a hand's; only
    the sharp ink can tell print from handwriting."""
    g = to_gray_u8(image)
    if len(exclude):
        g = g.copy()
        for x, y, w, h in exclude:
            g[max(0, int(y)):int(y + h), max(0, int(x)):int(x + w)] = 255
    ev = HandwritingEvidence()
    if g.shape[0] < 64 or g.shape[1] < 64:
        return ev
    s, sc = _shrink(g, WORK_SIDE)
    ink = s < 128
    r = rules_mask(ink)
    if r.any():
        ink &= ~r
    grp, href = _groups(ink)
    if len(grp) < 2 or href <= 0:
        return ev
    ev.text_height_px = href / sc
    grp = grp[np.argsort(grp[:, 0])]
    diffs = []
    for i in range(len(grp)):
        _, yb, _, x0, _ = grp[i]
        # the nearest group to the left on the same line: ends at most 2.5 text heights before this one starts
        cand = np.flatnonzero((grp[:, 4] <= x0 + 0.3 * href) & (grp[:, 4] >= x0 - 2.5 * href)
                              & (np.abs(grp[:, 1] - yb) < 0.8 * href))
        if cand.size:
            j = int(cand[np.argmax(grp[cand, 4])])
            diffs.append(abs(grp[j, 1] - yb) / href)
    ev.pairs = len(diffs)
    if ev.pairs:
        ev.jitter = float(np.median(diffs))
    # groups under 16 px are fragments or smears (a motion-blurred page), not letters whose baselines can be compared
    ev.handwritten = bool(ev.pairs >= MIN_PAIRS and ev.jitter >= JITTER_MIN and ev.text_height_px >= MIN_TEXT_PX)
    return ev
