"""Persian text normalisation in two forms.

`display_form` is faithful and readable: it only repairs what is wrong for Persian
(Arabic yeh/kaf, Arabic-Indic digits, presentation forms, bidi control marks,
tatweel, stray ZWNJ, Latin punctuation that OCR emits inside Persian text, spacing
around punctuation). Letters with hamza, diacritics, Latin digits and the choice of
Persian or Latin digits are kept as printed.

`search_form` is aggressive: every spelling a clerk may type for the same word maps
to one string (yeh/kaf variants, hamza forms, diacritics, ZWNJ, every digit system,
punctuation, case), so equality of search forms is the search equivalence.

The table is documented in docs/ocr.md and tested in tests/test_ocr_normalize.py.
"""
from __future__ import annotations

import re
import unicodedata

ZWNJ = "\u200c"
ZWJ = "\u200d"
TATWEEL = "\u0640"

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
LATIN_DIGITS = "0123456789"
ALL_DIGITS = PERSIAN_DIGITS + ARABIC_DIGITS + LATIN_DIGITS

# ---- display form: letter variants that are simply wrong in Persian text ----------
DISPLAY_LETTERS = {
    "\u064a": "\u06cc",  # ARABIC LETTER YEH -> FARSI YEH
    "\u0649": "\u06cc",  # ALEF MAKSURA -> FARSI YEH
    "\u06d0": "\u06cc",  # YEH (Pashto e) -> FARSI YEH
    "\u06cd": "\u06cc",  # YEH WITH TAIL
    "\u06ce": "\u06cc",  # YEH WITH SMALL V
    "\u0643": "\u06a9",  # ARABIC KAF -> KEHEH
    "\u06aa": "\u06a9",  # SWASH KAF -> KEHEH
    "\u06c1": "\u0647",  # HEH GOAL -> HEH
    "\u06d5": "\u0647",  # AE -> HEH
    "\u06be": "\u0647",  # HEH DOACHASHMEE -> HEH
    "\u066a": "%",  # ARABIC PERCENT SIGN stays readable as %
}
DISPLAY_LETTERS.update({a: p for a, p in zip(ARABIC_DIGITS, PERSIAN_DIGITS)})
_DISPLAY_TABLE = str.maketrans(DISPLAY_LETTERS)

# bidi controls and other invisible marks OCR or word processors leave behind
_INVISIBLE = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\u00ad\u200b" + TATWEEL
_INVISIBLE_TABLE = str.maketrans({c: None for c in _INVISIBLE})

_ARABIC_LETTER = "\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06fa-\u06ff"
_AL = f"[{_ARABIC_LETTER}]"
_PRESENTATION = re.compile("[\ufb50-\ufdff\ufe70-\ufefe]")

# Latin punctuation next to Persian letters -> Persian punctuation
_COMMA = re.compile(rf"(?<={_AL})\s*,|,(?=\s*{_AL})")
_SEMICOLON = re.compile(rf"(?<={_AL})\s*;|;(?=\s*{_AL})")
_QUESTION = re.compile(rf"(?<={_AL})\s*\?")

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_ZWNJ_RUN = re.compile(ZWNJ + "{2,}")
_ZWNJ_EDGE = re.compile(rf"(^|[\s]){ZWNJ}+|{ZWNJ}+(?=$|[\s])", re.M)
# ZWNJ is meaningful only between two letters (or letter and diacritic)
_ZWNJ_NOT_BETWEEN_LETTERS = re.compile(rf"(?<![{_ARABIC_LETTER}\u064b-\u065f\u0670]){ZWNJ}|{ZWNJ}(?!{_AL})")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[.,،؛;:؟?!»)\]])")
_SPACE_AFTER_OPEN = re.compile(r"(?<=[«(\[]) +")


def _fix_presentation(text: str) -> str:
    return _PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


def display_form(text: str) -> str:
    """Faithful, readable Persian: fixes encoding variants, keeps what was printed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = _fix_presentation(text)
    text = text.translate(_INVISIBLE_TABLE).translate(_DISPLAY_TABLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _COMMA.sub("،", text)
    text = _SEMICOLON.sub("؛", text)
    text = _QUESTION.sub("؟", text)
    text = _ZWNJ_RUN.sub(ZWNJ, text)
    text = _ZWNJ_EDGE.sub(lambda m: m.group(1) or "", text)
    text = _ZWNJ_NOT_BETWEEN_LETTERS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    text = _SPACE_AFTER_OPEN.sub("", text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


# ---- search form ------------------------------------------------------------------
SEARCH_LETTERS = {
    "\u06cc": "\u06cc",
    "\u0626": "\u06cc",  # YEH WITH HAMZA -> YEH
    "\u0643": "\u06a9",
    "\u0629": "\u0647",  # TEH MARBUTA -> HEH
    "\u06c0": "\u0647",  # HEH WITH YEH ABOVE (ۀ) -> HEH
    "\u06c2": "\u0647",  # HEH GOAL WITH HAMZA
    "\u0623": "\u0627",  # ALEF WITH HAMZA ABOVE -> ALEF
    "\u0625": "\u0627",  # ALEF WITH HAMZA BELOW -> ALEF
    "\u0671": "\u0627",  # ALEF WASLA -> ALEF
    "\u0622": "\u0627",  # ALEF WITH MADDA -> ALEF
    "\u0672": "\u0627",
    "\u0673": "\u0627",
    "\u0624": "\u0648",  # WAW WITH HAMZA -> WAW
    "\u0621": None,  # standalone HAMZA dropped
    ZWNJ: None,  # نیم‌فاصله: می‌رود == میرود
    ZWJ: None,
}
SEARCH_LETTERS.update({c: str(i) for i, c in enumerate(PERSIAN_DIGITS)})
SEARCH_LETTERS.update({c: str(i) for i, c in enumerate(ARABIC_DIGITS)})
for _cp in list(range(0x064B, 0x0660)) + [0x0670, 0x06D6, 0x06D7, 0x06D8, 0x06D9, 0x06DA, 0x06DB, 0x06DC, 0x06DF, 0x06E0, 0x06E1, 0x06E2, 0x06E3, 0x06E4, 0x06E7, 0x06E8, 0x06EA, 0x06EB, 0x06EC, 0x06ED]:
    SEARCH_LETTERS[chr(_cp)] = None  # harakat, tanwin, shadda, sukun, hamza above/below marks, small letters
_SEARCH_TABLE = str.maketrans(SEARCH_LETTERS)

# separators that stay inside numbers (dates 1401/05/08, 12-345) but split words elsewhere
_NUM_SEP = re.compile(r"(?<=\d)\s*([/\-.])\s*(?=\d)")
_NON_WORD = re.compile(r"[^\w/\-.]+|(?<!\d)[/\-.]|[/\-.](?!\d)")


def search_form(text: str) -> str:
    """Aggressive normal form for indexing and queries: equal strings == same words."""
    if not text:
        return ""
    text = display_form(text)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_SEARCH_TABLE)
    text = text.casefold()
    text = _NUM_SEP.sub(lambda m: "/" if m.group(1) in "/" else m.group(1), text)
    text = _NON_WORD.sub(" ", text)
    text = text.replace("_", " ")
    return " ".join(text.split())


def to_latin_digits(text: str) -> str:
    return text.translate(str.maketrans(PERSIAN_DIGITS + ARABIC_DIGITS, LATIN_DIGITS * 2))


def to_persian_digits(text: str) -> str:
    return text.translate(str.maketrans(LATIN_DIGITS + ARABIC_DIGITS, PERSIAN_DIGITS * 2))
