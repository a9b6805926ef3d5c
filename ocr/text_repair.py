"""Text repairs after Tesseract: split numbers merged, overlapping boxes clamped, the
Persian comma told from a full stop, lone Latin punctuation made Persian, and numbers
printed in Latin digits read again with `eng` (measured in bench/ocr, see docs/ocr.md).

Pure functions over words and the page image, except the re-reads, which run the
`Tesseract` they are given.
"""
from __future__ import annotations

import re
import time

import cv2
import numpy as np

from ocr.tesseract import OcrError, Tesseract
from ocr.words import RTL as _RTL
from ocr.words import Word, group_lines

_NUMERIC = re.compile(r"^[0-9۰-۹٠-٩]+(?:[/\-.][0-9۰-۹٠-٩]+)*[/\-]?$")


def _line_is_rtl(line: list[Word]) -> bool:
    if len(line) < 2:
        return bool(_RTL.search(line[0].text)) if line else True
    steps = [b.left - a.left for a, b in zip(line, line[1:])]
    return sum(1 for s in steps if s < 0) >= sum(1 for s in steps if s > 0)


def merge_numbers(words: list[Word]) -> list[Word]:
    """Join digit groups Tesseract split inside one number (1401099702 245001 23).

    Numbers read left to right even inside a right-to-left line, so a number cut into
    several "words" comes back in the wrong order; neighbours that are all digits and
    nearly touch (gap < 0.6 x height) are merged, ordered by their x position.
    """
    out: list[Word] = []
    for line in group_lines(words):
        i = 0
        while i < len(line):
            group = [line[i]]
            while i + 1 < len(line) and _NUMERIC.match(group[-1].text) and _NUMERIC.match(line[i + 1].text):
                a, b = group[-1], line[i + 1]
                gap = max(a.left, b.left) - min(a.right, b.right)
                if gap > 0.6 * max(a.height, b.height):
                    break
                group.append(b)
                i += 1
            if len(group) == 1:
                out.append(group[0])
            else:
                ordered = sorted(group, key=lambda w: w.left)
                left, top = min(w.left for w in group), min(w.top for w in group)
                right, bottom = max(w.right for w in group), max(w.bottom for w in group)
                out.append(
                    Word("".join(w.text for w in ordered), min(w.conf for w in group), left, top, right - left, bottom - top, group[0].line)
                )
            i += 1
    return out


def repair_boxes(words: list[Word]) -> list[Word]:
    """Clamp word boxes that overlap their neighbours on the line (Tesseract sometimes
    returns a box spanning several words), so highlights and the PDF text layer sit on
    the right word. Direction (RTL/LTR) is taken from the line's word order."""
    for line in group_lines(words):
        rtl = _line_is_rtl(line)
        for prev, w in zip(line, line[1:]):
            if rtl and w.right > prev.left and w.left < prev.left:
                w.width = max(1, prev.left - 1 - w.left)
            elif not rtl and w.left < prev.right and w.right > prev.right:
                new_left = prev.right + 1
                w.width = max(1, w.right - new_left)
                w.left = new_left
    return words



def fix_persian_commas(gray: np.ndarray, words: list[Word]) -> list[Word]:
    """`fas` reads the Persian comma ، at a word's end as a full stop. The comma is a
    tall mark (measured: 1.5-1.8x as high as wide in Noto Sans, Nazli, Homa, Naskh
    Bold), the full stop a round dot; look at the word's leftmost ink component."""
    for w in words:
        if len(w.text) < 2 or not w.text.endswith(".") or not _RTL.search(w.text[-2]):
            continue
        crop = gray[w.top : w.bottom, w.left : w.right]
        if crop.size == 0:
            continue
        ink = (crop < 128).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        if n < 3:
            continue
        i = 1 + int(np.argmin(stats[1:, cv2.CC_STAT_LEFT]))
        cw, ch = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
        if ch >= 1.35 * cw and ch <= 0.5 * w.height and cw <= 0.25 * w.height:
            w.text = w.text[:-1] + "،"
    return words


_LONE_PUNCT = {",": "،", ";": "؛", "?": "؟"}


def fix_lone_punctuation(words: list[Word]) -> None:
    """A Latin comma/semicolon/question mark read as its own word after a Persian word
    becomes the Persian mark (display_form does this inside words)."""
    for prev, w in zip(words, words[1:]):
        if w.text in _LONE_PUNCT and prev.line == w.line and _RTL.search(prev.text):
            w.text = _LONE_PUNCT[w.text]


_LATIN_NUMBER = re.compile(r"^[0-9][0-9/\-.]{3,}[0-9]$")
MAX_REREADS = 12


def reread_latin_numbers(
    gray: np.ndarray, words: list[Word], *, tess: Tesseract, dpi: int, deadline: float
) -> list[Word]:
    """Read numbers printed in Latin digits again with Tesseract's `eng` model.

    `fas` reads long Latin digit runs (16-18 digit case numbers, 1401/05/08) with
    dropped or doubled digits; `eng` on the word's crop (single line, digits and
    separators whitelisted) reads them reliably. Skipped when `eng` is not installed
    or the page's time budget is spent.
    """
    try:
        if "eng" not in tess.languages():
            return words
    except OcrError:
        return words
    done = 0
    for w in words:
        if done >= MAX_REREADS or not _LATIN_NUMBER.match(w.text):
            continue
        remaining = deadline - time.monotonic()
        if remaining < 2.0:
            break
        m = max(4, w.height // 4)
        crop = gray[max(0, w.top - m) : w.bottom + m, max(0, w.left - m) : w.right + m]
        crop = cv2.copyMakeBorder(crop, 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)
        try:
            out = tess.run(
                crop, dpi=dpi, timeout_s=min(10.0, remaining), lang="eng", psm=7,
                extra=("-c", "tessedit_char_whitelist=0123456789/-"), renderers=("txt",),
            )
        except OcrError:
            break
        done += 1
        text = re.sub(r"\s+", "", out["txt"].decode("utf-8", "replace"))
        if _LATIN_NUMBER.match(text) and abs(len(text) - len(w.text)) <= max(2, len(w.text) // 4):
            w.text = text
    return _reread_mixed_numbers(gray, words, tess=tess, dpi=dpi, deadline=deadline, budget=MAX_REREADS - done)


_DIGIT_CHARS = set("0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩")
_OCR_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1"})


def _mostly_digits(text: str) -> bool:
    n = sum(c in _DIGIT_CHARS for c in text)
    return n >= 1 and n >= 0.6 * len(text) and any(c in "0123456789" for c in text)


def _lost_digits(w: Word) -> bool:
    """A number (Latin or Persian digits) whose box is far too wide for the digits read: `fas`
    dropped some (measured: 09121234567 read as ۱۳۹۳ in a table cell; a digit is 0.3-0.7x as
    wide as the word's box is high, that word 1.4x)."""
    return (len(w.text) >= 2 and all(c in _DIGIT_CHARS or c in "/-." for c in w.text)
            and w.width >= 1.0 * w.height * len(w.text))


def _ink_run(strip: np.ndarray, left: int, right: int, gap: int) -> tuple[int, int]:
    """Widen [left, right) to the run of ink columns of `strip` it sits in: no blank stretch
    of `gap` columns or more inside."""
    if strip.size == 0:
        return left, right
    ink = (strip < 128).any(axis=0)
    w = ink.shape[0]
    lo, hi, blank = left, right, 0
    while lo > 0 and blank < gap:
        lo -= 1
        blank = 0 if ink[lo] else blank + 1
    lo = lo + blank
    blank = 0
    while hi < w and blank < gap:
        blank = 0 if ink[hi] else blank + 1
        hi += 1
    return lo, hi - blank


def _mixed_candidate(w: Word) -> bool:
    return not _LATIN_NUMBER.match(w.text) and (_mostly_digits(w.text) or _lost_digits(w))


def _reread_mixed_numbers(
    gray: np.ndarray, words: list[Word], *, tess: Tesseract, dpi: int, deadline: float, budget: int
) -> list[Word]:
    """A Latin number `fas` garbled into Persian/Latin digit mixtures and pieces
    (`0۳۱9 ۱0967` for 09121234567, typical in table cells), or read with digits lost
    (`_lost_digits`), is read again with `eng`
    over the pieces' joint box, without a whitelist: if `eng` sees a clean Latin number
    there, it replaces the pieces; Persian digits come back as letters and are kept."""
    out: list[Word] = []
    for line in group_lines(words):
        i = 0
        while i < len(line):
            w = line[i]
            if budget <= 0 or not _mixed_candidate(w):
                out.append(w)
                i += 1
                continue
            group = [w]
            while i + 1 < len(line) and _mixed_candidate(line[i + 1]):
                a, b = group[-1], line[i + 1]
                if max(a.left, b.left) - min(a.right, b.right) > 1.6 * max(a.height, b.height):
                    break
                group.append(b)
                i += 1
            i += 1
            remaining = deadline - time.monotonic()
            if remaining < 2.0:
                out.extend(group)
                budget = 0
                continue
            left, top = min(g.left for g in group), min(g.top for g in group)
            right, bottom = max(g.right for g in group), max(g.bottom for g in group)
            if any(_lost_digits(g) for g in group):
                # the box around digits fas dropped is cut short too (measured: the lower half and
                # the left two thirds of a Latin number): read the line's full height and the
                # whole run of ink the box sits in
                top, bottom = min(top, min(x.top for x in line)), max(bottom, max(x.bottom for x in line))
                left, right = _ink_run(gray[top:bottom], left, right, gap=bottom - top)
            m = max(4, (bottom - top) // 4)
            crop = gray[max(0, top - m) : bottom + m, max(0, left - m) : right + m]
            crop = cv2.copyMakeBorder(crop, 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)
            budget -= 1
            try:
                res = tess.run(crop, dpi=dpi, timeout_s=min(10.0, remaining), lang="eng", psm=7, renderers=("txt",))
            except OcrError:
                out.extend(group)
                continue
            text = re.sub(r"\s+", "", res["txt"].decode("utf-8", "replace")).translate(_OCR_DIGIT_FIX)
            if _LATIN_NUMBER.match(text):
                out.append(Word(text, min(g.conf for g in group), left, top, right - left, bottom - top, w.line))
            else:
                out.extend(group)
    return out


_FA_DIGIT_CHARS = set("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩")


_FA_LETTER = re.compile("[\u0621-\u064a\u067e-\u06d3\ufb50-\ufdff\ufe70-\ufefc]")


def _persian_number_candidate(w: Word) -> bool:
    """A word `fas` read as (part of) a number in Persian digits: two Persian digits or more,
    or one with no letter beside it (a date read as `۳(`)."""
    n = sum(c in _FA_DIGIT_CHARS for c in w.text)
    return n >= 2 or (n == 1 and len(w.text) >= 2 and not _FA_LETTER.search(w.text))


def _label_ends() -> frozenset[str]:
    from ocr.fields import DATE_LABELS, LABELS

    ends = {label.split()[-1] for labels in LABELS.values() for label in labels}
    return frozenset(ends | {label.split()[-1] for label in DATE_LABELS})


def _after_number_label(prev: Word, w: Word) -> bool:
    """`w` follows an identifier or date label with its colon (شماره پرونده:, تاریخ ثبت:): a number
    goes there even when `fas` read it as letters (a date read as `ار(`, or just `۱`)."""
    return (prev.text.endswith(":") and prev.text.rstrip(":").replace("ي", "ی").replace("ك", "ک") in _label_ends()
            and len(w.text) <= 24)


def reread_persian_numbers(gray: np.ndarray, words: list[Word], *, fonts: tuple[str, ...] | None = None) -> list[Word]:
    """Read numbers printed in Persian digits again, glyph by glyph (`ocr.digits`).

    `fas` drops, doubles and confuses Persian digits in long runs (case numbers, dates), more
    in some fonts than others. For every word with Persian digits, the run of digit glyphs
    under it (its line's full height, the whole run of ink, a label or a colon next to it
    left out) is matched against the installed fonts' digit templates; when every glyph
    matches, the reading replaces the words that lie on the run (a number `fas` cut in two
    becomes one word). Numbers in Latin digits are left to `reread_latin_numbers`. No
    Tesseract call: a page without Persian digits costs nothing.
    """
    from ocr.digits import DEFAULT_DIGIT_FONTS, read_number

    fonts = fonts or DEFAULT_DIGIT_FONTS
    if gray.ndim != 2 or gray.dtype != np.uint8 or not gray.size:
        return words
    replaced: dict[int, Word | None] = {}  # id(word) -> its replacement (None: merged into another)
    for line in group_lines(words):
        wanted = {id(w) for prev, w in zip([None, *line], line)
                  if _persian_number_candidate(w) or (prev is not None and _after_number_label(prev, w))}
        if not wanted:
            continue
        top, bottom = min(w.top for w in line), max(w.bottom for w in line)
        h = bottom - top
        if h <= 0:
            continue
        m = max(4, h // 4)
        y0, y1 = max(0, top - m), min(gray.shape[0], bottom + m)
        done: list[tuple[int, int]] = []
        for w in line:
            if id(w) not in wanted or id(w) in replaced:
                continue
            if any(lo <= w.left and w.right <= hi for lo, hi in done):
                continue
            lo, hi = _ink_run(gray[top:bottom], max(0, w.left), min(gray.shape[1], w.right), gap=max(2, int(0.35 * h)))
            if hi <= lo:
                continue
            read = read_number(gray[y0:y1, lo:hi], (w.left - lo, w.right - lo), fonts)
            if read is None or len(read.text) < 2:
                continue
            left, right = lo + read.left, lo + read.right
            done.append((left, right))
            # the words lying on the number (mostly inside its span) give way to one word
            covered = [x for x in line if id(x) not in replaced
                       and min(x.right, right) - max(x.left, left) >= 0.5 * max(1, x.width)]
            if w not in covered:
                continue
            g_top = y0 + min(g.top for g in read.glyphs)
            g_bottom = y0 + max(g.bottom for g in read.glyphs)
            new = Word(read.text, min(x.conf for x in covered), left, min(g_top, w.top), right - left,
                       max(g_bottom, w.bottom) - min(g_top, w.top), w.line)
            for x in covered:
                replaced[id(x)] = None
            replaced[id(covered[0])] = new
    if not replaced:
        return words
    out = []
    for w in words:
        if id(w) not in replaced:
            out.append(w)
        elif replaced[id(w)] is not None:
            out.append(replaced[id(w)])
    return out
