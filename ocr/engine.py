"""Tesseract (`fas`) word-level OCR with a hard timeout and one OpenMP thread.

Tesseract runs as a subprocess per page. We call the binary directly (the same call
pytesseract makes) so that each call gets its own environment (`OMP_THREAD_LIMIT=1`
unless asked otherwise; parallelism comes from running pages side by side), its own
process group (a timeout kills Tesseract and anything it spawned), and a clear
`OcrError` when the binary or the language data is missing.

Output is Tesseract's TSV: one row per word with box, confidence and the
block/paragraph/line numbers. Tesseract's iterator already yields words of a
right-to-left line in reading order (right to left), and lines top to bottom within
a block; we keep that order and number lines consecutively.

After Tesseract (all measured in bench/ocr, explained in docs/ocr.md): lines the
page layout dropped are read again on their own (`refill_missed_lines`), digit groups
of one number are merged (`merge_numbers`), Latin-digit numbers are re-read with `eng`
(`reread_latin_numbers`), overlapping boxes are clamped (`repair_boxes`) and the
Persian comma is told from a full stop (`fix_persian_commas`).
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import MissingDependency
from pathlib import Path

import cv2
import numpy as np

from ocr.normalize import display_form

# PSM 6 ("a single uniform block of text") reads single-column petitions and court
# headers in strict line order; PSM 4 / 3 split headers with left and right columns
# into separate blocks. See docs/ocr.md and bench/ocr for the measurements.
DEFAULT_PSM = 6
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


class OcrError(RuntimeError):
    """OCR could not run (Tesseract missing, language data missing, crash)."""


class OcrTimeout(OcrError):
    """Tesseract did not finish within the per-page time limit (reason `ocr_timeout`)."""

    reason = "ocr_timeout"


@dataclass
class Word:
    text: str
    conf: float  # 0..100
    left: int
    top: int
    width: int
    height: int
    line: int  # reading-order line index on the page

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass
class OcrResult:
    words: list[Word]
    text: str  # display form, reading order, "\n" between lines
    mean_confidence: float | None
    seconds: float
    psm: int = DEFAULT_PSM
    raw_text: str = field(default="", repr=False)  # Tesseract's words joined, before display_form

    def lines(self) -> list[list[Word]]:
        out: dict[int, list[Word]] = {}
        for w in self.words:
            out.setdefault(w.line, []).append(w)
        return [out[k] for k in sorted(out)]


def tesseract_cmd() -> str:
    cmd = os.environ.get("KHANA_TESSERACT", "tesseract")
    found = shutil.which(cmd)
    if not found:
        raise OcrError(
            f"Tesseract is not installed or not on PATH (looked for {cmd!r}); "
            "install Debian's tesseract-ocr and tesseract-ocr-fas"
        )
    return found


@functools.lru_cache(maxsize=8)
def _languages(cmd: str, tessdata: str | None) -> frozenset[str]:
    env = _env(1)
    args = [cmd, "--list-langs"]
    if tessdata:
        args[1:1] = ["--tessdata-dir", tessdata]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrError(f"cannot run Tesseract ({cmd}): {exc}") from exc
    langs = set()
    for line in (proc.stdout + "\n" + proc.stderr).splitlines()[1:]:
        line = line.strip()
        if line and " " not in line:
            langs.add(line)
    return frozenset(langs)


def available_languages() -> frozenset[str]:
    return _languages(tesseract_cmd(), os.environ.get("TESSDATA_PREFIX"))


def _check_language(cmd: str, lang: str) -> None:
    langs = _languages(cmd, os.environ.get("TESSDATA_PREFIX"))
    missing = [part for part in lang.split("+") if part and part not in langs]
    if missing:
        raise OcrError(
            f"Tesseract language data missing for {'+'.join(missing)!r} "
            f"(installed: {', '.join(sorted(langs)) or 'none'}); install tesseract-ocr-{missing[0]} "
            "or set TESSDATA_PREFIX to a directory holding the .traineddata files"
        )


def _env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads is None:
        env.pop("OMP_THREAD_LIMIT", None)
    else:
        env["OMP_THREAD_LIMIT"] = str(int(threads))
    return env


def run_tesseract(
    gray: np.ndarray,
    *,
    dpi: int = 300,
    timeout_s: float = 60.0,
    lang: str = "fas",
    psm: int = DEFAULT_PSM,
    threads: int | None = 1,
    extra: tuple[str, ...] = (),
    renderers: tuple[str, ...] = ("tsv",),
) -> dict[str, bytes]:
    """Run Tesseract on a grayscale page; returns {renderer: output bytes}."""
    cmd = tesseract_cmd()
    _check_language(cmd, lang)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("recognise expects a 2-D uint8 grayscale page")
    with tempfile.TemporaryDirectory(prefix="khana-ocr-") as tmp:
        # uncompressed TIFF: ~0.01 s to write and the cheapest for Tesseract to read (measured per
        # A4 page at 300 dpi: PNG level 1 0.09 s to encode + 0.05 s for Tesseract to decode; PGM is
        # free to write but Leptonica reads it 0.15 s slower); the resolution goes in --dpi
        src = Path(tmp) / "page.tif"
        ok, buf = cv2.imencode(".tif", gray, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
        if not ok:
            raise OcrError("could not encode the page for Tesseract")
        src.write_bytes(buf.tobytes())
        base = Path(tmp) / "out"
        args = [cmd, str(src), str(base), "-l", lang, "--psm", str(psm), "--dpi", str(int(dpi)), *extra, *renderers]
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(threads), start_new_session=True
        )
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise OcrTimeout(f"Tesseract did not finish within {timeout_s:g} s (reason ocr_timeout)") from None
        if proc.returncode != 0:
            msg = err.decode("utf-8", "replace").strip()
            raise OcrError(f"Tesseract failed (exit {proc.returncode}): {msg[-500:]}")
        out = {}
        for r in renderers:
            path = base.with_suffix("." + ("txt" if r == "txt" else r))
            if not path.exists():
                raise OcrError(f"Tesseract produced no {r} output: {err.decode('utf-8', 'replace')[-300:]}")
            out[r] = path.read_bytes()
        return out


def parse_tsv(tsv: str) -> list[Word]:
    """Tesseract TSV -> words in reading order with consecutive line indices."""
    words: list[Word] = []
    line_ids: dict[tuple[int, int, int, int], int] = {}
    rows = tsv.splitlines()
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        try:
            conf = float(cols[10])
        except ValueError:
            conf = -1.0
        if conf < 0:
            continue
        key = (int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4]))
        line = line_ids.setdefault(key, len(line_ids))
        words.append(
            Word(text, max(0.0, min(100.0, conf)), int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]), line)
        )
    return words


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
    for line in _group_lines(words):
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
    for line in _group_lines(words):
        rtl = _line_is_rtl(line)
        for prev, w in zip(line, line[1:]):
            if rtl and w.right > prev.left and w.left < prev.left:
                w.width = max(1, prev.left - 1 - w.left)
            elif not rtl and w.left < prev.right and w.right > prev.right:
                new_left = prev.right + 1
                w.width = max(1, w.right - new_left)
                w.left = new_left
    return words


def _group_lines(words: list[Word]) -> list[list[Word]]:
    lines: dict[int, list[Word]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    return [lines[k] for k in sorted(lines)]


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


def _fix_lone_punctuation(words: list[Word]) -> None:
    """A Latin comma/semicolon/question mark read as its own word after a Persian word
    becomes the Persian mark (display_form does this inside words)."""
    for prev, w in zip(words, words[1:]):
        if w.text in _LONE_PUNCT and prev.line == w.line and _RTL.search(prev.text):
            w.text = _LONE_PUNCT[w.text]


def word_spans(result: "OcrResult") -> list[tuple[int, int]]:
    """(start, end) of each word of `result` in `result.text`."""
    spans, pos, line = [], 0, None
    for w in result.words:
        if line is not None:
            pos += 1  # the " " or "\n" before this word
        line = w.line
        spans.append((pos, pos + len(w.text)))
        pos += len(w.text)
    return spans


def text_box(result: "OcrResult", start: int, end: int) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, width, height) in page pixels of the words covering
    result.text[start:end] (a Field's span), or None."""
    hit = [w for w, (s, e) in zip(result.words, word_spans(result)) if s < end and start < e]
    if not hit:
        return None
    left, top = min(w.left for w in hit), min(w.top for w in hit)
    return left, top, max(w.right for w in hit) - left, max(w.bottom for w in hit) - top


def words_to_text(words: list[Word]) -> str:
    lines: dict[int, list[str]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w.text)
    return "\n".join(" ".join(lines[k]) for k in sorted(lines))


_LATIN_NUMBER = re.compile(r"^[0-9][0-9/\-.]{3,}[0-9]$")
MAX_REREADS = 12


def reread_latin_numbers(
    gray: np.ndarray, words: list[Word], *, dpi: int, deadline: float, threads: int | None = 1
) -> list[Word]:
    """Read numbers printed in Latin digits again with Tesseract's `eng` model.

    `fas` reads long Latin digit runs (16-18 digit case numbers, 1401/05/08) with
    dropped or doubled digits; `eng` on the word's crop (single line, digits and
    separators whitelisted) reads them reliably. Skipped when `eng` is not installed
    or the page's time budget is spent.
    """
    try:
        if "eng" not in available_languages():
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
            out = run_tesseract(
                crop, dpi=dpi, timeout_s=min(10.0, remaining), lang="eng", psm=7, threads=threads,
                extra=("-c", "tessedit_char_whitelist=0123456789/-"), renderers=("txt",),
            )
        except OcrError:
            break
        done += 1
        text = re.sub(r"\s+", "", out["txt"].decode("utf-8", "replace"))
        if _LATIN_NUMBER.match(text) and abs(len(text) - len(w.text)) <= max(2, len(w.text) // 4):
            w.text = text
    return _reread_mixed_numbers(gray, words, dpi=dpi, deadline=deadline, threads=threads, budget=MAX_REREADS - done)


_DIGIT_CHARS = set("0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩")
_OCR_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1"})


def _mostly_digits(text: str) -> bool:
    n = sum(c in _DIGIT_CHARS for c in text)
    return n >= 1 and n >= 0.6 * len(text) and any(c in "0123456789" for c in text)


def _reread_mixed_numbers(
    gray: np.ndarray, words: list[Word], *, dpi: int, deadline: float, threads: int | None, budget: int
) -> list[Word]:
    """A Latin number `fas` garbled into Persian/Latin digit mixtures and pieces
    (`0۳۱9 ۱0967` for 09121234567, typical in table cells) is read again with `eng`
    over the pieces' joint box, without a whitelist: if `eng` sees a clean Latin number
    there, it replaces the pieces; Persian digits come back as letters and are kept."""
    out: list[Word] = []
    for line in _group_lines(words):
        i = 0
        while i < len(line):
            w = line[i]
            if budget <= 0 or _LATIN_NUMBER.match(w.text) or not _mostly_digits(w.text):
                out.append(w)
                i += 1
                continue
            group = [w]
            while i + 1 < len(line) and _mostly_digits(line[i + 1].text) and not _LATIN_NUMBER.match(line[i + 1].text):
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
            m = max(4, (bottom - top) // 4)
            crop = gray[max(0, top - m) : bottom + m, max(0, left - m) : right + m]
            crop = cv2.copyMakeBorder(crop, 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)
            budget -= 1
            try:
                res = run_tesseract(crop, dpi=dpi, timeout_s=min(10.0, remaining), lang="eng", psm=7,
                                    threads=threads, renderers=("txt",))
            except OcrError:
                out.extend(group)
                continue
            text = re.sub(r"\s+", "", res["txt"].decode("utf-8", "replace")).translate(_OCR_DIGIT_FIX)
            if _LATIN_NUMBER.match(text):
                out.append(Word(text, min(g.conf for g in group), left, top, right - left, bottom - top, w.line))
            else:
                out.extend(group)
    return out


MAX_LINE_REFILLS = 6


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
    rules = cv2.bitwise_or(_long_runs(ink, hlen, axis=1), _long_runs(ink, vlen, axis=0))
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


def _long_runs(ink: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The ink of `ink` (0/255) on straight runs at least `length` long along `axis`
    (1: horizontal, 0: vertical): exactly a morphological opening with a 1 x `length`
    line, computed only on the rows (columns) that can hold such a run.

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
    out = np.zeros_like(ink)
    if idx.size:
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


def refill_missed_lines(
    gray: np.ndarray, words: list[Word], *, dpi: int, lang: str, deadline: float, threads: int | None = 1
) -> list[Word]:
    """Read again, one by one, text lines Tesseract's page layout skipped.

    PSM 6 now and then drops a whole line (a short centred بسمه تعالی, or one line of a
    dense paragraph). Bands of ink with no recognised word on them are cut out and read
    as single lines (PSM 7); their words are inserted at their place in reading order.
    Pages without clear line structure (noise) produce no plausible bands.
    """
    if not words:
        return words
    heights = sorted(w.height for w in words)
    line_h = heights[len(heights) // 2]
    bands = _ink_bands(gray, max(2, int(0.35 * line_h)), split_above=int(1.6 * line_h))
    centres = [w.top + w.height / 2 for w in words]
    missing = []
    for y0, y1, x0, x1 in bands:
        bh = y1 - y0
        if not (0.5 * line_h <= bh <= 2.2 * line_h) or x1 - x0 < line_h:
            continue
        if any(y0 - 0.2 * bh <= c <= y1 + 0.2 * bh for c in centres):
            continue
        if any(w.top < y1 and y0 < w.bottom and (min(w.bottom, y1) - max(w.top, y0)) > 0.5 * bh for w in words):
            continue
        missing.append((y0, y1, x0, x1))
    if not missing or len(missing) > MAX_LINE_REFILLS:
        return words
    new_lines: list[list[Word]] = []
    for y0, y1, x0, x1 in missing:
        remaining = deadline - time.monotonic()
        if remaining < 2.0:
            break
        m = max(6, line_h // 2)
        top, left = max(0, y0 - m), max(0, x0 - m)
        crop = gray[top : y1 + m, left : x1 + m]
        line: list[Word] = []
        # Tesseract sometimes returns nothing for a line at one scale and reads it
        # at another (measured: a dropped line read at 0.75x): try a few.
        for scale in (1.0, 0.75, 0.5):
            remaining = deadline - time.monotonic()
            if remaining < 2.0:
                break
            img = crop if scale == 1.0 else cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            try:
                out = run_tesseract(img, dpi=int(dpi * scale), timeout_s=min(15.0, remaining), lang=lang, psm=7, threads=threads)
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
                break
        # a signature, a stamp or a rule read as "text" comes back with low confidence
        if line and sum(w.conf for w in line) / len(line) >= 60:
            new_lines.append(line)
    if not new_lines:
        return words
    # merge by vertical position and renumber lines in reading order
    groups = [list(g) for g in _group_lines(words)] + new_lines
    groups.sort(key=lambda g: sorted(w.top + w.height / 2 for w in g)[len(g) // 2])
    merged: list[Word] = []
    for i, g in enumerate(groups):
        for w in g:
            w.line = i
            merged.append(w)
    return merged


def recognise(
    gray: np.ndarray,
    *,
    dpi: int = 300,
    timeout_s: float = 60.0,
    lang: str = "fas",
    psm: int = DEFAULT_PSM,
    threads: int | None = 1,
    reread_numbers: bool = True,
    refill_lines: bool = True,
    strip_rules: bool = True,
) -> OcrResult:
    """OCR an upright grayscale page. Raises OcrTimeout / OcrError."""
    t0 = time.perf_counter()
    dpi = int(dpi or 300)
    deadline = time.monotonic() + timeout_s
    if gray.ndim == 2 and gray.dtype == np.uint8 and gray.size and strip_rules:
        gray = remove_rules(gray)
    out = run_tesseract(gray, dpi=dpi, timeout_s=timeout_s, lang=lang, psm=psm, threads=threads)
    words = parse_tsv(out["tsv"].decode("utf-8", "replace"))
    for w in words:
        w.text = display_form(w.text)
    words = [w for w in words if w.text]
    if refill_lines and psm in (3, 4, 6):
        words = refill_missed_lines(gray, words, dpi=dpi, lang=lang, deadline=deadline, threads=threads)
    words = repair_boxes(merge_numbers(words))
    if reread_numbers:
        words = reread_latin_numbers(gray, words, dpi=dpi, deadline=deadline, threads=threads)
    _fix_lone_punctuation(words)
    fix_persian_commas(gray, words)
    raw = words_to_text(words)
    text = raw  # every word is in display form already; text offsets map onto words
    mean = float(np.mean([w.conf for w in words])) if words else None
    return OcrResult(words, text, mean, time.perf_counter() - t0, psm, raw)


class OcrEngine(Protocol):
    """What the pipeline needs of an OCR engine: one upright grayscale page in, words and text out."""

    def recognise(self, image: np.ndarray, *, dpi: int) -> OcrResult: ...


@dataclass(frozen=True)
class TesseractEngine:
    """Tesseract (`fas`) as Khana's OCR engine, configured by explicit values (no environment look-ups)."""

    lang: str = "fas"
    timeout_s: float = 60.0
    psm: int = DEFAULT_PSM

    def recognise(self, image: np.ndarray, *, dpi: int) -> OcrResult:
        return recognise(image, dpi=dpi, timeout_s=self.timeout_s, lang=self.lang, psm=self.psm)

    def check(self) -> None:
        """Raise `MissingDependency` now if Tesseract or its language data is missing."""
        try:
            _check_language(tesseract_cmd(), self.lang)
        except OcrError as exc:
            raise MissingDependency(str(exc), fa="تسرکت (Tesseract) یا داده‌های زبان فارسی آن نصب نیست") from exc
