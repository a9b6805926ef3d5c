"""Text metrics for benchmarks: character error rate on normalised Persian text."""
from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

_MAP = str.maketrans({
    "ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "ۀ": "ه", "أ": "ا", "إ": "ا", "ٱ": "ا",
    **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian digits
    "\u200c": "", "\u200d": "", "\u200e": "", "\u200f": "", "ـ": "",  # ZWNJ, ZWJ, marks, tatweel
    "،": ",", "؛": ";", "؟": "?",
})
_DIACRITICS = re.compile("[\u064B-\u065F\u0670]")


def normalize_text(s: str) -> str:
    """Map Arabic ي/ك to Persian ی/ک, unify digits to Latin, drop diacritics and ZWNJ, collapse whitespace."""
    s = (s or "").translate(_MAP)
    s = _DIACRITICS.sub("", s)
    return re.sub(r"\s+", " ", s).strip()


def levenshtein(a, b) -> int:
    """Edit distance between two strings (or two sequences of words), via rapidfuzz's C code."""
    return Levenshtein.distance(a, b)


def cer(ref: str, hyp: str) -> float:
    """Character error rate of `hyp` against `ref` after normalisation (can exceed 1)."""
    r, h = normalize_text(ref), normalize_text(hyp)
    if not r:
        return 0.0 if not h else 1.0
    return levenshtein(r, h) / len(r)
