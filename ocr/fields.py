"""Identifiers of Iranian judicial documents in OCR text.

Kinds: case_number (شماره پرونده / کلاسه پرونده), decision_number (شماره دادنامه),
archive_number (شماره بایگانی [شعبه]), tracking_code (کد رهگیری / کد پیگیری) and
Solar Hijri dates (۱۴۰۱/۰۵/۰۸, 1401-5-8, 08/05/1401). Labels match every spelling
variant (Arabic/Persian yeh and kaf, ZWNJ or space, colon or not); numbers match
Persian, Arabic-Indic and Latin digits. `value` has Latin digits (identifiers: digits
only; dates: YYYY/MM/DD), `text` is the number as printed, start/end its span in the
text given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ocr.normalize import search_form, to_latin_digits

D = "[0-9۰-۹٠-٩]"
KINDS = ("case_number", "decision_number", "archive_number", "tracking_code", "date")


@dataclass
class Field:
    kind: str
    value: str
    text: str
    start: int
    end: int

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value, "text": self.text}


_VARIANTS = {
    "ی": "[یيىئ]",
    "ک": "[کك]",
    "گ": "[گک]",  # fas reads گ as ک now and then (measured: بایکانی in the Homa font)
    "ه": "[هةۀ]",
    "ا": "[اآأإ]",
    " ": "[\\s\u200c]*",
}


def _flex(label: str) -> str:
    out = []
    for ch in label:
        out.append(_VARIANTS.get(ch, re.escape(ch)))
        if ch != " ":
            out.append("\u200c?")
    return "".join(out)


LABELS: dict[str, list[str]] = {
    "case_number": ["شماره پرونده", "پرونده شماره", "شماره کلاسه پرونده", "کلاسه پرونده", "پرونده کلاسه", "شماره کلاسه", "کلاسه"],
    "decision_number": ["شماره دادنامه", "دادنامه شماره", "شماره رای", "شماره رأی", "شماره حکم"],
    "archive_number": ["شماره بایگانی شعبه", "شماره بایگانی", "بایگانی شعبه", "بایگانی"],
    "tracking_code": ["کد رهگیری", "شماره رهگیری", "کد پیگیری", "شماره پیگیری", "رهگیری"],
}
# labels a date follows (the date itself is recognised by its shape wherever it is)
DATE_LABELS = ["تاریخ", "تاریخ ثبت", "تاریخ تنظیم", "تاریخ صدور", "تاریخ رسیدگی"]
# how many digits a value of each kind has (after removing separators)
DIGITS_RANGE = {"case_number": (6, 20), "decision_number": (6, 20), "archive_number": (3, 14), "tracking_code": (6, 20)}

_SEP = r"[\s:：.\-–ـ\u200c،,]*"
_NUMBER = rf"{D}+(?:(?:[ \t]?[/\-][ \t]?|[ \t]){D}+)*"
_LABELLED = {
    kind: re.compile(rf"(?:{'|'.join(_flex(l) for l in sorted(labels, key=len, reverse=True))}){_SEP}(?P<num>{_NUMBER})")
    for kind, labels in LABELS.items()
}
_DATE_YMD = re.compile(rf"(?<![0-9۰-۹٠-٩/])(?P<y>(?:1[34]|۱[۳۴]|١[٣٤]){D}{{2}})\s?[/\-.]\s?(?P<m>{D}{{1,2}})\s?[/\-.]\s?(?P<d>{D}{{1,2}})(?![0-9۰-۹٠-٩/])")
_DATE_DMY = re.compile(rf"(?<![0-9۰-۹٠-٩/])(?P<d>{D}{{1,2}})\s?[/\-.]\s?(?P<m>{D}{{1,2}})\s?[/\-.]\s?(?P<y>(?:1[34]|۱[۳۴]|١[٣٤]){D}{{2}})(?![0-9۰-۹٠-٩/])")


# OCR reads a thin "/" as a "1" now and then: ۱۴۰۲۱۰۳/۰۳. Accepted only with two-digit
# month and day and at least one real separator, right after a date label.
_DATE_LABELLED_SLIP = re.compile(
    rf"{_flex('تاریخ')}[^\n0-9۰-۹٠-٩]{{0,12}}?(?P<y>(?:1[34]|۱[۳۴]){D}{{2}})(?P<s1>[/1۱])(?P<m>{D}{{2}})(?P<s2>[/1۱])(?P<d>{D}{{2}})(?![0-9۰-۹٠-٩])"
)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", to_latin_digits(s))


def _extract_dates(text: str) -> list[Field]:
    found: list[Field] = []
    taken: list[tuple[int, int]] = []
    for rx in (_DATE_YMD, _DATE_DMY):
        for m in rx.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            y, mo, d = (int(to_latin_digits(m.group(k))) for k in ("y", "m", "d"))
            if not (1 <= mo <= 12 and 1 <= d <= 31 and 1300 <= y <= 1499):
                continue
            taken.append((m.start(), m.end()))
            found.append(Field("date", f"{y:04d}/{mo:02d}/{d:02d}", m.group(0), m.start(), m.end()))
    for m in _DATE_LABELLED_SLIP.finditer(text):
        start, end = m.start("y"), m.end("d")
        if "/" not in m.group("s1") + m.group("s2") or any(s < end and start < e for s, e in taken):
            continue
        y, mo, d = (int(to_latin_digits(m.group(k))) for k in ("y", "m", "d"))
        if 1 <= mo <= 12 and 1 <= d <= 31 and 1300 <= y <= 1499:
            taken.append((start, end))
            found.append(Field("date", f"{y:04d}/{mo:02d}/{d:02d}", text[start:end], start, end))
    return sorted(found, key=lambda f: f.start)


def extract_fields(text: str) -> list[Field]:
    """Identifiers and dates found in `text`, in order of position."""
    if not text:
        return []
    fields: list[Field] = []
    spans: list[tuple[int, int]] = []
    dates = _extract_dates(text)
    for kind, rx in _LABELLED.items():
        for m in rx.finditer(text):
            start, end = m.span("num")
            if any(s < end and start < e for s, e in spans):
                continue
            printed = m.group("num")
            # a number followed by a date on the same line: stop at the date
            for d in dates:
                if start <= d.start < end:
                    printed = text[start : d.start].rstrip(" \t/-")
                    end = start + len(printed)
            lo, hi = DIGITS_RANGE[kind]
            value = _digits(printed)
            if not printed or not (lo <= len(value) <= hi):
                continue
            if any(d.start <= start and end <= d.end for d in dates):
                continue
            spans.append((start, end))
            fields.append(Field(kind, value, printed, start, end))
    for d in dates:
        if not any(s < d.end and d.start < e for s, e in spans):
            fields.append(d)
    return sorted(fields, key=lambda f: (f.start, f.kind))


def field_boxes(result, fields: list[Field]) -> list[tuple[int, int, int, int] | None]:
    """Page position (left, top, width, height in pixels) of each field found in
    `result.text` (an ocr.OcrResult), for highlighting in QA views."""
    from ocr.words import text_box

    return [text_box(result, f.start, f.end) for f in fields]


def normalise_case_number(value: str | None) -> str:
    return _digits(search_form(value or ""))


def case_number_mismatch(fields: list[Field], declared: str | None) -> bool:
    """True when the page shows a case number and none equals the declared one.

    No declared number, or no case number on the page: nothing to compare, False.
    """
    want = normalise_case_number(declared)
    if not want:
        return False
    found = [f.value for f in fields if f.kind == "case_number"]
    if not found:
        return False
    return want not in found
