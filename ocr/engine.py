"""The OCR engine boundary (after OCRmyPDF's `pluginspec.OcrEngine` and its built-in
Tesseract plugin): `OcrEngine` is what the pipeline calls, `TesseractEngine` the one
implementation, configured by explicit constructor values and orchestrating the parts:

* `ocr.tesseract` - the Tesseract process (command, languages, environment, timeout);
* `ocr.tsv`       - Tesseract's TSV -> words in reading order;
* `ocr.layout`    - rules removed before OCR, dropped text lines found and read again;
* `ocr.text_repair` - split numbers, boxes, Persian commas and punctuation, number re-reads
  (Persian digits glyph by glyph with `ocr.digits`, Latin digits with `eng`).

All measured in bench/ocr and explained in docs/ocr.md.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ocr.layout import reading_is_hopeless, refill_missed_lines, remove_rules, text_line_height
from ocr.normalize import display_form
from ocr.tesseract import (
    DEFAULT_PSM,
    LanguageDataMissing,
    OcrError,
    OcrTimeout,
    Tesseract,
    TesseractNotFound,
    available_languages,
)
from ocr.text_repair import (
    fix_lone_punctuation,
    fix_persian_commas,
    merge_numbers,
    repair_boxes,
    reread_latin_numbers,
    reread_persian_numbers,
)
from ocr.tsv import parse_tsv
from ocr.words import OcrResult, Word, text_box, word_spans, words_to_text

__all__ = [
    "DEFAULT_PSM",
    "LanguageDataMissing",
    "OcrEngine",
    "OcrError",
    "OcrResult",
    "OcrTimeout",
    "TesseractEngine",
    "TesseractNotFound",
    "Word",
    "available_languages",
    "recognise",
    "text_box",
    "word_spans",
]


# Text size at which Tesseract reads: the page is scaled so that its median text-line band
# (quality's `line_height_px` measure) is this high (bench/ocr/scale.py; None: never scaled).
TEXT_HEIGHT_PX: float | None = 22.0
MIN_SCALE, MAX_SCALE = 0.25, 3.0
SCALE_TOLERANCE = 0.1  # within 10 % of the target the page is read as it is
# Largest image Tesseract's page pass gets (pixels): an A4 page at 400 dpi. Normalised to 22 px lines, an A4
# page needs ~2 Mpx at 12 pt and 8.7 Mpx at 6 pt; more means a text height measured wrong (a page partly
# motion-blurred measures 9-11 px lines and was read 2.75x up, 66 Mpx: 5-60 s of Tesseract before a hold).
MAX_WORK_PIXELS = 16_000_000
REFILL_SCALES = (1.0, 1.5, 0.75)  # sizes (x the normalised one) at which a dropped line is read again


@runtime_checkable
class OcrEngine(Protocol):
    """Reads an upright grayscale page: words with boxes (in the page's pixels), text, confidence.

    Raises `OcrTimeout` (a page outcome: reason `ocr_timeout`) or `OcrError`; a missing
    installation part raises an `OcrError` that is also a `core.errors.MissingDependency`."""

    def recognise(self, image: np.ndarray, *, dpi: int) -> OcrResult: ...


class TesseractEngine:
    """Tesseract `fas` with Khana's layout and text repairs.

    Every setting is a constructor value (the entry points read Khana's settings and
    hand them down); nothing here reads the environment except what the Tesseract
    process inherits.
    """

    def __init__(
        self,
        *,
        lang: str = "fas",
        timeout_s: float = 60.0,
        psm: int = DEFAULT_PSM,
        tesseract_cmd: str = "tesseract",
        tessdata_prefix: str | None = None,
        threads: int | None = 1,
        reread_numbers: bool = True,
        refill_lines: bool = True,
        strip_rules: bool = True,
        text_height_px: float | None = TEXT_HEIGHT_PX,
        cache_dir: str | Path | None = None,
    ):
        if cache_dir:  # where the Persian-digit templates are kept between processes (ocr.digits)
            from .digits import set_cache_dir
            set_cache_dir(cache_dir)
        self.lang = lang
        self.timeout_s = float(timeout_s)
        self.psm = int(psm)
        self.tesseract = Tesseract(tesseract_cmd, tessdata_prefix, threads)
        self.reread_numbers = reread_numbers
        self.refill_lines = refill_lines
        self.strip_rules = strip_rules
        self.text_height_px = text_height_px

    def __repr__(self) -> str:
        return (f"TesseractEngine(lang={self.lang!r}, timeout_s={self.timeout_s:g}, psm={self.psm}, "
                f"tesseract_cmd={self.tesseract.cmd!r})")

    def check(self) -> None:
        """Fail fast: raise `MissingDependency` (`TesseractNotFound` or `LanguageDataMissing`)
        when the binary or the page language is not installed. (`eng`, used for the
        Latin-number re-reads, is optional: without it they are skipped.)"""
        self.tesseract.check(self.lang)

    def read_page(self, gray: np.ndarray, *, dpi: int) -> list[Word]:
        """Tesseract's own page pass: words in display form, reading order."""
        out = self.tesseract.run(gray, dpi=dpi, timeout_s=self.timeout_s, lang=self.lang, psm=self.psm)
        words = parse_tsv(out["tsv"].decode("utf-8", "replace"))
        for w in words:
            w.text = display_form(w.text)
        return [w for w in words if w.text]

    def scale_for(self, gray: np.ndarray) -> float:
        """Factor that brings the page's text lines to `text_height_px` (1.0: read as it is), never to more
        than MAX_WORK_PIXELS."""
        if not self.text_height_px or gray.ndim != 2 or gray.dtype != np.uint8 or not gray.size:
            return 1.0
        cap = (MAX_WORK_PIXELS / gray.size) ** 0.5
        h = text_line_height(gray)
        scale = min(MAX_SCALE, max(MIN_SCALE, self.text_height_px / h)) if h else 1.0
        scale = 1.0 if abs(scale - 1.0) <= SCALE_TOLERANCE else scale
        return max(MIN_SCALE, cap) if scale > cap else scale

    def recognise(self, image: np.ndarray, *, dpi: int = 300) -> OcrResult:
        """OCR an upright grayscale page. Raises OcrTimeout / OcrError.

        Tesseract reads a copy scaled to the text height it reads best and fastest at; the
        words come back in `image`'s pixels (the PDF text layer and QA overlays stay at the
        page's own resolution). The dropped-line refill works in the scaled copy, the
        number re-reads and the comma check on the page itself."""
        t0 = time.perf_counter()
        dpi = int(dpi or 300)
        deadline = time.monotonic() + self.timeout_s
        gray = image
        if gray.ndim == 2 and gray.dtype == np.uint8 and gray.size and self.strip_rules:
            gray = remove_rules(gray)
        scale = self.scale_for(gray)
        work, wdpi = gray, dpi
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
            work = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interp)
            wdpi = max(1, int(round(dpi * scale)))
        words = self.read_page(work, dpi=wdpi)
        # a page pass that reads debris (a blurred or noisy page the early gate let through) is held on
        # its reading: no dropped-line refill, no number re-reads (issue 12, class 6: held pages cheap). (A
        # reading under the gate's floor of 60 is not enough: `fas` garbles Latin numbers at 30-50, and the
        # number re-reads lift a table of them over it.)
        hopeless = reading_is_hopeless(words)
        if self.refill_lines and self.psm in (3, 4, 6) and not hopeless:
            # a dropped line is read on its own at a few sizes around the normalised one
            # (at the page's own size: 1, 0.75, 0.5x, as measured before normalisation)
            scales = REFILL_SCALES if scale != 1.0 else (1.0, 0.75, 0.5)
            words = refill_missed_lines(work, words, tess=self.tesseract, dpi=wdpi, lang=self.lang, deadline=deadline,
                                        scales=scales)
        if scale != 1.0:
            words = _unscale(words, scale, gray.shape)
        words = repair_boxes(merge_numbers(words))
        if self.reread_numbers and not hopeless:
            words = reread_persian_numbers(gray, words)
            words = reread_latin_numbers(gray, words, tess=self.tesseract, dpi=dpi, deadline=deadline)
        fix_lone_punctuation(words)
        fix_persian_commas(gray, words)
        raw = words_to_text(words)
        text = raw  # every word is in display form already; text offsets map onto words
        mean = float(np.mean([w.conf for w in words])) if words else None
        return OcrResult(words, text, mean, time.perf_counter() - t0, self.psm, raw, scale)


def _unscale(words: list[Word], scale: float, shape: tuple[int, int]) -> list[Word]:
    """Word boxes from the scaled copy back to the page's pixels (clipped to the page)."""
    h, w = shape
    for word in words:
        left, top = word.left / scale, word.top / scale
        right, bottom = (word.left + word.width) / scale, (word.top + word.height) / scale
        word.left, word.top = min(w - 1, max(0, int(round(left)))), min(h - 1, max(0, int(round(top))))
        word.width = max(1, min(w, int(round(right))) - word.left)
        word.height = max(1, min(h, int(round(bottom))) - word.top)
    return words


def recognise(
    gray: np.ndarray,
    *,
    dpi: int = 300,
    timeout_s: float = 60.0,
    lang: str = "fas",
    psm: int = DEFAULT_PSM,
    threads: int | None = 1,
    reread_numbers: bool = True,
    refill_lines: bool = True,
    strip_rules: bool = True,
    tesseract_cmd: str = "tesseract",
    text_height_px: float | None = TEXT_HEIGHT_PX,
) -> OcrResult:
    """OCR an upright grayscale page with a `TesseractEngine` of these settings (a thin
    wrapper kept for existing callers). Raises OcrTimeout / OcrError."""
    engine = TesseractEngine(
        lang=lang, timeout_s=timeout_s, psm=psm, tesseract_cmd=tesseract_cmd, threads=threads,
        reread_numbers=reread_numbers, refill_lines=refill_lines, strip_rules=strip_rules,
        text_height_px=text_height_px,
    )
    return engine.recognise(gray, dpi=dpi)
