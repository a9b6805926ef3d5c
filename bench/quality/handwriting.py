"""Handwritten pages through the gate (issue 12, class 8): decisions, reasons, warnings.

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.handwriting [--seeds 0,1] [--printed small] [--csv F]

Each page of testpages.handwriting.hand_set goes through the pipeline's own decision
(pipeline.decide.assess_image -> Tesseract -> assess_read), as `khana process` does. A page is right
when it passes (legible handwriting, printed pages with handwritten parts) or is held with the true
reason among its reasons (a faulty handwritten page). `--printed small` also runs the printed degraded
corpus (testpages.corpus) and counts pages called handwritten and illegible pages (content lost, or
CER after correction > 10 %) that pass.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def decide(image, dpi, engine, policy):
    from pipeline.decide import assess_image, assess_read
    import ocr

    a = assess_image(image, dpi, policy)
    if a.hopeless:
        return a.early_reasons, a.warnings, None, [], ""
    try:
        res = engine.recognise(a.corrected.image, dpi=int(round(a.image_dpi)))
    except ocr.OcrTimeout:
        res = None
    r = assess_read(a.corrected.image, a.measures, res, policy, image_legibility=a.image_legibility,
                    warnings=a.warnings)
    reasons = list(dict.fromkeys([*a.early_reasons, *r.reasons]))
    return reasons, r.warnings, r.ocr_confidence, r.words, r.text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--printed", default="", help="also the printed corpus: small|full")
    ap.add_argument("--no-hand", action="store_true")
    ap.add_argument("--csv", default="")
    a = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    from ocr import TesseractEngine
    from quality import load_policy
    from testpages.metrics import cer

    policy = load_policy()
    engine = TesseractEngine(timeout_s=40.0)
    rows = []
    if not a.no_hand:
        from testpages.handwriting import hand_set
        for seed in (int(s) for s in a.seeds.split(",")):
            for pid, page, expected in hand_set(seed):
                t0 = time.process_time()
                out = decide(page.image, page.dpi, engine, policy)
                reasons, warnings, conf = out[0], out[1], out[2]
                ok = (not reasons) if expected == "pass" else (expected in reasons)
                rows.append({"set": "hand", "id": pid, "expected": expected, "decision": "hold" if reasons else "pass",
                             "reasons": " ".join(reasons), "warnings": " ".join(warnings),
                             "ocr_conf": "" if conf is None else round(conf, 1), "right": ok,
                             "cpu_s": round(time.process_time() - t0, 2)})
                print(rows[-1], flush=True)
    if a.printed:
        from testpages.corpus import iter_corpus
        for item in iter_corpus(a.printed):
            out = decide(item.image, item.dpi, engine, policy)
            reasons, warnings = out[0], out[1]
            text = out[4] if len(out) > 4 else ""
            c = cer(item.text, text) if item.text and text else None
            illegible = bool(item.content_lost or c is None or c > 0.10)
            rows.append({"set": "printed", "id": item.id, "expected": "hold" if illegible else "pass",
                         "decision": "hold" if reasons else "pass", "reasons": " ".join(reasons),
                         "warnings": " ".join(warnings), "ocr_conf": "" if out[2] is None else round(out[2], 1),
                         "right": not (illegible and not reasons), "cpu_s": "",
                         "cer": "" if c is None else round(c, 3)})
            print(rows[-1], flush=True)
    hand = [r for r in rows if r["set"] == "hand"]
    if hand:
        print(f"handwriting set: {sum(r['right'] for r in hand)}/{len(hand)} right; "
              f"passed {sum(r['decision'] == 'pass' for r in hand)}")
    pr = [r for r in rows if r["set"] == "printed"]
    if pr:
        print(f"printed corpus: {len(pr)} pages; called handwritten "
              f"{sum('handwritten' in r['warnings'] for r in pr)}; illegible passed "
              f"{sum(r['expected'] == 'hold' and r['decision'] == 'pass' for r in pr)}; legible held "
              f"{sum(r['expected'] == 'pass' and r['decision'] == 'hold' for r in pr)}/{sum(r['expected'] == 'pass' for r in pr)}")
    if a.csv:
        keys = sorted({k for r in rows for k in r})
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
