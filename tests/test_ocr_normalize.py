"""Normalisation tables (display and search forms) and search equivalence."""
from __future__ import annotations

import pytest

from ocr import display_form, search_form

ZWNJ = "\u200c"

DISPLAY = [
    ("علي", "علی"),  # Arabic yeh -> Persian yeh
    ("مصطفى", "مصطفی"),  # alef maksura -> yeh
    ("كتاب", "کتاب"),  # Arabic kaf -> keheh
    ("٣٤٥", "۳۴۵"),  # Arabic-Indic -> Persian digits
    ("۱۴۰۱/۰۵/۰۸", "۱۴۰۱/۰۵/۰۸"),  # Persian digits kept
    ("Case 1401/05/08", "Case 1401/05/08"),  # Latin digits kept as printed
    ("خانهٔ", "خانهٔ"),  # heh + hamza above kept
    ("خانۀ", "خانۀ"),  # heh with yeh above kept
    ("رأی", "رأی"),  # hamza forms kept
    ("كـــتـاب", "کتاب"),  # tatweel removed
    ("مُحَمَّد", "مُحَمَّد"),  # diacritics kept
    ("می" + ZWNJ + "روم", "می" + ZWNJ + "روم"),  # ZWNJ between letters kept
    ("می" + ZWNJ + ZWNJ + "روم", "می" + ZWNJ + "روم"),  # doubled ZWNJ collapsed
    (ZWNJ + "کتاب" + ZWNJ + " خوب", "کتاب خوب"),  # ZWNJ at word edges dropped
    ("\u200fسلام\u200e", "سلام"),  # bidi marks dropped
    ("\ufedb\ufe98\ufe8e\ufe8f", "کتاب"),  # presentation forms -> letters
    ("سلام , خوبی ?", "سلام، خوبی؟"),  # Latin punctuation in Persian text
    ("الف ; ب", "الف؛ ب"),
    ("1,000", "1,000"),  # comma between digits untouched
    ("(  سلام )", "(سلام)"),
    ("«  دادنامه  »", "«دادنامه»"),
    ("سطر  اول \n  سطر دوم ", "سطر اول\nسطر دوم"),  # whitespace, lines kept
    ("", ""),
]

SEARCH = [
    ("علي", "علی"),
    ("كتاب", "کتاب"),
    ("۱۲۳", "123"),
    ("١٢٣", "123"),
    ("123", "123"),
    ("می" + ZWNJ + "روم", "میروم"),
    ("خانهٔ", "خانه"),
    ("خانۀ", "خانه"),
    ("رأی", "رای"),
    ("آیین", "ایین"),
    ("مسئول", "مسیول"),
    ("مؤسسه", "موسسه"),
    ("إسلامی", "اسلامی"),
    ("اجزاء", "اجزا"),
    ("دولة", "دوله"),
    ("مُحَمَّد", "محمد"),
    ("كـــتـاب", "کتاب"),
    ("«دادنامه»، شماره: ۱۲", "دادنامه شماره 12"),
    ("۱۴۰۱/۰۵/۰۸", "1401/05/08"),
    ("۱۴۰۱ / ۰۵ / ۰۸", "1401/05/08"),
    ("Case No. ABC", "case no abc"),
    ("سطر اول\nسطر دوم", "سطر اول سطر دوم"),
    ("", ""),
]


@pytest.mark.parametrize("raw, expected", DISPLAY)
def test_display_form_table(raw, expected):
    assert display_form(raw) == expected


@pytest.mark.parametrize("raw, expected", SEARCH)
def test_search_form_table(raw, expected):
    assert search_form(raw) == expected


@pytest.mark.parametrize(
    "a, b",
    [
        ("ي", "ی"),
        ("علي", "علی"),
        ("ك", "ک"),
        ("كتابخانه", "کتابخانه"),
        ("۱۲۳", "123"),
        ("١٢٣", "۱۲۳"),
        ("پرونده ۱۴۰۲۰۹۹۸۲۱۵۳۸۰۰۱۲", "پرونده 14020998215380012"),
        ("می‌رود", "میرود"),
        ("نیم‌فاصله", "نیمفاصله"),
        ("كتاب‌هاي", "کتابهای"),
        ("خانهٔ", "خانه"),
        ("تأخیر", "تاخیر"),
        ("دادنامه:", "دادنامه"),
    ],
)
def test_search_equivalence(a, b):
    assert search_form(a) == search_form(b)


def test_search_form_finds_words_in_text():
    page = "شماره پرونده: ۱۴۰۲۰۹۹۸۲۱۵۳۸۰۰۱۲ — خواهان: علي‌رضا كريمي"
    hay = f" {search_form(page)} "
    for query in ["14020998215380012", "علیرضا", "کریمی", "علي رضا".replace(" ", ""), "شماره پرونده"]:
        assert f" {search_form(query)} " in hay, query


def test_forms_are_idempotent():
    for raw, _ in DISPLAY + SEARCH:
        assert display_form(display_form(raw)) == display_form(raw)
        assert search_form(search_form(raw)) == search_form(raw)
