"""Persian digits read glyph by glyph: a number's crop is cut into its glyphs (connected
ink components; every Persian digit is one stroke or dot) and each glyph is matched
against digit templates rendered at run time from the Persian fonts installed with Khana
(Noto Naskh/Sans Arabic, Nazli, Homa: `fonts-noto-core`, `fonts-farsiweb`).

`fas` reads long runs of Persian digits poorly in some fonts (bench/ocr/headers.py: 6/20
case numbers): digit shapes differ between fonts (۴ ۵ ۶ ۷ in Naskh, Homa's ۰ and ۲), and a
digit run has no word context for the model. Printed digits are simple, well separated
shapes, so a template match per glyph (the classic method for printed digits) reads them;
the font is chosen per number (all its glyphs at once), so one font's ۶ never reads as
another's ۲. Pure functions over the image; the fonts are read once, when first needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
SEPARATORS = "/"
LATIN_DIGITS = "0123456789"  # competitors: a number in Latin digits is not read as Persian
# Persian-capable fonts installed with Khana (Dockerfile: fonts-noto-core, fonts-farsiweb)
DEFAULT_DIGIT_FONTS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Bold.ttf",
    "/usr/share/fonts/truetype/farsiweb/nazli.ttf",
    "/usr/share/fonts/truetype/farsiweb/nazlib.ttf",
    "/usr/share/fonts/truetype/farsiweb/homa.ttf",
    "/usr/share/fonts/truetype/farsiweb/titr.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# "/" comes from the font itself or from a fallback font (word processors do that)
SEPARATOR_FONTS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
NORM = 24  # glyph bitmaps are compared at NORM x NORM
TEMPLATE_PX = 96  # em size at which templates are rendered


@dataclass(frozen=True)
class Glyph:
    left: int
    right: int
    top: int
    bottom: int
    bitmap: np.ndarray = field(repr=False)  # NORM x NORM float32, aspect kept, centred
    mask: np.ndarray = field(repr=False)  # the glyph's ink (bool), its box's size

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def _normalise(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    s = (NORM - 2) / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((NORM, NORM), np.float32)
    y0, x0 = (NORM - nh) // 2, (NORM - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    out = cv2.GaussianBlur(out, (5, 5), 1.0)
    out -= out.mean()
    n = float(np.linalg.norm(out))
    return out / n if n else out


def segment(ink: np.ndarray, min_area: int = 4) -> list[Glyph]:
    """Glyphs of a binary crop (True = ink), left to right: connected components, those
    overlapping in x merged (a colon, a broken stroke), specks dropped."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area >= min_area:
            boxes.append([x, x + w, y, y + h, [i]])
    boxes.sort(key=lambda b: b[0])
    merged: list[list] = []
    for b in boxes:
        if merged:
            p = merged[-1]
            overlap = min(p[1], b[1]) - max(p[0], b[0])
            if overlap > 0.5 * min(p[1] - p[0], b[1] - b[0]):
                p[0], p[1] = min(p[0], b[0]), max(p[1], b[1])
                p[2], p[3] = min(p[2], b[2]), max(p[3], b[3])
                p[4] = p[4] + b[4]
                continue
        merged.append(b)
    out = []
    for x0, x1, y0, y1, ids in merged:
        mask = np.isin(labels[y0:y1, x0:x1], ids)
        out.append(Glyph(int(x0), int(x1), int(y0), int(y1), _normalise(mask), mask))
    return out


def _from_mask(mask: np.ndarray, left: int, top: int) -> Glyph | None:
    rows, cols = np.where(mask.any(axis=1))[0], np.where(mask.any(axis=0))[0]
    if not rows.size:
        return None
    m = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Glyph(left + int(cols[0]), left + int(cols[-1]) + 1, top + int(rows[0]), top + int(rows[-1]) + 1, _normalise(m), m)


def split_touching(g: Glyph) -> tuple[Glyph, Glyph] | None:
    """Two digits printed touching (bold faces: ۸۷) are one component: cut it at its thinnest
    column in the middle half."""
    w = g.width
    if w < 6:
        return None
    ink = g.mask.sum(axis=0)
    lo, hi = w // 4, w - w // 4
    cut = lo + int(np.argmin(ink[lo:hi]))
    a, b = _from_mask(g.mask[:, :cut], g.left, g.top), _from_mask(g.mask[:, cut + 1 :], g.left + cut + 1, g.top)
    return (a, b) if a and b else None


@dataclass(frozen=True)
class Template:
    char: str
    bitmap: np.ndarray
    aspect: float  # height / width
    rel_height: float  # height / the font's digit height (`_scale`)
    rel_mid: float  # vertical centre below the digits' centre, in digit heights


@lru_cache(maxsize=8)
def font_templates(fonts: tuple[str, ...] = DEFAULT_DIGIT_FONTS) -> tuple[tuple[str, tuple[Template, ...]], ...]:
    """((font path, templates of ۰-۹ and "/"), ...) for the fonts that exist and have the digits."""
    from PIL import Image, ImageDraw, ImageFont

    sep_font = next((f for f in SEPARATOR_FONTS if Path(f).exists()), None)
    out = []
    for path in fonts:
        if not Path(path).exists():
            continue
        try:
            face = ImageFont.truetype(path, TEMPLATE_PX)
        except OSError:
            continue
        rendered = {}
        for ch in FA_DIGITS + SEPARATORS + LATIN_DIGITS:
            f = face
            if ch not in FA_DIGITS and sep_font and not _has_glyph(face, ch):
                f = ImageFont.truetype(sep_font, int(TEMPLATE_PX * 0.85))
            img = Image.new("L", (TEMPLATE_PX * 3, TEMPLATE_PX * 3), 255)
            ImageDraw.Draw(img).text((TEMPLATE_PX, TEMPLATE_PX * 2), ch, font=f, fill=0, anchor="ls")
            ink = np.asarray(img) < 128
            if not ink.any():
                break
            glyphs = segment(ink)
            if len(glyphs) != 1:
                # a digit drawn in two pieces side by side is no template for the one-glyph matcher
                break
            rendered[ch] = glyphs[0]
        if len(rendered) < len(FA_DIGITS) + len(SEPARATORS) + len(LATIN_DIGITS) or _is_notdef(rendered):
            continue
        tall, mid = _scale([g for c, g in rendered.items() if c in FA_DIGITS])
        ts = tuple(
            Template(c, g.bitmap, g.height / max(1, g.width), g.height / tall, ((g.top + g.bottom) / 2 - mid) / tall)
            for c, g in rendered.items()
        )
        out.append((path, ts))
    return tuple(out)


def _has_glyph(face, ch: str) -> bool:
    try:
        return face.getmask(ch).getbbox() is not None and face.getmask(ch).getbbox() != face.getmask("\uffff").getbbox()
    except Exception:  # noqa: BLE001 - a font that cannot render it has no glyph
        return False


def _is_notdef(rendered: dict[str, Glyph]) -> bool:
    """A font without Persian digits draws the same box for each."""
    first = rendered[FA_DIGITS[1]].bitmap
    return all(float((rendered[c].bitmap * first).sum()) > 0.97 for c in FA_DIGITS[2:5])


@dataclass(frozen=True)
class DigitRead:
    text: str
    font: str
    distances: tuple[float, ...]  # each glyph's match distance (0 perfect, ~1 unrelated)
    margin: float  # the smallest gap between a glyph's best and second-best character
    glyphs: tuple[Glyph, ...]

    @property
    def worst(self) -> float:
        return max(self.distances) if self.distances else 1.0

    @property
    def left(self) -> int:
        return self.glyphs[0].left

    @property
    def right(self) -> int:
        return self.glyphs[-1].right


MAX_GLYPH_DISTANCE = 0.45  # a glyph matching no template better than this is not a digit
MAX_END_DISTANCE = 0.25  # the first and last glyph of a number must match at least this well
MIN_DIGIT_PX = 18  # digits smaller than this (12 pt below ~190 dpi) are left to fas
MIN_CONTRAST = 60  # grey levels between ink and paper
MAX_BLUR_RATIO = 0.8  # `blur_ratio` above this: the crop is too blurred to read glyph by glyph
MAX_GAP = 0.8  # x the digits' height: a wider blank ends the number


@dataclass(frozen=True)
class _Bank:
    """One font's templates as arrays, for matching many glyphs at once."""
    font: str
    chars: tuple[str, ...]
    bitmaps: np.ndarray  # T x NORM*NORM
    log_aspect: np.ndarray  # T
    log_rel_height: np.ndarray  # T
    rel_mid: np.ndarray  # T


CACHE_VERSION = 1  # bump when the templates' drawing or normalisation changes
_cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/khana (~/.cache/khana)


def set_cache_dir(path: str | Path | None) -> None:
    """Where the digit templates are kept between processes (the service's setting `cache_dir`)."""
    global _cache_dir
    _cache_dir = Path(path) if path else None


def _cache_path(fonts: tuple[str, ...]) -> Path | None:
    """Where the banks of `fonts` are kept between processes (None: no usable cache directory).

    The key names everything the templates depend on: the font files (path, size, modification time),
    the separator fonts, the template and comparison sizes, Pillow's version (it rasterises them)."""
    import hashlib
    import os

    import PIL

    parts = [f"v{CACHE_VERSION}", str(TEMPLATE_PX), str(NORM), PIL.__version__, np.__version__]
    for f in (*fonts, "|", *SEPARATOR_FONTS):
        try:
            st = os.stat(f)
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{f}:-")
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    base = _cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "khana"
    return base / f"digit-templates-{key}.npz"


def _load_banks(path: Path) -> tuple[_Bank, ...] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n"])
            return tuple(_Bank(str(z[f"font{i}"]), tuple(str(c) for c in z[f"chars{i}"]), z[f"bitmaps{i}"],
                               z[f"log_aspect{i}"], z[f"log_rel_height{i}"], z[f"rel_mid{i}"]) for i in range(n))
    except Exception:  # noqa: BLE001 - absent, truncated, damaged or of another layout: drawn again
        return None


def _save_banks(path: Path, banks: tuple[_Bank, ...]) -> None:
    import os
    import tempfile

    arrays = {"n": np.array(len(banks))}
    for i, b in enumerate(banks):
        arrays.update({f"font{i}": np.array(b.font), f"chars{i}": np.array(b.chars), f"bitmaps{i}": b.bitmaps,
                       f"log_aspect{i}": b.log_aspect, f"log_rel_height{i}": b.log_rel_height, f"rel_mid{i}": b.rel_mid})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # whole or not at all: processes building it at once do not see half a file
    except OSError:
        pass  # a read-only home: built again next time, nothing lost


@lru_cache(maxsize=8)
def _banks(fonts: tuple[str, ...]) -> tuple[_Bank, ...]:
    """The templates of `fonts` as arrays: drawn from the fonts once (~0.5 s), then kept on disk for the
    next process (the embedded `khana process` starts a pool of processes on every run)."""
    path = _cache_path(fonts)
    if path is not None and path.exists():
        banks = _load_banks(path)
        if banks is not None:
            return banks
    banks = tuple(
        _Bank(path_, tuple(t.char for t in ts), np.stack([t.bitmap.ravel() for t in ts]),
              np.log([t.aspect for t in ts]), np.log([t.rel_height for t in ts]), np.array([t.rel_mid for t in ts]))
        for path_, ts in font_templates(fonts)
    )
    if path is not None and banks:
        _save_banks(path, banks)
    return banks


def _distances(glyphs: list[Glyph], bank: _Bank, tall: float, mid: float) -> np.ndarray:
    """G x T match distances: 1 - correlation of the normalised bitmaps, plus the differences
    in aspect ratio, in height and in vertical position relative to the number's digits."""
    bm = np.stack([g.bitmap.ravel() for g in glyphs])
    corr = bm @ bank.bitmaps.T
    aspect = np.log([g.height / max(1, g.width) for g in glyphs])[:, None]
    rel_h = np.log([max(1e-3, g.height / tall) for g in glyphs])[:, None]
    rel_mid = np.array([((g.top + g.bottom) / 2 - mid) / tall for g in glyphs])[:, None]
    # a dot a few pixels wide (۰ at 300 dpi: 5 x 5 px) has no shape to speak of: its size and
    # place tell it, its bitmap counts less
    shape_w = np.clip([max(g.height, g.width) / (0.5 * tall) for g in glyphs], 0.4, 1.0)[:, None]
    return (shape_w * (1.0 - corr) + 0.25 * np.abs(aspect - bank.log_aspect)
            + 0.6 * np.abs(rel_h - bank.log_rel_height) + 0.5 * np.abs(rel_mid - bank.rel_mid))


def _scale(glyphs: list[Glyph]) -> tuple[float, float]:
    """(height, vertical centre) of a number's full-height glyphs (the median of those over half
    the tallest: a "0" dot or a "/" taller than the digits does not set it): the scale digits
    are compared at, the same statistic for a page's number and a font's ten digits."""
    top = max(g.height for g in glyphs)
    full = [g for g in glyphs if g.height > 0.5 * top]
    return float(np.median([g.height for g in full])), float(np.median([(g.top + g.bottom) / 2 for g in full]))


def classify(
    glyphs: list[Glyph], fonts: tuple[str, ...] = DEFAULT_DIGIT_FONTS, scale: tuple[float, float] | None = None
) -> DigitRead | None:
    """The best reading of `glyphs` as digits (and "/") in one font: the font whose templates
    match the whole number best (one font's ۶ never reads as another's ۲)."""
    banks = _banks(fonts)
    if not glyphs or not banks:
        return None
    tall, mid = scale or _scale(glyphs)
    best: DigitRead | None = None
    best_total = float("inf")
    for bank in banks:
        d = _distances(glyphs, bank, tall, mid)
        order = np.argsort(d, axis=1)
        first = d[np.arange(len(glyphs)), order[:, 0]]
        total = float(np.minimum(first, 1.0).sum())
        if total >= best_total:
            continue
        text = [bank.chars[i] for i in order[:, 0]]
        margin = float("inf")
        for gi, row in enumerate(order):
            second = next((d[gi, j] for j in row[1:] if bank.chars[j] != text[gi]), first[gi] + 1.0)
            margin = min(margin, float(second - first[gi]))
        best_total = total
        best = DigitRead("".join(text), bank.font, tuple(float(x) for x in first), margin, tuple(glyphs))
    return best


def _best_distances(glyphs: list[Glyph], fonts: tuple[str, ...], scale: tuple[float, float]) -> np.ndarray:
    """Per glyph: its distance to the nearest template of any font."""
    banks = _banks(fonts)
    if not glyphs or not banks:
        return np.full(len(glyphs), np.inf)
    return np.min([_distances(glyphs, b, *scale).min(axis=1) for b in banks], axis=0)


def _split_wide(glyphs: list[Glyph], fonts: tuple[str, ...], scale: tuple[float, float]) -> list[Glyph]:
    """Glyphs wider than a digit that match none are cut in two when both halves match."""
    best = _best_distances(glyphs, fonts, scale)
    out: list[Glyph] = []
    for g, d in zip(glyphs, best):
        parts = split_touching(g) if g.width > 0.9 * scale[0] and d > MAX_GLYPH_DISTANCE else None
        if parts and bool((_best_distances(list(parts), fonts, scale) <= MAX_GLYPH_DISTANCE).all()):
            out.extend(parts)
        else:
            out.append(g)
    return out


def _run_around(glyphs: list[Glyph], good: list[bool], anchor: tuple[int, int], tall: float) -> list[Glyph]:
    """The glyphs of the unbroken run of good glyphs that overlaps `anchor` (x range)."""
    idx = [i for i, g in enumerate(glyphs) if good[i] and g.right > anchor[0] and g.left < anchor[1]]
    if not idx:
        return []
    lo = hi = idx[len(idx) // 2]
    while lo > 0 and good[lo - 1] and glyphs[lo].left - glyphs[lo - 1].right <= MAX_GAP * tall:
        lo -= 1
    while hi + 1 < len(glyphs) and good[hi + 1] and glyphs[hi + 1].left - glyphs[hi].right <= MAX_GAP * tall:
        hi += 1
    return glyphs[lo : hi + 1]


def blur_ratio(crop: np.ndarray, ink: float, paper: float) -> float:
    """Grey edge pixels per ink pixel: ~0.3 for sharp print at 200-300 dpi, 0.6-0.9 blurred by
    1 px, over 1 when strokes smear into each other (bench: digits then merge)."""
    d = paper - ink
    edge = int(((crop > ink + 0.25 * d) & (crop < paper - 0.25 * d)).sum())
    return edge / max(1, int((crop < ink + 0.5 * d).sum()))


def read_number(
    crop: np.ndarray, anchor: tuple[int, int] | None = None, fonts: tuple[str, ...] = DEFAULT_DIGIT_FONTS
) -> DigitRead | None:
    """Read the number printed in a grayscale crop (Persian digits, maybe "/"): the unbroken
    run of digit-like glyphs over `anchor` (an x range of the crop; default: all of it),
    with glyphs of other text (a label, a colon) left out. None: no such run."""
    if crop.size == 0:
        return None
    ink, paper = np.percentile(crop, (0.5, 99.5))
    if paper - ink < MIN_CONTRAST or blur_ratio(crop, ink, paper) > MAX_BLUR_RATIO:
        return None  # faint or blurred: digits merge and break, shapes mislead; keep fas's reading
    # half way between ink and paper: a faded print keeps its strokes, a blurred one does not
    # swell into its neighbours (Otsu's threshold does, on thin blurred strokes)
    glyphs = segment(crop < (ink + paper) / 2)
    if not glyphs:
        return None
    anchor = anchor or (0, crop.shape[1])
    inside = [g for g in glyphs if g.right > anchor[0] and g.left < anchor[1]]
    if not inside:
        return None
    scale = _scale(inside)
    if scale[0] < MIN_DIGIT_PX:
        return None  # too few pixels a digit to tell ۲ from ۳ by shape: keep fas's reading
    glyphs = _split_wide(glyphs, fonts, scale)
    good = [bool(d <= MAX_GLYPH_DISTANCE) for d in _best_distances(glyphs, fonts, scale)]
    run = _run_around(glyphs, good, anchor, scale[0])
    if not run:
        return None
    r = classify(run, fonts)
    if r is not None and r.worst > MAX_GLYPH_DISTANCE:
        # the run's own font and scale: trim what still does not match
        run = _run_around(run, [d <= MAX_GLYPH_DISTANCE for d in r.distances], anchor, _scale(run)[0])
        r = classify(run, fonts) if run else None
    # a letter next to the number (the alef of ریال reads as ۱) matches loosely: ends must match well
    while r is not None and len(r.glyphs) > 1 and max(r.distances[0], r.distances[-1]) > MAX_END_DISTANCE:
        run = list(r.glyphs[1:]) if r.distances[0] > MAX_END_DISTANCE else list(r.glyphs[:-1])
        r = classify(run, fonts)
    if r is None or r.worst > MAX_GLYPH_DISTANCE or not any(c in FA_DIGITS for c in r.text):
        return None
    if any(c in LATIN_DIGITS and c != "1" for c in r.text):
        return None  # Latin digits (1 and ۱ look alike): the Latin re-read's business
    text = r.text.replace("1", "۱")
    if text.startswith("/") or text.endswith("/"):
        return None  # a stroke beside the number (a letter's, a rule's) read as "/": unsure
    return DigitRead(text, r.font, r.distances, r.margin, r.glyphs)
