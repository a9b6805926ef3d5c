"""End-to-end benchmark of `khana process`: CER and seconds per page on clean generated pages.

    .venv/bin/python bench/e2e/run.py [--pages 12]

Renders clean A4 pages at 300 dpi in every available Persian font, runs the real
`khana` console script on them once (embedded default, all cores), and prints the CER
of each page against its ground truth, the decisions, the per-page `seconds` the
report gives and the wall time of the whole run (pages per minute).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from testpages import available_fonts, render_page  # noqa: E402
from testpages.metrics import cer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=12)
    args = ap.parse_args()
    fonts = available_fonts()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truth = {}
        files = []
        for i in range(args.pages):
            font = fonts[i % len(fonts)]
            page = render_page(font=font, size_pt=12, seed=100 + i)
            path = tmp / f"p{i:02d}-{font}.png"
            Image.fromarray(page.image).save(path, dpi=(300, 300))
            truth[str(path)] = (font, page.text)
            files.append(str(path))
        exe = Path(sys.executable).with_name("khana")
        env = {**os.environ, "KHANA_HOME": str(tmp / "home")}
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), "process", *files, "--out", str(tmp / "out"), "--json"],
                           capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 3):
            sys.exit(r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
    print(f"| page | font | decision | CER % | OCR conf | seconds |")
    print(f"|---|---|---|---|---|---|")
    by_font: dict[str, list[float]] = {}
    for p in rows:
        font, text = truth[p["file"]]
        c = cer(text, p["text"]) * 100
        by_font.setdefault(font, []).append(c)
        print(f"| {Path(p['file']).name} | {font} | {p['decision']} | {c:.2f} | {p['ocr_confidence']} | {p['seconds']:.2f} |")
    print()
    for font, cs in by_font.items():
        print(f"{font}: mean CER {statistics.mean(cs):.2f}% over {len(cs)} pages")
    allc = [c for cs in by_font.values() for c in cs]
    print(f"all: mean CER {statistics.mean(allc):.2f}%, max {max(allc):.2f}%; "
          f"passed {sum(p['decision'] == 'pass' for p in rows)}/{len(rows)}")
    print(f"per-page seconds (report, one worker process each): median {statistics.median(p['seconds'] for p in rows):.2f}")
    print(f"wall time {wall:.1f} s for {len(rows)} pages on {os.cpu_count()} cores: "
          f"{len(rows) / wall * 60:.1f} pages/min (includes start-up)")


if __name__ == "__main__":
    main()
