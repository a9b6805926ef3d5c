"""A filing's metadata, validated at the door (API, CLI, station page): codes, case number, deadline.

Every entry point calls `validate_meta`; a bad value is refused with a message in Persian and English
(`InvalidMetadata`, HTTP 422) instead of being accepted and sticking a batch in finalising forever.

- office and court codes: letters (any script), digits, ``-``, ``_`` and ``.`` (not leading), 1-64 characters;
- case number: digits (Persian, Arabic-Indic or Latin) with optional separators (space, ``-``, ``/``), normalised
  to Latin digits, 1-40 digits;
- document type: up to 60 characters of letters, digits, spaces and ``-_.()/``;
- deadline: Gregorian ``YYYY-MM-DD`` or Solar Hijri ``YYYY/MM/DD`` (Persian or Latin digits), a real date within
  one year back and five years ahead of today.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from core.errors import BadInput

_FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
_AR_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_TO_LATIN = str.maketrans(_FA_DIGITS + _AR_DIGITS, "0123456789" * 2)


class InvalidMetadata(BadInput):
    """A metadata field of a filing is not acceptable (HTTP 422)."""

    def __init__(self, field: str, en: str, fa: str):
        super().__init__(f"{field}: {en}", fa=fa)
        self.field = field


def latin_digits(s: str) -> str:
    return s.translate(_TO_LATIN)


def _is_code_char(ch: str) -> bool:
    if ch in "-_.":
        return True
    cat = unicodedata.category(ch)
    return cat[0] == "L" or cat in ("Nd", "Mn", "Mc")  # letters of any script (with their marks), digits


def validate_code(value: str | None, field: str, *, required: bool = True) -> str:
    """An office or court code: letters of any script, digits, '-', '_', '.' (not leading); 1-64 characters."""
    v = unicodedata.normalize("NFC", (value or "").strip())
    fa_name = {"office": "کد دفتر", "court": "کد دادگاه"}.get(field, field)
    if not v:
        if required:
            raise InvalidMetadata(field, "is required", f"{fa_name} لازم است")
        return ""
    if len(v) > 64:
        raise InvalidMetadata(field, "is longer than 64 characters", f"{fa_name} بیش از ۶۴ نویسه است")
    if v[0] in "-_." or not all(_is_code_char(c) for c in v):
        raise InvalidMetadata(
            field, "may contain only letters, digits, '-', '_' and '.' (not at the start)",
            f"{fa_name} فقط می‌تواند حرف، رقم، «-»، «_» و «.» داشته باشد (نه در آغاز)")
    return latin_digits(v)


_CASE_SEP = re.compile(r"[\s\-/]+")


def normalise_case_number(value: str | None) -> str | None:
    """Digits with optional separators -> Latin digits only; None when empty."""
    v = (value or "").strip()
    if not v:
        return None
    digits = _CASE_SEP.sub("", latin_digits(v))
    if not digits.isascii() or not digits.isdigit():
        raise InvalidMetadata("case_number", "must be digits (Persian or Latin), optionally separated by spaces, '-' or '/'",
                              "شمارهٔ پرونده باید رقم باشد (فارسی یا لاتین)، با جداکنندهٔ اختیاری فاصله، «-» یا «/»")
    if len(digits) > 40:
        raise InvalidMetadata("case_number", "has more than 40 digits", "شمارهٔ پرونده بیش از ۴۰ رقم است")
    return digits


_DOCTYPE_OK = set("-_.()/ ")


def validate_document_type(value: str | None) -> str:
    v = " ".join((value or "").split())
    if len(v) > 60:
        raise InvalidMetadata("document_type", "is longer than 60 characters", "نوع سند بیش از ۶۰ نویسه است")
    if not all(_is_code_char(c) or c in _DOCTYPE_OK or unicodedata.category(c) == "Cf" for c in v):
        raise InvalidMetadata("document_type", "may contain only letters, digits, spaces and - _ . ( ) /",
                              "نوع سند فقط می‌تواند حرف، رقم، فاصله و - _ . ( ) / داشته باشد")
    return v


_GREGORIAN = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_JALALI = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")


def parse_deadline(value: str | date | None, today: date | None = None) -> date | None:
    """Gregorian YYYY-MM-DD or Solar Hijri YYYY/MM/DD (Persian or Latin digits) -> a date in a sane range."""
    if value is None or value == "":
        return None
    today = today or date.today()
    if isinstance(value, date):
        d = value
    else:
        v = latin_digits(str(value).strip())
        bad = InvalidMetadata("deadline", "must be a date: Gregorian YYYY-MM-DD (2026-12-01) or Solar Hijri YYYY/MM/DD "
                              "(1405/09/10)", "مهلت باید تاریخ باشد: خورشیدی به شکل ۱۴۰۵/۰۹/۱۰ یا میلادی به شکل 2026-12-01")
        try:
            if m := _GREGORIAN.match(v):
                d = date(*map(int, m.groups()))
            elif m := _JALALI.match(v):
                import jdatetime

                d = jdatetime.date(*map(int, m.groups())).togregorian()
            else:
                raise bad
        except (ValueError, OverflowError):
            raise bad from None
    if not (today - timedelta(days=366) <= d <= today + timedelta(days=5 * 366)):
        raise InvalidMetadata("deadline", "must lie between one year ago and five years from today",
                              "مهلت باید میان یک سال پیش و پنج سال آینده باشد")
    return d


@dataclass
class ValidMeta:
    office: str
    court: str
    case_number: str | None
    document_type: str
    deadline: date | None


def validate_meta(*, office: str | None, court: str | None, case_number: str | None = None,
                  document_type: str | None = "", deadline: str | date | None = None,
                  office_required: bool = True, today: date | None = None) -> ValidMeta:
    """Validate and normalise a filing's metadata; raises `InvalidMetadata` naming the first bad field."""
    return ValidMeta(
        office=validate_code(office, "office", required=office_required),
        court=validate_code(court, "court"),
        case_number=normalise_case_number(case_number),
        document_type=validate_document_type(document_type),
        deadline=parse_deadline(deadline, today),
    )
