"""At which text height does Tesseract `fas` read best and fastest?

    OMP_THREAD_LIMIT=1 PYTHONPATH=. .venv/bin/python -m bench.ocr.scale --jobs 2 --out bench/ocr/scale.json

Pages: the test-page generator (testpages.render_page), fonts naskh/sans/nazli/homa, sizes
10-16 pt, A4 at 300 dpi; plus low-resolution scans (10 and 12 pt scanned at 150 and 100 dpi)
after Khana's correction (quality.correct_page, which upscales small text towards 44 px), as the
OCR step sees them. Each page is scaled so that its median text-line band height
(`ocr.layout.text_line_height`, quality's `line_height_px` measure) becomes the target height,
then read:

* `tess`: Tesseract's page pass alone (psm 6, one OpenMP thread) on the scaled copy;
* `engine`: the whole `ocr.TesseractEngine` (rules, dropped-line refill, number re-reads,
  commas) with `text_height_px=target` (words mapped back to the page).

Per read: CER against the ground truth (testpages.metrics.cer on the engine's display-form
text) and CPU seconds (Tesseract's child processes + this process), which, unlike wall
time, hardly depend on the load of a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FONTS = ("naskh", "sans", "nazli", "homa")
SIZES = (10, 12, 14, 16)
LOWRES = ((10, 150), (12, 150), (10, 100), (12, 100))
TARGETS = (0, 20, 24, 28, 32, 36, 40, 44, 52)  # 0: the page as it is


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@lru_cache(maxsize=8)
def page(font: str, size: int, dpi: int, seed: int):
    """(image Tesseract is given, its dpi, ground truth, line height px)."""
    from ocr.layout import text_line_height
    from testpages.render import render_page

    p = render_page(font=font, size_pt=size, dpi=300, seed=seed)
    img, eff = p.image, 300.0
    if dpi != 300:
        from quality import correct_page
        from testpages.degrade import downsample

        c = correct_page(downsample(p.image, 300, dpi))
        img, eff = c.image, dpi * c.upscale
    return img, eff, p.text, text_line_height(img)


def run_one(job):
    import cv2

    from ocr import TesseractEngine
    from ocr.words import words_to_text
    from testpages.metrics import cer

    cv2.setNumThreads(1)
    font, size, dpi, seed, target, mode, interp = job
    img, eff, truth, h = page(font, size, dpi, seed)
    scale = 1.0 if not target or not h else target / h
    c0, t0 = _cpu(), time.perf_counter()
    if mode == "tess":
        eng = TesseractEngine(text_height_px=None)
        work = img
        if scale != 1.0:
            flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}[interp] if scale < 1 else cv2.INTER_CUBIC
            work = cv2.resize(img, None, fx=scale, fy=scale, interpolation=flag)
        words = eng.read_page(work, dpi=max(1, round(eff * scale)))
        text, conf = words_to_text(words), [w.conf for w in words]
    else:
        res = TesseractEngine(text_height_px=target or None).recognise(img, dpi=round(eff))
        text, conf, scale = res.text, [w.conf for w in res.words], res.scale
    cpu, wall = _cpu() - c0, time.perf_counter() - t0
    return {"font": font, "size_pt": size, "dpi": dpi, "seed": seed, "target": target, "mode": mode, "interp": interp,
            "line_px": h, "scale": round(scale, 3), "cer": cer(truth, text), "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3), "mean_conf": round(statistics.fmean(conf), 2) if conf else None}


def summary(rows: list[dict]) -> str:
    out = []
    for mode in sorted({r["mode"] for r in rows}, reverse=True):
        for interp in sorted({r["interp"] for r in rows if r["mode"] == mode}):
            sel = [r for r in rows if r["mode"] == mode and r["interp"] == interp]
            out.append(f"\n### {mode}" + (f" ({interp} downscaling)" if mode == "tess" else "") + "\n")
            out.append("| target px | pages | mean CER 300 dpi | worst 300 dpi | mean CER low-res | worst low-res | CPU s/page 300 dpi | CPU s/page low-res |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for t in sorted({r["target"] for r in sel}):
                a = [r for r in sel if r["target"] == t and r["dpi"] == 300]
                b = [r for r in sel if r["target"] == t and r["dpi"] != 300]

                def m(xs, k, f=statistics.fmean):
                    return f(x[k] for x in xs) if xs else float("nan")

                out.append(f"| {t or 'as is'} | {len(a) + len(b)} | {100 * m(a, 'cer'):.2f} % | {100 * m(a, 'cer', max):.2f} % | "
                           f"{100 * m(b, 'cer'):.2f} % | {100 * m(b, 'cer', max):.2f} % | {m(a, 'cpu_s'):.2f} | {m(b, 'cpu_s'):.2f} |")
    # per font and size: CER (%) at each target, Tesseract pass, first interpolation
    tess = [r for r in rows if r["mode"] == "tess"]
    sel = [r for r in tess if r["interp"] == sorted({x["interp"] for x in tess})[-1]] or rows  # linear, when there
    targets = sorted({r["target"] for r in sel})
    out.append(f"\n### CER % per font and size ({sel[0]['mode']}, {sel[0]['interp']}); line px = median band height as given\n")
    out.append("| font | pt | dpi | line px | " + " | ".join(str(t or "as is") for t in targets) + " |")
    out.append("|---|---:|---:|---:|" + "---:|" * len(targets))
    keys = sorted({(r["font"], r["size_pt"], r["dpi"]) for r in sel}, key=lambda k: (-k[2], k[0], k[1]))
    for f, s, d in keys:
        cells = []
        for t in targets:
            xs = [r["cer"] for r in sel if (r["font"], r["size_pt"], r["dpi"], r["target"]) == (f, s, d, t)]
            cells.append(f"{100 * statistics.fmean(xs):.2f}" if xs else "")
        lp = statistics.fmean(r["line_px"] or 0 for r in sel if (r["font"], r["size_pt"], r["dpi"]) == (f, s, d))
        out.append(f"| {f} | {s} | {d} | {lp:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1, help="pages per font, size and resolution")
    ap.add_argument("--targets", default=",".join(map(str, TARGETS)))
    ap.add_argument("--modes", default="tess", help="tess, engine or tess,engine")
    ap.add_argument("--interp", default="linear", help="downscaling for the tess mode: area, linear or both")
    ap.add_argument("--no-lowres", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "ocr" / "scale.json")
    ap.add_argument("--report", type=Path, nargs="+", help="print the tables of earlier --out files (rows merged)")
    a = ap.parse_args(argv)
    if a.report:
        print(summary([r for f in a.report for r in json.loads(f.read_text())["rows"]]))
        return
    targets = [int(t) for t in a.targets.split(",")]
    kinds = [(s, 300) for s in SIZES] + ([] if a.no_lowres else list(LOWRES))
    interps = ["area", "linear"] if a.interp == "both" else [a.interp]
    jobs = [(f, s, d, 11 + seed, t, mode, interp)
            for seed in range(a.seeds) for f in FONTS for s, d in kinds for mode in a.modes.split(",")
            for interp in (interps if mode == "tess" else ["engine"]) for t in targets]
    jobs.sort(key=lambda j: (j[0], j[1], j[2], j[3]))  # one page's jobs together: the render cache hits
    t0 = time.time()
    rows = []
    with get_context("fork").Pool(a.jobs) as pool:
        for r in pool.imap_unordered(run_one, jobs, chunksize=len(targets)):
            rows.append(r)
            print(f"[{len(rows)}/{len(jobs)}] {r['mode']} {r['font']} {r['size_pt']}pt {r['dpi']}dpi "
                  f"target={r['target']} line={r['line_px']} scale={r['scale']} cer={100 * r['cer']:.2f}% "
                  f"cpu={r['cpu_s']:.2f}s", file=sys.stderr, flush=True)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(time.time() - t0),
           "load_average": os.getloadavg(), "args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(summary(rows))


if __name__ == "__main__":
    main()
