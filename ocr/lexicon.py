"""A Persian word lexicon for the OCR-confidence measures.

The list is built once from Debian's myspell-fa dictionary by `ocr/build_lexicon.py`
and shipped as `ocr/data/fa_lexicon.txt.xz` (search forms, one per line), so run time
needs no Debian package. Inflected forms that are a lexicon word plus a common suffix
(plural, ezafe, pronoun clitics, comparative) were dropped from the file to keep it
small; `in_lexicon` strips those suffixes (and the prefixes می/نمی/ب/ن) again.
"""
from __future__ import annotations

import functools
import lzma
from pathlib import Path

from ocr.normalize import search_form

DATA = Path(__file__).resolve().parent / "data" / "fa_lexicon.txt.xz"

# longest first; search forms (no ZWNJ)
SUFFIXES = tuple(
    sorted(
        {
            "ها", "های", "هایی", "ان", "ات", "ین",
            "ی", "ای", "یی", "ائی",
            "م", "ت", "ش", "مان", "تان", "شان", "ام", "ات", "اش", "ایم", "اید", "اند", "است",
            "را", "تر", "ترین", "ترینی",
            "هایم", "هایت", "هایش", "هایمان", "هایتان", "هایشان", "یم", "ید", "ند",
        },
        key=len,
        reverse=True,
    )
)
PREFIXES = ("نمی", "می", "ب", "ن", "بی")


@functools.lru_cache(maxsize=1)
def lexicon() -> frozenset[str]:
    if not DATA.exists():
        return frozenset()
    return frozenset(lzma.decompress(DATA.read_bytes()).decode("utf-8").split("\n")) - {""}


def _candidates(word: str):
    yield word
    for s in SUFFIXES:
        if len(word) > len(s) + 1 and word.endswith(s):
            stem = word[: -len(s)]
            yield stem
            for s2 in SUFFIXES:
                if len(stem) > len(s2) + 1 and stem.endswith(s2):
                    yield stem[: -len(s2)]
    for p in PREFIXES:
        if len(word) > len(p) + 1 and word.startswith(p):
            yield word[len(p):]


def in_lexicon(word: str, lex: frozenset[str] | None = None) -> bool:
    """Is `word` (any spelling; search-normalised here) a Persian word or an inflection of one?"""
    lex = lexicon() if lex is None else lex
    w = search_form(word).replace(" ", "")
    if not w:
        return False
    if any(c in lex for c in _candidates(w)):
        return True
    # compounds written with ZWNJ (or without): رتبه‌بندی, خدمت‌رسانی, غیرحضوری
    if len(w) >= 6:
        for i in range(3, len(w) - 2):
            if w[:i] in lex and any(c in lex for c in _candidates(w[i:])):
                return True
    return False
