"""OCR-confidence measures for the quality gate.

* mean_confidence / p10_confidence: Tesseract word confidences (0..100); the 10th
  percentile catches pages where a part of the text is unreadable.
* lexicon_share: share of Persian-letter tokens that are Persian words (lexicon from
  myspell-fa, see ocr/lexicon.py). Clean pages sit near 0.95, noise reads as
  non-words.
* garbage_share: share of tokens that no real text produces: bracket/bar debris,
  letters mixed with digits or Latin with Persian, stray single letters, runs of one
  character, tokens without a letter or digit.
* weak_line_share: share of text lines (3 words or more) whose mean word confidence is
  below WEAK_LINE_CONFIDENCE: a page sharp at one end and blurred at the other reads
  with a good page mean but a block of weak lines.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from ocr.lexicon import in_lexicon
from ocr.normalize import ALL_DIGITS
from ocr.words import OcrResult, Word

_PERSIAN = re.compile(r"[\u0621-\u063a\u0641-\u064a\u067e\u0686\u0698\u06a9\u06af\u06cc\u0622\u06c0]")
_LATIN = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(f"[{ALL_DIGITS}]")
_EDGE_PUNCT = "\"'«»()[]{}.,،؛;:؟?!-–—…/\\|*"
_JUNK = re.compile(r"[\[\]{}|<>~^_\\@#$&=+`]")
_ORDINARY_PUNCT = set(".,،؛;:؟?!«»()-–—…/\"'%")
_SINGLE_OK = {"و", "ه", "ی", "ب"} | set(ALL_DIGITS)
_REPEAT = re.compile(r"(.)\1{3,}")
WEAK_LINE_CONFIDENCE = 55.0  # a line read at this mean confidence or below is mostly wrong


@dataclass
class OcrMeasures:
    mean_confidence: float  # 0..100
    p10_confidence: float  # 0..100
    lexicon_share: float  # 0..1 of Persian tokens
    garbage_share: float  # 0..1 of all tokens
    word_count: int
    weak_line_share: float = 0.0  # 0..1 of text lines with >= 3 words

    def as_dict(self) -> dict:
        return asdict(self)


def is_garbage(token: str) -> bool:
    core = token.strip(_EDGE_PUNCT)
    if not core:
        return len(token) >= 3 or any(c not in _ORDINARY_PUNCT for c in token)
    if _JUNK.search(core) or _REPEAT.search(core):
        return True
    has_fa, has_lat, has_dig = bool(_PERSIAN.search(core)), bool(_LATIN.search(core)), bool(_DIGIT.search(core))
    if has_fa and has_lat:
        return True
    if has_dig and (has_fa or has_lat) and len(core) > 2 and not re.fullmatch(r"[\d۰-۹]+(ام|م|ای|ی)?", core):
        return True
    if len(core) == 1 and core not in _SINGLE_OK and not _LATIN.match(core):
        return True
    if not (has_fa or has_lat or has_dig):
        return True
    return False


def measures_from_words(words: list[Word]) -> OcrMeasures:
    if not words:
        return OcrMeasures(0.0, 0.0, 0.0, 1.0, 0)
    confs = np.array([w.conf for w in words], dtype=float)
    tokens = [w.text for w in words]
    persian = [t.strip(_EDGE_PUNCT) for t in tokens if _PERSIAN.search(t) and not is_garbage(t)]
    n_fa = sum(1 for t in tokens if _PERSIAN.search(t))
    lex = sum(1 for t in persian if in_lexicon(t)) / n_fa if n_fa else 0.0
    garbage = sum(1 for t in tokens if is_garbage(t)) / len(tokens)
    return OcrMeasures(
        round(float(confs.mean()), 2),
        round(float(np.percentile(confs, 10)), 2),
        round(lex, 4),
        round(garbage, 4),
        len(words),
        round(weak_line_share(words), 4),
    )


def weak_line_share(words: list[Word]) -> float:
    """Share of the lines with 3 or more words whose mean confidence is below WEAK_LINE_CONFIDENCE."""
    lines: dict[int, list[float]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w.conf)
    full = [c for c in lines.values() if len(c) >= 3]
    if not full:
        return 0.0
    return sum(1 for c in full if sum(c) / len(c) < WEAK_LINE_CONFIDENCE) / len(full)


def ocr_measures(result: OcrResult) -> OcrMeasures:
    return measures_from_words(result.words)
