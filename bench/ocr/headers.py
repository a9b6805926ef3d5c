"""Identifier extraction on rendered court headers (testpages.headers).

    PYTHONPATH=. .venv/bin/python -m bench.ocr.headers [--seeds 2] [--first-seed 0] [--out bench/ocr/headers.json]

For every font x layout (دادنامه, دادخواست) x digit system (Persian, Latin) x seed:
OCR the header, extract fields, and count fields whose kind and value are exact, case
numbers exact, and pages that would raise a false `case_number_mismatch`.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from ocr import case_number_mismatch, extract_fields, recognise
from testpages.headers import render_header
from testpages.render import available_fonts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="start at this seed (pages not looked at while tuning: e.g. --first-seed 2 --seeds 4)")
    ap.add_argument("--out", default="bench/ocr/headers.json")
    ap.add_argument("--text-height", default="default",
                    help="OCR text-size normalisation: px of a text line for Tesseract, 0 = off (default: the engine's)")
    a = ap.parse_args(argv)
    kw = {} if a.text_height == "default" else {"text_height_px": float(a.text_height) or None}
    agg: dict = defaultdict(lambda: {"fields": 0, "fields_exact": 0, "case_exact": 0, "pages": 0, "false_mismatch": 0})
    for font in available_fonts():
        for digits in ("persian", "latin"):
            for layout in ("dadnameh", "dadkhast"):
                for seed in range(a.first_seed, a.first_seed + a.seeds):
                    page = render_header(layout, font=font, persian_digits=digits == "persian", seed=1000 + seed)
                    res = recognise(page.image, dpi=page.dpi, **kw)
                    fields = extract_fields(res.text)
                    got = {(f.kind, f.value) for f in fields}
                    cell = agg[f"{font} / {digits}"]
                    cell["pages"] += 1
                    cell["fields"] += len(page.fields)
                    cell["fields_exact"] += sum((f["kind"], f["value"]) in got for f in page.fields)
                    cell["case_exact"] += ("case_number", page.case_number) in got
                    cell["false_mismatch"] += case_number_mismatch(fields, page.case_number)
                    print(font, digits, layout, seed, cell, file=sys.stderr)
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(agg, fh, ensure_ascii=False, indent=1)
    print("| font / digits | pages | fields exact | case number exact | false case_number_mismatch |")
    print("|---|---|---|---|---|")
    tot = defaultdict(int)
    for key, c in agg.items():
        print(f"| {key} | {c['pages']} | {c['fields_exact']}/{c['fields']} | {c['case_exact']}/{c['pages']} | {c['false_mismatch']} |")
        for k, v in c.items():
            tot[k] += v
    print(f"| all | {tot['pages']} | {tot['fields_exact']}/{tot['fields']} | {tot['case_exact']}/{tot['pages']} | {tot['false_mismatch']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
