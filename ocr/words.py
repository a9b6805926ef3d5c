"""OCR words and results: the values every part of `ocr/` shares (no Tesseract, no images).

`OcrResult.text` is the words joined by spaces and newlines, so character offsets in the
text map back onto word boxes (`word_spans`, `text_box`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ocr.tesseract import DEFAULT_PSM

# right-to-left letters (Hebrew, Arabic, Persian and their presentation forms)
RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


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
    scale: float = 1.0  # the page was read by Tesseract at this scale (word boxes are in the page's pixels)

    def lines(self) -> list[list[Word]]:
        out: dict[int, list[Word]] = {}
        for w in self.words:
            out.setdefault(w.line, []).append(w)
        return [out[k] for k in sorted(out)]


def group_lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped by `Word.line`, lines in order, words in their given order."""
    lines: dict[int, list[Word]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    return [lines[k] for k in sorted(lines)]


def words_to_text(words: list[Word]) -> str:
    lines: dict[int, list[str]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w.text)
    return "\n".join(" ".join(lines[k]) for k in sorted(lines))


def word_spans(result: OcrResult) -> list[tuple[int, int]]:
    """(start, end) of each word of `result` in `result.text`."""
    spans, pos, line = [], 0, None
    for w in result.words:
        if line is not None:
            pos += 1  # the " " or "\n" before this word
        line = w.line
        spans.append((pos, pos + len(w.text)))
        pos += len(w.text)
    return spans


def text_box(result: OcrResult, start: int, end: int) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, width, height) in page pixels of the words covering
    result.text[start:end] (a Field's span), or None."""
    hit = [w for w, (s, e) in zip(result.words, word_spans(result)) if s < end and start < e]
    if not hit:
        return None
    left, top = min(w.left for w in hit), min(w.top for w in hit)
    return left, top, max(w.right for w in hit) - left, max(w.bottom for w in hit) - top
