"""Compare two quality-benchmark runs page by page: gate decisions, reasons, CER, OCR CPU.

    .venv/bin/python -m bench.quality.compare BEFORE.jsonl AFTER.jsonl

Used for the OCR text-size normalisation (issue 13): the same corpus read with
`--text-height 0` (off) and with the engine's default.
"""
from __future__ import annotations

import json
import statistics
import sys


def load(path: str) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, open(path, encoding="utf-8"))}


def _m(xs, f=statistics.fmean):
    xs = [x for x in xs if x is not None]
    return f(xs) if xs else float("nan")


def compare(before: dict[str, dict], after: dict[str, dict]) -> str:
    ids = sorted(set(before) & set(after))
    out = [f"{len(ids)} pages in both runs"]
    legible = [i for i in ids if before[i].get("cer_after") is not None and not before[i]["content_lost"]]
    ok = [i for i in legible if before[i]["cer_after"] <= 0.10 and after[i]["cer_after"] <= 0.10]
    out.append("| measure | before | after |")
    out.append("|---|---:|---:|")
    for name, sel in (("mean CER, pages with text", legible), ("mean CER, legible pages (CER <= 10 % in both)", ok)):
        out.append(f"| {name} ({len(sel)}) | {100 * _m(before[i]['cer_after'] for i in sel):.2f} % | "
                   f"{100 * _m(after[i]['cer_after'] for i in sel):.2f} % |")
    out.append(f"| median CER, pages with text | {100 * _m((before[i]['cer_after'] for i in legible), statistics.median):.2f} % | "
               f"{100 * _m((after[i]['cer_after'] for i in legible), statistics.median):.2f} % |")
    for run, name in ((before, "before"), (after, "after")):
        pass
    out.append(f"| OCR CPU s/page (engine incl. Tesseract) | {_m(before[i].get('ocr_cpu_s') for i in legible):.2f} | "
               f"{_m(after[i].get('ocr_cpu_s') for i in legible):.2f} |")
    for r, name in ((before, "before"), (after, "after")):
        held = sum(r[i]["decision"] == "hold" for i in ids)
        bad_pass = sum(r[i]["decision"] == "pass" and (r[i]["content_lost"] or (r[i].get("cer_after") or 0) > 0.10)
                       for i in ids)
        good_held = sum(r[i]["decision"] == "hold" and not r[i]["content_lost"] and r[i].get("cer_after") is not None
                        and r[i]["cer_after"] <= 0.10 for i in ids)
        out.append(f"| {name}: held / illegible passed / legible held | {held} / {bad_pass} / {good_held} | |")
    changed = [i for i in ids if (before[i]["decision"], sorted(before[i]["final"])) != (after[i]["decision"], sorted(after[i]["final"]))]
    out.append(f"\ngate decisions or reasons changed on {len(changed)} page(s)")
    for i in changed:
        b, a = before[i], after[i]
        out.append(f"  {i:22s} {b['severity']:16s} {b['decision']} {b['final']} (CER {100 * (b.get('cer_after') or 0):.1f} %) -> "
                   f"{a['decision']} {a['final']} (CER {100 * (a.get('cer_after') or 0):.1f} %)")
    worse = sorted(((after[i]["cer_after"] - before[i]["cer_after"], i) for i in legible), reverse=True)[:5]
    out.append("largest CER increases: " + ", ".join(f"{i} {100 * before[i]['cer_after']:.1f}->{100 * after[i]['cer_after']:.1f} %"
                                                    for d, i in worse if d > 0))
    return "\n".join(out)


if __name__ == "__main__":
    print(compare(load(sys.argv[1]), load(sys.argv[2])))
