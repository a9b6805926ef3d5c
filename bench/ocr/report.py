"""Render the tables of bench/ocr/RESULTS.md from results.json (bench.ocr.run) and
headers.json (bench.ocr.headers).

    PYTHONPATH=. .venv/bin/python -m bench.ocr.report [bench/ocr/results.json]
"""
from __future__ import annotations

import json
import sys


def pct(v):
    return "–" if v is None else f"{100 * v:.2f} %"


def rule_confusion(rows, mean_min: float, lex_min: float):
    tp = fp = tn = fn = 0
    for r in rows:
        c = r.get("corrected", {})
        if c.get("cer") is None or "measures" not in c or r["content_lost"]:
            continue
        m = c["measures"]
        ok = m["mean_confidence"] >= mean_min and m["lexicon_share"] >= lex_min
        legible = c["cer"] <= 0.10
        if ok and legible:
            tp += 1
        elif ok and not legible:
            fp += 1
        elif legible:
            fn += 1
        else:
            tn += 1
    return tp, fp, tn, fn


def main(path: str = "bench/ocr/results.json") -> int:
    r = json.load(open(path, encoding="utf-8"))
    out = []
    if "clean_fonts" in r:
        out += ["### Clean pages per font (12 pt, 300 dpi, raw Tesseract = Khana on clean pages)", "",
                "| font | pages | CER mean | CER max | WER mean | s/page |", "|---|---|---|---|---|---|"]
        for font, v in r["clean_fonts"].items():
            out.append(f"| {font} | {v['pages']} | {pct(v['cer'])} | {pct(v['cer_max'])} | {pct(v['wer'])} | {v['seconds']:.2f} |")
        out.append("")
    if "per_kind" in r:
        out += ["### Per degradation kind (corpus `small`, fonts and sizes 10/12/14 pt cycled)", "",
                "| kind | pages | raw CER median | corrected CER median | raw CER max | corrected CER max | corrected WER median |",
                "|---|---|---|---|---|---|---|"]
        for kind, v in r["per_kind"].items():
            if not v["pages"]:
                continue
            out.append(f"| {kind} | {v['pages']} | {pct(v['raw_cer_median'])} | {pct(v['corrected_cer_median'])} | "
                       f"{pct(v.get('raw_cer_max'))} | {pct(v.get('corrected_cer_max'))} | {pct(v['corrected_wer_median'])} |")
        out.append("")
    if "per_severity" in r:
        out += ["### Every corpus page", "", "| page | severity | font | raw CER | corrected CER | note |", "|---|---|---|---|---|---|"]
        for x in r["per_severity"]:
            note = (x.get("corrected_error") or x.get("raw_error") or "")[:60]
            out.append(f"| {x['id']} | {x['severity']} | {x['font']} | {pct(x['raw_cer'])} | {pct(x['corrected_cer'])} | {note} |")
        out.append("")
    if "timing" in r:
        t = r["timing"]
        out += ["### Seconds per page (clean A4 300 dpi pages)", "", "| run | s/page | wall s |", "|---|---|---|"]
        for k, v in t.items():
            if isinstance(v, dict):
                out.append(f"| {k} | {v['s_per_page']:.2f} | {v['wall_s']:.1f} |")
        out.append("")
    if "pdf_bytes_per_page" in r:
        out += ["### PDF bytes per page (A4, 300 dpi, with text layer)", "", "| page / encoding | KiB per page |", "|---|---|"]
        for k, v in r["pdf_bytes_per_page"].items():
            out.append(f"| {k} | {v / 1024:.0f} |")
        out.append("")
    for key, title in (("separation", "all pages with text"), ("separation_without_content_lost", "without cut-off / covered pages")):
        if key not in r:
            continue
        s = r[key]
        out += [f"### OCR-confidence measures, legible (corrected CER ≤ 10 %) vs illegible — {title}",
                f"", f"legible: {s['n_legible']} pages, illegible: {s['n_illegible']} pages", "",
                "| measure | legible median | worst legible | illegible median | best illegible | AUC |", "|---|---|---|---|---|---|"]
        for m in ("mean_confidence", "p10_confidence", "lexicon_share", "garbage_share"):
            v = s[m]
            f = (lambda x: "–" if x is None else f"{x:.3g}")
            out.append(f"| {m} | {f(v['legible_median'])} | {f(v['legible_min_or_max'])} | {f(v['illegible_median'])} | "
                       f"{f(v['illegible_max_or_min'])} | {f(v['auc'])} |")
        out.append("")
    if "rows" in r:
        out += ["### A simple rule on the measures (pages not cut off)", "", "| rule | legible passed | illegible passed | illegible held | legible held |", "|---|---|---|---|---|"]
        for mean_min, lex_min in ((60, 0.8), (70, 0.85), (75, 0.9)):
            tp, fp, tn, fn = rule_confusion(r["rows"], mean_min, lex_min)
            out.append(f"| mean_confidence ≥ {mean_min} and lexicon_share ≥ {lex_min} | {tp} | {fp} | {tn} | {fn} |")
        out.append("")
    try:
        h = json.load(open(path.replace("results.json", "headers.json"), encoding="utf-8"))
        out += ["### Identifiers on rendered court headers (bench/ocr/headers.py)", "",
                "| font / digits | pages | fields exact | case number exact | false case_number_mismatch |", "|---|---|---|---|---|"]
        for k, c in h.items():
            out.append(f"| {k} | {c['pages']} | {c['fields_exact']}/{c['fields']} | {c['case_exact']}/{c['pages']} | {c['false_mismatch']} |")
        out.append("")
    except OSError:
        pass
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
