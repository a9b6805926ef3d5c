"""Pages built differently from the graded corpus: the classes of gate error that issue 12 reported.

Each function returns a grayscale page (uint8) built from a rendered page, with what is known about
it (how much of the text is lost, where).  Used by tests/test_quality_hard.py and the quality benchmark's
`hard` kind.

* `steep_scan` – a page laid on the glass at a steep angle (25-40 degrees): its corners lie outside the
  scanned area, the lid (white, grey or black) shows beside it; `lost` is the share of ink outside.
* `near_edge` – a skewed page cropped so its text comes within `pad` pixels of the scan's edge, nothing cut.
* `edge_cut_photo` – a phone photo (perspective, shading, JPEG) of a sheet whose right part lies outside
  the picture: every right-to-left line loses its first letters.
* `form_page` – a judiciary-style form: a ruled frame close to the sheet's edge, boxed fields, a title.
* `small_photo` – a phone photo of a page taken small (about 480 x 640 px for A4, ~57 dpi).
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import degrade as D
from .photo import phone_photo
from .render import FALLBACK_TEXT, FONTS, RenderedPage, render_page

# a fixed text (not the seed articles), so that the pages are the same on every machine
FULL_TEXT = " ".join([FALLBACK_TEXT] * 3)


def steep_scan(page: np.ndarray, angle: float, *, lid: int = 235, shift=(0, 0)) -> tuple[np.ndarray, float]:
    """The page rotated by `angle` (CCW) about its centre inside a scan area of the page's own size.

    Returns (scan, lost): `lost` is the share of the page's ink that fell outside the scanned area.
    """
    h, w = page.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[0, 2] += shift[0]
    m[1, 2] += shift[1]
    scan = cv2.warpAffine(page, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=int(lid))
    ink = (page < 128).astype(np.uint8)
    kept = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return scan, float(1.0 - kept.sum() / max(int(ink.sum()), 1))


def near_edge(page: np.ndarray, angle: float, pad: int = 3, edges: str = "lrtb") -> np.ndarray:
    """The page skewed by `angle` and cropped to `pad` px around its text on the given edges: nothing is cut."""
    s = D.skew(page, angle)
    ys, xs = np.nonzero(s < 128)
    y0 = ys.min() - pad if "t" in edges else 0
    y1 = ys.max() + pad + 1 if "b" in edges else s.shape[0]
    x0 = xs.min() - pad if "l" in edges else 0
    x1 = xs.max() + pad + 1 if "r" in edges else s.shape[1]
    return np.ascontiguousarray(s[max(0, y0):y1, max(0, x0):x1])


def edge_cut_photo(page: np.ndarray, *, outside: float = 0.2, seed: int = 2, size=(3000, 4000),
                   shade: float = 0.6) -> np.ndarray:
    """A phone photo of `page` whose right `outside` share of the sheet lies beyond the picture's right edge."""
    W, H = size
    r = 1.0 + outside
    corners = [[0.10 * W, 0.08 * H], [r * W, 0.06 * H], [(r + 0.02) * W, 0.93 * H], [0.08 * W, 0.92 * H]]
    jpg, _ = phone_photo(page, corners=corners, size=size, seed=seed, shade=shade)
    return cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_GRAYSCALE)


def form_page(*, dpi: int = 300, font: str = "naskh", seed: int = 0, text: str | None = None) -> RenderedPage:
    """A one-page judiciary-style form (دادنامه): a ruled frame 6 mm inside the sheet, boxed fields, body text."""
    if text is None:  # a fixed window of the built-in text: the same page on every machine
        words = FALLBACK_TEXT.split()
        start = (seed * 37) % max(1, len(words) - 160)
        text = " ".join((words * 2)[start:start + 160])
    base = render_page(text, font=font, size_pt=12, dpi=dpi, margin_mm=30, title="دادنامه")
    img = Image.fromarray(base.image.copy())
    d = ImageDraw.Draw(img)
    w, h = img.size
    mm = dpi / 25.4
    t = max(1, round(0.5 * mm))
    d.rectangle([round(6 * mm), round(6 * mm), w - round(6 * mm), h - round(6 * mm)], outline=0, width=t)
    face = ImageFont.truetype(FONTS[font], size=round(11 / 72 * dpi), layout_engine=ImageFont.Layout.RAQM)
    labels = ["شماره پرونده", "شماره دادنامه", "تاریخ"]
    for i, lab in enumerate(labels):
        x1 = w - round((10 + 62 * i) * mm)
        y0 = round(12 * mm)
        d.rectangle([x1 - round(58 * mm), y0, x1, y0 + round(12 * mm)], outline=0, width=max(1, t // 2))
        d.text((x1 - round(2 * mm), y0 + round(2 * mm)), lab, font=face, fill=0, direction="rtl", language="fa", anchor="ra")
    return RenderedPage(np.asarray(img, np.uint8).copy(), "\n".join(labels[::-1]) + "\n" + base.text, dpi, font, 12, [])


def small_photo(page: np.ndarray, *, size=(600, 800), seed: int = 3) -> np.ndarray:
    """A phone photo of `page` taken small (the sheet about 480 x 640 px of a 600 x 800 picture)."""
    jpg, _ = phone_photo(page, size=size, seed=seed, blur=0.6)
    return cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_GRAYSCALE)
