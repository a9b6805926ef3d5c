"""The gate: page measures (+ OCR confidence) -> reason codes.  Empty list = pass.

Thresholds come from a versioned TOML policy (quality/gate_policy.toml by default).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from .lines import missing_lines  # noqa: F401  (re-exported: quality.gate.missing_lines)
from .score import factor_terms, legibility_score

DEFAULT_POLICY = Path(__file__).with_name("gate_policy.toml")


class PolicyError(ValueError):
    """A gate policy file that cannot be used (missing or unknown keys, wrong types)."""


@dataclass(frozen=True)
class EarlyLimits:
    """[early]: hopeless pages, held before OCR is attempted."""

    hold_blank: bool
    hold_cut_off: bool
    cut_off_min_fraction: float
    blur_rel_max: float
    noise_max: float
    impulse_noise_max: float
    dynamic_range_min: float
    char_height_min_px: float
    legibility_min: float


@dataclass(frozen=True)
class FinalLimits:
    """[final]: the decision after OCR (image score, OCR confidences, regional checks)."""

    legibility_min: float
    ocr_mean_confidence_min: float
    ocr_p10_confidence_min: float
    lexicon_share_min: float
    garbage_share_max: float
    min_words: int
    missing_lines_max: int
    weak_line_share_max: float
    unread_text_share_max: float
    unread_tiles_min: int
    low_word_confidence: float
    read_pass_min: float


@dataclass(frozen=True)
class ReasonLimits:
    """[reasons]: which measures are named when a page is held."""

    blur_rel_max: float
    noise_max: float
    impulse_noise_max: float
    faded_contrast_min: float
    too_dark_paper_max: float
    too_dark_dynamic_range_min: float
    uneven_lighting_max: float
    char_height_min_px: float
    skew_confidence_min: float


@dataclass(frozen=True)
class HandwritingLimits:
    """[handwriting]: handwritten pages and parts, judged by their image alone (quality/handwriting.py)."""

    blur_rel_max: float
    blur_stroke_min: float
    noise_max: float
    stroke_min_px: float
    text_min_confidence: float
    part_blur_max: float
    look_below_confidence: float


@dataclass(frozen=True)
class GatePolicy:
    """The gate's thresholds, typed: a missing or misspelt key fails when the policy is loaded."""

    version: str
    early: EarlyLimits
    final: FinalLimits
    reasons: ReasonLimits
    handwriting: HandwritingLimits
    source: str = ""
    changed: str = ""


_SECTIONS = {"early": EarlyLimits, "final": FinalLimits, "reasons": ReasonLimits, "handwriting": HandwritingLimits}


def _section(cls, values: dict, name: str, source: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise PolicyError(f"gate policy {source}: unknown key(s) {', '.join(unknown)} in [{name}]; "
                          f"known: {', '.join(known)}")
    missing = sorted(set(known) - set(values))
    if missing:
        raise PolicyError(f"gate policy {source}: [{name}] lacks {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key, f in known.items():
        v = values[key]
        kind = {"bool": bool, "int": int, "float": float}[f.type if isinstance(f.type, str) else f.type.__name__]
        if kind is bool and not isinstance(v, bool) or kind is not bool and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer())):
            raise PolicyError(f"gate policy {source}: [{name}] {key} = {v!r} is not a {kind.__name__}")
        out[key] = kind(v)
    return cls(**out)


def _read(p: Path) -> dict:
    try:
        with open(p, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise PolicyError(f"gate policy {p} cannot be read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"gate policy {p} is not valid TOML: {exc}") from exc


def load_policy(path: str | Path | None = None) -> GatePolicy:
    """Load a gate policy TOML; `None` loads the one shipped with the package.

    An operator's file may set only some keys: the others come from the shipped policy. Every key is
    checked when the file is loaded: an unknown (misspelt) key or a wrong type raises `PolicyError`.
    """
    p = Path(path) if path else DEFAULT_POLICY
    data = _read(p)
    if "version" not in data:
        raise PolicyError(f"gate policy {p} has no 'version' field")
    unknown = sorted(set(data) - {"version", "changed", *_SECTIONS})
    if unknown:
        raise PolicyError(f"gate policy {p}: unknown section(s) or key(s) {', '.join(unknown)}")
    base = _read(DEFAULT_POLICY) if p.resolve() != DEFAULT_POLICY.resolve() else {}
    sections = {}
    for name, cls in _SECTIONS.items():
        own = data.get(name, {})
        if not isinstance(own, dict):
            raise PolicyError(f"gate policy {p}: [{name}] must be a table")
        known = {f.name for f in fields(cls)}
        unknown_own = sorted(set(own) - known)
        if unknown_own:  # report the operator's file, not the merged result
            raise PolicyError(f"gate policy {p}: unknown key(s) {', '.join(unknown_own)} in [{name}]; "
                              f"known: {', '.join(sorted(known))}")
        sections[name] = _section(cls, {**base.get(name, {}), **own}, name, str(p))
    return GatePolicy(version=str(data["version"]), source=str(p), changed=str(data.get("changed", "")), **sections)


@dataclass
class OcrEvidence:
    """What the final gate and the final legibility score learn from one OCR read of a page."""

    mean_confidence: float = 0.0
    p10_confidence: float = 0.0
    lexicon_share: float | None = None
    garbage_share: float = 0.0
    word_count: int = 0
    weak_line_share: float = 0.0
    words: Sequence[Any] | None = None  # objects or dicts with `top` and `height` (corrected-image pixels)
    unread_text_share: float = 0.0  # share of text-like tiles with no OCR word near them
    unread_tiles: int = 0
    unread_blurred_tiles: int = 0
    missing_lines: int | None = None
    text_tiles: int = 0  # text-like tiles of the page (quality.unread_text)
    # text tiles blurred beyond reasons.blur_rel_max, read or not (quality.blurred_regions); None: not measured
    # (it is measured only for a page held on its read: a blurred part Tesseract read as garbage)
    blurred_text_tiles: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "OcrEvidence":
        """Build from a recorded dict (benchmarks); unknown keys are an error, not silently dropped."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TypeError(f"unknown OCR evidence field(s): {', '.join(unknown)}")
        return cls(**d)


def _ordered(codes) -> list[str]:
    seen = []
    for c in codes:
        if c not in seen:
            seen.append(c)
    # text too small for the scan's resolution also measures as blurred: the cause to name first is the
    # resolution (the operator rescans at a higher dpi; "blurred" sends them to clean the glass)
    if "low_resolution" in seen and "blurred" in seen and seen.index("low_resolution") > seen.index("blurred"):
        seen.remove("low_resolution")
        seen.insert(seen.index("blurred"), "low_resolution")
    return seen


def _attribute(m, policy: GatePolicy) -> list[str]:
    """Which measures explain a low legibility (soft limits in [reasons])."""
    r = policy.reasons
    out = []
    if m.blur_rel > r.blur_rel_max:
        out.append("blurred")
    if m.noise > r.noise_max or m.impulse_noise > r.impulse_noise_max:
        out.append("noisy")
    if m.paper_level <= r.too_dark_paper_max and m.dynamic_range < r.too_dark_dynamic_range_min:
        out.append("too_dark")
    elif m.contrast < r.faded_contrast_min:
        out.append("faded")
    elif m.dynamic_range < r.too_dark_dynamic_range_min:
        out.append("too_dark" if m.paper_level < 128 else "faded")
    if m.uneven_lighting > r.uneven_lighting_max:
        out.append("uneven_lighting")
    if 0 < m.char_height_px < r.char_height_min_px:
        out.append("low_resolution")
    if not m.skew_recoverable or (not m.blank and m.skew_confidence < r.skew_confidence_min):
        out.append("skew_unrecoverable")
    return out


def _worst_factor(m) -> list[str]:
    terms = factor_terms(m)
    name = min(terms, key=terms.get)
    code = {"blur": "blurred", "noise": "noisy", "impulse": "noisy", "range": "too_dark" if m.paper_level < 128 else "faded",
            "contrast": "faded", "resolution": "low_resolution", "shadow": "uneven_lighting",
            "depth": "blurred"}.get(name, "blurred")
    return [code]


# Image faults that Khana's correction can undo (contrast, lighting, small text upscaled for OCR): a page
# whose image score is low for these only is not judged on its image alone: it is read, and a good read
# (`[final] read_pass_min`) passes it with the faults as warnings (the court gets the corrected page, which
# reads well); a poor read holds it, naming the image fault first. Text too small for the scan's resolution
# also measures as blurred: with `low_resolution`, `blurred` is taken as its consequence.
READ_DECIDES = frozenset({"low_resolution", "faded", "too_dark", "uneven_lighting"})


def _read_decides(codes) -> bool:
    codes = set(codes)
    if "low_resolution" in codes:
        codes.discard("blurred")
    return bool(codes) and codes <= READ_DECIDES


def _soft_faults(m, policy: GatePolicy) -> list[str]:
    """The image faults behind a low image score (empty when the score is not low)."""
    if legibility_score(m) >= policy.final.legibility_min:
        return []
    return _ordered(_attribute(m, policy) or _worst_factor(m))


def early_gate(m, policy: GatePolicy) -> list[str]:
    """Reasons to hold a page without OCR (hopeless pages).  Empty list: go on to OCR."""
    e = policy.early
    out = []
    if m.blank and e.hold_blank:
        # a black or near-black sheet is reported as too dark (lid open, exposure failure)
        return ["too_dark"] if m.paper_level < policy.reasons.too_dark_paper_max else ["blank"]
    if not m.skew_recoverable:
        # no line structure in a scan under 100 dpi: the strokes are too few pixels to form lines
        out += ["low_resolution", "skew_unrecoverable"] if 0 < float(getattr(m, "dpi", 0) or 0) < 100 else ["skew_unrecoverable"]
    if m.cut_off and e.hold_cut_off and (m.cut_off_fraction >= e.cut_off_min_fraction or m.border_fraction > 0):
        out.append("cut_off")
    if m.blur_rel >= e.blur_rel_max:
        out.append("blurred")
    if m.noise >= e.noise_max or m.impulse_noise >= e.impulse_noise_max:
        out.append("noisy")
    if m.dynamic_range < e.dynamic_range_min:
        out.append("too_dark" if m.paper_level < 128 else "faded")
    if 0 < m.char_height_px < e.char_height_min_px:
        out.append("low_resolution")
    if not out and legibility_score(m) < e.legibility_min:
        soft = _attribute(m, policy) or _worst_factor(m)
        if not _read_decides(soft):  # else the read decides (final_gate)
            out += soft
    return _ordered(out)


def _read_is_good(m, ocr: OcrEvidence | None, policy: GatePolicy) -> bool:
    """A read good enough to pass a page whose image score is low for correctable faults only."""
    if ocr is None:
        return False
    from .final_score import read_factor
    return read_factor(ocr, m) >= policy.final.read_pass_min


def read_warnings(m, ocr: OcrEvidence | None, policy: GatePolicy) -> list[str]:
    """The image faults a good read overrode (the page passes with these as warnings); [] otherwise."""
    soft = _soft_faults(m, policy)
    if soft and _read_decides(soft) and _read_is_good(m, ocr, policy) and not final_gate(m, ocr, policy):
        return [c for c in soft if not (c == "blurred" and "low_resolution" in soft)]  # blur of small text: its resolution
    return []


def blurred_part_read(ocr: OcrEvidence | None, policy: GatePolicy) -> bool:
    """A part of the page blurred beyond the reasons limit, large as the unread-text limits: a page held on its
    read names it `blurred` (Tesseract reads a motion-blurred side as low-confidence garbage, so no tile is
    unread, yet the cause to name is the blur)."""
    if ocr is None or ocr.blurred_text_tiles is None:
        return False
    f, n = policy.final, int(ocr.blurred_text_tiles)
    return n >= f.unread_tiles_min and n / max(int(ocr.text_tiles or 0), 1) > f.unread_text_share_max


def final_gate(m, ocr: OcrEvidence | None, policy: GatePolicy) -> list[str]:
    """All reasons to hold the page, combining image measures and the OCR evidence (None: OCR skipped)."""
    out = list(early_gate(m, policy))
    if m.blank:
        return out
    f = policy.final
    soft = _soft_faults(m, policy)
    if soft and not (_read_decides(soft) and _read_is_good(m, ocr, policy)):
        out += soft
    if ocr is not None:
        lex = 1.0 if ocr.lexicon_share is None else float(ocr.lexicon_share)
        low = (float(ocr.mean_confidence or 0.0) < f.ocr_mean_confidence_min
               or float(ocr.p10_confidence or 0.0) < f.ocr_p10_confidence_min
               or lex < f.lexicon_share_min or float(ocr.garbage_share or 0.0) > f.garbage_share_max
               or int(ocr.word_count or 0) < f.min_words)
        if ocr.words is not None and missing_lines(m, ocr.words) > f.missing_lines_max:
            low = True
        # a part of the page read badly or not at all, however well the rest reads
        if float(ocr.weak_line_share or 0.0) > f.weak_line_share_max:
            low = True
        blurred_part = False
        if float(ocr.unread_text_share or 0.0) > f.unread_text_share_max and int(ocr.unread_tiles or 0) >= f.unread_tiles_min:
            low = True
            # mostly blurred tiles among the unread ones: say so
            blurred_part = 2 * int(ocr.unread_blurred_tiles or 0) >= int(ocr.unread_tiles or 0)
        if low and not blurred_part:
            blurred_part = blurred_part_read(ocr, policy)
        if low:
            out += [c for c in soft if c not in out]  # an image fault behind a low image score is the cause to name first
            out.append("low_ocr_confidence")
            out += _attribute(m, policy)
            if blurred_part:
                out.append("blurred")
    return _ordered(out)
