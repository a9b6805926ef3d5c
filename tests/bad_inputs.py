"""A corpus of bad, odd and hostile inputs, generated (nothing is checked in), with the exact outcome each must have.

`corpus()` returns `Case`s: a file name as a station or an operator would give it, its bytes, and the
expected outcome:

* ``refused``: the CLI exits 2 and the API answers 400, with one line naming the problem (`en`, and its
  Persian `fa`); nothing is stored.
* ``held``: accepted, and the page is held with reason `reason` (an odd but legitimate file).
* ``accepted``: accepted and decided (pass or hold, whatever the page deserves).

Used by tests/test_bad_inputs.py through the CLI and through a live `khana serve`.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

LIMIT_MPX = 120  # the shipped KHANA_MAX_IMAGE_PIXELS, in megapixels: refusals must quote this one


@dataclass
class Case:
    kind: str
    name: str
    data: bytes
    outcome: str  # refused | held | accepted
    en: str = ""  # part of the English message (refused)
    fa: str = ""  # part of the Persian message (refused)
    reason: str = ""  # expected reason code (held)
    pages: int = 1
    tags: list[str] = field(default_factory=list)


def _img(mode: str = "L", size=(620, 877), value=255) -> Image.Image:
    return Image.new(mode, size, value)


def _enc(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise_png() -> bytes:
    rng = np.random.default_rng(3)
    return _enc(Image.fromarray(rng.integers(0, 255, (600, 600), dtype=np.uint8)), "PNG")


def _noise_jpeg() -> bytes:
    rng = np.random.default_rng(4)
    return _enc(Image.fromarray(rng.integers(0, 255, (600, 600), dtype=np.uint8)), "JPEG", quality=90)


def _noise_tiff() -> bytes:
    rng = np.random.default_rng(5)
    return _enc(Image.fromarray(rng.integers(0, 255, (600, 600), dtype=np.uint8)), "TIFF")


def _pdf(pages: list[tuple[float, float]], *, count: int | None = None, broken_xref: bool = False) -> bytes:
    """A minimal PDF with empty pages of the given sizes in points (`count` overrides /Count)."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(len(pages)))
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages) if count is None else count} >>")
    for w, h in pages:
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:g} {h:g}] >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{(off + 7) if broken_xref else off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref + (13 if broken_xref else 0)}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_with_text_page() -> bytes:
    return _enc(_img("RGB", (620, 877), (255, 255, 255)), "PDF", resolution=75)


def _encrypted_pdf(user_password: str) -> bytes:
    import pikepdf

    src = pikepdf.open(io.BytesIO(_pdf([(595, 842)])))
    buf = io.BytesIO()
    src.save(buf, encryption=pikepdf.Encryption(owner="owner-secret", user=user_password, R=6))
    return buf.getvalue()


def _png_header(w: int, h: int, depth: int = 1, color: int = 0) -> bytes:
    """A PNG whose header declares w x h pixels, with a tiny (compressible) image body."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    row = b"\x00" + b"\xff" * ((w * depth + 7) // 8)
    body = zlib.compress(row * 4, 9)  # far fewer rows than declared: it never gets that far
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _tiff_header(w: int, h: int) -> bytes:
    """A little-endian TIFF declaring w x h 8-bit pixels with a few bytes of data."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8 + 2 + 12 * 9 + 4),
               (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        ifd += struct.pack("<HHII", tag, typ, cnt, val) if typ == 4 else struct.pack("<HHIHH", tag, typ, cnt, val, 0)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\xff" * 16


def _jpeg_header(w: int, h: int) -> bytes:
    """A JPEG whose SOF0 declares w x h (a valid small JPEG with its size patched)."""
    data = bytearray(_enc(_img("L", (16, 16)), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _multipage_tiff(n: int, truncate_last: bool = False) -> bytes:
    rng = np.random.default_rng(9)
    frames = [Image.fromarray(rng.integers(0, 255, (400, 300), dtype=np.uint8)) for _ in range(n)]
    data = _enc(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    return data[: len(data) - 60000] if truncate_last else data


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.txt", "not a scan")
    return buf.getvalue()


def corpus() -> list[Case]:
    blank = _enc(_img(), "PNG", dpi=(75, 75))
    c: list[Case] = []

    def refused(kind, name, data, en, fa, **kw):
        c.append(Case(kind, name, data, "refused", en=en, fa=fa, **kw))

    def held(kind, name, data, reason="blank", **kw):
        c.append(Case(kind, name, data, "held", reason=reason, **kw))

    # --- refused: nothing can be read --------------------------------------------------------------
    refused("empty", "empty.png", b"", "the file is empty", "فایل خالی است")
    refused("text-named-png", "notes.png", b"just some text\n" * 20, "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    refused("gif", "scan.gif", _enc(_img("P"), "GIF"), "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    refused("bmp", "scan.bmp", _enc(_img(), "BMP"), "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    refused("webp", "scan.webp", _enc(_img(), "WEBP"), "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    refused("html-named-pdf", "invoice.pdf", b"<!doctype html><html><body>hello</body></html>", "unsupported file type",
            "نوع فایل پشتیبانی نمی‌شود")
    refused("zip", "pages.zip", _zip_bytes(), "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    refused("elf-named-jpg", "photo.jpg", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "unsupported file type",
            "نوع فایل پشتیبانی نمی‌شود")
    refused("svg", "scan.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "unsupported file type", "نوع فایل پشتیبانی نمی‌شود")
    noise_png, noise_jpg, noise_tif = _noise_png(), _noise_jpeg(), _noise_tiff()
    refused("truncated-png", "cut.png", noise_png[: len(noise_png) // 2], "PNG image is truncated or corrupt",
            "تصویر PNG ناقص یا خراب است")
    refused("truncated-jpeg", "cut.jpg", noise_jpg[: len(noise_jpg) // 2], "JPEG image is truncated or corrupt",
            "تصویر JPEG ناقص یا خراب است")
    refused("truncated-tiff", "cut.tif", noise_tif[: len(noise_tif) // 2], "TIFF image is truncated or corrupt",
            "تصویر TIFF ناقص یا خراب است")
    refused("png-signature-only", "sig.png", b"\x89PNG\r\n\x1a\n", "PNG image cannot be read", "تصویر PNG خوانده نمی‌شود")
    refused("jpeg-soi-only", "soi.jpg", b"\xff\xd8\xff\xe0", "JPEG image cannot be read", "تصویر JPEG خوانده نمی‌شود")
    refused("tiff-header-only", "hdr.tif", b"II*\x00\x08\x00\x00\x00", "TIFF image cannot be read",
            "تصویر TIFF خوانده نمی‌شود")
    refused("png-garbage-body", "garbage.png", noise_png[:33] + bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8)),
            "PNG image cannot be read", "تصویر PNG خوانده نمی‌شود")
    refused("png-zero-width", "zero.png", _png_header(0, 100), "PNG image cannot be read", "تصویر PNG خوانده نمی‌شود")
    refused("pdf-header-only", "head.pdf", b"%PDF-1.4\n", "PDF is damaged", "فایل PDF خراب است")
    refused("pdf-garbage", "junk.pdf", b"%PDF-1.7\n" + bytes(np.random.default_rng(2).integers(0, 255, 3000, dtype=np.uint8)),
            "PDF is damaged", "فایل PDF خراب است")
    pdf_text = _pdf_with_text_page()
    refused("truncated-pdf", "cut.pdf", pdf_text[: len(pdf_text) // 3], "PDF is damaged", "فایل PDF خراب است")
    refused("pdf-zero-pages", "empty.pdf", _pdf([]), "the PDF has no pages", "فایل PDF هیچ صفحه‌ای ندارد")
    refused("pdf-user-password", "locked.pdf", _encrypted_pdf("1234"), "protected by a password", "رمز دارد")
    refused("pdf-giant-pages", "giant.pdf", _pdf([(20000, 20000)] * 10), "larger than any paper", "بزرگ‌تر از هر کاغذی")
    refused("pdf-501-pages", "long.pdf", _pdf([(595, 842)] * 501), "at most 500 are accepted", "حداکثر 500 صفحه")
    refused("png-bomb", "bomb.png", _png_header(20000, 20000), f"limit of {LIMIT_MPX} megapixels",
            f"حد {LIMIT_MPX} مگاپیکسل")
    refused("tiff-bomb", "bomb.tif", _tiff_header(60000, 60000), f"limit of {LIMIT_MPX} megapixels",
            f"حد {LIMIT_MPX} مگاپیکسل")
    refused("jpeg-bomb", "bomb.jpg", _jpeg_header(60000, 60000), f"limit of {LIMIT_MPX} megapixels",
            f"حد {LIMIT_MPX} مگاپیکسل")
    refused("tiff-last-page-truncated", "three.tif", _multipage_tiff(3, truncate_last=True),
            "TIFF image is truncated or corrupt", "تصویر TIFF ناقص یا خراب است")

    # --- accepted: odd but legitimate (the type is read from the content, not the name) ----------
    held("png-16bit", "deep.png", _enc(Image.fromarray(np.full((877, 620), 65535, np.uint16)), "PNG"))
    held("jpeg-cmyk", "print.jpg", _enc(_img("CMYK", value=0), "JPEG"))
    held("png-palette", "pal.png", _enc(_img("RGB", value=(255, 255, 255)).convert("P"), "PNG"))
    held("png-rgba-transparent", "alpha.png", _enc(Image.new("RGBA", (620, 877), (0, 0, 0, 0)), "PNG"))
    held("tiff-1bit", "fax.tif", _enc(_img("1", value=1), "TIFF", compression="group4"))
    held("tiff-multipage", "three-blank.tif", _enc(_img(), "TIFF", save_all=True, append_images=[_img(), _img()]), pages=3)
    held("tiny-1x1", "dot.png", _enc(_img(size=(1, 1)), "PNG"))
    held("tiny-10x10", "speck.jpg", _enc(_img(size=(10, 10)), "JPEG"))
    held("huge-allowed", "poster.png", _enc(_img("1", size=(7000, 9000), value=1), "PNG"), tags=["big"])
    held("png-named-pdf", "really-a-png.pdf", blank)
    held("jpeg-named-txt", "photo.txt", _enc(_img(), "JPEG"))
    held("png-trailing-junk", "junk-after.png", blank + b"\x00trailing junk" * 100)
    held("png-zip-polyglot", "polyglot.png", blank + _zip_bytes())
    held("pdf-owner-password-only", "owner.pdf", _encrypted_pdf(""))
    held("pdf-broken-xref", "xref.pdf", _pdf([(595, 842)], broken_xref=True))
    held("pdf-a0-page", "a0.pdf", _pdf([(2384, 3370)]), tags=["big"])  # rendered below 300 dpi, within the pixel bound
    held("pdf-tiny-page", "stamp.pdf", _pdf([(10, 10)]))
    held("name-newline-ansi", "evil\n\x1b[31mname.png", blank, tags=["hostile-name"])
    held("name-bidi-override", "invoice\u202egnp.exe.png", blank, tags=["hostile-name"])
    held("name-traversal", "../../etc/passwd.png", blank, tags=["hostile-name"])
    held("name-long-persian", "پرونده-" * 18 + ".png", blank, tags=["hostile-name"])
    held("name-nul", "nul\x00byte.png", blank, tags=["hostile-name", "api-only"])  # no file system takes NUL
    return c
