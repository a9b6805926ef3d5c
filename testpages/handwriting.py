"""Handwritten Persian pages (simulated) for the quality gate: petitions, letters, notes, filled-in forms.

Khana has no photographed handwriting it may ship, so the set is drawn from script-style fonts and then
made irregular the way a hand is:

* fonts: Noto Nastaliq Urdu (Debian's fonts-noto-core, always there: Nastaliq is the everyday Persian
  hand), Nafees (fonts-nafees, a Nastaliq-like web face), KacstPen and KacstFarsi (fonts-kacst, pen and
  brush hands; they lack پ چ ژ گ ک ی and Persian digits, so those are written with their Arabic
  neighbours, as many hands do). Fonts that are not installed are skipped (`available_styles`).
* per word: baseline offset, rotation (±3°), slant (shear), size (±12 %), stroke weight (thin/normal/
  pressed: erosion/dilation), darkness (pen pressure); irregular gaps between words;
* per line: a baseline that drifts (a slope up to ±2.5° and a slow wave), uneven line pitch, a ragged
  right (starting) margin, the last line short;
* the page: an elastic distortion (a smooth random displacement field, a few px), optional ruled paper
  (faint blue lines the writing does not follow exactly), blue ballpoint ink (grey ~ 70-110 once the scan
  is grey) or black ink;
* delivery: a flatbed scan (300 dpi, a little blur and grain) or a phone photo (testpages/photo.py:
  perspective, shading, JPEG) of the sheet.

How far it resembles real handwriting: the letter shapes are a typeface's, identical every time a letter
recurs (a hand varies them), joins are perfect and there are no corrections, crossings-out or ligature
slips; the layout, baseline, slant, weight and ink irregularity are those of a careful hand. Tesseract
reads these pages badly (mean confidence ~30-55), as it reads real handwriting.

`faulty` applies the real image faults a handwritten page can have (blurred, cut off, too small, dark).
`form_with_handwriting` / `signed_page` are printed pages with handwritten parts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import degrade as D
from .photo import phone_photo
from .render import A4_MM, FONTS, RenderedPage, render_page, text_sample

HAND_FONTS: dict[str, tuple[str, bool]] = {  # style -> (font file, needs Arabic letter forms)
    "nastaliq": ("/usr/share/fonts/truetype/noto/NotoNastaliqUrdu-Regular.ttf", False),
    "nafees": ("/usr/share/fonts/truetype/fonts-nafees/NafeesWeb.ttf", False),
    "pen": ("/usr/share/fonts/truetype/kacst/KacstPen.ttf", True),
    "brush": ("/usr/share/fonts/truetype/kacst/KacstFarsi.ttf", True),
}

# Persian letters a font lacks -> the Arabic letters a hand would write for them
_ARABIC = str.maketrans({"ی": "ي", "ک": "ك", "گ": "ك", "پ": "ب", "چ": "ج", "ژ": "ز", ".": "", ":": "", "«": "", "»": "",
                         **{chr(0x06F0 + i): chr(0x0660 + i) for i in range(10)}, "\u200c": " "})


def available_styles() -> list[str]:
    return [s for s, (p, _) in HAND_FONTS.items() if Path(p).exists()]


@dataclass
class HandPage:
    image: np.ndarray          # uint8 grey page (or photo)
    text: str                  # what was written, lines joined by "\n"
    style: str
    dpi: float
    ink: str = "blue"
    delivery: str = "scan"
    boxes: list = field(default_factory=list)  # handwritten areas (x0, y0, x1, y1) on the unphotographed sheet


def _word_image(word: str, face: ImageFont.FreeTypeFont, rng: np.random.Generator, px: float,
                weight: int) -> np.ndarray:
    """One word as ink coverage 0..1 (float32), slanted, rotated and scaled like a hand writes it."""
    l, t, r, b = face.getbbox(word, direction="rtl", language="fa", anchor="ls")
    pad = int(px * 0.6)
    w, h = int(r - l) + 2 * pad, int(b - t) + 2 * pad
    img = Image.new("L", (max(w, 4), max(h, 4)), 0)
    ImageDraw.Draw(img).text((pad - l, pad - t), word, font=face, fill=255, direction="rtl", language="fa", anchor="ls")
    a = np.asarray(img, np.float32) / 255.0
    if weight > 0:  # pen pressure: a pressed word's strokes are a pixel or two wider
        a = cv2.dilate(a, np.ones((1 + weight, 1 + weight), np.uint8))
    ang = math.radians(rng.normal(0, 1.5))
    shear = rng.normal(0.0, 0.12)
    sc = float(np.clip(rng.normal(1.0, 0.06), 0.88, 1.12))
    c, s = math.cos(ang) * sc, math.sin(ang) * sc
    A = np.array([[c, -s + shear * c], [s, c + shear * s]], np.float64)
    hh, ww = a.shape
    ctr = np.array([ww / 2, hh / 2])
    M = np.hstack([A, (ctr - A @ ctr)[:, None]])
    return cv2.warpAffine(a, M, (ww, hh), flags=cv2.INTER_LINEAR, borderValue=0), (l - pad, t - pad)


def _elastic(cov: np.ndarray, rng: np.random.Generator, amp: float, scale: float) -> np.ndarray:
    """Smooth random displacement of the ink (amp px, correlated over `scale` px)."""
    h, w = cov.shape
    gh, gw = max(2, int(h / scale)), max(2, int(w / scale))
    dx = cv2.resize(rng.normal(0, amp, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.normal(0, amp, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(cov, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0)


def write_block(cov: np.ndarray, text: str, *, style: str, px: float, box: tuple[int, int, int, int],
                rng: np.random.Generator, pitch: float = 2.0, max_lines: int | None = None) -> list[str]:
    """Write `text` by hand into ink coverage `cov` (float32 0..1) inside `box` (x0, y0, x1, y1), right to left.

    Returns the lines written."""
    path, arabic = HAND_FONTS[style]
    face = ImageFont.truetype(path, size=max(8, int(round(px))), layout_engine=ImageFont.Layout.RAQM)
    words = (text.translate(_ARABIC) if arabic else text).split()
    x0, y0, x1, y1 = box
    lines, cur = [], []
    y = y0 + px * 1.2
    slope = math.tan(math.radians(rng.normal(0, 1.0)))
    line_no = 0
    x = x1 - abs(rng.normal(0, 0.3 * px))
    phase, wave = rng.uniform(0, 2 * math.pi), rng.uniform(0.03, 0.12) * px
    start_x = x
    for word in words:
        weight = int(rng.choice([0, 0, 0, 1, 2]) * px / 60)
        wi, (ox, oy) = _word_image(word, face, rng, px, weight)
        ww = wi.shape[1]
        if x - ww < x0 and cur:  # next line: uneven pitch, a new drift
            lines.append(" ".join(cur))
            cur = []
            line_no += 1
            if max_lines is not None and line_no >= max_lines:
                return lines
            y += px * pitch * float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.25))
            slope = math.tan(math.radians(np.clip(rng.normal(0, 0.7), -1.5, 1.5)))
            phase, wave = rng.uniform(0, 2 * math.pi), rng.uniform(0.03, 0.12) * px
            x = x1 - abs(rng.normal(0, 0.4 * px))
            start_x = x
        if y + px * 1.0 > y1:
            break
        dy = (start_x - x) * slope + wave * math.sin(phase + (start_x - x) / (4 * px)) + rng.normal(0, 0.06 * px)
        top = int(round(y + dy + oy))
        left = int(round(x - ww))
        hh = wi.shape[0]
        a0, b0 = max(0, top), max(0, left)
        a1, b1 = min(cov.shape[0], top + hh), min(cov.shape[1], left + ww)
        if a1 > a0 and b1 > b0:
            part = wi[a0 - top:a1 - top, b0 - left:b1 - left]
            np.maximum(cov[a0:a1, b0:b1], part * float(np.clip(rng.normal(0.92, 0.06), 0.7, 1.0)),
                       out=cov[a0:a1, b0:b1])
        cur.append(word)
        x = left + int(px * 0.6) - px * float(np.clip(rng.normal(0.28, 0.1), 0.08, 0.6))  # the next word's right end
    if cur:
        lines.append(" ".join(cur))
    return lines


def _ink(cov: np.ndarray, ink: str, rng: np.random.Generator, paper: np.ndarray | None = None) -> np.ndarray:
    """Coverage -> a grey sheet: ballpoint blue (~ grey 85) or black ink, uneven pressure, on `paper`."""
    h, w = cov.shape
    level = {"blue": 85.0, "black": 25.0}[ink]
    press = cv2.resize(rng.uniform(0.75, 1.0, (max(2, h // 120), max(2, w // 120))).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    base = np.full((h, w), 250.0, np.float32) if paper is None else paper.astype(np.float32)
    a = np.clip(cov * press, 0, 1)
    return np.clip(base * (1 - a) + level * a, 0, 255).astype(np.uint8)


def ruled_paper(h: int, w: int, pitch: float, top: float, rng: np.random.Generator) -> np.ndarray:
    """A sheet of lined paper (grey): faint blue rules every `pitch` px and a margin line."""
    p = np.full((h, w), 250, np.uint8)
    y = top
    while y < h - pitch:
        cv2.line(p, (0, int(y)), (w - 1, int(y)), 205, max(1, int(round(pitch / 40))))
        y += pitch
    x = int(w - 0.08 * w)
    cv2.line(p, (x, 0), (x, h - 1), 215, max(1, int(round(pitch / 40))))
    return p


def handwritten_page(*, style: str = "nastaliq", seed: int = 0, dpi: int = 300, size_pt: float = 16.0,
                     ink: str = "blue", ruled: bool = False, delivery: str = "scan", n_words: int = 160,
                     text: str | None = None) -> HandPage:
    """A handwritten A4 petition/letter: `delivery` "scan" (flatbed, `dpi`) or "photo" (phone photo)."""
    rng = np.random.default_rng(seed)
    if text is None:
        text = text_sample(n_words, seed=seed + 11)
    W, H = round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)
    px = size_pt / 72.0 * dpi
    pitch = float(rng.uniform(1.9, 2.4))
    margin = int(rng.uniform(18, 28) / 25.4 * dpi)
    cov = np.zeros((H, W), np.float32)
    lines = write_block(cov, text, style=style, px=px, box=(margin, margin, W - margin, H - margin), rng=rng,
                        pitch=pitch)
    cov = _elastic(cov, rng, amp=0.05 * px, scale=3 * px)
    paper = ruled_paper(H, W, px * pitch, margin + px * 1.5, rng) if ruled else None
    sheet = _ink(cov, ink, rng, paper)
    sheet = D.blur(sheet, 0.7)
    if delivery == "photo":
        jpg, _ = phone_photo(sheet, seed=seed, shade=float(rng.uniform(0.25, 0.5)), blur=1.0)
        img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_GRAYSCALE)
    else:
        img = D.gaussian_noise(sheet, 3.0, seed=seed)
    return HandPage(img, "\n".join(lines), style, float(dpi), ink, delivery, [(margin, margin, W - margin, H - margin)])


FAULTS = ("blurred", "cut_off", "low_resolution", "too_dark")


def faulty(page: HandPage, fault: str, seed: int = 0) -> HandPage:
    """The page with a real image fault; the reason the gate must give is `fault`."""
    img, dpi = page.image, page.dpi
    if fault == "blurred":
        img = D.blur(img, 9.0 * dpi / 300.0)  # strokes ~5 px smeared over ~20: illegible
    elif fault == "cut_off":
        img = D.cut_off(img, 0.25, ("right", "left", "bottom")[seed % 3])
    elif fault == "low_resolution":
        img, dpi = D.downsample(img, int(dpi), 50), 50.0
    elif fault == "too_dark":
        img = D.darken(img, 0.12)
    else:
        raise ValueError(fault)
    return HandPage(img, page.text, page.style, dpi, page.ink, page.delivery + "+" + fault, page.boxes)


def _signature(cov: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator, width: float) -> None:
    """A flourish: a few loops and a long underline, drawn as a smooth random pen path."""
    x0, y0, x1, y1 = box
    n = 400
    t = np.linspace(0, 1, n)
    xs = x1 - (x1 - x0) * t
    ys = (y0 + y1) / 2 + (y1 - y0) * 0.3 * np.sin(2 * np.pi * (2 + rng.uniform(0, 2)) * t + rng.uniform(0, 6))
    xs = xs + (x1 - x0) * 0.06 * np.sin(2 * np.pi * (5 + rng.uniform(0, 3)) * t)
    pts = np.stack([xs, ys], 1).astype(np.int32)
    canvas = np.zeros_like(cov, np.uint8)
    cv2.polylines(canvas, [pts], False, 255, max(1, int(round(width))), cv2.LINE_AA)
    yl = int(y1 - (y1 - y0) * 0.1)
    cv2.line(canvas, (int(x1), yl + int(rng.integers(-5, 5))), (int(x0 + 0.1 * (x1 - x0)), yl), 255,
             max(1, int(round(width))), cv2.LINE_AA)
    np.maximum(cov, canvas.astype(np.float32) / 255.0, out=cov)


def signed_page(*, font: str = "naskh", seed: int = 0, dpi: int = 300, style: str = "nastaliq",
                ink: str = "blue") -> HandPage:
    """A printed letter with a handwritten signature, the signer's name and a date under it."""
    rng = np.random.default_rng(seed + 500)
    base = render_page(font=font, size_pt=12, dpi=dpi, seed=seed, n_words=120)
    ys = np.nonzero((base.image < 128).any(axis=1))[0]
    last = int(ys.max()) if ys.size else base.image.shape[0] // 2
    h, w = base.image.shape
    mm = dpi / 25.4
    cov = np.zeros((h, w), np.float32)
    top = min(h - int(60 * mm), last + int(15 * mm))
    box = (int(20 * mm), top, int(95 * mm), top + int(25 * mm))
    _signature(cov, box, rng, width=0.5 * mm)
    name = text_sample(3, seed=seed + 7)
    write_block(cov, name, style=style, px=14 / 72 * dpi, box=(int(20 * mm), top + int(26 * mm), int(110 * mm),
                                                                  top + int(45 * mm)), rng=rng, max_lines=1)
    sheet = np.minimum(base.image, _ink(cov, ink, rng))
    return HandPage(sheet, base.text, style, float(dpi), ink, "scan", [box])


def form_with_handwriting(*, font: str = "naskh", seed: int = 0, dpi: int = 300, style: str = "nastaliq",
                          ink: str = "blue") -> HandPage:
    """A printed form (testpages.hard.form_page) whose boxes are filled in by hand, with a signature."""
    from .hard import form_page

    rng = np.random.default_rng(seed + 900)
    base = form_page(dpi=dpi, font=font, seed=seed)
    h, w = base.image.shape
    mm = dpi / 25.4
    cov = np.zeros((h, w), np.float32)
    boxes = []
    for i in range(3):  # the three boxed fields along the top: a handwritten value after each label
        x1 = w - round((10 + 62 * i) * mm) - round(24 * mm)
        b = (x1 - round(32 * mm), round(13 * mm), x1, round(24 * mm))
        write_block(cov, text_sample(2, seed=seed * 3 + i), style=style, px=11 / 72 * dpi, box=b, rng=rng, max_lines=1)
        boxes.append(b)
    ys = np.nonzero((base.image[int(30 * mm):h - int(10 * mm), int(10 * mm):w - int(10 * mm)] < 128).any(axis=1))[0]
    last = int(ys.max()) + int(30 * mm) if ys.size else h // 2
    top = min(h - int(45 * mm), last + int(8 * mm))
    b = (int(20 * mm), top, int(90 * mm), top + int(22 * mm))
    _signature(cov, b, rng, width=0.5 * mm)
    boxes.append(b)
    sheet = np.minimum(base.image, _ink(cov, ink, rng))
    return HandPage(sheet, base.text, style, float(dpi), ink, "scan", boxes)


def hand_set(seed: int = 0) -> list[tuple[str, HandPage, str]]:
    """The handwriting set: (id, page, expected) with expected "pass" or the true reason of the hold.

    Legible handwritten pages in every installed style, scans and phone photos, blue and black ink,
    plain and ruled paper; faulty handwritten pages; printed pages with handwritten parts."""
    out = []
    styles = available_styles()
    k = 0
    for i, style in enumerate(styles):
        for j, (delivery, ink, ruled) in enumerate((("scan", "blue", False), ("photo", "blue", True),
                                                    ("scan", "black", True))):
            s = seed * 100 + i * 10 + j
            p = handwritten_page(style=style, seed=s, ink=ink, ruled=ruled, delivery=delivery,
                                 size_pt=(14, 16, 18)[(i + j) % 3])
            out.append((f"hand-{style}-{delivery}-{ink}{'-ruled' if ruled else ''}-{s}", p, "pass"))
    for fault_i, fault in enumerate(FAULTS):
        style = styles[fault_i % len(styles)]
        s = seed * 100 + 50 + fault_i
        p = faulty(handwritten_page(style=style, seed=s, ink="blue"), fault, seed=s)
        out.append((f"hand-{style}-{fault}-{s}", p, fault))
        k += 1
    for i, font in enumerate(("naskh", "nazli")):
        st = styles[i % len(styles)]
        out.append((f"signed-{font}-{st}-{seed + i}", signed_page(font=font, seed=seed + i, style=st), "pass"))
        out.append((f"form-{font}-{st}-{seed + i}", form_with_handwriting(font=font, seed=seed + i, style=st), "pass"))
    return out
