"""The gate: page measures (+ OCR confidence) -> reason codes.  Empty list = pass.

Thresholds come from a versioned TOML policy (quality/gate_policy.toml by default).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .score import factor_terms, legibility_score

DEFAULT_POLICY = Path(__file__).with_name("gate_policy.toml")


@dataclass
class GatePolicy:
    version: str
    early: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    source: str = ""

    def get(self, section: str, key: str, default=None):
        return getattr(self, section).get(key, default)


def load_policy(path: str | None = None) -> GatePolicy:
    """Load the gate policy TOML (default: the one shipped with the package, or $KHANA_GATE_POLICY)."""
    p = Path(path or os.environ.get("KHANA_GATE_POLICY") or DEFAULT_POLICY)
    with open(p, "rb") as f:
        data = tomllib.load(f)
    if "version" not in data:
        raise ValueError(f"gate policy {p} has no 'version' field")
    base = {}
    if p != DEFAULT_POLICY:  # an operator file may override only some keys
        with open(DEFAULT_POLICY, "rb") as f:
            base = tomllib.load(f)
    sec = lambda k: {**base.get(k, {}), **data.get(k, {})}  # noqa: E731
    return GatePolicy(version=str(data["version"]), early=sec("early"), final=sec("final"),
                      reasons=sec("reasons"), source=str(p))


def _ordered(codes) -> list[str]:
    seen = []
    for c in codes:
        if c not in seen:
            seen.append(c)
    return seen


def _attribute(m, policy: GatePolicy) -> list[str]:
    """Which measures explain a low legibility (soft limits in [reasons])."""
    r = policy.reasons
    out = []
    if m.blur_rel > r.get("blur_rel_max", 0.7):
        out.append("blurred")
    if m.noise > r.get("noise_max", 0.35) or m.impulse_noise > r.get("impulse_noise_max", 0.06):
        out.append("noisy")
    if m.paper_level <= r.get("too_dark_paper_max", 60.0) and m.dynamic_range < r.get("too_dark_dynamic_range_min", 25.0):
        out.append("too_dark")
    elif m.contrast < r.get("faded_contrast_min", 0.25):
        out.append("faded")
    elif m.dynamic_range < r.get("too_dark_dynamic_range_min", 25.0):
        out.append("too_dark" if m.paper_level < 128 else "faded")
    if m.uneven_lighting > r.get("uneven_lighting_max", 0.6):
        out.append("uneven_lighting")
    if 0 < m.char_height_px < r.get("char_height_min_px", 14.0):
        out.append("low_resolution")
    if not m.skew_recoverable or (not m.blank and m.skew_confidence < r.get("skew_confidence_min", 1.6)):
        out.append("skew_unrecoverable")
    return out


def _worst_factor(m) -> list[str]:
    terms = factor_terms(m)
    name = min(terms, key=terms.get)
    code = {"blur": "blurred", "noise": "noisy", "impulse": "noisy", "range": "too_dark" if m.paper_level < 128 else "faded",
            "contrast": "faded", "resolution": "low_resolution", "shadow": "uneven_lighting",
            "depth": "blurred"}.get(name, "blurred")
    return [code]


def early_gate(m, policy: GatePolicy) -> list[str]:
    """Reasons to hold a page without OCR (hopeless pages).  Empty list: go on to OCR."""
    e = policy.early
    out = []
    if m.blank and e.get("hold_blank", True):
        # a black or near-black sheet is reported as too dark (lid open, exposure failure)
        return ["too_dark"] if m.paper_level < policy.reasons.get("too_dark_paper_max", 60.0) else ["blank"]
    if not m.skew_recoverable:
        out.append("skew_unrecoverable")
    if m.cut_off and e.get("hold_cut_off", True) and (
            m.cut_off_fraction >= e.get("cut_off_min_fraction", 0.004) or m.border_fraction > 0):
        out.append("cut_off")
    if m.blur_rel >= e.get("blur_rel_max", 1.6):
        out.append("blurred")
    if m.noise >= e.get("noise_max", 0.9) or m.impulse_noise >= e.get("impulse_noise_max", 0.25):
        out.append("noisy")
    if m.dynamic_range < e.get("dynamic_range_min", 8.0):
        out.append("too_dark" if m.paper_level < 128 else "faded")
    if 0 < m.char_height_px < e.get("char_height_min_px", 7.0):
        out.append("low_resolution")
    if not out and legibility_score(m) < e.get("legibility_min", 0.05):
        out += _attribute(m, policy) or _worst_factor(m)
    return _ordered(out)


def missing_lines(m, words) -> int:
    """Text lines seen in the image that no OCR word overlaps (Tesseract sometimes drops whole lines).

    `words`: objects or dicts with `top` and `height` in corrected-image coordinates.
    """
    bands = [tuple(b) for b in (getattr(m, "line_bands", None) or [])]
    if len(bands) < 2 or not words:
        return 0
    hs = sorted(b - a for a, b in bands)
    med = hs[len(hs) // 2]
    centres = []
    for w in words:
        top = w["top"] if isinstance(w, dict) else getattr(w, "top", None)
        hgt = w["height"] if isinstance(w, dict) else getattr(w, "height", None)
        if top is None or hgt is None:
            return 0
        centres.append(top + hgt / 2.0)
    missing = 0
    for a, b in bands:
        if b - a < 0.5 * med:
            continue
        if not any(a <= c <= b for c in centres):
            missing += 1
    return missing


def final_gate(m, ocr, policy: GatePolicy) -> list[str]:
    """All reasons to hold the page, combining image measures and OCR confidence."""
    out = list(early_gate(m, policy))
    if m.blank:
        return out
    f = policy.final
    score = legibility_score(m)
    if score < f.get("legibility_min", 0.5):
        out += _attribute(m, policy) or _worst_factor(m)
    if ocr is not None:
        mc = float(getattr(ocr, "mean_confidence", 0.0) or 0.0)
        p10 = float(getattr(ocr, "p10_confidence", 0.0) or 0.0)
        lex = float(getattr(ocr, "lexicon_share", 1.0) if getattr(ocr, "lexicon_share", None) is not None else 1.0)
        garb = float(getattr(ocr, "garbage_share", 0.0) or 0.0)
        nw = int(getattr(ocr, "word_count", 0) or 0)
        low = (mc < f.get("ocr_mean_confidence_min", 60.0) or p10 < f.get("ocr_p10_confidence_min", 0.0)
               or lex < f.get("lexicon_share_min", 0.0) or garb > f.get("garbage_share_max", 1.0)
               or nw < f.get("min_words", 5))
        words = getattr(ocr, "words", None)
        if words is not None and missing_lines(m, words) > f.get("missing_lines_max", 0):
            low = True
        # a part of the page read badly or not at all, however well the rest reads
        if float(getattr(ocr, "weak_line_share", 0.0) or 0.0) > f.get("weak_line_share_max", 1.0):
            low = True
        unread_share = float(getattr(ocr, "unread_text_share", 0.0) or 0.0)
        unread_tiles = int(getattr(ocr, "unread_tiles", 0) or 0)
        blurred_part = False
        if unread_share > f.get("unread_text_share_max", 1.0) and unread_tiles >= f.get("unread_tiles_min", 1):
            low = True
            # mostly blurred tiles among the unread ones: say so
            blurred_part = 2 * int(getattr(ocr, "unread_blurred_tiles", 0) or 0) >= unread_tiles
        if low:
            out.append("low_ocr_confidence")
            out += _attribute(m, policy)
            if blurred_part:
                out.append("blurred")
    return _ordered(out)
