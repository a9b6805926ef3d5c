"""Searchable PDF: page images with an invisible, positioned Persian text layer.

* Image: grayscale at the scan's own resolution. The paper is whitened first
  (`whiten_paper`: pixels lighter than 80 % of the ink-to-paper range become white;
  skipped on low-contrast pages). A page that is then at least 85 % white paper (a
  text document) is stored as 4-bit (16 grey levels) Flate: ink and anti-aliased
  edges survive, at about half the bytes and time of 8-bit Flate; anything else (a
  photo of evidence, a textured scan) as JPEG quality 75 (`image_format="auto"`;
  "png" (8-bit Flate), "gray4" and "jpeg" force one). Sizes per page are in
  bench/ocr/RESULTS.md.
* Text layer: Tesseract's "glyphless" TrueType font (one empty glyph, shipped in
  ocr/data/glyphless.ttf, Apache-2.0) as a Type0/CIDFontType2 font with Identity-H
  encoding: every character code is its UTF-16 code unit and the ToUnicode CMap maps
  it back to itself, so any Unicode text (Persian, digits, Latin) is extractable.
  Text is drawn with render mode 3 (invisible). Each word is one string placed on
  its OCR box, stretched with Tz to the box width, and written in logical (reading)
  order; words of a line share one baseline. Poppler (pdftotext), PDFium and pdf.js
  detect the right-to-left script and return the words in Persian reading order.
* One PDF per batch with page labels (/PageLabels), document information and XMP
  metadata (title, case number, office, court), /Lang fa-IR, an sRGB output intent
  and the PDF/A-2b identification (all fonts are embedded, no transparency or
  encryption). Not validated with veraPDF here (not installable offline).
"""
from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Pdf, String

from ocr.words import Word

DATA = Path(__file__).resolve().parent / "data"
GLYPHLESS_TTF = DATA / "glyphless.ttf"
SRGB_ICC = Path(pikepdf.__file__).resolve().parent / "pdfa" / "data" / "sRGB.icc"

FONT_NAME = "/F1"
GLYPH_ADVANCE = 500  # /DW of the CID font: each glyph is half an em wide


@dataclass
class PdfPage:
    image: np.ndarray | None  # 2-D uint8; may be None when `encoded` is given
    dpi: int
    words: list[Word] = field(default_factory=list)
    label: str = ""
    encoded: "EncodedImage | None" = None  # the page image already encoded (see encode_page_image)


@dataclass
class EncodedImage:
    """A page image encoded for the PDF ahead of time (e.g. by each page's OCR task, in parallel)."""

    data: bytes
    filter: str  # "FlateDecode" or "DCTDecode"
    width: int
    height: int
    bits: int = 8  # BitsPerComponent: 8, or 4 for a whitened text page (16 grey levels)

    def as_dict(self) -> dict:
        return {"filter": self.filter, "width": self.width, "height": self.height, "bits": self.bits}


def whiten_paper(img: np.ndarray) -> np.ndarray:
    """Set the paper (pixels lighter than 80 % of the way from ink to paper) to white.

    Sensor noise and paper texture cost most of a scan's bytes and carry nothing; ink,
    stamps and anti-aliased edges are kept. Pages with little contrast (a faded scan
    that was not normalised) are returned unchanged, so faint ink is never erased.
    """
    small = img[::4, ::4]
    ink, paper = np.percentile(small, [1, 90])
    if paper - ink < 100:
        return img
    lut = np.arange(256, dtype=np.uint8)
    lut[lut > ink + 0.8 * (paper - ink)] = 255
    return cv2.LUT(img, lut)  # a table lookup: ~5x faster than a masked assignment on a full page


# A page at least this white (after whitening) is a text document: 16 grey levels keep its
# ink and anti-aliased edges (measured: a rendered A4 page at 300 dpi is 135 KiB at 4 bits
# vs 240 KiB at 8 bits, and encodes in 0.05 s instead of 0.1 s with the JPEG trial).
# Anything else (a photo of evidence, a textured scan) goes to JPEG.
TEXT_PAGE_WHITE_FRACTION = 0.85

_TO_4BIT = np.round(np.arange(256) * 15 / 255).astype(np.uint8)


def pack_4bit(img: np.ndarray) -> bytes:
    """8-bit grey -> 4 bits per pixel (rounded), two pixels per byte, rows padded to a byte."""
    q = cv2.LUT(img, _TO_4BIT)
    if q.shape[1] % 2:
        q = np.pad(q, ((0, 0), (0, 1)), constant_values=15)
    return np.ascontiguousarray((q[:, 0::2] << 4) | q[:, 1::2]).tobytes()


def encode_image(img: np.ndarray, image_format: str = "auto", quality: int = 75) -> tuple[bytes, Name, int]:
    """-> (stream data, PDF filter, bits per component).

    "auto": a (whitened) text page -> lossless-enough 4-bit Flate; anything else -> JPEG.
    "png"/"flate": 8-bit lossless Flate. "gray4": 4-bit Flate. "jpeg": JPEG at `quality`.
    """
    img = np.ascontiguousarray(img)
    if image_format == "auto":
        image_format = "gray4" if np.mean(img[::4, ::4] == 255) >= TEXT_PAGE_WHITE_FRACTION else "jpeg"
    if image_format in ("png", "flate"):
        return zlib.compress(img.tobytes(), 6), Name.FlateDecode, 8
    if image_format == "gray4":
        # run-length deflate: a whitened text page is long runs of white; 3x faster than level 6 (A4 at 300 dpi:
        # ~0.018 s instead of ~0.05 s); the stream is 0-10 % larger on corrected scans, 16-20 % on clean rendered pages
        z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        return z.compress(pack_4bit(img)) + z.flush(), Name.FlateDecode, 4
    if image_format == "jpeg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return buf.tobytes(), Name.DCTDecode, 8
    raise ValueError(f"unknown image_format {image_format!r}")


def encode_page_image(img: np.ndarray, *, image_format: str = "auto", jpeg_quality: int = 75,
                      whiten: bool = True) -> EncodedImage:
    """Whiten and encode a page image exactly as build_searchable_pdf would."""
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError("image must be a 2-D uint8 array")
    data, filt, bits = encode_image(whiten_paper(img) if whiten else img, image_format, jpeg_quality)
    h, w = img.shape
    return EncodedImage(data, str(filt).lstrip("/"), int(w), int(h), bits)


def _to_unicode_cmap() -> bytes:
    return b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""


def _make_font(pdf: Pdf) -> pikepdf.Object:
    ttf = GLYPHLESS_TTF.read_bytes()
    font_file = pikepdf.Stream(pdf, ttf)
    font_file.Length1 = len(ttf)
    descriptor = pdf.make_indirect(
        Dictionary(
            Type=Name.FontDescriptor,
            FontName=Name.GlyphLessFont,
            Flags=5,
            FontBBox=Array([0, 0, GLYPH_ADVANCE, 1000]),
            ItalicAngle=0,
            Ascent=1000,
            Descent=0,
            CapHeight=1000,
            StemV=80,
            FontFile2=pdf.make_indirect(font_file),
        )
    )
    # every CID -> glyph 1 (the single empty glyph)
    cid_to_gid = pikepdf.Stream(pdf, zlib.compress(b"\x00\x01" * 65536, 9), Filter=Name.FlateDecode)
    cid_font = pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.CIDFontType2,
            BaseFont=Name.GlyphLessFont,
            CIDSystemInfo=Dictionary(Registry=String("Adobe"), Ordering=String("Identity"), Supplement=0),
            FontDescriptor=descriptor,
            DW=GLYPH_ADVANCE,
            CIDToGIDMap=pdf.make_indirect(cid_to_gid),
        )
    )
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type0,
            BaseFont=Name.GlyphLessFont,
            Encoding=Name("/Identity-H"),
            DescendantFonts=Array([cid_font]),
            ToUnicode=pdf.make_indirect(pikepdf.Stream(pdf, zlib.compress(_to_unicode_cmap(), 9), Filter=Name.FlateDecode)),
        )
    )


_LTR_RUN = re.compile(r"[0-9A-Za-z۰-۹٠-٩]+(?:[.,/:\-٫٬][0-9A-Za-z۰-۹٠-٩]+)*")
_RTL_CHAR = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
# strong right-to-left letters (not Arabic punctuation, digits or marks)
_RTL_LETTER = re.compile("[\u05d0-\u05ea\u0620-\u064a\u066e-\u066f\u0671-\u06d3\u06d5\u06ee-\u06ef\u06fa-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufefc]")


def visual_order(text: str, rtl_line: bool = True) -> str:
    """The word's characters left to right as they appear on the page.

    Extractors (Poppler, PDFium) see glyphs drawn left to right and, for
    right-to-left script, reverse them back into logical order; so a Persian word is
    written reversed, with its runs of digits or Latin letters kept left to right and
    brackets mirrored, as a bidi renderer draws it.

    On a right-to-left line, a word edge that is not a Persian letter (punctuation,
    digits, a whole number) gets an invisible RIGHT-TO-LEFT MARK: Poppler treats every
    non-RTL character next to a space as part of a left-to-right run and prints such
    runs in visual order ("کرد: پیش" came out "کرد :پیش", "1401/05/08 تاریخ" came out
    " 1401/05/08تاریخ"); the mark closes the run. PDFium ignores it.
    """
    if _RTL_CHAR.search(text):
        parts: list[str] = []
        pos = 0
        for m in _LTR_RUN.finditer(text):
            parts.extend(_mirror(c) for c in text[pos : m.start()])
            parts.append(m.group(0))
            pos = m.end()
        parts.extend(_mirror(c) for c in text[pos:])
        out = "".join(reversed(parts))
    else:
        out = text
    if rtl_line and out:
        if not _RTL_LETTER.match(out[0]):
            out = RLM + out
        if not _RTL_LETTER.match(out[-1]):
            out = out + RLM
    return out


RLM = "\u200f"
_MIRROR = {"(": ")", ")": "(", "[": "]", "]": "[", "«": "»", "»": "«", "<": ">", ">": "<", "{": "}", "}": "{"}


def _mirror(c: str) -> str:
    return _MIRROR.get(c, c)


def _hex_utf16(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def text_layer_ops(words: list[Word], dpi: int, page_height_px: int) -> bytes:
    """Content-stream operators drawing `words` invisibly on their boxes."""
    if not words:
        return b""
    k = 72.0 / dpi
    lines: dict[int, list[Word]] = {}
    for w in words:
        if w.text.strip():
            lines.setdefault(w.line, []).append(w)
    out = ["BT", "3 Tr"]
    for idx in sorted(lines):
        lw = lines[idx]
        top = min(w.top for w in lw)
        bottom = max(w.bottom for w in lw)
        height_pt = max(1.0, (bottom - top) * k)
        baseline = (page_height_px - bottom) * k + 0.15 * height_pt
        size = height_pt
        out.append(f"{FONT_NAME} {size:.2f} Tf")
        placed: list[tuple[float, float]] = []  # (x0, x1) of each word in points, reading order
        line_text = "".join(w.text for w in lw)
        rtl_line = len(_RTL_LETTER.findall(line_text)) >= len(re.findall("[A-Za-z]", line_text))
        for w in lw:
            text = visual_order(w.text.strip(), rtl_line)
            n = len(text.encode("utf-16-be")) // 2
            natural = n * size * GLYPH_ADVANCE / 1000.0
            # keep a visible gap to the neighbours so extractors put a space between words
            shrink = min(0.12 * (bottom - top), 0.25 * w.width)
            width_pt = max(0.5, (w.width - shrink) * k)
            x0 = (w.left + shrink / 2) * k
            tz = 100.0 * width_pt / natural if natural > 0 else 100.0
            out.append(f"{tz:.2f} Tz 1 0 0 1 {x0:.2f} {baseline:.2f} Tm <{_hex_utf16(text)}> Tj")
            placed.append((x0, x0 + width_pt))
        # A wide gap inside one OCR line (a header's right and left fields) would make
        # Poppler split the line into two columns. An invisible RIGHT-TO-LEFT MARK,
        # stretched over the middle of the gap with a normal word gap left on each
        # side, keeps the line together; extractors drop or ignore the mark.
        space = 0.4 * size
        for (a0, a1), (b0, b1) in zip(placed, placed[1:]):
            gap_l, gap_r = (b1, a0) if b1 <= a0 else (a1, b0)
            if gap_r - gap_l > 4 * space:
                width = gap_r - gap_l - 2 * space
                tz = 100.0 * width / (size * GLYPH_ADVANCE / 1000.0)
                out.append(f"{tz:.2f} Tz 1 0 0 1 {gap_l + space:.2f} {baseline:.2f} Tm <200F> Tj")
    out.append("ET")
    return ("\n".join(out) + "\n").encode("ascii")


def _page_labels(pdf: Pdf, labels: list[str]) -> None:
    if not any(labels):
        return
    nums = []
    for i, label in enumerate(labels):
        nums += [i, Dictionary(P=String(label or str(i + 1)))]
    pdf.Root.PageLabels = Dictionary(Nums=Array(nums))


def build_searchable_pdf(
    pages: list[PdfPage],
    *,
    title: str = "",
    metadata: dict[str, str] | None = None,
    image_format: str = "auto",
    jpeg_quality: int = 75,
    whiten: bool = True,
    pdfa: bool = True,
) -> bytes:
    """One PDF for a batch: each page is its image plus an invisible text layer.

    metadata keys (all optional): case_number, office, court, author, subject,
    keywords, and any other string (stored in the document information dictionary).
    """
    if not pages:
        raise ValueError("build_searchable_pdf needs at least one page")
    metadata = {str(k): str(v) for k, v in (metadata or {}).items() if v is not None and str(v) != ""}
    pdf = Pdf.new()
    font = _make_font(pdf)
    for i, page in enumerate(pages):
        enc = page.encoded
        if enc is None:
            if page.image is None or page.image.ndim != 2 or page.image.dtype != np.uint8:
                raise ValueError(f"page {i + 1}: image must be a 2-D uint8 array")
            enc = encode_page_image(page.image, image_format=image_format, jpeg_quality=jpeg_quality, whiten=whiten)
        h, w = enc.height, enc.width
        dpi = page.dpi or 300
        wpt, hpt = w * 72.0 / dpi, h * 72.0 / dpi
        data, filt = enc.data, Name("/" + enc.filter)
        xobj = pikepdf.Stream(pdf, data)
        xobj.Type = Name.XObject
        xobj.Subtype = Name.Image
        xobj.Width, xobj.Height = w, h
        xobj.ColorSpace = Name.DeviceGray
        xobj.BitsPerComponent = enc.bits
        xobj.Filter = filt
        xobj.Interpolate = False
        content = f"q {wpt:.3f} 0 0 {hpt:.3f} 0 0 cm /Im0 Do Q\n".encode("ascii")
        content += text_layer_ops(page.words, dpi, h)
        pdf_page = pdf.add_blank_page(page_size=(wpt, hpt))
        pdf_page.obj.Resources = Dictionary(XObject=Dictionary(Im0=xobj), Font=Dictionary(F1=font))
        pdf_page.obj.Contents = pdf.make_indirect(pikepdf.Stream(pdf, zlib.compress(content), Filter=Name.FlateDecode))
    _page_labels(pdf, [p.label for p in pages])

    now = datetime.now(timezone.utc).replace(microsecond=0)
    info = {
        "/Title": title or metadata.get("title", ""),
        "/Author": metadata.get("author", metadata.get("office", "")),
        "/Subject": metadata.get("subject", ""),
        "/Keywords": metadata.get("keywords", ""),
        "/Creator": "Khana",
        "/Producer": f"Khana (pikepdf {pikepdf.__version__})",
    }
    for key, value in metadata.items():
        if key in ("title", "author", "subject", "keywords"):
            continue
        name = "/" + "".join(part.capitalize() for part in str(key).replace("-", "_").split("_"))
        info[name] = str(value)
    pdf.Root.Lang = String("fa-IR")
    pdf.Root.ViewerPreferences = Dictionary(Direction=Name.R2L, DisplayDocTitle=True)
    if pdfa:
        icc = pikepdf.Stream(pdf, SRGB_ICC.read_bytes())
        icc.N = 3
        pdf.Root.OutputIntents = Array(
            [
                Dictionary(
                    Type=Name.OutputIntent,
                    S=Name.GTS_PDFA1,
                    OutputConditionIdentifier=String("sRGB IEC61966-2.1"),
                    RegistryName=String("http://www.color.org"),
                    DestOutputProfile=pdf.make_indirect(icc),
                )
            ]
        )
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        if info["/Title"]:
            meta["dc:title"] = info["/Title"]
        if info["/Author"]:
            meta["dc:creator"] = [info["/Author"]]
        if info["/Subject"]:
            meta["dc:description"] = info["/Subject"]
        meta["dc:language"] = ["fa-IR"]
        meta["xmp:CreatorTool"] = "Khana"
        meta["pdf:Producer"] = info["/Producer"]
        if info["/Keywords"]:
            meta["pdf:Keywords"] = info["/Keywords"]
        meta["xmp:CreateDate"] = now.isoformat()
        meta["xmp:ModifyDate"] = now.isoformat()
        if pdfa:
            meta["pdfaid:part"] = "2"
            meta["pdfaid:conformance"] = "B"
    stamp = now.strftime("D:%Y%m%d%H%M%S+00'00'")
    pdf.docinfo["/CreationDate"] = stamp
    pdf.docinfo["/ModDate"] = stamp
    for key, value in info.items():
        if value:
            pdf.docinfo[key] = String(value)
    buf = io.BytesIO()
    pdf.save(buf, deterministic_id=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return buf.getvalue()
