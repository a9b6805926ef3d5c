"""Re-decide the corpus with the current quality code, reusing a stored full run's OCR results.

    OMP_THREAD_LIMIT=1 .venv/bin/python -m bench.quality.recheck --csv bench/quality/results-full.csv \
        --out bench/quality/out/recheck.jsonl

Every corpus page goes through the current correction, measures and early gate. For pages that a stored
run (`results-full.csv`, written by report.py) already read, the final decision and the report's legibility
are recomputed from that run's OCR measures (mean and 10th-percentile confidence, lexicon and garbage share,
word count, missing lines, weak-line and unread-text shares) as the pipeline decides (hopeless pages are
not read; a page held early for an image fault keeps its hold); pages new to the corpus are read now with
Tesseract. Pages whose correction changed (skew or rotation differ from the stored run by more than 0.5
degrees) are re-read too, since the stored reading no longer applies.

Prints the gate's confusion matrix, the held legible pages, and the table of true cause against the
first reason given (issue 12, class 9).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the cause a degradation kind puts on a page (the reason an operator should read)
TRUE_CAUSE = {"blur": "blurred", "motion_blur": "blurred", "noise": "noisy", "salt_pepper": "noisy",
              "dark": "too_dark", "fade": "faded", "lowres": "low_resolution", "cut_off": "cut_off",
              "steep_cut": "cut_off", "blank": "blank", "shadow": "uneven_lighting", "edge_cut_photo": "cut_off",
              "small_photo": "low_resolution"}


def true_cause(rec) -> str:
    if rec["kind"] == "black_border" and rec["content_lost"]:
        return "cut_off"
    return TRUE_CAUSE.get(rec["kind"], "none")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(ROOT / "bench/quality/results-full.csv"))
    ap.add_argument("--size", default="full")
    ap.add_argument("--kinds", default="")
    ap.add_argument("--out", default=str(ROOT / "bench/quality/out/recheck.jsonl"))
    ap.add_argument("--ocr-timeout", type=float, default=60.0)
    ap.add_argument("--report-only", action="store_true", help="print the tables of an existing --out file")
    a = ap.parse_args(argv)
    if a.report_only:
        stored = {r["id"]: r for r in csv.DictReader(open(a.csv, encoding="utf-8"))}
        report([json.loads(x) for x in open(a.out, encoding="utf-8")], stored)
        return 0

    import cv2
    cv2.setNumThreads(1)
    from bench.quality.run import _ocr
    from pipeline.decide import READ_ANYWAY
    from quality import (OcrEvidence, correct_page, early_gate, final_gate, final_legibility, legibility_score,
                         load_policy, measure_page, read_warnings)
    from quality import unread_text
    from quality.page_frame import photo_dpi, rectify_page
    from testpages.corpus import iter_corpus
    from testpages.metrics import cer

    pol = load_policy()
    stored = {r["id"]: r for r in csv.DictReader(open(a.csv, encoding="utf-8"))}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    out = open(a.out, "w", encoding="utf-8")
    recs = []
    kinds = [k for k in a.kinds.split(",") if k] or None
    for item in iter_corpus(a.size, 0, kinds=kinds):
        t0, p0 = time.perf_counter(), time.process_time()
        img, dpi = item.image, item.dpi
        # every page, as pipeline.decide.assess_image does: a scan with a dark surround (a black border
        # round a skewed page) is flattened too. (The flattening's own turn is not in the geometry error:
        # on the corpus's bordered scans it is under 0.2 degrees.)
        frame = rectify_page(img)
        if frame is not None and frame.found:
            img, dpi = frame.image, photo_dpi(frame.image)
        c = correct_page(img)
        m = measure_page(img, c, dpi)
        early = early_gate(m, pol)
        hopeless = bool(early) and not set(early) <= READ_ANYWAY  # held without a read (pipeline.decide)
        rec = {"id": item.id, "kind": item.kind, "severity": item.severity, "content_lost": item.content_lost,
               "ms": 1000 * (time.perf_counter() - t0), "cpu_ms": 1000 * (time.process_time() - p0),
               "early": early, "skew": c.skew_degrees, "rotation": c.rotation, "legibility_image": legibility_score(m),
               "cut_off_edges": m.cut_off_edges}
        old = stored.get(item.id)
        same_geometry = old is not None and abs(float(old["skew"]) - c.skew_degrees) < 0.5 and int(old["rotation"]) == c.rotation
        if old is not None:
            rec["old_decision"], rec["old_reasons"] = old["decision"], [r for r in old["reasons"].split(";") if r]
        ev = None
        rec["legibility"] = rec["legibility_image"]
        if not item.text:
            rec["cer"], rec["final"], rec["source"] = None, early or final_gate(m, None, pol), "none"
        elif same_geometry and old.get("cer_khana") not in ("", None):
            rec["cer"] = float(old["cer_khana"])
            rec["source"] = "stored"
            if hopeless or old.get("mean_confidence") in ("", None):
                rec["final"] = early or final_gate(m, None, pol)
            else:
                num = lambda k, d=0.0: float(old[k]) if old.get(k) not in ("", None) else d  # noqa: E731
                ev = OcrEvidence(mean_confidence=num("mean_confidence"), p10_confidence=num("p10_confidence"),
                                 lexicon_share=num("lexicon_share", None), garbage_share=num("garbage_share"),
                                 word_count=int(num("word_count")), weak_line_share=num("weak_line_share"),
                                 unread_text_share=num("unread_text_share"), missing_lines=int(num("missing_lines")))
                reasons = list(dict.fromkeys([*early, *final_gate(m, ev, pol)]))
                if int(ev.missing_lines or 0) > pol.final.missing_lines_max and "low_ocr_confidence" not in reasons:
                    reasons = reasons + ["low_ocr_confidence"]  # the CSV has the count, not the words
                rec["final"] = reasons
        elif hopeless:
            rec["cer"], rec["source"], rec["final"] = None, "not read (hopeless)", early
        else:
            hyp, om, to = _ocr(c.image, dpi * c.upscale, a.ocr_timeout)
            rec["cer"] = 1.0 if to else min(1.0, cer(item.text, hyp))
            rec["source"] = "read now"
            if om is not None:
                u = unread_text(c.image, om.words, m, float(pol.reasons.blur_rel_max))
                ev = OcrEvidence(mean_confidence=om.mean_confidence or 0.0, p10_confidence=om.p10_confidence or 0.0,
                                 lexicon_share=om.lexicon_share, garbage_share=om.garbage_share or 0.0,
                                 word_count=int(om.word_count or 0), weak_line_share=getattr(om, "weak_line_share", 0.0) or 0.0,
                                 words=om.words, unread_text_share=float(u["unread_share"]), unread_tiles=int(u["unread_tiles"]),
                                 unread_blurred_tiles=len(u["blurred_boxes"]))
            rec["final"] = list(dict.fromkeys([*early, *final_gate(m, ev, pol)])) if not to else list(dict.fromkeys([*early, "ocr_timeout"]))
        if ev is not None:  # the report's legibility after a read, and the warnings of a page that passes
            rec["legibility"] = final_legibility(rec["legibility_image"], ev, m)
            rec["warnings"] = [] if rec["final"] else read_warnings(m, ev, pol)
        rec["decision"] = "hold" if rec["final"] else "pass"
        rec["illegible"] = bool(item.content_lost or (rec["cer"] is not None and rec["cer"] > 0.10) or not item.text)
        recs.append(rec)
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        out.flush()
    report(recs, stored)
    return 0


def _auc(scores, positive) -> float:
    """Probability that a positive page scores above a negative one (ties count half)."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return float("nan")
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def _ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def _spearman(x, y) -> float:
    rx, ry = _ranks(x), _ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx = sum((a - mx) ** 2 for a in rx) ** 0.5
    sy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (sx * sy) if sx and sy else float("nan")


def report(recs, stored=None):
    tab = Counter((r["illegible"], r["decision"]) for r in recs)
    n_leg = tab[(False, "hold")] + tab[(False, "pass")]
    print(f"pages {len(recs)}  (OCR: stored {sum(r['source'] == 'stored' for r in recs)}, "
          f"read now {sum(r['source'] == 'read now' for r in recs)})")
    print("| | held | passed |\n|---|---:|---:|")
    print(f"| illegible | {tab[(True, 'hold')]} | **{tab[(True, 'pass')]}** |")
    print(f"| legible | {tab[(False, 'hold')]} | {tab[(False, 'pass')]} |")
    print(f"legible held: {tab[(False, 'hold')]}/{n_leg} = {100 * tab[(False, 'hold')] / max(n_leg, 1):.1f} %")
    for r in recs:
        if r["illegible"] and r["decision"] == "pass":
            print("  ILLEGIBLE PASSED", r["id"], r["severity"], r["cer"])
    for r in recs:
        if not r["illegible"] and r["decision"] == "hold":
            print("  legible held", r["id"], r["severity"], r["cer"], r["final"])
    changed = [r for r in recs if "old_decision" in r and r["old_decision"] != r["decision"]]
    print(f"decisions changed against the stored run: {len(changed)}")
    for r in changed:
        print("  ", r["id"], r["severity"], r["old_decision"], r["old_reasons"], "->", r["decision"], r["final"])
    # reasons: true cause against the first reason given (held pages)
    conf = defaultdict(Counter)
    for r in recs:
        if r["decision"] == "hold":
            conf[true_cause(r)][r["final"][0]] += 1
    reasons = sorted({x for c in conf.values() for x in c})
    print("\ntrue cause \\ first reason | " + " | ".join(reasons) + " | right")
    print("|---" * (len(reasons) + 2) + "|")
    for cause in sorted(conf):
        row = conf[cause]
        right = row.get(cause, 0) if cause != "none" else "–"
        print(f"| {cause} | " + " | ".join(str(row.get(x, "")) for x in reasons) + f" | {right}/{sum(row.values())} |")
    if stored:
        # the report's legibility: the image score on early-held pages, else the stored run's final score
        rows = [r for r in recs if r.get("cer") is not None]
        new = [r["legibility"] for r in rows]  # the report's legibility with the current code
        old = [float(stored[r["id"]]["legibility"]) for r in rows if r["id"] in stored]
        old_ok = [r["cer"] <= 0.10 for r in rows if r["id"] in stored]
        print(f"\nAUC legibility vs (CER <= 10 %), in-sample: now {_auc(new, [r['cer'] <= 0.10 for r in rows]):.3f} "
              f"over {len(rows)} pages; stored run {_auc(old, old_ok):.3f} over {len(old)} pages")
        cells = defaultdict(list)
        for r, score in zip(rows, new):
            cells[(r["kind"], r["severity"])].append((score, r["cer"]))
        xs = [sum(a for a, _ in v) / len(v) for v in cells.values()]
        ys = [1 - sum(b for _, b in v) / len(v) for v in cells.values()]
        print(f"Spearman over per-condition means (kind x severity), legibility vs 1 - CER: {_spearman(xs, ys):.3f} "
              f"over {len(cells)} cells")
    early = [r for r in recs if r["early"]]
    if early:
        cpu = sorted(r["cpu_ms"] for r in early)
        print(f"\nearly-held pages {len(early)}: quality-stage CPU median {cpu[len(cpu) // 2]:.0f} ms, max {cpu[-1]:.0f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
