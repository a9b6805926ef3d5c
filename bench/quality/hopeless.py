"""Cost of holding hopeless pages (issue 12, class 6): are they held before OCR, and how long does it take?

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.hopeless [--fonts naskh,nazli,sans,homa]

Per page: the quality stage (correct + measure + early gate) and the QA image (annotate + PNG encoding),
single-threaded OpenCV, CPU and wall time; whether the early gate held the page (OCR skipped).
A page the early gate passes (or holds but reads anyway, `pipeline.decide.READ_ANYWAY`) goes on to OCR:
the last columns are the whole decision as `khana process` makes it (assess_image, the engine, assess_read):
its reasons, Tesseract runs and CPU seconds including Tesseract's child processes (issue 12 class 6: no
held page may cost more than 2 s). `--partial` adds pages sharp at the top and blurred beyond reading below.
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

from bench.ocr.dropped_lines import CountingTesseract  # noqa: E402 - the engine's Tesseract, counting its runs
from bench.ocr.dropped_lines import cpu as cpu_all  # noqa: E402 - CPU of this process and its finished children


def pages(fonts, partial=False):
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
        if partial:
            big = render_page(font=font, size_pt=12, dpi=300, seed=2, n_words=900).image
            for name, share, fn in (("lower 2/3 motion 15px", 0.67, lambda im: D.motion_blur(im, 15)),
                                    ("lower 3/4 motion 9px", 0.75, lambda im: D.motion_blur(im, 9)),
                                    ("lower 3/4 defocus 4px+noise", 0.75,
                                     lambda im: D.gaussian_noise(D.blur(im, 4), 30, seed=1))):
                img = big.copy()
                y = int(img.shape[0] * (1 - share))
                img[y:] = fn(big)[y:]
                yield font, name, img



def decision(img, pol):
    """The whole decision of one page: (reasons, Tesseract runs, CPU s incl. Tesseract)."""
    from ocr import OcrTimeout, TesseractEngine
    from pipeline.decide import assess_image, assess_read
    c0 = cpu_all()
    a = assess_image(img, 300, pol)
    if a.hopeless:
        return a.early_reasons, 0, cpu_all() - c0
    engine = TesseractEngine()
    engine.tesseract = CountingTesseract(engine.tesseract)
    try:
        res = engine.recognise(a.corrected.image, dpi=int(round(a.image_dpi)))
    except OcrTimeout:
        res = None  # held `ocr_timeout`, as the OCR stage does
    r = assess_read(a.corrected.image, a.measures, res, pol, image_legibility=a.image_legibility)
    reasons = list(dict.fromkeys([*a.early_reasons, *r.reasons]))
    return reasons, engine.tesseract.calls, cpu_all() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fonts", default="naskh,nazli,sans,homa")
    ap.add_argument("--partial", action="store_true", help="add pages blurred beyond reading in their lower part")
    ap.add_argument("--no-decision", action="store_true", help="skip the whole-decision columns (no OCR)")
    ap.add_argument("--only", default="", help="only the pages whose name contains this")
    a = ap.parse_args(argv)
    import cv2
    cv2.setNumThreads(1)
    from quality import annotate_problems, correct_page, early_gate, load_policy, measure_page
    pol = load_policy()
    print("| page | font | held early | reasons | quality CPU ms | QA image CPU ms | total wall ms "
          "| decision | Tesseract runs | decision CPU s |")
    print("|---|---|---|---|---:|---:|---:|---|---:|---:|")
    for font, name, img in pages(a.fonts.split(","), a.partial):
        if a.only not in name:
            continue
        w0, c0 = time.perf_counter(), time.process_time()
        c = correct_page(img)
        m = measure_page(img, c, 300)
        early = early_gate(m, pol)
        c1 = time.process_time()
        if early:
            ov = annotate_problems(c.image, m, early, (), pol.reasons.blur_rel_max)
            cv2.imencode(".png", ov)
        c2, w2 = time.process_time(), time.perf_counter()
        tail = "| | |"
        if not a.no_decision:
            reasons, runs, secs = decision(img, pol)
            tail = f"{', '.join(reasons) or 'pass'} | {runs} | {secs:.2f} |"
        print(f"| {name} | {font} | {'yes' if early else 'no (OCR)'} | {', '.join(early)} | {1000 * (c1 - c0):.0f} | "
              f"{1000 * (c2 - c1):.0f} | {1000 * (w2 - w0):.0f} | {tail}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
