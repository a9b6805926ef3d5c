"""Show the problem: an overlay image for QA staff (BGR uint8)."""
from __future__ import annotations

import cv2
import numpy as np

from ._img import to_gray_u8
from .blur_map import blurred_regions

MAX_SIDE = 2400

COLORS = {  # BGR
    "dark": (200, 80, 0),
    "blur": (0, 140, 255),
    "cut": (0, 0, 230),
    "lowconf": (40, 40, 220),
    "banner": (30, 30, 30),
}


def _segment_edges(segs, W, H) -> set:
    out = set()
    for x0, y0, x1, y1 in segs:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        d = {"left": cx, "right": W - 1 - cx, "top": cy, "bottom": H - 1 - cy}
        out.add(min(d, key=d.get))
    return out


def annotate_problems(gray, m, reasons, low_conf_boxes=(), blur_rel_max: float = 0.7,
                      legibility: float | None = None) -> np.ndarray:
    """The page (preferably `CorrectedPage.image`) with problem regions marked.

    Dark areas are tinted blue, blurred areas orange, cut-off edges get a red bar, and
    low-confidence OCR word boxes (left, top, width, height in corrected-image coordinates)
    are outlined in red.  A banner lists the reason codes and the legibility: pass the report's figure
    as `legibility` (after OCR, the final score); without it the image score `m.legibility` is shown.
    Where text is cut off, the line along which it is lost (`m.cut_off_segments`) is drawn in red.
    Large pages are downscaled.
    """
    g = to_gray_u8(gray)
    H, W = g.shape
    blur_boxes = list(getattr(m, "blur_regions", []) or [])
    if "blurred" in reasons and not blur_boxes and float(getattr(m, "blur_rel", 0.0) or 0.0) < 2 * blur_rel_max:
        # the text tiles that are blurred themselves (measured on the full-resolution page); a page
        # blurred all over (a hopeless page, held early) gets its whole text area marked, cheaply
        blur_boxes = blurred_regions(g, m, blur_rel_max)
    cw, ch = (m.corrected_size if getattr(m, "corrected_size", None) and m.corrected_size[0] else (W, H))
    s = min(1.0, MAX_SIDE / max(H, W))
    if s < 1.0:
        k = int(1.0 / (1.5 * s))  # a page 3x or more the picture's size (an upscaled small-text page: up
        if k >= 2:                # to 60 Mpx) is first taken every k-th pixel: the area average costs 1/k^2
            g = np.ascontiguousarray(g[::k, ::k])
        g = cv2.resize(g, (max(1, int(W * s)), max(1, int(H * s))), interpolation=cv2.INTER_AREA)
    h, w = g.shape
    fx, fy = w / max(cw, 1), h / max(ch, 1)  # corrected coords -> output coords
    img = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    overlay = img.copy()

    def rect(b):
        x, y, bw, bh = b
        return (int(x * fx), int(y * fy)), (int((x + bw) * fx), int((y + bh) * fy))

    for b in getattr(m, "dark_regions", []) or []:
        p0, p1 = rect(b)
        cv2.rectangle(overlay, p0, p1, COLORS["dark"], -1)
    if "blurred" in reasons and not blur_boxes:
        # no single tile measures beyond the limit (blur spread thinly): mark the text area
        mask = (g < 128).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        if ys.size:
            blur_boxes = [(xs.min() / fx, ys.min() / fy, (xs.max() - xs.min()) / fx, (ys.max() - ys.min()) / fy)]
    for b in blur_boxes:
        p0, p1 = rect(b)
        cv2.rectangle(overlay, p0, p1, COLORS["blur"], -1)
    img = cv2.addWeighted(overlay, 0.3, img, 0.7, 0)
    t = max(4, int(0.012 * max(h, w)))
    segs = list(getattr(m, "cut_off_segments", []) or []) if "cut_off" in reasons else []
    for x0, y0, x1, y1 in segs:
        # the line along which text is lost (slanted when the page was deskewed), widened to be seen
        p0, p1 = (int(x0 * fx), int(y0 * fy)), (int(x1 * fx), int(y1 * fy))
        if p0 == p1:
            p1 = (p1[0] + 1, p1[1] + 1)
        cv2.line(img, p0, p1, COLORS["cut"], t, cv2.LINE_AA)
    edges = list(getattr(m, "cut_off_edges", []) or [])
    if segs:  # the segments show the lost text; bars only for edges without a segment (lid borders)
        edges = [e for e in edges if e not in _segment_edges(segs, w / max(fx, 1e-9), h / max(fy, 1e-9))]
    elif "cut_off" in reasons and not edges:
        edges = ["right"]
    for e in edges:
        if e == "left":
            cv2.rectangle(img, (0, 0), (t, h - 1), COLORS["cut"], -1)
        elif e == "right":
            cv2.rectangle(img, (w - 1 - t, 0), (w - 1, h - 1), COLORS["cut"], -1)
        elif e == "top":
            cv2.rectangle(img, (0, 0), (w - 1, t), COLORS["cut"], -1)
        elif e == "bottom":
            cv2.rectangle(img, (0, h - 1 - t), (w - 1, h - 1), COLORS["cut"], -1)
    lw = max(1, int(0.0015 * max(h, w)))
    for b in low_conf_boxes or ():
        p0, p1 = rect(b)
        cv2.rectangle(img, p0, p1, COLORS["lowconf"], lw)
    if reasons:
        fs = max(0.4, 0.0006 * max(h, w))
        bh = int(34 * fs) + 8
        if h > bh and w > 20:
            cv2.rectangle(img, (0, 0), (w - 1, bh), COLORS["banner"], -1)
            label = "HOLD: " + ", ".join(reasons)
            shown = legibility if legibility is not None else getattr(m, "legibility", None)
            if shown is not None:
                label += f"   legibility {float(shown):.2f}"
            cv2.putText(img, label, (6, bh - 8), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255),
                        max(1, int(fs * 2)), cv2.LINE_AA)
    return img
