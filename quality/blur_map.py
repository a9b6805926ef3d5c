"""Where a page is blurred: the text tiles whose own edge blur is beyond the gate's limit.

The page-level blur measure (`measures._edge_blur` on a few text crops) decides whether a page
is held as `blurred`; this map tells QA staff *where*: a page photographed at an angle or
curled off the glass is often sharp at one end and soft at the other. Pure function, run only
for held pages (about 1 ms per tile).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ._img import to_gray_u8
from .correct import _rules
from .measures import PIXEL_BLUR_FLOOR, _edge_blur

MIN_INK = 0.02  # share of inked pixels for a tile to count as text
INK_LEVEL = 200  # blurred strokes never get dark: count grey, not only black, as ink
# Text blurred beyond reading (defocus sigma >= 4 px, motion >= 9 px at 300 dpi) spreads into a faint grey
# smudge whose darkest pixels stay above INK_LEVEL: counted by that alone, a blurred lower half had no
# "text" tiles and so no unread ones. Ink is therefore counted on the page smoothed over INK_SMOOTH px
# (paper grain averages out) as anything INK_DEPTH grey levels below the paper.
INK_SMOOTH = 5
INK_DEPTH = 20


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels of ink, sharp or blurred: darker than INK_LEVEL, or INK_DEPTH below the paper once smoothed."""
    g = to_gray_u8(gray)
    paper = float(np.percentile(g[:: 4, :: 4], 95)) if g.size else 255.0
    smooth = cv2.blur(g, (INK_SMOOTH, INK_SMOOTH))
    # integer thresholds (s < t  <=>  s < ceil(t) for 8-bit s): a float scalar made numpy compare in float64
    return (g < int(math.ceil(INK_LEVEL))) | (smooth < int(math.ceil(paper - INK_DEPTH)))


def tile_blur_rel(tile: np.ndarray, line_px: float, upscale: float = 1.0) -> float:
    """A tile's optical edge blur in tenths of the text-line height (as `PageMeasures.blur_rel`)."""
    sigma = _edge_blur(tile)
    if not math.isfinite(sigma):
        return float("inf")
    floor = PIXEL_BLUR_FLOOR * max(upscale, 1.0)
    excess = math.sqrt(max(sigma ** 2 - floor ** 2, 0.0))
    return excess / (max(line_px, 4.0) / 10.0)


def _tile_geometry(m) -> tuple[float, float, int]:
    """(text-line height px, upscale of the correction, tile side px) from the page's measures."""
    line_px = float(getattr(m, "effective_resolution", 0.0) or 0.0) or 40.0
    char_px = float(getattr(m, "char_height_px", 0.0) or 0.0)
    upscale = line_px / char_px if char_px > 0 else 1.0
    return line_px, upscale, int(max(128, min(512, 4 * line_px)))


def _is_blurred(tile: np.ndarray, line_px: float, upscale: float, blur_rel_max: float) -> bool:
    rel = tile_blur_rel(tile, line_px, upscale)
    return math.isfinite(rel) and rel > blur_rel_max


def blurred_regions(gray, m, blur_rel_max: float = 0.7) -> list[tuple[int, int, int, int]]:
    """(left, top, width, height) boxes, in `gray`'s pixels (the corrected page), of text tiles
    blurred beyond `blur_rel_max`. `m` is the page's PageMeasures (or an object with
    `effective_resolution` and `char_height_px`)."""
    g = to_gray_u8(gray)
    h, w = g.shape
    line_px, upscale, size = _tile_geometry(m)
    ink = ink_mask(g)
    out = []
    for y in range(0, h - size // 2, size):
        for x in range(0, w - size // 2, size):
            tile = g[y : y + size, x : x + size]
            if tile.size == 0 or float(np.mean(ink[y : y + size, x : x + size])) < MIN_INK:
                continue
            if _is_blurred(tile, line_px, upscale, blur_rel_max):
                out.append((x, y, tile.shape[1], tile.shape[0]))
    return out


MAX_TEXT_TILE_INK = 0.5  # a tile darker than this is a picture or a black area, not text


def _word_box(w) -> tuple[float, float, float, float] | None:
    get = (lambda k: w.get(k)) if isinstance(w, dict) else (lambda k: getattr(w, k, None))
    vals = [get(k) for k in ("left", "top", "width", "height")]
    return None if any(v is None for v in vals) else tuple(float(v) for v in vals)


def unread_text(gray, words, m, blur_rel_max: float = 0.7) -> dict:
    """Text the OCR did not read: tiles of the corrected page that hold text-like ink but no
    OCR word box. Catches what the line-based checks miss: a part of the page so blurred or
    faded that neither the text-line finder nor Tesseract sees lines there (a sheet curled off
    the glass reads perfectly at one end and not at all at the other).

    Returns {"text_tiles", "unread_tiles", "unread_share", "unread_boxes", "blurred_boxes"};
    boxes are (left, top, width, height) in `gray`'s pixels; `blurred_boxes` are the unread
    tiles whose own edge blur is beyond `blur_rel_max`.
    """
    g = to_gray_u8(gray)
    h, w = g.shape
    line_px, upscale, size = _tile_geometry(m)
    ny, nx = h // size, w // size
    empty = {"text_tiles": 0, "unread_tiles": 0, "unread_share": 0.0, "unread_boxes": [], "blurred_boxes": []}
    if ny == 0 or nx == 0:
        return empty
    ink_px = ink_mask(g)[: ny * size, : nx * size]
    rules = _rules(ink_px)  # a form's frame and table borders are not text: no word is ever read on them
    if rules.any():
        ink_px &= ~rules
    ink = ink_px.reshape(ny, size, nx, size).mean(axis=(1, 3))
    text = (ink >= MIN_INK) & (ink <= MAX_TEXT_TILE_INK)
    read = np.zeros_like(text)
    for wd in words or ():
        b = _word_box(wd)
        if b is None:
            continue
        x0, y0 = int(b[0] // size), int(b[1] // size)
        x1, y1 = int((b[0] + b[2]) // size), int((b[1] + b[3]) // size)
        read[max(0, y0) : min(ny, y1 + 1), max(0, x0) : min(nx, x1 + 1)] = True
    # a text tile next to a read tile is the end of a line the OCR read (margins of a word box,
    # a dot or a diacritic below the line): only tiles two or more away from every word count
    near = read.copy()
    near[1:] |= read[:-1]
    near[:-1] |= read[1:]
    near[:, 1:] |= read[:, :-1]
    near[:, :-1] |= read[:, 1:]
    unread = text & ~near
    out = dict(empty)
    out["text_tiles"] = int(text.sum())
    out["unread_tiles"] = int(unread.sum())
    out["unread_share"] = float(unread.sum() / max(text.sum(), 1))
    for ty, tx in zip(*np.nonzero(unread)):
        box = (int(tx * size), int(ty * size), size, size)
        out["unread_boxes"].append(box)
        if _is_blurred(g[box[1] : box[1] + size, box[0] : box[0] + size], line_px, upscale, blur_rel_max):
            out["blurred_boxes"].append(box)
    return out
