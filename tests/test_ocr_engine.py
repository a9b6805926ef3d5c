"""Tesseract `fas` through the OCR engine (ocr.TesseractEngine, ocr.recognise): accuracy per font,
words, timeout, installation errors, the layout and text repairs, the module boundary."""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from core.errors import ExitCode, MissingDependency
from ocr import OcrEngine, OcrError, OcrResult, OcrTimeout, TesseractEngine, Word, recognise
from ocr.text_repair import merge_numbers
from ocr.tsv import parse_tsv
from testpages.metrics import cer
from testpages.render import available_fonts, render_page

# CER bars per font on clean 300 dpi pages (measured 0.2-1.3 %, see bench/ocr/RESULTS.md)
CER_BAR = 0.015


@pytest.fixture(scope="module")
def clean_page():
    page = render_page(font="nazli", seed=4, n_words=90)
    return page, recognise(page.image, dpi=page.dpi)


@pytest.mark.parametrize("font", available_fonts())
def test_cer_clean_page_per_font(font):
    page = render_page(font=font, seed=21, n_words=120)
    result = recognise(page.image, dpi=page.dpi)
    assert isinstance(result, OcrResult)
    assert cer(page.text, result.text) <= CER_BAR, (font, result.text[:200])


@pytest.mark.slow
@pytest.mark.parametrize("font", available_fonts())
@pytest.mark.parametrize("size_pt", [10, 14])
def test_cer_full_pages(font, size_pt):
    page = render_page(font=font, seed=30, size_pt=size_pt)
    assert cer(page.text, recognise(page.image).text) <= CER_BAR


def test_words_boxes_and_reading_order(clean_page):
    page, result = clean_page
    assert result.words and all(isinstance(w, Word) for w in result.words)
    assert 0 < result.mean_confidence <= 100 and result.seconds > 0
    lines = result.lines()
    assert len(lines) == len(result.text.split("\n")) == len(page.text.split("\n"))
    h, w = page.image.shape
    for i, line in enumerate(lines):
        assert all(word.line == i for word in line)
        # Persian: words of a line run right to left
        lefts = [word.left for word in line]
        assert lefts == sorted(lefts, reverse=True)
        assert result.text.split("\n")[i] == " ".join(word.text for word in line)
        for word in line:
            assert 0 <= word.left < w and 0 <= word.top < h and word.width > 0 and word.height > 0
            assert 0 <= word.conf <= 100
    tops = [min(word.top for word in line) for line in lines]
    assert tops == sorted(tops)
    # the ground-truth line boxes contain the words found on them
    for (x0, y0, x1, y1), line in zip(page.line_boxes, lines):
        for word in line:
            cy = word.top + word.height / 2
            assert y0 - 10 <= cy <= y1 + 10


def test_tsv_parsing_and_number_merge():
    tsv = "\n".join(
        [
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
            "5\t1\t1\t1\t1\t1\t900\t10\t100\t30\t90\tشماره",
            "5\t1\t1\t1\t1\t2\t700\t10\t150\t30\t80\t23",  # Tesseract split 1401099702245001|23
            "5\t1\t1\t1\t1\t3\t400\t10\t295\t30\t85\t1401099702245001",
            "5\t1\t1\t1\t2\t1\t900\t60\t100\t30\t-1\t ",
            "5\t1\t1\t1\t2\t2\t800\t60\t100\t30\t70\tتاریخ",
        ]
    )
    words = parse_tsv(tsv)
    assert [w.line for w in words] == [0, 0, 0, 1]
    merged = merge_numbers(words)
    assert [w.text for w in merged] == ["شماره", "140109970224500123", "تاریخ"]
    assert merged[1].left == 400 and merged[1].width == 450 and merged[1].conf == 80


def test_timeout_on_pathological_page():
    rng = np.random.default_rng(0)
    noise = ((rng.random((3508, 2480)) > 0.5) * 255).astype(np.uint8)  # a page of pure noise
    t0 = time.perf_counter()
    with pytest.raises(OcrTimeout) as err:
        recognise(noise, timeout_s=1.5)
    assert time.perf_counter() - t0 < 6
    assert isinstance(err.value, OcrError) and err.value.reason == "ocr_timeout"
    assert "1.5 s" in str(err.value)


def _one_line_en_fa(err: MissingDependency) -> None:
    assert err.exit_code == ExitCode.missing_dependency
    line = err.one_line()
    assert "\n" not in line and " / " in line
    assert any("\u0600" <= c <= "\u06ff" for c in err.message_fa)  # a Persian message for the operator


def test_missing_tesseract_is_a_clear_error():
    engine = TesseractEngine(tesseract_cmd="/nonexistent/tesseract")
    with pytest.raises(MissingDependency, match=r"^Tesseract is not installed .*install tesseract-ocr and tesseract-ocr-fas\)$") as err:
        engine.check()  # fails fast, before any page
    _one_line_en_fa(err.value)
    assert "/nonexistent/tesseract" in err.value.message
    with pytest.raises(MissingDependency):  # and the same on a page
        engine.recognise(np.full((200, 200), 255, np.uint8), dpi=300)
    with pytest.raises(OcrError):  # callers catching OcrError still see it
        recognise(np.full((200, 200), 255, np.uint8), tesseract_cmd="/nonexistent/tesseract")


def test_missing_language_data_is_a_clear_error():
    engine = TesseractEngine(lang="xyz")
    with pytest.raises(MissingDependency, match=r"language data missing for 'xyz'.*install tesseract-ocr-xyz") as err:
        engine.check()
    _one_line_en_fa(err.value)
    assert "fas" in err.value.message  # says what is installed
    with pytest.raises(MissingDependency, match="'xyz'"):
        recognise(np.full((200, 200), 255, np.uint8), lang="xyz")
    TesseractEngine().check()  # fas is installed here: no error


def test_missing_tessdata_dir_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MissingDependency, match=r"language data missing for 'fas'"):
        TesseractEngine(tessdata_prefix=str(tmp_path)).check()  # an empty tessdata directory
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # Tesseract's own variable is honoured too
    with pytest.raises(MissingDependency, match=r"language data missing for 'fas'"):
        recognise(np.full((200, 200), 255, np.uint8))


def test_engine_is_the_ocr_boundary():
    engine = TesseractEngine(lang="fas", timeout_s=30, psm=6)
    assert isinstance(engine, OcrEngine)
    page = render_page(font="naskh", seed=8, n_words=60)
    res = engine.recognise(page.image, dpi=page.dpi)
    assert cer(page.text, res.text) <= CER_BAR
    assert res.text == recognise(page.image, dpi=page.dpi, timeout_s=30).text  # the wrapper is the engine


def test_ocr_package_has_no_import_cycles_and_reads_no_khana_settings():
    import ast
    from pathlib import Path

    pkg = Path(__file__).resolve().parents[1] / "ocr"
    graph = {}
    for path in pkg.glob("*.py"):
        src = path.read_text(encoding="utf-8")
        assert "KHANA_" not in src, path.name  # settings are handed down, not read here
        deps, top = set(), set()
        for node in ast.walk(ast.parse(src)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            top |= {n.split(".")[0] for n in names}
        for node in ast.parse(src).body:  # module-level imports only (a function-local import cannot cycle at import time)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ocr."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ocr.")}
        assert not top & {"khana", "pipeline", "storage", "workers", "api"}, (path.name, top)  # the layering
        graph[path.stem] = deps - {"__init__"}
    seen, done = set(), set()

    def visit(mod, stack):
        assert mod not in stack, " -> ".join([*stack, mod])
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, [*stack, mod])
        done.add(mod)

    for mod in graph:
        visit(mod, [])
    assert {"engine", "tesseract", "tsv", "layout", "text_repair", "words"} <= set(graph)


def test_rejects_non_gray_input():
    with pytest.raises(ValueError):
        recognise(np.zeros((10, 10, 3), np.uint8))


def test_blank_page_gives_no_words():
    result = recognise(np.full((1200, 900), 255, np.uint8))
    assert result.words == [] and result.text == "" and result.mean_confidence is None


def test_runs_with_one_omp_thread(monkeypatch):
    from ocr import tesseract

    seen = {}
    real = tesseract.subprocess.Popen

    def spy(args, **kw):
        seen["env"] = kw.get("env")
        return real(args, **kw)

    monkeypatch.setattr(tesseract.subprocess, "Popen", spy)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    recognise(np.full((300, 300), 255, np.uint8))
    assert seen["env"]["OMP_THREAD_LIMIT"] == "1"
    assert "OMP_THREAD_LIMIT" not in os.environ


def test_no_text_invented_from_signature_stamp_and_rule():
    page = render_page(font="nazli", seed=3, n_words=60)
    img = page.image.copy()
    rng = np.random.default_rng(1)
    scribble = (np.cumsum(rng.normal(0, 12, (60, 2)), axis=0) + [1500, 2600]).astype(np.int32)
    cv2.polylines(img, [scribble], False, 0, 4)  # a signature
    cv2.circle(img, (700, 2700), 180, 60, 6)  # a stamp
    cv2.line(img, (300, 2300), (2100, 2300), 0, 3)  # a rule
    result = recognise(img)
    assert len(result.text.splitlines()) == len(page.text.splitlines())
    assert cer(page.text, result.text) <= CER_BAR


def test_refills_a_line_the_layout_dropped():
    """Simulate Tesseract's layout skipping a line: the line is read on its own."""

    class DroppingEngine(TesseractEngine):
        def read_page(self, gray, *, dpi):  # the full-page pass loses its second line
            return [w for w in super().read_page(gray, dpi=dpi) if w.line != 1]

    page = render_page(font="sans", seed=5, n_words=40)
    engine = DroppingEngine()
    assert len({w.line for w in engine.read_page(page.image, dpi=300)}) == len(page.text.splitlines()) - 1
    result = engine.recognise(page.image, dpi=300)
    assert len(result.text.splitlines()) == len(page.text.splitlines())
    assert cer(page.text, result.text) <= CER_BAR
    assert [w.line for w in result.words] == sorted(w.line for w in result.words)


@pytest.mark.parametrize("font", ["sans", "nazli"])
def test_persian_comma_is_not_read_as_full_stop(font):
    text = "دادگاه عمومی، خواهان محترم، خوانده پرونده، و دادسرا. رأی صادر شد، و ابلاغ گردید."
    page = render_page(text, font=font, size_pt=14)
    result = recognise(page.image)
    assert result.text.count("،") == 4 and result.text.count(".") == 2, result.text


def _ruled_form():
    """A 4-row table with a full grid: names (Persian) and Latin-digit numbers."""
    from PIL import Image, ImageDraw, ImageFont

    from testpages.render import FONTS

    img = Image.new("L", (2480, 1100), 255)
    draw = ImageDraw.Draw(img)
    face = ImageFont.truetype(FONTS["nazli"], 48, layout_engine=ImageFont.Layout.RAQM)
    rows = [
        ("نام و نام خانوادگی", "کد ملی", "شماره تلفن"),
        ("علی احمدی", "0012345678", "09121234567"),
        ("زهرا کریمی", "0098765432", "09357654321"),
        ("حسین رضایی", "1234567890", "09191112233"),
    ]
    for i, row in enumerate(rows):
        y = 200 + i * 200
        draw.line((150, y - 60, 2330, y - 60), fill=0, width=4)
        for x, t in zip((2300, 1500, 800), row):
            draw.text((x, y), t, font=face, fill=0, direction="rtl", language="fa", anchor="rs")
    draw.line((150, 940, 2330, 940), fill=0, width=4)
    for x in (150, 1000, 1700, 2330):
        draw.line((x, 140, x, 940), fill=0, width=4)
    return np.asarray(img).copy(), "\n".join(" ".join(r) for r in rows)


def test_ruled_form_with_numbers():
    """Tesseract reads nothing on a ruled grid; rules are removed for OCR, and Latin
    numbers that `fas` garbles in the cells are re-read with `eng`."""
    image, truth = _ruled_form()
    assert recognise(image, strip_rules=False, reread_numbers=False).text == ""  # the problem
    result = recognise(image)
    assert cer(truth, result.text) <= 0.02, result.text
    for number in ("0012345678", "09121234567", "0098765432", "1234567890"):
        assert number in result.text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_runs_equal_a_full_page_opening(seed):
    """The pruned rule finder gives exactly the morphological opening of the whole page."""
    from ocr.layout import _long_runs

    rng = np.random.default_rng(seed)
    page = render_page(seed=seed, n_words=120).image.copy()
    for _ in range(6):  # rules of random length, thickness and place, some shorter than the threshold
        y, x, n, t = rng.integers(0, 3000), rng.integers(0, 2000), rng.integers(60, 2400), rng.integers(1, 5)
        page[y : y + t, x : x + n] = 0
        page[x : x + n, y % 2400 : y % 2400 + t] = 0
    _, ink = cv2.threshold(page, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    for length, axis, kernel in ((165, 1, (165, 1)), (116, 0, (1, 116)), (121, 1, (121, 1)), (9, 0, (1, 9))):
        full = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        got = _long_runs(ink, length, axis)
        # None: no row (column) can hold such a run, i.e. the opening is empty
        assert (not full.any()) if got is None else (got == full).all(), (length, axis)
    clean = cv2.threshold(render_page(seed=seed, n_words=120).image, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)[1]
    assert _long_runs(clean, 165, 1) is None and _long_runs(clean, 116, 0) is None  # a page of text has no rule


def test_touching_lines_are_two_bands_and_a_tall_title_is_one():
    from ocr.layout import _ink_bands

    page = np.full((400, 600), 255, np.uint8)
    page[50:90, 40:560] = 0     # a line of text
    page[100:140, 40:560] = 0   # the next line ...
    page[88:102, 300:303] = 0   # ... joined to it by a descender
    page[200:300, 40:560] = 0   # a title twice as tall: one line
    bands = _ink_bands(page, min_gap=16, split_above=int(1.6 * 40))
    assert len(bands) == 3
    (a0, a1, ax0, ax1), (b0, b1, bx0, bx1) = bands[:2]
    # split inside the gap the descender bridges: each band holds exactly one of the two lines
    assert a0 == 50 and b1 == 140 and 90 <= a1 == b0 <= 100
    assert (ax0, ax1) == (bx0, bx1) == (40, 560)
    assert bands[2][:2] == (200, 300)


def test_a_line_tesseract_drops_between_touching_lines_is_read_again():
    """Corpus page dark-0-1 (Noto Sans 12 pt on a dark scan): Tesseract's layout skipped one of
    14 lines that touches its neighbours; the refill must find and read it."""
    from quality import correct_page
    from testpages.corpus import iter_corpus

    item = next(i for i in iter_corpus("full", seed=0, kinds=["dark"]) if i.id == "dark-0-1")
    res = recognise(correct_page(item.image).image)
    assert len({w.line for w in res.words}) == len(item.text.strip().split("\n"))
    assert cer(res.text, item.text) < 0.02


# --- text-size normalisation (issue 13): Tesseract reads a copy scaled to TEXT_HEIGHT_PX ---


@pytest.mark.parametrize("font,size_pt", [("naskh", 10), ("homa", 16)])
def test_text_line_height_measures_the_lines(font, size_pt):
    """The engine's line height is quality's `line_height_px` measure (the core of a line, without
    the sparse dots above and below): close to it, below the ink boxes, proportional to the type size."""
    from ocr.layout import text_line_height
    from quality import correct_page

    page = render_page(font=font, size_pt=size_pt, seed=2)
    h = text_line_height(page.image)
    assert abs(h - correct_page(page.image).line_height_px) <= 0.15 * h
    assert 0.6 * np.median([y1 - y0 for _, y0, _, y1 in page.line_boxes]) <= h <= np.median([y1 - y0 for _, y0, _, y1 in page.line_boxes])
    dense = render_page(font=font, size_pt=size_pt, seed=2, line_spacing=1.0)  # lines nearly touching
    assert abs(text_line_height(dense.image) - h) <= 0.1 * h
    half = cv2.resize(page.image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert abs(text_line_height(half) - h / 2) <= 0.1 * h
    assert text_line_height(np.full((500, 400), 255, np.uint8)) is None  # no lines: no height


def test_large_text_is_read_scaled_down_with_boxes_on_the_page():
    """16 pt at 300 dpi: Tesseract reads a smaller copy; the words come back in the page's pixels."""
    from ocr.engine import TEXT_HEIGHT_PX
    from ocr.layout import text_line_height

    assert TEXT_HEIGHT_PX, "the engine normalises the text size by default"
    page = render_page(font="sans", size_pt=16, seed=6, n_words=70)
    scaled = TesseractEngine().recognise(page.image, dpi=300)
    assert scaled.scale == pytest.approx(TEXT_HEIGHT_PX / text_line_height(page.image), rel=0.01) and scaled.scale < 0.8
    unscaled = TesseractEngine(text_height_px=None).recognise(page.image, dpi=300)
    assert unscaled.scale == 1.0
    assert cer(page.text, scaled.text) <= CER_BAR
    h, w = page.image.shape
    # the same words sit on the same place of the page (boxes overlap) whichever scale Tesseract read
    same = [(a, b) for a, b in zip(scaled.words, unscaled.words) if a.text == b.text]
    assert len(same) >= 0.8 * len(unscaled.words)
    for a, b in same:
        ix = min(a.right, b.right) - max(a.left, b.left)
        iy = min(a.bottom, b.bottom) - max(a.top, b.top)
        assert ix > 0.6 * b.width and iy > 0.6 * b.height, (a, b)
        assert 0 <= a.left and a.right <= w and 0 <= a.top and a.bottom <= h
    for (x0, y0, x1, y1), line in zip(page.line_boxes, scaled.lines()):
        assert all(y0 - 10 <= wd.top + wd.height / 2 <= y1 + 10 for wd in line)


def test_low_resolution_scan_is_read_after_correction():
    """A 10 pt page scanned at 150 dpi, upscaled by the correction, then normalised by the engine."""
    from quality import correct_page
    from testpages.degrade import downsample

    page = render_page(font="nazli", size_pt=10, seed=9, n_words=80)
    c = correct_page(downsample(page.image, 300, 150))
    res = TesseractEngine().recognise(c.image, dpi=round(150 * c.upscale))
    assert cer(page.text, res.text) <= 0.02, res.text[:200]
    assert all(wd.right <= c.image.shape[1] and wd.bottom <= c.image.shape[0] for wd in res.words)
