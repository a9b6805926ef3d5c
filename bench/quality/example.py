"""Write an example QA overlay for a held page (bench/quality/example_held_page.png).

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.example
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main():
    import cv2

    from quality import OcrEvidence, annotate_problems, correct_page, final_gate, load_policy, measure_page
    from testpages import degrade as D
    from testpages.render import render_page

    page = render_page(font="nazli", size_pt=12, dpi=200, seed=3).image
    img = D.blur(D.shadow(D.cut_off(D.skew(page, -6), 0.08, "right"), 0.97, seed=2), 2.2)
    c = correct_page(img)
    m = measure_page(img, c, 200)
    boxes, ocr = [], None
    try:
        from ocr import ocr_measures, recognise
        r = recognise(c.image, dpi=200, timeout_s=60)
        ocr = OcrEvidence(**ocr_measures(r).as_dict(), words=[{"top": w.top, "height": w.height} for w in r.words])
        boxes = [(w.left, w.top, w.width, w.height) for w in r.words if w.conf < 60]
    except Exception as e:  # OCR is optional for the picture
        print("OCR skipped:", e, file=sys.stderr)
    reasons = final_gate(m, ocr, load_policy())
    ov = annotate_problems(c.image, m, reasons, boxes)
    out = Path(__file__).with_name("example_held_page.png")
    cv2.imwrite(str(out), cv2.resize(ov, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    print(out, reasons, f"legibility={m.legibility:.2f}", f"{len(boxes)} low-confidence words")


if __name__ == "__main__":
    main()
