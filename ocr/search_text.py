"""Search text: the normalised forms that the full-text index stores and that queries are matched in.

Pure text functions (no database): `index_text` (the indexed form of a page's OCR text: `search_form`, with the
separators inside numbers split into words so both databases' tokenizers see the same plain words),
`case_key` (a case number as Latin digits only), `query_terms` (a query's words, the longer ones also as
Persian suffixed forms), `case_query_key` (the case-number look-up of a query made of digits and separators) and
`highlight` (a page's display text as HTML with the hit words in `<mark>`). The index itself is
`storage.search`.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

from ocr.normalize import search_form, to_latin_digits

_NUMBER_SEPARATORS = re.compile(r"[/\-.]")
_CASE_QUERY = re.compile(r"^[\s0-9۰-۹٠-٩/\-._]+$")
MIN_INFLECT = 3  # words at least this long also match with a Persian suffix
MIN_CASE_DIGITS = 4  # a digits-only query this long is also looked up as a case number


def index_text(text_: str) -> str:
    """The indexed form: search form with separators inside numbers split into words."""
    return " ".join(_NUMBER_SEPARATORS.sub(" ", search_form(text_)).split())


def case_key(case_number: str | None) -> str:
    """A case number as Latin digits only: ۱۴۰۲-۰۹۹۸ / 1402/0998 / 14020998 -> 14020998."""
    return re.sub(r"\D", "", to_latin_digits(case_number or ""))[:40]


# Persian suffixes a query word also matches (in search form, where نیم‌فاصله is gone):
# پرونده finds پرونده‌ها, پرونده‌های, پرونده‌ای; دادگاه finds دادگاهی; کتاب finds کتابش.
SUFFIXES = ("", "ها", "های", "هایی", "هایم", "هایت", "هایش", "هایمان", "هایتان", "هایشان", "ی", "ای", "یی", "ان",
            "ات", "ین", "تر", "ترین", "م", "ت", "ش", "اش", "مان", "تان", "شان")


@dataclass(frozen=True)
class Term:
    text: str
    forms: tuple[str, ...]  # the exact index words this query word matches

    def matches(self, word: str) -> bool:
        return word in self.forms


def query_terms(query: str) -> list[Term]:
    seen: dict[str, Term] = {}
    for w in index_text(query or "").split():
        if w not in seen:
            inflect = len(w) >= MIN_INFLECT and not w.isdigit()
            seen[w] = Term(w, tuple(w + s for s in SUFFIXES) if inflect else (w,))
    return list(seen.values())[:16]


def case_query_key(query: str) -> str:
    """The digits a query made only of digits and separators looks case numbers up by ("" otherwise)."""
    key = case_key(query) if _CASE_QUERY.match(query or "") else ""
    return key if len(key) >= MIN_CASE_DIGITS else ""


# --- snippets --------------------------------------------------------------------------
_WORD = re.compile(r"\S+")


@lru_cache(maxsize=65536)
def _word_forms(word: str) -> tuple[str, ...]:
    return tuple(index_text(word).split())


def highlight(display_text: str, terms: list[Term], context: int = 14) -> str:
    """HTML: about 2*context words of `display_text` from a little before its first hit word on,
    every hit word in <mark>. Each piece is HTML-escaped before it is wrapped, so OCR text can
    never inject markup."""
    words = _WORD.findall(display_text or "")
    if not words:
        return ""
    forms = {f for t in terms for f in t.forms}
    memo: dict[str, bool] = {}

    def is_hit(w: str) -> bool:
        h = memo.get(w)
        if h is None:
            h = memo[w] = any(f in forms for f in _word_forms(w))
        return h

    first = next((i for i, w in enumerate(words) if is_hit(w)), 0)
    lo = max(0, first - context // 2)
    hi = min(len(words), lo + 2 * context + 1)
    lo = max(0, hi - 2 * context - 1)
    # quote=False: text content needs no quote entities, so the markup carries no digits (Persian digit swap is safe)
    parts = [f"<mark>{html.escape(w, quote=False)}</mark>" if is_hit(w) else html.escape(w, quote=False)
             for w in words[lo:hi]]
    return ("… " if lo > 0 else "") + " ".join(parts) + (" …" if hi < len(words) else "")
