"""The final legibility score: the image score combined with the evidence of the OCR read.

Before OCR, a page's legibility is the image score (`quality.score.legibility_score`), a
prediction of OCR success from pixels.  After OCR we know how the read actually went:
Tesseract's word confidences, whether the words it produced are Persian words, whether it
produced debris, whether it skipped text lines that the image shows, and which share of the
page's text tiles no word was read on.  Those measure the read itself, so the page report's
`legibility` after OCR is

    final = read_factor(ocr) x image_score ** IMAGE_WEIGHT x CUT_OFF_FACTOR (if text is cut off)

`read_factor` is the read's own legibility: a product of one logistic term per OCR measure,
divided by the product for a perfect read (fitted to exp(-CER / 5 %): CER 0.5 % -> 0.90,
2 % -> 0.67, 10 % -> 0.14), times the share of the page's text tiles that were read.  The
image score enters with a small weight: among pages OCR reads, the read says far more about
the CER than the pixels do (a 75-dpi or faded page the correction restores reads at CER 1-4 %
with an image score of 0.01-0.2), but of two equal reads the better image ranks higher, and a
perfect read of a poor image keeps a mark of it.  (Until 2026-12-01 the combination was
min(image score, read factor): it put every well-read low-resolution or faded page below
pages that read at CER 30 %, AUC 0.967 for CER <= 10 %.)  A page with text cut off by the scan's
edge has lost content whatever the read of the rest says: its score is multiplied by
CUT_OFF_FACTOR.  The result is in 0..1 and non-decreasing in every input.  Pages whose OCR is
skipped (hopeless pages, held early) keep the image score.

OCR measures used (keys of `ocr.measures.OcrMeasures.as_dict()`, plus the missing-line count
of `quality.gate.missing_lines`, and `unread_text_share` of `quality.unread_text`):

    mean_confidence   0..100  mean Tesseract word confidence
    p10_confidence    0..100  10th percentile of the word confidences
    lexicon_share     0..1    share of Persian tokens that are lexicon words (myspell-fa)
    garbage_share     0..1    share of tokens no real text produces
    word_count        int     words read (0: nothing was read -> 0)
    missing_lines     int     image text lines with no OCR word on them
    unread_text_share 0..1    share of text-like tiles with no OCR word near them

The parameters are fitted on the degraded corpus by `bench/quality/calibrate_final.py` (least
squares against exp(-CER/5 %); AUC for CER <= 10 % and Spearman rank correlations are
reported in-sample and out of fold, folds split by source article); FINAL_MODEL names the
fit, bump it when the parameters change.  Pure function: no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

FINAL_MODEL = "khana-final-legibility-2026.12.01"

# term: (OCR measure, midpoint, width, direction)   direction +1: larger is better.
# Fitted by bench/quality/calibrate_final.py (least squares to exp(-CER/5 %), every parameter below together)
# on the 440-page corpus run of 2026-12-01 evening (bench/quality/results-full.csv; cross-validation by
# source article and the figures: bench/quality/RESULTS.md).  The missing-lines midpoint is bounded at 3
# lines and its width at 1 line (a prior of the fit, see calibrate_final.BOUNDS).
FINAL_PARAMS: dict[str, tuple[str, float, float, int]] = {
    "confidence": ("mean_confidence", 72.73, 4.051, +1),
    "low_confidence": ("p10_confidence", 23.45, 13.77, +1),
    "lexicon": ("lexicon_share", 0.8218, 0.09551, +1),
    "garbage": ("garbage_share", 0.02921, 0.01, -1),
    "missing": ("missing_lines", 3.0, 1.0, -1),
}

# exponent of the image score in the final score (0: the read alone; 1: read x image).  Fitted: 0.016 -
# among pages that are read, the image score adds almost nothing to what the read shows
IMAGE_WEIGHT = 0.01609
# a page with text cut off by the scan's edge: content is lost, however well the rest reads (fitted)
CUT_OFF_FACTOR = 0.3083

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
    from .lines import missing_lines

    d = dict(ocr) if isinstance(ocr, Mapping) else {k: _get(ocr, k) for k in (*KEYS, "word_count", "words")}
    if d.get("missing_lines") is None:
        words = d.get("words")
        d["missing_lines"] = missing_lines(measures, words) if (measures is not None and words is not None) else None
    return d


def _unread(ocr) -> float:
    v = _get(ocr, "unread_text_share")
    try:
        v = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(v) else min(1.0, max(0.0, v))


def read_factor(ocr, measures=None, params: Mapping | None = None) -> float:
    """0..1: the read's own legibility (~exp(-CER/5 %)): the OCR factor times the share of text tiles read.

    `measures` (the page's `PageMeasures`) with `ocr.words` supplies `missing_lines`.
    """
    if ocr is None:
        return 0.0
    unread = _unread(ocr)
    if measures is not None and _get(ocr, "missing_lines") is None:
        ocr = with_missing_lines(ocr, measures)
    return float(ocr_factor(ocr, params) * (1.0 - unread))


def final_legibility(image_score: float, ocr_measures=None, measures=None, params: Mapping | None = None,
                     image_weight: float | None = None, cut_off_factor: float | None = None) -> float:
    """The page's legibility after OCR, 0..1 (1 = perfectly legible): the report's `legibility`.

    image_score: `legibility_score(measures)` (0..1).
    ocr_measures: a mapping or an object with the keys in this module's docstring (e.g. the final
      gate's `OcrEvidence`, or `OcrMeasures.as_dict()` plus `missing_lines`, or plus `words` and pass
      `measures`); None (OCR skipped) returns the image score.  Missing keys count as a perfect read.
    measures: optional `PageMeasures`: with `ocr_measures.words` it supplies `missing_lines`; its
      `cut_off` flag applies CUT_OFF_FACTOR.
    params, image_weight, cut_off_factor: override the fitted values (calibration only).
    """
    s = float(image_score)
    s = 0.0 if math.isnan(s) else min(1.0, max(0.0, s))
    if ocr_measures is None:
        return s
    w = IMAGE_WEIGHT if image_weight is None else float(image_weight)
    cut = CUT_OFF_FACTOR if cut_off_factor is None else float(cut_off_factor)
    f = read_factor(ocr_measures, measures, params) * (s ** w if s > 0 else 0.0)
    if measures is not None and getattr(measures, "cut_off", False):
        f *= cut
    return float(min(1.0, max(0.0, f)))
