"""Decode uploaded files (PNG, JPEG, TIFF incl. multi-page, PDF) into grayscale pages.

Bytes in, arrays out: the file type is sniffed from its content (never trusted
from the name), every image page is fully decoded on inspection so that a
truncated or corrupt upload is refused at the counter, and PDFs are rasterised
page by page with PDFium at the requested resolution.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageSequence

from core.errors import BadInput

KINDS = {"png": "image/png", "jpeg": "image/jpeg", "tiff": "image/tiff", "pdf": "application/pdf"}


class UnreadableFile(BadInput):
    """The file is empty, of an unsupported type, truncated or corrupt."""


@dataclass(frozen=True)
class FileInfo:
    kind: str  # png | jpeg | tiff | pdf
    page_count: int

    @property
    def content_type(self) -> str:
        return KINDS[self.kind]


@dataclass
class DecodedPage:
    image: np.ndarray  # 2-D uint8, white paper
    dpi: float


def sniff(data: bytes) -> str:
    if not data:
        raise UnreadableFile("the file is empty")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    raise UnreadableFile("unsupported file type: expected a PNG, JPEG or TIFF image or a PDF")


def _to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode (1, L, P, RGB(A), LA, CMYK, I;16, I, F) -> 2-D uint8, transparency on white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.asarray(img.convert("L"), dtype=np.uint8).copy()


def _image_dpi(img: Image.Image, default: float) -> float:
    """The scan resolution: the file's own if plausible for a paper page, else inferred from A4."""
    w, h = img.size
    dpi = img.info.get("dpi")
    if dpi:
        try:
            d = float(dpi[0] if isinstance(dpi, tuple) else dpi)
        except (TypeError, ValueError):
            d = 0.0
        if 50 <= d <= 2400 and 5.0 <= max(w, h) / d <= 20.0:
            return d
    # No trustworthy resolution (phone photos say 72): assume the page is A4 (11.69 in tall).
    return max(w, h) / 11.69 if max(w, h) > 0 else default


def _open(data: bytes, max_pixels: int) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableFile(f"the image is too large ({exc})") from exc
    except Exception as exc:  # PIL raises many types for bad data
        raise UnreadableFile(f"the image cannot be read: {exc}") from exc


def _frames(img: Image.Image):
    for frame in ImageSequence.Iterator(img):
        yield frame


def _pdf(data: bytes):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except Exception as exc:
        raise UnreadableFile(f"the PDF cannot be read: {exc}") from exc


def inspect(data: bytes, *, max_pixels: int = 120_000_000) -> FileInfo:
    """Validate a whole file and count its pages; raises UnreadableFile with a clear message."""
    kind = sniff(data)
    if kind == "pdf":
        doc = _pdf(data)
        try:
            n = len(doc)
            if n == 0:
                raise UnreadableFile("the PDF has no pages")
        finally:
            doc.close()
        return FileInfo(kind, n)
    img = _open(data, max_pixels)
    n = 0
    try:
        for frame in _frames(img):
            w, h = frame.size
            if w * h > max_pixels:
                raise UnreadableFile(f"the image is too large ({w}x{h} pixels)")
            frame.load()
            n += 1
    except UnreadableFile:
        raise
    except Exception as exc:
        raise UnreadableFile(f"the image is truncated or corrupt: {exc}") from exc
    if n == 0:
        raise UnreadableFile("the image has no pages")
    return FileInfo(kind, n)


def decode_page(data: bytes, page: int, *, dpi: int = 300, max_pixels: int = 120_000_000) -> DecodedPage:
    """Decode page `page` (1-based) of a file as a grayscale array."""
    kind = sniff(data)
    if kind == "pdf":
        doc = _pdf(data)
        try:
            if not 1 <= page <= len(doc):
                raise UnreadableFile(f"the PDF has no page {page}")
            p = doc[page - 1]
            w_pt, h_pt = p.get_size()
            scale = dpi / 72.0
            if w_pt * h_pt * scale * scale > max_pixels:
                scale = (max_pixels / (w_pt * h_pt)) ** 0.5
            try:
                bitmap = p.render(scale=scale, grayscale=True)
                arr = bitmap.to_numpy()
            except Exception as exc:
                raise UnreadableFile(f"PDF page {page} cannot be rendered: {exc}") from exc
            if arr.ndim == 3:
                arr = arr[..., 0]
            return DecodedPage(np.ascontiguousarray(arr, dtype=np.uint8), scale * 72.0)
        finally:
            doc.close()
    img = _open(data, max_pixels)
    for i, frame in enumerate(_frames(img), start=1):
        if i == page:
            try:
                frame.load()
                return DecodedPage(_to_gray(frame), _image_dpi(frame, dpi))
            except UnreadableFile:
                raise
            except Exception as exc:
                raise UnreadableFile(f"page {page} is truncated or corrupt: {exc}") from exc
    raise UnreadableFile(f"the image has no page {page}")
