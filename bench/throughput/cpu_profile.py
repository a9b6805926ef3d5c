"""Where a page's CPU goes in `khana process` (embedded default), in one process.

    OMP_THREAD_LIMIT=1 PYTHONPATH=. .venv/bin/python bench/throughput/cpu_profile.py --pages 6

The throughput batch's first pages are submitted as `khana process` does (one batch per
file) and run through `pipeline.stages.run_page` and `finalise_batch` in this process under
cProfile (one warm-up page first). Tesseract's CPU is measured as child-process CPU. Prints
CPU seconds per page: Tesseract, this process by stage and the heaviest functions.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "bench" / "throughput")]
os.environ["OMP_THREAD_LIMIT"] = "1"


def _cpu(who) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "_work" / "throughput")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)  # as in a worker process
    from run import make_pages

    pages = make_pages(args.work, args.pages + 1)
    home = tempfile.mkdtemp(prefix="khana-profile-")
    for k in [k for k in os.environ if k.startswith("KHANA_")]:
        del os.environ[k]
    os.environ["KHANA_HOME"] = home
    from khana.bootstrap import build_runtime
    from pipeline import stages
    from pipeline.finalise import finalise_batch
    from pipeline.service import BatchMeta, KhanaService, Upload

    rt = build_runtime()
    service = KhanaService(rt)
    subs = [service.submit_batch([Upload(p.name, p.read_bytes())], BatchMeta(), actor="cli", source="cli") for p in pages]

    def one(sub) -> None:
        for pid in sub.page_ids:
            if stages.run_page(rt, pid) == "finalise":
                finalise_batch(rt, sub.batch_id)

    one(subs[0])  # warm-up: imports, lexicon, fonts
    timed = subs[1:]
    prof = cProfile.Profile(time.process_time)  # CPU of this process: does not depend on the machine's load
    c0, s0, t0 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.perf_counter()
    prof.enable()
    for sub in timed:
        one(sub)
    prof.disable()
    n = len(timed)
    tess, own, wall = (_cpu(resource.RUSAGE_CHILDREN) - c0) / n, (_cpu(resource.RUSAGE_SELF) - s0) / n, (time.perf_counter() - t0) / n
    st = pstats.Stats(prof)
    stats = st.stats  # (file, line, name) -> (cc, nc, tt, ct, callers)

    def cum(name_part: str) -> float:
        # the outermost matching entries only: recursion and wrappers are not counted twice
        return max((v[3] for k, v in stats.items() if name_part in f"{k[0]}:{k[2]}"), default=0.0) / n

    print(f"{n} pages, per page: wall {wall:.2f} s, CPU {tess + own:.2f} s = Tesseract {tess:.2f} s + Khana's process {own:.2f} s")
    print("Khana's process, cumulative CPU per page (cProfile on process time; Tesseract runs in children):")
    for label, key in [("quality stage (run_quality)", "stages.py:run_quality"), ("  decode", "decode.py:decode_page"),
                       ("  photo-sheet check", ":rectify_page"), ("  correct_page", "correct.py:correct_page"),
                       ("  measure_page", "measures.py:measure_page"), ("  PNG of the corrected page", "stages.py:encode_png"),
                       ("OCR stage (run_ocr)", "stages.py:run_ocr"), ("  TesseractEngine.recognise (without Tesseract itself)", "ocr/engine.py:recognise"),
                       ("  decide (gates, OCR measures, unread text, overlay)", "decide.py:assess_read"),
                       ("    Tesseract calls: TIFF encode, process start", "tesseract.py:run"), ("    text_line_height", "layout.py:text_line_height"),
                       ("    remove_rules", "layout.py:remove_rules"), ("    refill_missed_lines", "layout.py:refill_missed_lines"),
                       ("    reread_latin_numbers", "text_repair.py:reread_latin_numbers"), ("    cv2.resize (all callers)", "{resize}"),
                       ("  ocr_measures", "measures.py:ocr_measures"), ("  unread_text", "unread_text"),
                       ("  PDF page image", "pdf.py:encode_page_image"), ("finalise (PDF, report, delivery)", "finalise.py:finalise_batch"),
                       ("object store put", "objects.py:put"), ("database commits", ":commit")]:
        print(f"  {label:55s} {cum(key):.3f} s")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(args.top)
    print(buf.getvalue()[-6000:])


if __name__ == "__main__":
    main()
