"""The final legibility score: the image score combined with the evidence of the OCR read.

Before OCR, a page's legibility is the image score (`quality.score.legibility_score`), a
prediction of OCR success from pixels.  After OCR we know how the read actually went:
Tesseract's word confidences, whether the words it produced are Persian words, whether it
produced debris, and whether it skipped text lines that the image shows.  Those measure the
read itself, so the page report's `legibility` after OCR is

    final = min(image_score, ocr_factor(ocr))

`ocr_factor` is a product of one logistic term per OCR measure, divided by the product for a
perfect read, and fitted to exp(-CER / 5 %) (CER 0.5 % -> 0.90, 2 % -> 0.67, 10 % -> 0.14): it
is the read's own legibility on that scale.  The minimum means: a perfect read leaves the
image score unchanged (the image can still say a clerk would struggle), a weak read pulls
the score down to what the read shows; the result is in 0..1 and non-decreasing in every
input.  (A product image x OCR ranks pages worse: among pages OCR reads, the image score
carries little information about the CER, and multiplying by it adds its noise to every
page, while the minimum only lets it bind where it is the lower of the two.)  Pages whose
OCR is skipped by the early gate keep the image score.

OCR measures used (keys of `ocr.measures.OcrMeasures.as_dict()`, plus the missing-line count
of `quality.gate.missing_lines`):

    mean_confidence   0..100  mean Tesseract word confidence
    p10_confidence    0..100  10th percentile of the word confidences
    lexicon_share     0..1    share of Persian tokens that are lexicon words (myspell-fa)
    garbage_share     0..1    share of tokens no real text produces
    word_count        int     words read (0: nothing was read -> 0)
    missing_lines     int     image text lines with no OCR word on them

The parameters are fitted on the degraded corpus by `bench/quality/calibrate_final.py` (least
squares against exp(-CER/5 %); Spearman rank correlation with 1 - CER is reported in-sample
and out of fold, folds split by source article); FINAL_MODEL names the fit, bump it when
FINAL_PARAMS change.  Pure function: no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

FINAL_MODEL = "khana-final-legibility-2026.11.24"

# term: (OCR measure, midpoint, width, direction)   direction +1: larger is better.
# Fitted by bench/quality/calibrate_final.py on bench/quality/out/results-full-final.jsonl
# (375 corpus pages with text, 324 read by OCR; results and cross-validation: bench/quality/RESULTS.md)
FINAL_PARAMS: dict[str, tuple[str, float, float, int]] = {
    "confidence": ("mean_confidence", 71.25, 3.865, +1),
    "low_confidence": ("p10_confidence", 32.82, 13.55, +1),
    "lexicon": ("lexicon_share", 0.8302, 0.09196, +1),
    "garbage": ("garbage_share", 0.06741, 0.05012, -1),
    "missing": ("missing_lines", 0.3599, 0.3226, -1),
}

# a perfect read: the OCR factor is divided by the product of the terms here
PERFECT_READ = {"mean_confidence": 100.0, "p10_confidence": 100.0, "lexicon_share": 1.0, "garbage_share": 0.0,
                "missing_lines": 0.0}
# a measure the caller does not provide counts as perfect (it gives no evidence against the read)
KEYS = tuple(PERFECT_READ)


def _sig(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _get(ocr, key: str):
    if ocr is None:
        return None
    if isinstance(ocr, Mapping):
        return ocr.get(key)
    return getattr(ocr, key, None)


def _value(ocr, key: str) -> float:
    v = _get(ocr, key)
    if v is None:
        return PERFECT_READ[key]
    v = float(v)
    if math.isnan(v):
        return PERFECT_READ[key]
    return v


def ocr_terms(ocr, params: Mapping | None = None) -> dict[str, float]:
    """Each OCR term's factor, normalised so that a perfect read gives 1 (and never above 1)."""
    params = FINAL_PARAMS if params is None else params
    out = {}
    for name, (key, mid, width, sign) in params.items():
        v = _value(ocr, key)
        if math.isinf(v):
            v = -1e9 if (v < 0) == (sign > 0) else 1e9  # keep the worse-is-lower order
        t = _sig(sign * (v - mid) / width)
        ideal = _sig(sign * (PERFECT_READ[key] - mid) / width)
        out[name] = min(1.0, t / max(ideal, 1e-300))
    return out


def ocr_factor(ocr, params: Mapping | None = None) -> float:
    """0..1: how well the OCR read went (1 = a perfect read); 0 when no word was read."""
    wc = _get(ocr, "word_count")
    if wc is not None and int(wc) <= 0:
        return 0.0
    f = 1.0
    for v in ocr_terms(ocr, params).values():
        f *= v
    return float(min(1.0, max(0.0, f)))


def with_missing_lines(ocr, measures) -> dict:
    """`ocr` as a dict, with `missing_lines` computed from the image's text lines and the OCR words.

    `ocr` may carry `words` (objects or dicts with `top` and `height` in corrected-image
    coordinates, as the final gate takes them); `measures` is the page's `PageMeasures`
    (its `line_bands`).  An existing `missing_lines` value is kept.
    """
    from .gate import missing_lines

    d = dict(ocr) if isinstance(ocr, Mapping) else {k: _get(ocr, k) for k in (*KEYS, "word_count", "words")}
    if d.get("missing_lines") is None:
        words = d.get("words")
        d["missing_lines"] = missing_lines(measures, words) if (measures is not None and words is not None) else None
    return d


def final_legibility(image_score: float, ocr_measures=None, measures=None, params: Mapping | None = None) -> float:
    """The page's legibility after OCR, 0..1 (1 = perfectly legible).

    image_score: `legibility_score(measures)` (0..1).
    ocr_measures: a mapping or an object with the keys in this module's docstring (e.g.
      `OcrMeasures.as_dict()` plus `missing_lines`, or plus `words` and pass `measures`);
      None (OCR skipped) returns the image score.  Missing keys count as a perfect read.
    measures: optional `PageMeasures`; with `ocr_measures.words` it supplies `missing_lines`.
    """
    s = float(image_score)
    s = 0.0 if math.isnan(s) else min(1.0, max(0.0, s))
    if ocr_measures is None:
        return s
    if measures is not None and _get(ocr_measures, "missing_lines") is None:
        ocr_measures = with_missing_lines(ocr_measures, measures)
    return float(min(s, ocr_factor(ocr_measures, params)))
