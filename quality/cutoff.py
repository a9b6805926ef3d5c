"""Text lost off the scan's edge: "ink cut by the edge" rather than "ink near the edge".

A page whose text merely comes close to the scan's edge (a skewed page fitted tightly on the
glass) has nothing missing; a page whose text continues past the edge (laid at a steep angle,
its corners outside the scanned area, or shifted off the glass) has.  The difference is visible
at full resolution along the outermost pixels of the scan: only text that continues past the edge
leaves strokes *on* the last row or column, cut through, running inwards from it.

`find_cut_text` looks at each edge's outermost strip at full resolution:

* the strip is normalised by its own local paper level (a grey dilation along the edge), so a shadow
  or a grey lid is not ink;
* the scanner's lid or table showing where the sheet does not cover the scan (a large dark area
  touching the edge, e.g. the triangles beside a page laid at an angle) is background, not text;
* a *cut stroke* is a connected ink component of the strip that touches the outermost pixel row and
  runs inwards for at least a quarter of the text-line height (a speck of noise does not);
* an edge is cut when it has at least `min_cuts` cut strokes (one stroke can be a rule or a stamp);
* on a page skewed against the scan (|skew| >= 5 degrees) an intact text block meets an edge with one
  corner, i.e. one or two lines; text cut along the edge reaches it on line after line: the edge is
  also cut when `min_lines` (3) separate text lines come within half a line height of it.

The positions of the cut strokes are kept (raw pixels along each edge), grouped into spans, and
mapped into the corrected image by the correction's affine matrix: the QA image marks the line
along which text was actually lost, slanted when the page was deskewed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

EDGES = ("left", "top", "right", "bottom")
SLANT_MIN_DEG = 5.0  # text block at least this far off the scan's axes: line-by-line contact is evidence


@dataclass
class CutText:
    edges: list = field(default_factory=list)        # raw-image edges with text cut by them
    strokes: dict = field(default_factory=dict)      # edge -> number of cut strokes
    lines: dict = field(default_factory=dict)        # edge -> number of text lines reaching the edge
    fraction: dict = field(default_factory=dict)     # edge -> share of the edge covered by cut strokes
    spans: list = field(default_factory=list)        # (edge, x0, y0, x1, y1) raw pixels of lost text along the edge


def _strip(g: np.ndarray, edge: str, depth: int, offset: int) -> np.ndarray:
    """The outermost `depth` rows inside `offset` px of `edge`, as rows (row 0 = outermost) x along-edge."""
    h, w = g.shape
    if edge == "top":
        return g[offset:offset + depth, :]
    if edge == "bottom":
        return g[h - offset - depth:h - offset, :][::-1, :]
    if edge == "left":
        return g[:, offset:offset + depth].T
    return g[:, w - offset - depth:w - offset].T[::-1, :]


def _background_mask(work: np.ndarray, paper: float, k: int) -> np.ndarray:
    """Large dark areas touching the image border (lid, table, shadowed corners), at working scale."""
    sm = cv2.medianBlur(work, 3)
    dil = cv2.dilate(sm, np.ones((k, k), np.uint8))  # text strokes vanish, areas wider than k stay
    ero = cv2.erode(sm, np.ones((k, k), np.uint8))
    # dark and flat: a lid or a table has no ink on it; shadowed paper still shows its text, however dim
    flat = ero.astype(np.float32) >= 0.7 * dil.astype(np.float32)
    dark = ((dil < 0.75 * paper) & flat).astype(np.uint8)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if n <= 1:
        return np.zeros_like(dark, bool)
    h, w = dark.shape
    border_labels = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))) - {0}
    keep = np.zeros(n, bool)
    for i in border_labels:
        if stats[i, cv2.CC_STAT_AREA] >= 0.0005 * h * w:
            keep[i] = True
    bgm = keep[lab]
    return cv2.dilate(bgm.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def find_cut_text(g: np.ndarray, *, work: np.ndarray | None, work_scale: float, border: tuple,
                  char_height_px: float, paper_level: float, dynamic_range: float,
                  skew_degrees: float = 0.0, min_cuts: int = 2, min_lines: int = 3, noisy: bool = False) -> CutText:
    """Edges of the raw page `g` (full resolution, uint8) along which text is cut.

    `border`: lid-border widths at working scale (those edges are judged by the lid-border rule instead).
    """
    h, w = g.shape
    out = CutText()
    if h < 32 or w < 32 or dynamic_range < 8:
        return out
    ch = min(max(4.0, float(char_height_px or 0.0)), 0.04 * max(h, w))  # a bogus line height must not blow up the strips
    depth = int(max(3, round(0.45 * ch)))
    reach = max(2, int(round(0.25 * ch)))  # a cut stroke runs at least this far inwards
    touch = max(1, int(round(0.12 * ch)))  # "at the edge" for the line-by-line rule
    window = int(max(9, round(2.5 * ch))) | 1
    ws = float(work_scale or 1.0)
    bgm = None
    if work is not None and work.size:
        k = max(3, int(round(0.8 * ch * ws)) | 1)
        bgm = _background_mask(work, paper_level, k)
    found = {}
    for edge, b in zip(EDGES, border):
        if b:  # a lid border on this edge: judged by its inner edge elsewhere
            continue
        s = _strip(g, edge, min(depth, min(h, w) // 4), 0)
        if s.shape[0] < 3:
            continue
        s = cv2.medianBlur(np.ascontiguousarray(s), 5 if noisy else 3)
        local = cv2.dilate(s, np.ones((s.shape[0] * 2 + 1, window), np.uint8))
        local_f = local.astype(np.float32)
        # shading multiplies paper and ink alike: the contrast needed scales with the local paper level
        # (a phone photo's strokes are soft and grey: a quarter of the page's ink contrast is ink)
        need = np.maximum(0.25 * dynamic_range * local_f / max(paper_level, 1.0), 6.0)
        ink = (s.astype(np.float32) < 0.75 * local_f) & ((local_f - s) > need)
        ink = ink.astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        L = s.shape[1]
        if bgm is not None:  # background along this edge, in along-edge coordinates
            bs = _strip(bgm.astype(np.uint8), edge, 1, 0)[0]
            bg_along = cv2.resize(bs[None, :], (L, 1), interpolation=cv2.INTER_NEAREST)[0] > 0
        else:
            bg_along = np.zeros(L, bool)
        cuts, near = [], []
        for i in range(1, n):
            x, y, cw, chh, area = stats[i]
            if cw > 4 * ch:  # a long dark run along the edge: a shadow or the lid, not text
                continue
            if bg_along[x:x + cw].mean() > 0.3:
                continue
            if x + cw < ch or x > L - ch:  # at a corner: a frame's rules meet there, not lines of text
                continue
            if area >= 0.004 * ch * ch and y <= touch:  # ink at the edge
                near.append((int(x), int(x + cw), int(area)))
            if y == 0 and chh >= min(reach, s.shape[0]) and (lab[0, x:x + cw] == i).any():
                cuts.append((int(x), int(x + cw)))
        # text lines that reach the edge: ink near the edge grouped along it (one group per line crossed)
        lines = _groups(near, 0.8 * ch, 0.015 * ch * ch)
        out.strokes[edge] = len(cuts)
        out.lines[edge] = len(lines)
        out.fraction[edge] = float(sum(b - a for a, b in cuts) / max(L, 1))
        found[edge] = (cuts, lines)
    # a page skewed against the scan edge meets it with one corner of its text block when the
    # text is intact; text cut off along the edge reaches it on line after line.  Noise (grain on a
    # dark scan) makes "strokes" on every edge alike: an edge counts only well above the quietest one.
    slanted = abs(float(skew_degrees or 0.0)) >= SLANT_MIN_DEG
    if noisy:  # grain survives the median as stroke-like specks: ask for more of them
        min_cuts, min_lines = max(min_cuts, 6), max(min_lines, 5)
    floor_s = min((len(c) for c, _ in found.values()), default=0)
    floor_l = min((len(li) for _, li in found.values()), default=0)
    for edge, (cuts, lines) in found.items():
        by_strokes = len(cuts) >= min_cuts and len(cuts) >= 3 * floor_s + 1
        by_lines = slanted and len(lines) >= min_lines and len(lines) >= 3 * floor_l + 1
        if by_strokes or by_lines:
            out.edges.append(edge)
            spans = _groups([(a, b, 1) for a, b in cuts] + [(a, b, 1) for a, b, _ in lines], 4 * ch, 0)
            for a, bb, _ in spans:
                out.spans.append((edge, *_along_to_xy(edge, a, bb, h, w)))
    return out


def _groups(items: list, gap: float, min_area: float) -> list:
    """(start, end, area) intervals along an edge merged when closer than `gap`; groups below `min_area` dropped."""
    if not items:
        return []
    items = sorted(items)
    out = [list(items[0])]
    for a, b, ar in items[1:]:
        if a - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], b)
            out[-1][2] += ar
        else:
            out.append([a, b, ar])
    return [tuple(g) for g in out if g[2] >= min_area]


def _along_to_xy(edge: str, a: int, b: int, h: int, w: int) -> tuple[int, int, int, int]:
    """Along-edge positions [a, b) on `edge` -> raw segment (x0, y0, x1, y1) on the image border."""
    if edge == "top":
        return a, 0, b, 0
    if edge == "bottom":
        return a, h - 1, b, h - 1
    if edge == "left":
        return 0, a, 0, b
    return w - 1, a, w - 1, b


def spans_to_corrected(spans: list, matrix: np.ndarray, size: tuple[int, int]) -> tuple[list, list]:
    """Raw edge spans -> (segments [x0, y0, x1, y1] in corrected coordinates, nearest corrected edges)."""
    M = np.asarray(matrix, np.float64)
    W, H = size
    segs, edges = [], []
    for _, x0, y0, x1, y1 in spans:
        p = M @ np.array([[x0, x1], [y0, y1], [1.0, 1.0]])
        segs.append([int(round(v)) for v in (p[0, 0], p[1, 0], p[0, 1], p[1, 1])])
        cx, cy = float(p[0].mean()), float(p[1].mean())
        d = {"left": cx, "right": W - 1 - cx, "top": cy, "bottom": H - 1 - cy}
        e = min(d, key=d.get)
        if e not in edges:
            edges.append(e)
    return segs, edges
