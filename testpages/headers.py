"""Rendered Iranian court-document headers with known identifiers (ground truth).

Two layouts modelled on documents of the judiciary's systems:

* `dadnameh`  (دادنامه, a court decision): the state/judiciary heading, then
  شماره دادنامه / تاریخ تنظیم / شماره پرونده / شماره بایگانی شعبه, the parties and the
  start of the decision text.
* `dadkhast`  (برگ دادخواست, a petition filed at an e-services office): office name and
  code, کد رهگیری, شماره پرونده, date, plaintiff/defendant with national codes and the
  claim.

Identifiers are random but well formed (16 or 18 digit case numbers, Solar Hijri
dates); digits are printed either Persian (۱۴۰۱) or Latin (1401) like real headers.
Fields sit two to a line (one at the right margin, one at the left), so reading order
matters. Noto fonts lack "/" and "-"; dates are then drawn with DejaVu Sans for the
separators, as a word processor's font fallback would do.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from testpages.render import A4_MM, FONTS

FALLBACK_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_NEEDS_FALLBACK = {"naskh", "sans", "naskh-bold"}
FA = "۰۱۲۳۴۵۶۷۸۹"

FIRST = ["علی", "محمد", "حسین", "زهرا", "فاطمه", "مریم", "رضا", "مهدی", "سارا", "احمد", "نرگس", "حمید"]
LAST = ["احمدی", "محمدی", "حسینی", "رضایی", "کریمی", "موسوی", "جعفری", "صادقی", "رحیمی", "قاسمی", "نوری", "کاظمی"]
CITIES = ["تهران", "مشهد", "اصفهان", "شیراز", "تبریز", "کرج", "قم", "اهواز", "رشت", "کرمان"]
CLAIMS = [
    "مطالبه وجه چک به مبلغ {amount} ریال به انضمام خسارت تأخیر تأدیه و هزینه دادرسی",
    "الزام به تنظیم سند رسمی انتقال یک دستگاه آپارتمان و مطالبه خسارات دادرسی",
    "مطالبه مهریه و نفقه معوقه به انضمام کلیه خسارات قانونی",
    "تخلیه عین مستأجره به علت انقضای مدت اجاره و مطالبه اجور معوقه",
]


@dataclass
class HeaderPage:
    image: np.ndarray
    text: str  # ground truth, lines joined by "\n" (each line in reading order)
    fields: list[dict[str, str]]  # {"kind", "value" (Latin digits), "text" (as printed)}
    dpi: int
    font: str
    layout: str
    case_number: str = ""  # the declared case number (Latin digits)
    line_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    # ink box (left, top, right, bottom) of each field's printed number, in `fields` order
    field_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _case_number(rng: random.Random, year: int) -> str:
    # 18 digits (1401 + office/branch code + serial) or the older 16 digits (99 + ...)
    if year < 1400 and rng.random() < 0.5:
        return f"{year % 100}" + _digits(rng, 14)
    return f"{year}" + _digits(rng, 14)


def _date(rng: random.Random, year: int) -> tuple[int, int, int]:
    return year, rng.randint(1, 12), rng.randint(1, 29)


class _Printer:
    def __init__(self, persian_digits: bool):
        self.persian = persian_digits

    def num(self, s: str) -> str:
        return s.translate(str.maketrans("0123456789", FA)) if self.persian else s


def _layout_lines(layout: str, rng: random.Random, persian_digits: bool):
    """-> (lines, fields, case_number). A line is a list of (segment, align) where
    align is "right" (starts at the right margin) or "left" (ends at the left margin)
    or "center"."""
    p = _Printer(persian_digits)
    year = rng.choice([1399, 1400, 1401, 1402, 1403])
    case = _case_number(rng, year)
    y, m, d = _date(rng, year)
    date = p.num(f"{y}/{m:02d}/{d:02d}")
    date_value = f"{y}/{m:02d}/{d:02d}"
    name = lambda: f"{rng.choice(FIRST)} {rng.choice(LAST)}"  # noqa: E731
    city = rng.choice(CITIES)
    fields: list[dict[str, str]] = []

    def f(kind: str, value: str, printed: str) -> str:
        fields.append({"kind": kind, "value": value, "text": printed})
        return printed

    if layout == "dadnameh":
        decision = f"{year}" + _digits(rng, 14)
        archive = _digits(rng, 7)
        lines = [
            [("بسمه تعالی", "center")],
            [("جمهوری اسلامی ایران", "right"), ("قوه قضاییه", "left")],
            [(f"دادگاه عمومی حقوقی شهرستان {city}", "right")],
            [("دادنامه", "center")],
            [(f"شماره دادنامه: {f('decision_number', decision, p.num(decision))}", "right"),
             (f"تاریخ تنظیم: {f('date', date_value, date)}", "left")],
            [(f"شماره پرونده: {f('case_number', case, p.num(case))}", "right"),
             (f"شماره بایگانی شعبه: {f('archive_number', archive, p.num(archive))}", "left")],
            [(f"خواهان: آقای {name()} فرزند {rng.choice(FIRST)} به نشانی {city}", "right")],
            [(f"خوانده: خانم {name()} به نشانی {rng.choice(CITIES)}", "right")],
            [("خواسته: " + rng.choice(CLAIMS).format(amount=p.num(f"{rng.randint(2, 90)}0000000")), "right")],
            [("رأی دادگاه", "center")],
            [("در خصوص دعوی خواهان به طرفیت خوانده به خواسته فوق، دادگاه با بررسی محتویات پرونده", "right")],
            [("و ملاحظه مستندات ابرازی، دعوی خواهان را وارد تشخیص داده و به استناد مواد قانونی حکم صادر می‌نماید.", "right")],
        ]
    elif layout == "dadkhast":
        tracking = _digits(rng, rng.choice([10, 12, 14]))
        office = _digits(rng, 5)
        y2, m2, d2 = _date(rng, year)
        date2_value = f"{y2}/{m2:02d}/{d2:02d}"
        lines = [
            [("برگ دادخواست به دادگاه عمومی (حقوقی)", "center")],
            [(f"دفتر خدمات الکترونیک قضایی {city} کد {p.num(office)}", "right")],
            [(f"کد رهگیری: {f('tracking_code', tracking, p.num(tracking))}", "right"),
             (f"تاریخ ثبت: {f('date', date2_value, p.num(date2_value))}", "left")],
            [(f"شماره پرونده: {f('case_number', case, p.num(case))}", "right"),
             (f"تاریخ: {f('date', date_value, date)}", "left")],
            [(f"خواهان: {name()} کد ملی {p.num(_digits(rng, 10))}", "right")],
            [(f"خوانده: {name()} کد ملی {p.num(_digits(rng, 10))}", "right")],
            [("خواسته و بهای آن: " + rng.choice(CLAIMS).format(amount=p.num(f"{rng.randint(2, 90)}0000000")), "right")],
            [("ریاست محترم دادگاه عمومی حقوقی", "right")],
            [("با سلام، احتراماً به استحضار می‌رساند خوانده به موجب مستندات پیوست مبلغ خواسته را", "right")],
            [("بدهکار است و با وجود مراجعات مکرر از پرداخت آن خودداری نموده است. صدور حکم مورد استدعاست.", "right")],
        ]
    else:
        raise ValueError(f"unknown header layout {layout!r}")
    return lines, fields, case


def _draw_segment(draw, x_right: float, y: float, text: str, face, fallback, use_fallback: bool,
                  spans: list | None = None) -> float:
    """Draw `text` ending at x_right (right-to-left); returns its width. Tokens holding
    "/" are drawn with the fallback font when the main font lacks the glyph. `spans` gets
    (token, x_left, x_right) of each token."""
    tokens = text.split(" ")
    space = face.getlength(" ")
    x = x_right
    for i, tok in enumerate(tokens):
        if spans is not None:
            w = (fallback if (use_fallback and ("/" in tok or "-" in tok)) else face).getlength(
                tok, **({} if (use_fallback and ("/" in tok or "-" in tok)) else {"direction": "rtl", "language": "fa"}))
            spans.append((tok, x - w, x))
        font = fallback if (use_fallback and ("/" in tok or "-" in tok)) else face
        if font is fallback:
            width = font.getlength(tok)
            draw.text((x, y), tok, font=font, fill=0, anchor="rs")
        else:
            width = font.getlength(tok, direction="rtl", language="fa")
            draw.text((x, y), tok, font=font, fill=0, direction="rtl", language="fa", anchor="rs")
        x -= width + (space if i < len(tokens) - 1 else 0)
    return x_right - x


def _segment_width(text: str, face, fallback, use_fallback: bool) -> float:
    tokens = text.split(" ")
    total = face.getlength(" ") * (len(tokens) - 1)
    for tok in tokens:
        if use_fallback and ("/" in tok or "-" in tok):
            total += fallback.getlength(tok)
        else:
            total += face.getlength(tok, direction="rtl", language="fa")
    return total


def render_header(
    layout: str = "dadnameh",
    *,
    font: str = "nazli",
    persian_digits: bool = True,
    seed: int = 0,
    size_pt: float = 12.0,
    dpi: int = 300,
    margin_mm: float = 20.0,
    line_spacing: float = 1.8,
) -> HeaderPage:
    rng = random.Random(seed)
    lines, fields, case = _layout_lines(layout, rng, persian_digits)
    width = round(A4_MM[0] / 25.4 * dpi)
    height = round(A4_MM[1] / 25.4 * dpi)
    margin = round(margin_mm / 25.4 * dpi)
    px = size_pt / 72.0 * dpi
    face = ImageFont.truetype(FONTS[font], size=max(6, round(px)), layout_engine=ImageFont.Layout.RAQM)
    fallback = ImageFont.truetype(FALLBACK_FONT, size=max(6, round(px * 0.85)))
    use_fb = font in _NEEDS_FALLBACK
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    step = round(px * line_spacing)
    y = margin + px
    gt_lines, boxes = [], []
    tokens: list[tuple[str, float, float, float]] = []  # (token, x_left, x_right, baseline y)
    for line in lines:
        parts = []
        for text, align in line:
            w = _segment_width(text, face, fallback, use_fb)
            if align == "right":
                x_right = width - margin
            elif align == "left":
                x_right = margin + w
            else:
                x_right = (width + w) / 2
            spans: list = []
            _draw_segment(draw, x_right, y, text, face, fallback, use_fb, spans)
            tokens.extend((t, a, b, y) for t, a, b in spans)
            boxes.append((int(x_right - w), int(y - px), int(x_right), int(y + px * 0.4)))
            parts.append(text)
        gt_lines.append(" ".join(parts))
        y += step
    arr = np.asarray(img, dtype=np.uint8).copy()
    field_boxes, used = [], set()
    for f in fields:
        i = next(i for i, t in enumerate(tokens) if t[0] == f["text"] and i not in used)
        used.add(i)
        _, a, b, base = tokens[i]
        x0, x1 = max(0, int(a) - 2), min(width, int(b) + 3)
        y0, y1 = max(0, int(base - px * 1.2)), min(height, int(base + px * 0.6))
        ys, xs = np.nonzero(arr[y0:y1, x0:x1] < 128)
        field_boxes.append((x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1))
    return HeaderPage(arr, "\n".join(gt_lines), fields, dpi, font, layout, case, boxes, field_boxes)
