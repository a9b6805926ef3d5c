"""A degraded corpus with ground truth, for the quality and OCR benchmarks.

`iter_corpus(size="small"|"full", seed=0)` yields `CorpusItem`s: a page rendered from the
seed articles (several fonts and sizes), degraded by one kind at a graded severity or by a
combination, with the ground-truth text and the true geometry.  Deterministic for a seed.

Geometry ground truth follows quality's conventions: `true_skew` is the text-line angle as
scanned (CCW positive), `true_rotation` the CCW quarter turn that makes the deskewed page upright.
`content_lost` marks pages that must be held whatever OCR reads (cut off, covered, blank).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np

from . import degrade as D
from .render import available_fonts, render_page


@dataclass
class CorpusItem:
    id: str
    kind: str
    severity: str            # human-readable level, e.g. "sigma=3" (ordered within a kind)
    level: int               # 0 = mildest .. n = harshest within the kind
    image: np.ndarray
    dpi: int
    text: str                # ground truth ("" for blank pages)
    true_skew: float = 0.0
    true_rotation: int = 0
    content_lost: bool = False
    font: str = ""
    size_pt: float = 12.0
    meta: dict = field(default_factory=dict)


def _steep(img, angle, lid):
    from .hard import steep_scan
    out, lost = steep_scan(img, angle, lid=lid)
    return out, {"content_lost": lost > 0.002, "lost": lost}


def _near_edge(img, angle, pad):
    from .hard import near_edge
    return near_edge(img, angle, pad=pad)


def _small_photo(size):
    def fn(img, rng):
        from .hard import small_photo
        return small_photo(img, size=size, seed=rng.randrange(99)), {"photo": True}
    return fn


def _edge_cut_photo(outside):
    def fn(img, rng):
        from .hard import edge_cut_photo
        return (edge_cut_photo(img, outside=outside, seed=rng.randrange(99), size=(1500, 2000)),
                {"photo": True, "content_lost": True})
    return fn


# kind -> list of (severity label, function(img, rng) -> (img, extra dict))
def _sk(deg):
    return lambda img, rng: (D.skew(img, deg * rng.choice((-1, 1))), {})


def _rot(k, deg=0.0):
    return lambda img, rng: (D.rotate90(D.skew(img, deg), k), {})


def _cut(frac):
    return lambda img, rng: (D.cut_off(img, frac, rng.choice(("right", "left", "bottom", "top"))), {})


SPECS: dict[str, list[tuple[str, Callable]]] = {
    "clean": [("none", lambda img, rng: (img, {}))],
    "skew": [(f"{d}deg", _sk(d)) for d in (1, 3, 7, 15, 30, 45)],
    "rotate": [("90", _rot(1)), ("180", _rot(2)), ("270", _rot(3)), ("180+5deg", _rot(2, 5.0)),
               ("90-12deg", _rot(1, -12.0))],
    "shadow": [(f"s={s}", (lambda s: lambda img, rng: (D.shadow(img, s, seed=rng.randrange(99)), {}))(s))
               for s in (0.4, 0.6, 0.8, 0.9)],
    "dark": [(f"f={f}", (lambda f: lambda img, rng: (D.darken(img, f), {}))(f)) for f in (0.6, 0.4, 0.25, 0.15, 0.08)],
    "fade": [(f"c={c}", (lambda c: lambda img, rng: (D.fade(img, c), {}))(c)) for c in (0.5, 0.3, 0.2, 0.1, 0.05)],
    "blur": [(f"sigma={s}", (lambda s: lambda img, rng: (D.blur(img, s), {}))(s)) for s in (1, 2, 3, 4, 6, 9)],
    "motion_blur": [(f"len={n}", (lambda n: lambda img, rng: (D.motion_blur(img, n), {}))(n)) for n in (5, 9, 15, 25)],
    "noise": [(f"sigma={s}", (lambda s: lambda img, rng: (D.gaussian_noise(img, s, seed=rng.randrange(99)), {}))(s))
              for s in (10, 25, 40, 60, 90)],
    "salt_pepper": [(f"p={p}", (lambda p: lambda img, rng: (D.salt_pepper(img, p, seed=rng.randrange(99)), {}))(p))
                    for p in (0.01, 0.03, 0.06, 0.1, 0.2)],
    "jpeg": [(f"q={q}", (lambda q: lambda img, rng: (D.jpeg(img, q), {}))(q)) for q in (50, 25, 10, 5, 2)],
    "lowres": [(f"{d}dpi", (lambda d: lambda img, rng: (D.downsample(img, 300, d), {"dpi": d}))(d))
               for d in (200, 150, 100, 75, 50)],
    "cut_off": [(f"frac={f}", _cut(f)) for f in (0.03, 0.1, 0.3)],
    "black_border": [("60px", lambda img, rng: (D.black_border(img, 60), {})),
                     ("150px", lambda img, rng: (D.black_border(img, 150, "lr"), {})),
                     ("450px-over-text", lambda img, rng: (D.black_border(img, 450, rng.choice(("l", "r", "t", "b"))),
                                                            {"content_lost": True}))],
    "blank": [("blank", lambda img, rng: (D.blank(img.shape, paper=rng.choice((235, 245, 250)), seed=rng.randrange(99)),
                                          {"blank": True}))],
    "combo": [
        ("skew7+shadow0.7", lambda img, rng: (D.shadow(D.skew(img, 7), 0.7, seed=1), {})),
        ("rot180+jpeg20", lambda img, rng: (D.jpeg(D.rotate90(img, 2), 20), {})),
        ("dark0.4+noise20", lambda img, rng: (D.gaussian_noise(D.darken(img, 0.4), 20, seed=2), {})),
        ("fade0.3+blur2", lambda img, rng: (D.blur(D.fade(img, 0.3), 2), {})),
        ("150dpi+skew-4", lambda img, rng: (D.downsample(D.skew(img, -4), 300, 150), {"dpi": 150})),
        ("rot90+fade0.2+jpeg30", lambda img, rng: (D.jpeg(D.fade(D.rotate90(img, 1), 0.2), 30), {})),
        ("blur4+noise40", lambda img, rng: (D.gaussian_noise(D.blur(img, 4), 40, seed=3), {})),
        ("100dpi+jpeg10", lambda img, rng: (D.jpeg(D.downsample(img, 300, 100), 10), {"dpi": 100})),
        ("border60+skew10", lambda img, rng: (D.black_border(D.skew(img, 10), 60), {})),
        ("shadow0.9+dark0.5", lambda img, rng: (D.darken(D.shadow(img, 0.9, seed=4), 0.5), {})),
    ],
    # issue 12: a page laid at a steep angle with its corners outside the scanned area (text lost along a
    # slanted line), and a skewed page cropped tightly around intact text (nothing lost, text at the edge)
    "steep_cut": [(f"{a}deg-lid{lid}", (lambda a, lid: lambda img, rng: _steep(img, a * rng.choice((-1, 1)), lid))(a, lid))
                  for a, lid in ((25, 235), (32, 120), (40, 200))],
    "near_edge": [("12deg-pad3", lambda img, rng: (_near_edge(img, 12 * rng.choice((-1, 1)), 3), {}))],
    # session of 2026-12-01 evening (issue 12, classes 1-4 and 9), appended so the pages above keep their
    # fonts, sizes and texts: intact text at the edge at other angles and margins; a phone photo taken
    # small (class 9: about 57 and 75 dpi for the sheet; the reason an operator must read is
    # low_resolution); a phone photo whose right part lies outside the picture (class 4); clean pages in
    # the farsiweb fonts at 13 pt (class 3: Nazli and Homa at the size the issue names)
    "near_edge2": [("4deg-pad1", lambda img, rng: (_near_edge(img, 4 * rng.choice((-1, 1)), 1), {})),
                   ("20deg-pad6", lambda img, rng: (_near_edge(img, 20 * rng.choice((-1, 1)), 6), {}))],
    "small_photo": [("600x800", _small_photo((600, 800))), ("800x1066", _small_photo((800, 1066)))],
    "edge_cut_photo": [(f"out={o}", _edge_cut_photo(o)) for o in (0.15, 0.3)],
    "farsiweb": [("13pt", lambda img, rng: (img, {}))],
}

# kinds rendered in given fonts and sizes (cycled) instead of the corpus's rotation of every font and size
FONT_CHOICES: dict[str, list[tuple[str, float]]] = {"farsiweb": [("nazli", 13), ("homa", 13)]}
# kinds that are phone photos: the pipeline flattens the sheet first (quality.page_frame); their true
# geometry is that of the sheet in the picture, not a scan's skew
PHOTO_KINDS = frozenset({"small_photo", "edge_cut_photo"})

# geometry ground truth per (kind, severity label)
def _geometry(kind: str, label: str, img_sign: float) -> tuple[float, int]:
    if kind == "skew":
        return img_sign * float(label.replace("deg", "")), 0
    if kind == "rotate":
        k = {"90": 1, "180": 2, "270": 3, "180+5deg": 2, "90-12deg": 1}[label]
        s = {"180+5deg": 5.0, "90-12deg": -12.0}.get(label, 0.0)
        return s, (360 - 90 * k) % 360
    if kind == "steep_cut":
        return img_sign * float(label.split("deg")[0]), 0
    if kind == "near_edge":
        return img_sign * 12.0, 0
    if kind == "near_edge2":
        return img_sign * float(label.split("deg")[0]), 0
    if kind == "combo":
        return {"skew7+shadow0.7": (7.0, 0), "rot180+jpeg20": (0.0, 180), "150dpi+skew-4": (-4.0, 0),
                "rot90+fade0.2+jpeg30": (0.0, 270), "border60+skew10": (10.0, 0)}.get(label, (0.0, 0))
    return 0.0, 0


SIZES = {"small": 1, "full": 5}
REPEAT = {"clean": 4, "farsiweb": 2}  # kinds with more pages per cell than the others
SIZES_PT = (10, 12, 14)


@lru_cache(maxsize=64)
def _base(font: str, size_pt: float, seed: int):
    return render_page(font=font, size_pt=size_pt, dpi=300, seed=seed)


def iter_corpus(size: str = "small", seed: int = 0, kinds: list[str] | None = None) -> Iterator[CorpusItem]:
    """Yield the corpus: every (kind, severity) cell `SIZES[size]` times (`REPEAT`: clean 4x), cycling fonts/sizes."""
    reps = SIZES.get(size, size if isinstance(size, int) else 1)
    fonts = available_fonts()
    n = 0
    for kind, levels in SPECS.items():
        for level, (label, fn) in enumerate(levels):
            r_count = reps * REPEAT.get(kind, 1)
            if kinds and kind not in kinds:  # keep fonts/sizes of the other items unchanged
                n += r_count
                continue
            for r in range(r_count):
                rng = random.Random(f"{seed}-{kind}-{label}-{r}")
                font = fonts[(n + r) % len(fonts)]
                size_pt = SIZES_PT[((n + r) // len(fonts)) % len(SIZES_PT)]
                if kind in FONT_CHOICES:
                    choices = [fs for fs in FONT_CHOICES[kind] if fs[0] in fonts] or [(font, size_pt)]
                    font, size_pt = choices[r % len(choices)]
                page_seed = seed * 1000 + ((n + r) * 7) % 97
                base = _base(font, size_pt, page_seed)
                # deterministic sign for skews: the rng's first choice inside fn
                sign_rng = random.Random(f"{seed}-{kind}-{label}-{r}")
                img, extra = fn(base.image, rng)
                sign = sign_rng.choice((-1, 1))
                tskew, trot = _geometry(kind, label, sign)
                blank = bool(extra.get("blank"))
                yield CorpusItem(
                    id=f"{kind}-{level}-{r}", kind=kind, severity=label, level=level, image=img,
                    dpi=int(extra.get("dpi", 300)), text="" if blank else base.text, true_skew=tskew,
                    true_rotation=trot, content_lost=bool(extra.get("content_lost") or blank or kind == "cut_off"),
                    font=font, size_pt=size_pt, meta={"page_seed": page_seed, "photo": bool(extra.get("photo"))},
                )
            n += r_count


def corpus_size(size: str = "small") -> int:
    reps = SIZES.get(size, 1)
    return sum(len(v) * reps * REPEAT.get(k, 1) for k, v in SPECS.items())
