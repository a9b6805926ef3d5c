"""Single-core timing of the quality stage (correct + measure + early gate), no OCR.

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.timing --n 60

Runs sequentially in one process with OpenCV limited to one thread, on 300-dpi corpus
pages (A4, 2480x3508 before any skew canvas growth); prints wall and CPU ms per page.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None):
    import cv2
    import numpy as np

    from quality import correct_page, early_gate, load_policy, measure_page
    from testpages.corpus import iter_corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--size", default="small")
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    pol = load_policy()
    walls, cpus, early_walls, kinds = [], [], [], {}
    items = [it for it in iter_corpus(a.size) if it.dpi == 300]
    step = max(1, len(items) // a.n)
    items = items[::step][: a.n]
    correct_page(items[0].image)  # warm-up
    for it in items:
        t0, p0 = time.perf_counter(), time.process_time()
        c = correct_page(it.image)
        m = measure_page(it.image, c, it.dpi)
        e = early_gate(m, pol)
        w, p = 1000 * (time.perf_counter() - t0), 1000 * (time.process_time() - p0)
        walls.append(w)
        cpus.append(p)
        kinds.setdefault(it.kind, []).append(w)
        if e:
            early_walls.append(w)
    w, p = np.array(walls), np.array(cpus)
    print(f"{len(w)} pages at 300 dpi, one thread: wall mean {w.mean():.0f} ms, median {np.median(w):.0f} ms, "
          f"p95 {np.percentile(w, 95):.0f} ms; CPU mean {p.mean():.0f} ms, median {np.median(p):.0f} ms")
    if early_walls:
        print(f"pages held by the early gate: {len(early_walls)}, wall mean {np.mean(early_walls):.0f} ms, max {max(early_walls):.0f} ms")
    for k, v in kinds.items():
        print(f"  {k:14s} n={len(v):3d} wall mean {np.mean(v):.0f} ms")


if __name__ == "__main__":
    main()
