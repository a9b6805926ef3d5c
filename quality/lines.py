"""Text lines of the image that the OCR read put no word on (Tesseract sometimes drops whole lines)."""
from __future__ import annotations


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
