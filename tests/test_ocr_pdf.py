"""Searchable PDF: text layer order and content (pdftotext plain and -layout, PDFium),
page labels, metadata, image encoding."""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest

from ocr import PdfPage, Word, build_searchable_pdf, recognise, search_form
from ocr.pdf import visual_order, whiten_paper
from testpages.render import render_page

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")

BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def pdftotext(pdf: bytes, *args: str, page: int | None = None) -> str:
    extra = ["-f", str(page), "-l", str(page)] if page else []
    out = subprocess.run(["pdftotext", *args, *extra, "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return BIDI.sub("", out.stdout.decode("utf-8"))


def lines_of(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ocr_page():
    page = render_page(font="nazli", seed=7, n_words=70)
    return page, recognise(page.image, dpi=page.dpi)


@pytest.fixture(scope="module")
def pdf_bytes(ocr_page):
    page, result = ocr_page
    pages = [PdfPage(page.image, page.dpi, result.words, label="۱-الف"), PdfPage(page.image, page.dpi, [], label="2")]
    meta = {"case_number": "140209982153800012", "office": "دفتر خدمات الکترونیک قضایی ۱۲۳۴۵", "court": "شعبه ۵ دادگاه عمومی حقوقی تهران"}
    return build_searchable_pdf(pages, title="دادخواست ۱۴۰۲۰۹۹۸۲۱۵۳۸۰۰۰۱۲", metadata=meta)


BRACKETS = str.maketrans("", "", "()[]«»")


def poppler_form(line: str) -> str:
    """Poppler prints brackets and guillemets of RTL text unmirrored (as for any RTL
    PDF); everything else must come out exactly."""
    return " ".join(line.translate(BRACKETS).split())


def letters(line: str) -> str:
    """A line's letters and digits in order (search form without spaces)."""
    return search_form(line).replace(" ", "")


@pytest.mark.parametrize("mode", [(), ("-layout",)], ids=["plain", "layout"])
def test_pdftotext_gives_the_ocr_lines_in_reading_order(ocr_page, pdf_bytes, mode):
    _, result = ocr_page
    extracted = lines_of(pdftotext(pdf_bytes, *mode, page=1))
    expected = lines_of(result.text)
    assert [poppler_form(x) for x in extracted] == [poppler_form(x) for x in expected]
    # and word for word: every Persian word of the OCR text is found as a word
    got_words = set(search_form(" ".join(extracted)).split())
    want = [w for w in search_form(result.text).split() if w.isalpha()]
    assert sum(w in got_words for w in want) / len(want) >= 0.97


def test_pdftotext_finds_persian_words_whatever_the_spelling(pdf_bytes, ocr_page):
    _, result = ocr_page
    hay = f" {search_form(pdftotext(pdf_bytes))} "
    for word in sorted({w.text for w in result.words if len(w.text) > 4 and w.text.isalpha()})[:10]:
        typed = word.replace("ی", "ي").replace("ک", "ك")  # a clerk with an Arabic keyboard
        assert f" {search_form(typed)} " in hay, word


def test_pdfium_text_matches_for_viewer_search_and_copy(ocr_page, pdf_bytes):
    """PDFium is Chrome's PDF engine: what its search finds and copy-paste gives."""
    _, result = ocr_page
    doc = pdfium.PdfDocument(pdf_bytes)
    try:
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    assert [" ".join(x.split()) for x in BIDI.sub("", text).splitlines() if x.strip()] == lines_of(result.text)
    word = max(result.words, key=lambda w: len(w.text)).text
    assert word in BIDI.sub("", text)


def test_text_layer_is_invisible_and_page_image_unchanged(pdf_bytes, ocr_page):
    page, _ = ocr_page
    doc = pdfium.PdfDocument(pdf_bytes)
    try:
        bitmap = doc[0].render(scale=1.0, grayscale=True).to_numpy()
    finally:
        doc.close()
    # rendering at 72 dpi: compare to the image resized the same way (text layer adds no ink)
    import cv2

    ref = cv2.resize(page.image, (bitmap.shape[1], bitmap.shape[0]), interpolation=cv2.INTER_AREA)
    gray = bitmap[..., 0] if bitmap.ndim == 3 else bitmap
    assert np.abs(gray.astype(int) - ref.astype(int)).mean() < 6


def test_page_labels_metadata_and_pdfa_identification(pdf_bytes):
    pdf = pikepdf.open(io.BytesIO(pdf_bytes))
    assert len(pdf.pages) == 2
    nums = list(pdf.Root.PageLabels.Nums)
    assert str(nums[1].P) == "۱-الف" and str(nums[3].P) == "2"
    info = pdf.docinfo
    assert str(info.Title) == "دادخواست ۱۴۰۲۰۹۹۸۲۱۵۳۸۰۰۰۱۲"
    assert str(info.CaseNumber) == "140209982153800012"
    assert str(info.Office).startswith("دفتر خدمات") and str(info.Court).startswith("شعبه ۵")
    meta = pdf.open_metadata()
    assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "B"
    assert meta["dc:title"] == "دادخواست ۱۴۰۲۰۹۹۸۲۱۵۳۸۰۰۰۱۲"
    assert pdf.Root.OutputIntents[0].S == "/GTS_PDFA1"
    assert pdf.check_pdf_syntax() == []  # qpdf: no syntax or structure problems
    font = pdf.pages[0].Resources.Font.F1
    assert font.DescendantFonts[0].FontDescriptor.FontFile2 is not None  # embedded
    pdf.close()


def _line(texts: list[str], line: int, right: int = 2200, rtl: bool = True) -> list[Word]:
    """Words laid out like print: 22 px per character, 16 px between words."""
    out, x = [], right if rtl else 300
    for t in texts:
        w = 22 * len(t) + 10
        if rtl:
            x -= w
            out.append(Word(t, 95, x, 300 + 80 * line, w, 50, line))
            x -= 16
        else:
            out.append(Word(t, 95, x, 300 + 80 * line, w, 50, line))
            x += w + 16
    return out


def test_mixed_persian_latin_digits_words_order_and_content():
    """Court-header lines with Latin and Persian digits, laid out by hand."""
    lines = [
        ["شماره", "پرونده:", "140209982153800012", "تاریخ", "۱۴۰۲/۰۷/۱۵", "شعبه", "۲"],
        ["خواهان:", "علی", "احمدی", "کد", "ملی", "0012345678", "به", "نشانی", "تهران"],
        ["خواسته:", "مطالبه", "وجه", "(حقوقی)", "به", "مبلغ", "۲۰۰٬۰۰۰٬۰۰۰", "ریال"],
    ]
    words = [w for i, t in enumerate(lines) for w in _line(t, i)] + _line(["Case", "No.", "12"], 3, rtl=False)
    want = [" ".join(t) for t in lines] + ["Case No. 12"]
    img = np.full((3508, 2480), 255, np.uint8)
    pdf = build_searchable_pdf([PdfPage(img, 300, words)])
    for args in ((), ("-layout",)):
        got = lines_of(pdftotext(pdf, *args))
        assert [poppler_form(x) for x in got[:3]] == [poppler_form(x) for x in want[:3]], args
        assert letters(got[3]) == letters(want[3])
        assert "140209982153800012" in got[0] and "۱۴۰۲/۰۷/۱۵" in got[0] and "0012345678" in got[1]
    doc = pdfium.PdfDocument(pdf)
    try:
        got = lines_of(BIDI.sub("", doc[0].get_textpage().get_text_range()))
    finally:
        doc.close()
    assert got[:3] == want[:3]
    # PDFium orders the words of a purely Latin line right to left on a Persian page
    assert sorted(search_form(got[3]).split()) == sorted(search_form(want[3]).split())


def test_visual_order_keeps_numbers_left_to_right():
    rlm = "\u200f"
    assert visual_order("abc 12", rtl_line=False) == "abc 12"
    assert visual_order("سلام") == "مالس"
    assert visual_order("ب۱۲۳") == rlm + "۱۲۳ب"
    assert visual_order("(الف)") == rlm + "(فلا)" + rlm
    assert visual_order("1401/05/08") == rlm + "1401/05/08" + rlm


def test_image_encoding_and_size():
    page = render_page(font="sans", seed=1, n_words=150)
    pdf = build_searchable_pdf([PdfPage(page.image, 300, [])])
    assert len(pdf) < 250_000  # clean 300 dpi A4 page, lossless: ~100 KiB
    jpeg = build_searchable_pdf([PdfPage(page.image, 300, [])], image_format="jpeg")
    doc = pikepdf.open(io.BytesIO(jpeg))
    img = doc.pages[0].Resources.XObject.Im0
    assert img.Filter == "/DCTDecode" and img.ColorSpace == "/DeviceGray" and int(img.Width) == 2480


def test_whitening_keeps_faint_pages():
    faint = np.full((400, 400), 250, np.uint8)
    faint[100:110, 50:350] = 215  # very faded ink: must survive
    assert (whiten_paper(faint) == faint).all()
    normal = np.full((400, 400), 235, np.uint8)
    normal[100:110, 50:350] = 20
    out = whiten_paper(normal)
    assert (out[:50] == 255).all() and (out[100:110, 50:350] == 20).all()


def test_empty_batch_is_rejected():
    with pytest.raises(ValueError):
        build_searchable_pdf([])


def test_court_header_with_fields_at_both_margins_stays_one_line_per_row():
    """A header row holds one field at the right margin and one at the left; poppler
    must not split it into two columns (the gap is bridged by an invisible RLM)."""
    from testpages.headers import render_header

    page = render_header("dadnameh", font="nazli", persian_digits=False, seed=11)
    result = recognise(page.image, dpi=page.dpi)
    pdf = build_searchable_pdf([PdfPage(page.image, page.dpi, result.words)])
    want = lines_of(result.text)
    for mode in ((), ("-layout",)):
        got = lines_of(pdftotext(pdf, *mode))
        assert [poppler_form(x) for x in got] == [poppler_form(x) for x in want], mode
    doc = pdfium.PdfDocument(pdf)
    try:
        assert lines_of(BIDI.sub("", doc[0].get_textpage().get_text_range())) == want
    finally:
        doc.close()
    row = next(x for x in want if "شماره پرونده" in x)
    assert "شماره بایگانی شعبه" in row  # both fields of the row on one line


def test_text_pages_are_stored_at_4_bits_and_render_like_the_original():
    from ocr.pdf import encode_page_image

    page = render_page(font="naskh", seed=4, n_words=150).image
    enc = encode_page_image(page)
    assert (enc.filter, enc.bits) == ("FlateDecode", 4)
    pdf = build_searchable_pdf([PdfPage(None, 300, [], encoded=enc)])
    doc = pikepdf.open(io.BytesIO(pdf))
    img = doc.pages[0].Resources.XObject.Im0
    assert int(img.BitsPerComponent) == 4 and int(img.Width) == page.shape[1]
    # decoded by a real PDF renderer at the image's own resolution: within rounding of the whitened page
    rendered = pdfium.PdfDocument(pdf)[0].render(scale=300 / 72, grayscale=True).to_numpy()
    rendered = rendered[..., 0] if rendered.ndim == 3 else rendered
    h, w = min(rendered.shape[0], page.shape[0]), min(rendered.shape[1], page.shape[1])
    diff = np.abs(rendered[:h, :w].astype(int) - whiten_paper(page)[:h, :w].astype(int))
    assert diff.mean() < 2.0
    assert len(pdf) < 200_000


def test_photo_pages_go_to_jpeg():
    from ocr.pdf import encode_page_image

    rng = np.random.default_rng(0)
    photo = cv2_blur(rng.integers(0, 256, (1200, 900), dtype=np.uint8))
    enc = encode_page_image(photo)
    assert (enc.filter, enc.bits) == ("DCTDecode", 8)


def cv2_blur(img):
    import cv2

    return cv2.GaussianBlur(img, (0, 0), 3)


@pytest.mark.parametrize("font,seed", [("naskh", 2), ("sans", 5), ("nazli", 7), ("homa", 3)])
def test_4bit_page_stream_is_lossless_and_near_the_default_deflate_size(font, seed):
    """The 4-bit page stream is run-length deflate (faster than level 6): it inflates to exactly the packed
    page, and costs at most 25 % in size against zlib's default (measured: +0-10 % on corrected scans, +16-20 %
    on clean rendered pages)."""
    import zlib

    from ocr.pdf import encode_page_image, pack_4bit

    page = render_page(font=font, seed=seed, n_words=180).image
    enc = encode_page_image(page)
    packed = pack_4bit(whiten_paper(page))
    assert enc.bits == 4 and zlib.decompress(enc.data) == packed
    assert len(enc.data) <= 1.25 * len(zlib.compress(packed, 6))
