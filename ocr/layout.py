"""Page layout repairs around Tesseract: rules removed before OCR, text-line bands of ink,
and the refill of text lines Tesseract's page layout dropped.

Pure image functions, except `refill_missed_lines`, which reads the dropped lines with
the `Tesseract` it is given.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from ocr.measures import is_garbage
from ocr.normalize import display_form
from ocr.tesseract import OcrError, Tesseract
from ocr.tsv import parse_tsv
from ocr.words import Word, group_lines

MAX_LINE_REFILLS = 6  # dropped lines read again on a page whose page pass reads only fairly
REFILL_PAGE_CONFIDENCE = 75.0  # page pass at this mean word confidence or above: every dropped line is read
HOPELESS_CONFIDENCE = 50.0  # page pass below this: held on its reading, no refill nor re-reads
REFILL_GIVE_UP = 3  # dropped lines in a row read as nothing (none read yet): the rest are not text either
LINE_SAMPLE = 4  # the text-line height is measured on every 4th column (full vertical resolution)


def text_line_height(gray: np.ndarray) -> float | None:
    """Median height, in `gray`'s pixels, of the page's text-line bands of ink (an upright page):
    the same measure as `quality`'s `line_height_px` (rows whose ink exceeds 6 % of a typical
    line's); when that median is under half the tall bands' height (90th percentile), the median of
    the bands at least that tall (slivers of blurred lines are not lines). None without at least
    three bands. Every 4th column is enough (~3 ms a page)."""
    cols = np.ascontiguousarray(gray[:, ::LINE_SAMPLE])
    thr, _ = cv2.threshold(np.ascontiguousarray(cols[::LINE_SAMPLE]), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    prof = np.count_nonzero(cols <= thr, axis=1)
    if not prof.any():
        return None
    on = prof > 0.06 * np.percentile(prof[prof > 0], 90)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.view(np.int8), [0]))))
    heights = [b - a for a, b in zip(edges[::2], edges[1::2]) if b - a >= 3]
    if len(heights) < 3:
        return None
    median, tall = float(np.median(heights)), float(np.percentile(heights, 90))
    if median >= 0.5 * tall:
        return median
    # lines of blurred text fall apart into thin slivers (only their darkest cores are ink): on a page
    # sharp at the top and motion-blurred below they outnumber the real lines (measured 9-11 px against
    # 46 px lines) and the page was read 2-3x too large. When the median band is such a sliver, bands
    # under half the tall ones' height are not counted as lines.
    return float(np.median([h for h in heights if h >= 0.5 * tall]))


def remove_rules(gray: np.ndarray) -> np.ndarray:
    """White out long horizontal and vertical rules (form grids, table borders,
    underlines) before OCR; returns `gray` itself when there are none.

    Tesseract's PSM 6 reads nothing at all on a ruled form (measured: CER 100 % on a
    4-row table that it reads at 0 % once the rules are gone). Runs of ink at least
    1/15 of the page width (horizontal) or 1/30 of its height (vertical) are rules:
    Persian words have no straight stroke that long. The page image kept for the PDF
    is not touched.
    """
    h, w = gray.shape
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    hlen, vlen = max(120, w // 15), max(100, h // 30)
    horiz, vert = _long_runs(ink, hlen, axis=1), _long_runs(ink, vlen, axis=0)
    if horiz is None and vert is None:
        return gray  # no row or column can hold a rule (most pages): no page-sized masks at all
    rules = horiz if vert is None else vert if horiz is None else cv2.bitwise_or(horiz, vert)
    if not rules.any():
        return gray
    if np.count_nonzero(rules) > 0.15 * rules.size:
        # not rules: a shadow or a dark region that the threshold took for ink
        # (an uncorrected page); leave it to quality.correct_page
        return gray
    rules = cv2.dilate(rules, np.ones((3, 3), np.uint8))
    out = gray.copy()
    out[rules > 0] = 255
    return out


_RUN_SAMPLE = 8


def _long_runs(ink: np.ndarray, length: int, axis: int) -> np.ndarray | None:
    """The ink of `ink` (0/255) on straight runs at least `length` long along `axis`
    (1: horizontal, 0: vertical): exactly a morphological opening with a 1 x `length`
    line, computed only on the rows (columns) that can hold such a run; None when none can.

    A run of L >= length pixels covers at least length // 8 consecutive pixels of every
    8th column (row), so an opening of that subsample finds a superset of the candidate
    rows (columns) at 1/8 of the cost; the full-resolution opening then runs on those
    alone. Same result as opening the whole page, ~10x faster on a page of text.
    """
    def line(n: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_RECT, (n, 1) if axis == 1 else (1, n))

    step = (slice(None), slice(None, None, _RUN_SAMPLE)) if axis == 1 else (slice(None, None, _RUN_SAMPLE),)
    cand = cv2.morphologyEx(np.ascontiguousarray(ink[step]), cv2.MORPH_OPEN, line(max(1, length // _RUN_SAMPLE)))
    idx = np.flatnonzero(cand.any(axis=axis))  # candidate rows (axis 1) or columns (axis 0)
    if not idx.size:
        return None
    out = np.zeros_like(ink)
    sel = (idx,) if axis == 1 else (slice(None), idx)
    out[sel] = cv2.morphologyEx(np.ascontiguousarray(ink[sel]), cv2.MORPH_OPEN, line(length))
    return out


def _ink_bands(gray: np.ndarray, min_gap: int, split_above: int = 0) -> list[tuple[int, int, int, int]]:
    """Horizontal bands of ink (text lines) of an upright page: (y0, y1, x0, x1); bands
    taller than `split_above` (if given) are split where two lines touch."""
    small = gray
    _, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    rows = ink.sum(axis=1)
    on = rows >= 3
    bands: list[list[int]] = []
    y = 0
    h = len(rows)
    while y < h:
        if on[y]:
            y0 = y
            while y < h and on[y]:
                y += 1
            if bands and y0 - bands[-1][1] < min_gap:
                bands[-1][1] = y  # dots and marks above/below a line belong to it
            else:
                bands.append([y0, y])
        y += 1
    if split_above:
        bands = [b for y0, y1 in bands for b in _split_band(rows, y0, y1, split_above)]
    out = []
    for y0, y1 in bands:
        cols = np.where(ink[y0:y1].any(axis=0))[0]
        if cols.size:
            out.append((y0, y1, int(cols[0]), int(cols[-1]) + 1))
    return out


def _split_band(rows: np.ndarray, y0: int, y1: int, max_h: int, depth: int = 0) -> list[list[int]]:
    """Split a band taller than `max_h` at its sparsest row when that row is nearly empty:
    two lines of dense text joined by a descender or a dot are two lines, a tall title is one."""
    if y1 - y0 <= max_h or depth > 6:
        return [[y0, y1]]
    lo, hi = y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4
    seg = rows[lo:hi]
    if seg.size == 0:
        return [[y0, y1]]
    cut = lo + int(np.argmin(seg))
    if rows[cut] > 0.2 * float(np.median(rows[y0:y1])):
        return [[y0, y1]]
    return _split_band(rows, y0, cut, max_h, depth + 1) + _split_band(rows, cut, y1, max_h, depth + 1)


def dropped_line_bands(gray: np.ndarray, words: list[Word]) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Text lines of `gray` that no word of `words` sits on: (line height, bands (y0, y1, x0, x1)).

    The line height is the median word height; a band of ink counts when it is 0.5-2.2 line
    heights tall, at least one line height wide, and no word's centre or most of a word's
    height lies on it."""
    if not words:
        return 0, []
    heights = sorted(w.height for w in words)
    line_h = heights[len(heights) // 2]
    bands = _ink_bands(gray, max(2, int(0.35 * line_h)), split_above=int(1.6 * line_h))
    centres = np.sort(np.array([w.top + w.height / 2 for w in words], dtype=np.float64))
    missing = []
    for y0, y1, x0, x1 in bands:
        bh = y1 - y0
        if not (0.5 * line_h <= bh <= 2.2 * line_h) or x1 - x0 < line_h:
            continue
        i = int(np.searchsorted(centres, y0 - 0.2 * bh))  # the first word centre at or below the band's top margin
        if i < centres.size and centres[i] <= y1 + 0.2 * bh:
            continue
        if any(w.top < y1 and y0 < w.bottom and (min(w.bottom, y1) - max(w.top, y0)) > 0.5 * bh for w in words):
            continue
        missing.append((y0, y1, x0, x1))
    return line_h, missing


def page_pass_confidence(words: list[Word]) -> float | None:
    """Mean word confidence of a page pass (None: no words)."""
    return float(sum(w.conf for w in words) / len(words)) if words else None


def reading_is_hopeless(words: list[Word]) -> bool:
    """The page pass already shows that the page will be held on its reading: its words read at a
    mean confidence under HOPELESS_CONFIDENCE (the gate holds under 60; a page blurred or noisy
    beyond reading comes back as confident-looking debris at 20-50). No refill or re-read can
    turn such a reading into a good one, so none is paid for."""
    conf = page_pass_confidence(words)
    return conf is not None and conf < HOPELESS_CONFIDENCE


def _plausible_line(line: list[Word]) -> bool:
    """A line read on its own holds at least one real token of three characters or more (a word,
    a number, a date), not only lone digits and letters."""
    return any(len(w.text.strip(".,،؛;:؟?!«»()-")) >= 3 and not is_garbage(w.text) for w in line)


def refill_missed_lines(
    gray: np.ndarray, words: list[Word], *, tess: Tesseract, dpi: int, lang: str, deadline: float,
    scales: tuple[float, ...] = (1.0, 0.75, 0.5),
) -> list[Word]:
    """Read again, one by one, text lines Tesseract's page layout skipped.

    PSM 6 now and then drops a whole line (a short centred بسمه تعالی, or one line of a
    dense paragraph), and on some clean pages a third of them (issue 12, class 3: Nazli
    13 pt, 8 of 25 lines, in PSM 6, 4 and 3 alike). Bands of ink with no recognised word on
    them are cut out and read as single lines (PSM 7); their words are inserted at their
    place in reading order. Pages without clear line structure (noise) produce no
    plausible bands.

    How many lines are read depends on how well the page pass read the rest:
    * its words at a mean confidence >= REFILL_PAGE_CONFIDENCE (a good image): every dropped
      line, however many;
    * otherwise at most MAX_LINE_REFILLS (more "lines" on a doubtful page are noise bands);
    * a hopeless reading (`reading_is_hopeless`): none (the page is held on its reading).
    The refill gives up after REFILL_GIVE_UP lines in a row read nothing usable while none
    has been read yet (bands that are not text), or twice as many in a row after that (a
    photo or a drawing below the text), and reads each line first at the scale that read
    the previous one.
    """
    if not words:
        return words
    line_h, missing = dropped_line_bands(gray, words)
    if not missing:
        return words
    conf = page_pass_confidence(words) or 0.0
    if conf < HOPELESS_CONFIDENCE:
        return words
    if conf < REFILL_PAGE_CONFIDENCE and len(missing) > MAX_LINE_REFILLS:
        return words
    order = list(scales)
    new_lines: list[list[Word]] = []
    failures = 0
    for y0, y1, x0, x1 in missing:
        if time.monotonic() > deadline - 2.0:
            break
        if failures >= (REFILL_GIVE_UP if not new_lines else 2 * REFILL_GIVE_UP):
            break
        m = max(6, line_h // 2)
        top, left = max(0, y0 - m), max(0, x0 - m)
        crop = gray[top : y1 + m, left : x1 + m]
        line: list[Word] = []
        # Tesseract sometimes returns nothing for a line at one scale and reads it
        # at another (measured: a dropped line read at 0.75x): try a few.
        for scale in list(order):
            remaining = deadline - time.monotonic()
            if remaining < 2.0:
                break
            img = crop if scale == 1.0 else cv2.resize(
                crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            try:
                out = tess.run(img, dpi=max(1, int(dpi * scale)), timeout_s=min(15.0, remaining), lang=lang, psm=7)
            except OcrError:
                break
            for w in parse_tsv(out["tsv"].decode("utf-8", "replace")):
                w.text = display_form(w.text)
                if w.text and w.conf >= 40:
                    w.left = left + int(round(w.left / scale))
                    w.top = top + int(round(w.top / scale))
                    w.width = max(1, int(round(w.width / scale)))
                    w.height = max(1, int(round(w.height / scale)))
                    line.append(w)
            if line:
                if scale != order[0]:  # the next dropped line is most likely read at this size too
                    order.remove(scale)
                    order.insert(0, scale)
                break
        # a signature, a stamp or a rule read as "text" comes back with low confidence; a bar of
        # redaction or a logo as lone digits or letters (measured: `7`, `۳۳`, `۳ ۳ ۳` at 56-76)
        if line and sum(w.conf for w in line) / len(line) >= 60 and _plausible_line(line):
            new_lines.append(line)
            failures = 0
        else:
            failures += 1
    if not new_lines:
        return words
    # merge by vertical position and renumber lines in reading order
    groups = [list(g) for g in group_lines(words)] + new_lines
    groups.sort(key=lambda g: sorted(w.top + w.height / 2 for w in g)[len(g) // 2])
    merged: list[Word] = []
    for i, g in enumerate(groups):
        for w in g:
            w.line = i
            merged.append(w)
    return merged
