"""Text lines of the image that the OCR read put no word on (Tesseract sometimes drops whole lines)."""
from __future__ import annotations

import bisect


def missing_lines(m, words) -> int:
    """Text lines seen in the image that no OCR word overlaps (Tesseract sometimes drops whole lines).

    `words`: objects or dicts with `top` and `height` in corrected-image coordinates.
    """
    bands = [tuple(b) for b in (getattr(m, "line_bands", None) or [])]
    if len(bands) < 2 or not words:
        return 0
    hs = sorted(b - a for a, b in bands)
    med = hs[len(hs) // 2]
    spans = []
    for w in words:
        top = w["top"] if isinstance(w, dict) else getattr(w, "top", None)
        hgt = w["height"] if isinstance(w, dict) else getattr(w, "height", None)
        if top is None or hgt is None:
            return 0
        spans.append((float(top), float(top) + float(hgt)))
    spans.sort()
    starts = [a for a, _ in spans]
    longest = max(b - a for a, b in spans)
    missing = 0
    for a, b in bands:
        if b - a < 0.5 * med:
            continue
        # read when a word's centre lies in the band, or a word's box covers half of it: the band of a
        # line's descenders (Nazli, Homa: the projection splits them from the line above) is read with it
        lo = bisect.bisect_left(starts, a - longest)
        hi = bisect.bisect_right(starts, b)
        if not any(a <= (t + u) / 2.0 <= b or min(b, u) - max(a, t) >= 0.5 * (b - a) for t, u in spans[lo:hi]):
            missing += 1
    return missing
