"""Render Persian text onto white A4 pages at a given resolution.

Pillow's RAQM layout shapes Persian (joining forms, right-to-left); lines are
wrapped greedily on word boundaries and right-aligned like a real petition.
The ground truth is the text exactly as drawn, one line per rendered line.
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

A4_MM = (210.0, 297.0)

# Persian-capable fonts from Debian's fonts-noto-core and fonts-farsiweb.
FONTS: dict[str, str] = {
    "naskh": "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf",
    "sans": "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "nazli": "/usr/share/fonts/truetype/farsiweb/nazli.ttf",
    "homa": "/usr/share/fonts/truetype/farsiweb/homa.ttf",
    "naskh-bold": "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Bold.ttf",
}

SEEDS_DIR = Path(os.environ.get("KHANA_SEEDS_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "seeds"))

# Built-in text (written for Khana) so the generator works without ../shared/seeds: enough
# plain prose to fill an A4 page, as in the petitions the offices scan.
FALLBACK_TEXT = (
    "دفاتر خدمات الکترونیک قضایی هر روز دادخواست و شکایت و مدارک مردم را دریافت می‌کنند و پس از اسکن "
    "برای دادگاه می‌فرستند. اگر تصویر یک صفحه تار یا تیره یا کج باشد، دادگاه نمی‌تواند آن را بخواند و پرونده "
    "به دفتر برمی‌گردد. در این میان چند هفته از وقت مردم و دادگاه از دست می‌رود و رسیدگی به پرونده عقب می‌افتد. "
    "خوانا برای این ساخته شده است که کیفیت هر صفحه را همان لحظه که مراجعه کننده هنوز در دفتر است بسنجد. "
    "اگر صفحه‌ای خوانا نباشد، کارمند دفتر بی‌درنگ می‌بیند کدام صفحه را باید دوباره اسکن کند و چرا. "
    "صفحه‌هایی که کج یا وارونه اسکن شده‌اند، پیش از داوری صاف و راست می‌شوند و سایه و تیرگی آن‌ها اصلاح می‌شود. "
    "سپس متن فارسی هر صفحه خوانده می‌شود تا کارمندان دادگاه بتوانند پرونده را با شماره پرونده یا با جست‌وجوی "
    "واژه‌ها پیدا کنند. یک پرونده تنها زمانی به دادگاه فرستاده می‌شود که همه صفحه‌های آن از آزمون کیفیت گذشته باشند. "
    "کارشناسان کنترل کیفیت صفحه‌های نگه‌داشته را بررسی می‌کنند و می‌توانند با نوشتن دلیل آن‌ها را بپذیرند "
    "یا اسکن دوباره را بخواهند. همه این کارها در دفتر رویدادها ثبت می‌شود و کارنامه کیفیت هر دفتر برای "
    "مدیران روشن است. هدف این است که هیچ برگه ناخوانایی به دادگاه نرسد و هیچ پرونده‌ای به خاطر یک اسکن بد "
    "معطل نماند. دفترها باید بتوانند حتی وقتی اینترنت قطع می‌شود کار خود را ادامه دهند و پرونده‌ها پس از "
    "برقراری دوباره ارتباط بدون کم و کاست فرستاده شوند. کیفیت اسکن تنها یک موضوع فنی نیست بلکه بخشی از حق "
    "مردم برای دادرسی سریع و منصفانه است و هر روز تاخیر در رسیدگی برای خانواده‌ها هزینه دارد."
)


def available_fonts() -> list[str]:
    return [name for name, path in FONTS.items() if Path(path).exists()]


def seed_texts() -> list[str]:
    """The seed articles' bodies (metadata lines stripped), or a built-in paragraph."""
    texts = []
    if SEEDS_DIR.is_dir():
        for path in sorted(SEEDS_DIR.glob("*.txt")):
            body = path.read_text(encoding="utf-8")
            body = re.sub(r"^\s*date\s+\S+\s*", "", body)
            body = re.sub(r"\s+", " ", body).strip()
            if body:
                texts.append(body)
    return texts or [FALLBACK_TEXT]


def text_sample(n_words: int, seed: int = 0) -> str:
    """A window of `n_words` consecutive words from the seed articles."""
    rng = random.Random(seed)
    words = rng.choice(seed_texts()).split(" ")
    if len(words) <= n_words:
        return " ".join(words)
    start = rng.randrange(0, len(words) - n_words)
    return " ".join(words[start : start + n_words])


@dataclass
class RenderedPage:
    image: np.ndarray  # uint8 grayscale, white paper (255), black ink
    text: str  # ground truth, lines joined with "\n"
    dpi: int
    font: str
    size_pt: float
    line_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1


def _wrap(words: list[str], font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines: list[str] = []
    current: list[str] = []
    for word in words:
        trial = " ".join(current + [word])
        if current and font.getlength(trial, direction="rtl", language="fa") > width:
            lines.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines


def render_page(
    text: str | None = None,
    *,
    font: str = "naskh",
    size_pt: float = 12.0,
    dpi: int = 300,
    margin_mm: float = 25.0,
    line_spacing: float = 1.6,
    title: str | None = None,
    seed: int = 0,
    n_words: int = 220,
) -> RenderedPage:
    """Draw `text` (or a seed sample) on a white A4 page; stops at the bottom margin.

    The returned ground truth holds only the text that fitted on the page.
    """
    if text is None:
        text = text_sample(n_words, seed)
    width = round(A4_MM[0] / 25.4 * dpi)
    height = round(A4_MM[1] / 25.4 * dpi)
    margin = round(margin_mm / 25.4 * dpi)
    px = size_pt / 72.0 * dpi
    face = ImageFont.truetype(FONTS[font], size=max(6, round(px)), layout_engine=ImageFont.Layout.RAQM)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    step = round(px * line_spacing)
    y = margin
    drawn: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    right = width - margin
    paragraphs = ([title] if title else []) + [p for p in text.split("\n")]
    for paragraph in paragraphs:
        for line in _wrap(paragraph.split(), face, width - 2 * margin):
            if y + step > height - margin:
                break
            draw.text((right, y), line, font=face, fill=0, direction="rtl", language="fa", anchor="ra")
            boxes.append(tuple(int(v) for v in draw.textbbox((right, y), line, font=face, direction="rtl", language="fa", anchor="ra")))
            drawn.append(line)
            y += step
    return RenderedPage(np.asarray(img, dtype=np.uint8).copy(), "\n".join(drawn), dpi, font, size_pt, boxes)
