"""Photos of a page: find the sheet of paper in the picture and flatten it.

A station without a flatbed (or a client with a phone) produces a photo: the page
lies on a darker table, seen in perspective. `find_page_quad` finds the paper's four
corners; `rectify_page` warps it to a flat rectangle, so the rest of the quality
engine sees a scan-like page and does not mistake the table for a cut-off edge.

A flatbed scan (paper fills the image, or a lid border on one or two sides) is left
untouched: the sheet must lie inside the picture, away from at least three edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 800
A4_LONG_IN = 11.69


@dataclass
class PageFrame:
    image: np.ndarray  # the flattened page (or the input, when no frame was found)
    found: bool
    quad: np.ndarray | None = None  # 4x2 float32 corners in input pixels: tl, tr, br, bl


def _order(pts: np.ndarray) -> np.ndarray:
    pts = pts.reshape(4, 2).astype(np.float32)
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)


def _paper_masks(blur: np.ndarray):
    """Candidate masks of the sheet: edges of the paper (robust to shading), then brightness (Otsu)."""
    # Shading multiplies paper and table alike, so their boundary stays a strong edge.
    med = float(np.median(blur))
    edges = cv2.Canny(blur, max(5.0, 0.33 * med), max(15.0, 0.66 * med))
    edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    filled = np.zeros_like(edges)
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    yield filled
    _, mask = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15))
    yield cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k), cv2.MORPH_OPEN, k)


def _largest_quad(mask: np.ndarray, min_area: float) -> np.ndarray | None:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    if cv2.contourArea(c) < min_area:
        return None
    hull = cv2.convexHull(c)
    peri = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
    return None


def _sides_are_edges(blur: np.ndarray, quad: np.ndarray, margin: float, min_contrast: float) -> bool:
    """Whether each side of `quad` that lies inside the picture has paper inside and a clear step down
    outside it (median over points along the side of inside minus outside, a few pixels off the side)."""
    sh, sw = blur.shape
    centre = quad.mean(axis=0)
    d = 6.0
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        t = np.linspace(0.1, 0.9, 25)[:, None]
        pts = a + t * (b - a)
        keep = ((pts[:, 0] > margin + d) & (pts[:, 0] < sw - 1 - margin - d)
                & (pts[:, 1] > margin + d) & (pts[:, 1] < sh - 1 - margin - d))
        if keep.sum() < 5:
            continue  # a side along the picture's edge: the sheet goes on past it
        pts = pts[keep]
        v = b - a
        n = np.array([v[1], -v[0]], np.float64) / max(float(np.hypot(*v)), 1e-6)
        if np.dot(n, pts.mean(axis=0) - centre) < 0:
            n = -n  # outward
        inner, outer = pts - d * n, pts + d * n

        def at(p):
            xs = np.clip(np.round(p[:, 0]).astype(int), 0, sw - 1)
            ys = np.clip(np.round(p[:, 1]).astype(int), 0, sh - 1)
            return blur[ys, xs].astype(np.float64)

        if float(np.median(at(inner) - at(outer))) < 0.5 * min_contrast:
            return False
    return True


def find_page_quad(gray: np.ndarray, *, min_area: float = 0.2, min_contrast: float = 25.0) -> np.ndarray | None:
    """Corners (tl, tr, br, bl) of a bright sheet lying inside the picture, or None."""
    if gray.ndim != 2 or min(gray.shape) < 64:
        return None
    h, w = gray.shape
    scale = WORK_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    blur = cv2.GaussianBlur(small, (0, 0), 3)
    sh, sw = small.shape
    margin = 0.01 * max(sh, sw)
    quad = None
    for mask in _paper_masks(blur):
        quad = _largest_quad(mask, min_area * sh * sw)
        if quad is None:
            continue
        quad = _order(quad)
        # The sheet must lie inside the picture: at least three sides clear of the image edge.
        clear = [
            quad[:, 0].min() > margin,  # left
            quad[:, 1].min() > margin,  # top
            quad[:, 0].max() < sw - 1 - margin,  # right
            quad[:, 1].max() < sh - 1 - margin,  # bottom
        ]
        if sum(clear) < 3:
            return None
        # Every side inside the picture must be the paper's edge: a step from paper down to the table.
        # The brightness mask of a shaded photo ends where the shading crosses its threshold, across
        # the sheet (through its text): flattening that outline would drop the text beyond it.
        if _sides_are_edges(blur, quad, margin, min_contrast):
            break
        quad = None
    if quad is None:
        return None
    inside = np.zeros_like(small)
    cv2.fillConvexPoly(inside, quad.astype(np.int32), 255)
    paper = np.median(blur[inside > 0])
    table = np.median(blur[inside == 0]) if (inside == 0).any() else paper
    if paper - table < min_contrast:
        return None
    return quad / scale


def rectify_page(gray: np.ndarray) -> PageFrame:
    """Flatten the sheet found in a photo to an upright-ish rectangle; otherwise return the input."""
    quad = find_page_quad(gray)
    if quad is None:
        return PageFrame(gray, False)
    tl, tr, br, bl = quad
    out_w = int(round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    out_h = int(round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    if out_w < 32 or out_h < 32:
        return PageFrame(gray, False)
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    flat = cv2.warpPerspective(gray, m, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    # The corners are found on a reduced copy: trim a thin rim so no sliver of table remains,
    # which the cut-off detector would (rightly) take for a dark border.
    rim = max(4, int(round(0.008 * max(out_w, out_h))))
    return PageFrame(np.ascontiguousarray(flat[rim:-rim, rim:-rim]), True, quad)


def photo_dpi(page: np.ndarray) -> float:
    """A photo has no physical resolution: estimate it from the flattened sheet, taken as A4."""
    return max(page.shape) / A4_LONG_IN
