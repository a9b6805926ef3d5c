"""OCR-confidence measures: garbage tokens, lexicon, separation of legible pages."""
from __future__ import annotations

import pytest

from ocr import OcrResult, Word, is_garbage, ocr_measures, recognise
from ocr.lexicon import in_lexicon, lexicon
from testpages import degrade as D
from testpages.metrics import cer
from testpages.render import render_page


@pytest.mark.parametrize(
    "token, garbage",
    [
        ("دادگاه", False),
        ("دادنامه،", False),
        ("«رأی»", False),
        ("۱۴۰۱/۰۵/۰۸", False),
        ("140209982153800012", False),
        ("و", False),
        ("Case", False),
        ("۱۴۰۱ام", False),
        (".", False),
        ("][]", True),
        ("|", True),
        ("1401|]]05", True),
        ("ع(۵+", True),
        ("ب9ر", True),
        ("abcدادگاه", True),
        ("ــــ", True),
        ("ژ", True),  # stray single letter
        ("ههههه", True),
    ],
)
def test_garbage_tokens(token, garbage):
    assert is_garbage(token) is garbage


def test_lexicon_ships_and_folds_spelling_and_inflection():
    assert len(lexicon()) > 20000  # ocr/data/fa_lexicon.txt.xz, no Debian package needed
    for word in ["دادگاه", "دادگاه‌ها", "دادگاههای", "پرونده‌اش", "كتاب", "مي‌روند", "رسیدگی", "خدمت‌رسانی", "تأخیر", "یک"]:
        assert in_lexicon(word), word
    for junk in ["ضصثقفغعه", "ژژژ", "کبصگ", ""]:
        assert not in_lexicon(junk), junk


def test_measures_of_an_empty_result():
    m = ocr_measures(OcrResult([], "", None, 0.1))
    assert (m.mean_confidence, m.p10_confidence, m.lexicon_share, m.garbage_share, m.word_count) == (0.0, 0.0, 0.0, 1.0, 0)


def test_measures_on_words():
    words = [Word(t, c, 0, 0, 10, 10, 0) for t, c in [("دادگاه", 90), ("عمومی", 80), ("][]", 20), ("ضصثقف", 40)]]
    m = ocr_measures(OcrResult(words, "", 57.5, 0.1))
    assert m.word_count == 4 and m.mean_confidence == 57.5
    assert m.garbage_share == 0.25
    assert m.lexicon_share == pytest.approx(2 / 3, abs=1e-3)
    assert 20 <= m.p10_confidence <= 40


def test_measures_separate_legible_from_illegible_pages():
    page = render_page(font="sans", seed=9, n_words=80)
    legible = recognise(page.image)
    illegible = recognise(D.motion_blur(page.image, 15))
    assert cer(page.text, legible.text) < 0.02 and cer(page.text, illegible.text) > 0.10
    good, bad = ocr_measures(legible), ocr_measures(illegible)
    assert good.mean_confidence > 80 > 65 > bad.mean_confidence
    assert good.p10_confidence > 60 > 30 > bad.p10_confidence
    assert good.lexicon_share > 0.9 > 0.7 > bad.lexicon_share
    assert good.garbage_share <= bad.garbage_share


def test_weak_line_share_counts_lines_read_badly():
    good = [Word("دادگاه", 90, 0, 0, 10, 10, line) for line in range(6) for _ in range(4)]
    weak = [Word("دادگاه", 40, 0, 0, 10, 10, line) for line in (6, 7) for _ in range(4)]
    short = [Word("و", 10, 0, 0, 10, 10, 8)]  # a line of one word does not count
    m = ocr_measures(OcrResult(good + weak + short, "", 80.0, 0.1))
    assert m.weak_line_share == pytest.approx(2 / 8)
    assert ocr_measures(OcrResult(good, "", 90.0, 0.1)).weak_line_share == 0.0
