"""Decoding uploads: types sniffed from content, odd image modes, truncated and hostile files."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.decode import UnreadableFile, decode_page, inspect, sniff


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def page_rgb() -> Image.Image:
    img = Image.new("RGB", (600, 800), (250, 250, 245))
    img.paste((20, 20, 20), (100, 100, 500, 140))
    return img


@pytest.mark.parametrize("fmt,kind", [("PNG", "png"), ("JPEG", "jpeg"), ("TIFF", "tiff"), ("PDF", "pdf")])
def test_each_supported_type_decodes_to_gray(fmt, kind):
    data = encode(page_rgb(), fmt)
    assert sniff(data) == kind
    info = inspect(data)
    assert info.kind == kind and info.page_count == 1
    page = decode_page(data, 1, dpi=150)
    assert page.image.ndim == 2 and page.image.dtype == np.uint8
    assert page.image.min() < 60 and page.image.max() > 200


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGBA", "LA", "CMYK", "I;16", "I"])
def test_image_modes(mode):
    base = page_rgb()
    if mode in ("I;16", "I"):
        arr = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr.astype(np.uint16)) if mode == "I;16" else Image.fromarray(arr.astype(np.int32), "I")
        data = encode(img, "PNG" if mode == "I;16" else "TIFF")
    else:
        img = base.convert(mode)
        data = encode(img, "JPEG" if mode == "CMYK" else "PNG")
    page = decode_page(data, 1)
    assert page.image.dtype == np.uint8 and page.image.ndim == 2
    assert page.image[120, 300] < 80  # the ink bar stays dark
    assert page.image[600, 300] > 180  # the paper stays light


def test_transparent_background_becomes_white():
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    page = decode_page(encode(img, "PNG"), 1)
    assert page.image.min() == 255


def test_multipage_tiff_counts_and_selects_pages():
    frames = [Image.new("L", (200, 300), v) for v in (10, 128, 250)]
    data = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    assert inspect(data).page_count == 3
    assert [int(decode_page(data, i).image.mean()) for i in (1, 2, 3)] == [10, 128, 250]
    with pytest.raises(UnreadableFile):
        decode_page(data, 4)


def test_pdf_is_rasterised_at_requested_dpi():
    data = encode(page_rgb(), "PDF", resolution=100)  # 6 x 8 inches
    page = decode_page(data, 1, dpi=300)
    assert abs(page.image.shape[0] - 2400) <= 2 and abs(page.image.shape[1] - 1800) <= 2
    assert abs(page.dpi - 300) < 1


def test_dpi_taken_from_file_when_plausible_else_inferred_from_a4():
    img = Image.new("L", (2480, 3508), 255)
    assert decode_page(encode(img, "PNG", dpi=(300, 300)), 1).dpi == pytest.approx(300, rel=0.001)
    # phone photos claim 72 dpi: a 34-inch page is not plausible, infer from A4 height
    assert decode_page(encode(img, "JPEG", dpi=(72, 72)), 1).dpi == pytest.approx(3508 / 11.69, rel=0.01)


@pytest.mark.parametrize("data,msg", [
    (b"", "empty"),
    (b"hello world", "unsupported"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "unsupported"),
    (b"%PDF-1.4\n garbage", "PDF is damaged"),
])
def test_bad_files_are_refused_clearly(data, msg):
    with pytest.raises(UnreadableFile, match=msg):
        inspect(data)


def test_truncated_image_is_refused():
    data = encode(Image.effect_noise((800, 800), 60).convert("L"), "PNG")
    with pytest.raises(UnreadableFile, match="truncated"):
        inspect(data[: len(data) // 2])


def test_decompression_bomb_is_refused():
    img = Image.new("1", (20000, 20000), 1)
    data = encode(img, "PNG")
    with pytest.raises(UnreadableFile, match="too large"):
        inspect(data, max_pixels=100_000_000)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _pil_gray(data: bytes) -> np.ndarray:
    from pipeline.decode import _to_gray

    return _to_gray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("case", ["text", "noise", "odd-size", "gamma-chunk", "transparent-key",
                                  "gray-4bit", "gray-16bit", "palette"])
def test_png_fast_path_gives_the_same_pixels_as_pil(case):
    """8-bit greyscale PNGs are decoded by libpng (OpenCV) for speed: every PNG decodes to exactly the pixels
    PIL's decoder gives (the fast path only where it is identical; the other kinds take PIL's path)."""
    from pipeline.decode import _png_gray8

    rng = np.random.default_rng(len(case))
    h, w = (301, 207) if case == "odd-size" else (240, 180)
    img = np.full((h, w), 250, np.uint8)
    if case == "noise":
        img = rng.integers(0, 256, (h, w), dtype=np.uint8)
    else:
        for y in range(20, h - 20, 24):
            img[y:y + 9, 15:w - 15] = rng.integers(0, 90, (9, w - 30), dtype=np.uint8)
    buf = io.BytesIO()
    if case == "gray-16bit":
        Image.fromarray(img.astype(np.uint16) * 257).save(buf, format="PNG")
    elif case == "palette":
        Image.fromarray(img).convert("P").save(buf, format="PNG")
    elif case == "gray-4bit":
        Image.fromarray((img // 17) * 17).save(buf, format="PNG", bits=4)
    elif case == "transparent-key":
        Image.fromarray(img).save(buf, format="PNG", transparency=250)
    else:
        Image.fromarray(img).save(buf, format="PNG", dpi=(300, 300))
    data = buf.getvalue()
    if case == "gamma-chunk":  # a gAMA chunk after IHDR: PIL ignores it, so must the fast path
        data = data[:33] + _png_chunk(b"gAMA", (45455).to_bytes(4, "big")) + data[33:]
    expected = _pil_gray(data)
    got = decode_page(data, 1)
    assert got.image.dtype == np.uint8 and got.image.shape == expected.shape
    assert np.array_equal(got.image, expected)
    fast = _png_gray8(data, Image.open(io.BytesIO(data)))
    assert (fast is not None) == (case in ("text", "noise", "odd-size", "gamma-chunk"))


def test_png_fast_path_never_accepts_a_truncated_png():
    img = np.full((200, 160), 255, np.uint8)
    img[50:120, 20:140] = 0
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with pytest.raises(UnreadableFile):
        decode_page(buf.getvalue()[: len(buf.getvalue()) // 2], 1)
