"""Numbers printed in Persian digits read again glyph by glyph (ocr.digits,
ocr.text_repair.reread_persian_numbers), issue 12 class 7.

The fast tests give `reread_persian_numbers` the words `fas` typically returns on a rendered
court header (digits confused, dropped or doubled, a number cut in two, a date read as
`۳(`) at the true boxes of the printed numbers (testpages.headers records them) and check
that the printed numbers come back exactly. Seeds differ from bench/ocr/headers.py's
(1000, 1001, ...).
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from ocr.digits import FA_DIGITS, font_templates, read_number
from ocr.fields import case_number_mismatch, extract_fields
from ocr.text_repair import reread_persian_numbers
from ocr.words import Word, words_to_text
from testpages.headers import render_header
from testpages.render import available_fonts, render_page

FONTS = available_fonts()
pytestmark = pytest.mark.skipif(len(FONTS) < 3 or not font_templates(), reason="Persian fonts not installed")

LABEL = "شماره"


def _garble(text: str, rng: random.Random) -> str:
    """What fas makes of a Persian digit run: confusions (۴→۲, ۶→۲, ۷→2, ۰ lost), a digit
    doubled, or the date's tail lost."""
    confuse = {"۴": "۲", "۶": "۲", "۷": "2", "۵": "۲", "۳": "۲", "۸": "۰", "۲": "۳"}
    chars = list(text)
    for _ in range(3):
        i = rng.randrange(len(chars))
        if chars[i] in confuse:
            chars[i] = confuse[chars[i]]
    if rng.random() < 0.5 and len(chars) > 6:
        del chars[rng.randrange(len(chars))]
    else:
        j = rng.randrange(len(chars))
        chars.insert(j, chars[j])
    out = "".join(chars)
    return out if out != text else out[:-1]


def _fas_like_words(page, rng: random.Random, split: bool) -> list[Word]:
    """One line per field: a label word to its right and the garbled number (or, with
    `split`, the case number cut in two words, its right half read as letters)."""
    words = []
    for line, (f, (x0, y0, x1, y1)) in enumerate(zip(page.fields, page.field_boxes)):
        h = y1 - y0
        words.append(Word(LABEL, 90, x1 + h, y0 - 4, 3 * h, h + 8, line))
        if split and f["kind"] == "case_number":
            mid = (x0 + x1) // 2
            words.append(Word("هب" + f["text"][:2], 40, mid, y0, x1 - mid, h, line))
            words.append(Word(_garble(f["text"][len(f["text"]) // 2:], rng), 60, x0, y0, mid - x0, h, line))
        else:
            words.append(Word(_garble(f["text"], rng), 70, x0, y0, x1 - x0, h, line))
    return words


@pytest.mark.parametrize("font", FONTS)
@pytest.mark.parametrize("layout, seed", [("dadnameh", 7), ("dadkhast", 21), ("dadnameh", 58)])
def test_garbled_persian_numbers_come_back_exact(font, layout, seed):
    page = render_header(layout, font=font, persian_digits=True, seed=seed)
    rng = random.Random(seed)
    words = _fas_like_words(page, rng, split=seed == 58)
    before = {w.text for w in words}
    assert not any(f["text"] in before for f in page.fields)  # the garbled reading is wrong
    out = reread_persian_numbers(page.image, words)
    texts = [w.text for w in out]
    for f in page.fields:
        assert f["text"] in texts, (font, f, texts)
    assert LABEL in texts  # the label is not taken for digits
    # the new word sits on the printed number
    for f, (x0, y0, x1, y1) in zip(page.fields, page.field_boxes):
        w = next(w for w in out if w.text == f["text"])
        assert abs(w.left - x0) <= 3 and abs(w.right - x1) <= 3


@pytest.mark.parametrize("font", FONTS)
def test_case_number_mismatch_false_after_reread(font):
    page = render_header("dadkhast", font=font, persian_digits=True, seed=33)
    words = _fas_like_words(page, random.Random(33), split=False)
    lines = {w.line: ("شماره پرونده: " if f["kind"] == "case_number" else "کد رهگیری: ") for w, f in zip(words[1::2], page.fields)}
    text_before = words_to_text(words)
    assert case_number_mismatch(extract_fields("شماره پرونده: " + text_before.splitlines()[2].split()[-1]), page.case_number)
    out = reread_persian_numbers(page.image, words)
    case_line = next(w.text for w in out if w.line == 2 and w.text != LABEL)
    fields = extract_fields(lines[2] + case_line)
    assert not case_number_mismatch(fields, page.case_number)


def test_latin_numbers_are_left_alone():
    """A Latin number is the Latin re-read's business: even with Persian digits in fas's
    reading of it, the glyph reader does not turn it into Persian digits."""
    for font in FONTS:
        page = render_header("dadnameh", font=font, persian_digits=False, seed=7)
        words = []
        for line, (f, (x0, y0, x1, y1)) in enumerate(zip(page.fields, page.field_boxes)):
            if "/" in f["text"]:
                continue
            mixed = f["text"][:3] + "۳۱" + f["text"][5:]
            words.append(Word(mixed, 60, x0, y0, x1 - x0, y1 - y0, line))
        out = reread_persian_numbers(page.image, [Word(w.text, w.conf, w.left, w.top, w.width, w.height, w.line) for w in words])
        assert [w.text for w in out] == [w.text for w in words], font


def test_letters_are_not_read_as_digits():
    """A word of letters that fas took for digits is not given digits the page does not show."""
    page = render_header("dadnameh", font="nazli", persian_digits=True, seed=7)
    x0, y0, x1, y1 = page.line_boxes[3]  # the centred "دادنامه"
    words = [Word("۱۲", 30, x0, y0, x1 - x0, y1 - y0, 0)]
    out = reread_persian_numbers(page.image, words)
    assert [w.text for w in out] == ["۱۲"]


def test_all_ten_digits_in_every_font():
    """Each font's own digits, printed as one number, read exactly (the templates include
    the font-specific shapes of ۴ ۵ ۶ ۷ and Homa's ۰)."""
    from PIL import Image, ImageDraw, ImageFont

    from testpages.render import FONTS as PATHS

    for font in FONTS:
        for size in (34, 50):
            face = ImageFont.truetype(PATHS[font], size, layout_engine=ImageFont.Layout.RAQM)
            number = "۹۸۷۶۵۴۳۲۱۰" + "۰۱۲۳۴۵۶۷۸۹"
            img = Image.new("L", (size * 14, size * 3), 255)
            ImageDraw.Draw(img).text((size, size * 2), number, font=face, fill=0, direction="ltr", anchor="ls")
            read = read_number(np.asarray(img))
            assert read is not None and read.text == number, (font, size, read and read.text)


def test_page_without_numbers_costs_nothing():
    page = render_page(font="nazli", seed=3, n_words=120)
    words = [Word("متن", 90, 100 + 60 * i, 200 + 50 * (i // 10), 50, 40, i // 10) for i in range(100)]
    t0 = time.process_time()
    out = reread_persian_numbers(page.image, words)
    assert out is words
    assert time.process_time() - t0 < 0.05


def test_digit_templates_cover_the_installed_fonts():
    banks = font_templates()
    assert len(banks) >= 3
    for _, ts in banks:
        assert set(FA_DIGITS) <= {t.char for t in ts}


@pytest.mark.slow
@pytest.mark.parametrize("font, layout, seed", [("homa", "dadnameh", 501), ("naskh", "dadkhast", 502),
                                                ("naskh-bold", "dadnameh", 503), ("sans", "dadkhast", 504)])
def test_persian_digit_headers_end_to_end(font, layout, seed):
    """Through the engine (Tesseract `fas` + re-reads): the Persian-digit case number is exact
    and raises no false `case_number_mismatch` (before the glyph re-read: 6 of 20 exact)."""
    from ocr import recognise

    if font not in FONTS:
        pytest.skip(f"font {font} not installed")
    page = render_header(layout, font=font, persian_digits=True, seed=seed)
    result = recognise(page.image, dpi=page.dpi)
    fields = extract_fields(result.text)
    assert ("case_number", page.case_number) in {(f.kind, f.value) for f in fields}, result.text
    assert not case_number_mismatch(fields, page.case_number)


def test_digit_templates_are_kept_on_disk_between_processes(tmp_path, monkeypatch):
    """Drawing the templates from the fonts costs ~0.5 s in every new process (the embedded `khana process`
    starts a pool on every run): they are kept in the cache directory, the same arrays; a damaged file is
    drawn again; a cache directory that cannot be written costs only the time."""
    import numpy as np

    from ocr import digits

    monkeypatch.setattr(digits, "_cache_dir", tmp_path / "cache")  # the setting cache_dir (KHANA_CACHE_DIR)
    fonts = digits.DEFAULT_DIGIT_FONTS
    digits._banks.cache_clear()
    built = digits._banks(fonts)
    path = digits._cache_path(fonts)
    assert path.exists() and path.parent == tmp_path / "cache"
    digits._banks.cache_clear()
    digits.font_templates.cache_clear()
    loaded = digits._banks(fonts)
    assert digits.font_templates.cache_info().misses == 0  # not drawn again
    assert len(loaded) == len(built)
    for a, b in zip(built, loaded):
        assert a.font == b.font and a.chars == b.chars
        for f in ("bitmaps", "log_aspect", "log_rel_height", "rel_mid"):
            x, y = getattr(a, f), getattr(b, f)
            assert x.dtype == y.dtype and np.array_equal(x, y)
    for damaged in (b"not an npz", path.read_bytes()[:300]):  # garbage; a file cut short (a zip without its end)
        path.write_bytes(damaged)
        digits._banks.cache_clear()
        assert [b.chars for b in digits._banks(fonts)] == [b.chars for b in built]
    monkeypatch.setattr(digits, "_cache_dir", Path("/proc/khana-cannot-write-here"))
    digits._banks.cache_clear()
    assert len(digits._banks(fonts)) == len(built)
    digits._banks.cache_clear()
