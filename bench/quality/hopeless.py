"""Cost of holding hopeless pages (issue 12, class 6): are they held before OCR, and how long does it take?

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.hopeless [--fonts naskh,nazli,sans,homa]

Per page: the quality stage (correct + measure + early gate) and the QA image (annotate + PNG encoding),
single-threaded OpenCV, CPU and wall time; whether the early gate held the page (OCR skipped).
A page the early gate passes goes on to OCR: its cost is then OCR's (seconds).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pages(fonts):
    from testpages import degrade as D
    from testpages import hard
    from testpages.render import render_page
    for font in fonts:
        p = render_page(font=font, size_pt=12, dpi=300, seed=2).image
        yield font, "blank", D.blank(p.shape, seed=1)
        yield font, "cut_off 10%", D.cut_off(p, 0.1, "right")
        yield font, "steep 32deg", hard.steep_scan(render_page(font=font, size_pt=12, dpi=300, seed=5, n_words=900).image, 32, lid=120)[0]
        yield font, "defocus 4px", D.blur(p, 4)
        yield font, "defocus 6px", D.blur(p, 6)
        yield font, "motion 7px", D.motion_blur(p, 7)
        yield font, "motion 15px", D.motion_blur(p, 15)
        yield font, "motion 25px", D.motion_blur(p, 25)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fonts", default="naskh,nazli,sans,homa")
    a = ap.parse_args(argv)
    import cv2
    cv2.setNumThreads(1)
    from quality import annotate_problems, correct_page, early_gate, load_policy, measure_page
    pol = load_policy()
    print("| page | font | held early | reasons | quality CPU ms | QA image CPU ms | total wall ms |")
    print("|---|---|---|---|---:|---:|---:|")
    for font, name, img in pages(a.fonts.split(",")):
        w0, c0 = time.perf_counter(), time.process_time()
        c = correct_page(img)
        m = measure_page(img, c, 300)
        early = early_gate(m, pol)
        c1 = time.process_time()
        if early:
            ov = annotate_problems(c.image, m, early, (), pol.reasons.blur_rel_max)
            cv2.imencode(".png", ov)
        c2, w2 = time.process_time(), time.perf_counter()
        print(f"| {name} | {font} | {'yes' if early else 'no (OCR)'} | {', '.join(early)} | {1000 * (c1 - c0):.0f} | "
              f"{1000 * (c2 - c1):.0f} | {1000 * (w2 - w0):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
