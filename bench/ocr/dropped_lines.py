"""Text lines Tesseract's page pass drops on clean pages, and what the engine recovers (issue 12, class 3).

    OMP_THREAD_LIMIT=1 PYTHONPATH=. .venv/bin/python -m bench.ocr.dropped_lines \
        --fonts nazli,homa --sizes 12,13 --seeds 100-111 [--text-height 0]

Per clean A4 page (300 dpi, a window of the seed articles): the ground-truth lines with no word of the
page pass on them (Tesseract alone, no refill), then the whole `TesseractEngine`: lines still lost, CER,
Tesseract runs, CPU seconds (this process + Tesseract's). `--text-height 0` reads at the page's own size
(no text-height normalisation; the pages on which the issue was found), the default at 22 px.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


class CountingTesseract:
    """The engine's Tesseract, counting its runs."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, gray, **kw):
        self.calls += 1
        return self.inner.run(gray, **kw)


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def lost_lines(page, words) -> int:
    centres = [w.top + w.height / 2 for w in words]
    return sum(1 for _, y0, _, y1 in page.line_boxes if not any(y0 - 5 <= c <= y1 + 5 for c in centres))


def seeds(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fonts", default="nazli,homa")
    ap.add_argument("--sizes", default="12,13")
    ap.add_argument("--seeds", default="100-111")
    ap.add_argument("--text-height", type=float, default=22.0, help="0: read at the page's own size")
    ap.add_argument("--jsonl", help="also write one JSON line per page here")
    a = ap.parse_args(argv)
    from ocr import TesseractEngine
    from testpages.metrics import cer
    from testpages.render import render_page

    th = a.text_height or None
    out = open(a.jsonl, "w") if a.jsonl else None
    rows = []
    print("| font | pt | seed | lines | lost by page pass | lost after engine | CER page pass | CER engine | Tesseract runs | CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for font in a.fonts.split(","):
        for size in [float(s) for s in a.sizes.split(",")]:
            for seed in seeds(a.seeds):
                page = render_page(font=font, size_pt=size, dpi=300, seed=seed, n_words=900)
                plain = TesseractEngine(text_height_px=th, refill_lines=False, reread_numbers=False).recognise(page.image, dpi=300)
                engine = TesseractEngine(text_height_px=th)
                engine.tesseract = CountingTesseract(engine.tesseract)
                c0 = cpu()
                res = engine.recognise(page.image, dpi=300)
                row = dict(font=font, size=size, seed=seed, lines=len(page.line_boxes),
                           lost_pass=lost_lines(page, plain.words), lost=lost_lines(page, res.words),
                           cer_pass=cer(page.text, plain.text), cer=cer(page.text, res.text),
                           runs=engine.tesseract.calls, cpu=cpu() - c0)
                rows.append(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                print(f"| {font} | {size:g} | {seed} | {row['lines']} | {row['lost_pass']} | {row['lost']} | "
                      f"{100 * row['cer_pass']:.1f} % | {100 * row['cer']:.1f} % | {row['runs']} | {row['cpu']:.2f} |", flush=True)
    hit = [r for r in rows if r["lost_pass"]]
    print(f"\n{len(rows)} pages; page pass lost lines on {len(hit)} ({sum(r['lost_pass'] for r in rows)} lines of "
          f"{sum(r['lines'] for r in rows)}); after the engine: {sum(1 for r in rows if r['lost'])} pages, "
          f"{sum(r['lost'] for r in rows)} lines; mean CER {100 * sum(r['cer'] for r in rows) / len(rows):.2f} % "
          f"(page pass {100 * sum(r['cer_pass'] for r in rows) / len(rows):.2f} %), worst {100 * max(r['cer'] for r in rows):.1f} %; "
          f"on the pages with dropped lines: {sum(r['runs'] for r in hit)} Tesseract runs, "
          f"{sum(r['cpu'] for r in hit):.1f} CPU s; on the others {sum(r['runs'] for r in rows if not r['lost_pass'])} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
