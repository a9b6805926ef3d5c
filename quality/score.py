"""The legibility score: a 0..1 prediction of OCR success from the image measures.

The score is a product of smooth per-factor terms (each a logistic in one measure), so
that any single fatal defect drives it to 0 and mild defects combine.  Parameters are
calibrated on the degraded corpus against CER after correction (bench/quality, see
docs/quality.md).  SCORE_MODEL names the calibration; bump it when PARAMS change.
"""
from __future__ import annotations

import math

SCORE_MODEL = "khana-legibility-2026.11.24"

# term: (measure, midpoint, width, direction)   direction +1: larger is better
PARAMS: dict[str, tuple[str, float, float, int]] = {
    "blur": ("blur_rel", 0.6847, 0.1008, -1),
    "noise": ("noise", 0.3519, 0.07191, -1),
    "impulse": ("impulse_noise", 0.2135, 0.002508, -1),
    "range": ("dynamic_range", 6.919, 2.547, +1),
    "shadow": ("min_dynamic_range", -3.206, 3.045, +1),
    "contrast": ("contrast", 0.05609, 0.01441, +1),
    "resolution": ("char_height_px", 10.83, 1.982, +1),
    "depth": ("stroke_depth", 0.1241, 0.8701, +1),
}


def _sig(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def factor_terms(m) -> dict[str, float]:
    """Each factor's contribution (1 = no problem)."""
    out = {}
    for name, (attr, mid, width, sign) in PARAMS.items():
        v = float(getattr(m, attr, 0.0) or 0.0)
        if not math.isfinite(v):
            v = 1e6 if sign < 0 else 0.0
        out[name] = _sig(sign * (v - mid) / width)
    return out


# measures of an ideal page: the score is divided by its product so a perfect page scores 1
IDEAL = {"blur_rel": 0.15, "noise": 0.0, "impulse_noise": 0.0, "dynamic_range": 255.0, "min_dynamic_range": 255.0,
         "contrast": 1.0, "char_height_px": 45.0, "stroke_depth": 1.0}


def _ideal_product() -> float:
    class _M:
        pass
    m = _M()
    for k, v in IDEAL.items():
        setattr(m, k, v)
    p = 1.0
    for v in factor_terms(m).values():
        p *= v
    return max(p, 1e-9)


_IDEAL_PRODUCT = None


def legibility_score(m) -> float:
    """0..1; 1 = perfectly legible.  Blank pages and unrecoverable geometry score 0."""
    global _IDEAL_PRODUCT
    if _IDEAL_PRODUCT is None:
        _IDEAL_PRODUCT = _ideal_product()
    if getattr(m, "blank", False):
        return 0.0
    s = 1.0 / _IDEAL_PRODUCT
    for v in factor_terms(m).values():
        s *= v
    if getattr(m, "cut_off", False):
        s *= 0.5
    if not getattr(m, "skew_recoverable", True):
        s *= 0.2
    return float(min(1.0, max(0.0, s)))
