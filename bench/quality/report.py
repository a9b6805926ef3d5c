"""Tables for the quality benchmark from its JSONL results.

    .venv/bin/python -m bench.quality.report bench/quality/out/results-full-s0.jsonl

Score and gate decisions are recomputed from the stored measures with the current
quality/score.py and quality/gate_policy.toml, so a policy change can be evaluated
without re-running OCR (`--stored` shows the decisions recorded during the run).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ILLEGIBLE_CER = 0.10
CER_TARGET_KINDS = {  # kind -> severities covered by the "CER <= 2% after correction" target
    "clean": None, "skew": None, "rotate": None, "shadow": None, "dark": None, "fade": None,
    "jpeg": {"q=50", "q=25", "q=10"}, "lowres": {"200dpi", "150dpi", "100dpi"},
}


def _evidence(d: dict):
    """The OCR evidence of a recorded page (records may carry more fields than the gate reads)."""
    from dataclasses import fields

    from quality import OcrEvidence
    names = {f.name for f in fields(OcrEvidence)}
    return OcrEvidence(**{k: v for k, v in d.items() if k in names})


def recompute(rec, policy=None):
    from quality import PageMeasures, early_gate, final_gate, legibility_score, load_policy
    pol = policy or load_policy()
    d = dict(rec["measures"])
    fields = PageMeasures.__dataclass_fields__
    m = PageMeasures(**{k: v for k, v in d.items() if k in fields})
    m.corrected_size = tuple(m.corrected_size)
    m.legibility = legibility_score(m)
    early = early_gate(m, pol)
    ocr = _evidence(rec["ocr"]) if rec.get("ocr") else None
    final = early if early else final_gate(m, ocr, pol)
    if rec.get("ocr_timeout"):
        final = final + ["ocr_timeout"]
    return m.legibility, early, final


def final_score(rec, image_score: float, early) -> tuple[float, dict | None]:
    """The report's `legibility`: the image score when the early gate skips OCR, else the final score."""
    from bench.quality.calibrate_final import ocr_evidence, page_measures
    from quality.final_score import final_legibility
    if early or not rec.get("ocr"):
        return image_score, None
    ev = ocr_evidence(rec, page_measures(rec))
    return final_legibility(image_score, ev), ev


def illegible(rec) -> bool:
    if rec.get("content_lost"):
        return True
    c = rec.get("cer_after")
    return c is None or c > ILLEGIBLE_CER


def report(recs, stored: bool = False) -> str:
    from scipy.stats import spearmanr

    from bench.quality.calibrate_final import ocr_evidence, page_measures
    from bench.quality.evaluate import decide
    for r in recs:
        if stored:
            r["_score"] = r["measures"].get("legibility", 0.0)
            r["_early"], r["_final"] = r["early"], r["final"]
            r["_legibility"], r["_ev"] = final_score(r, r["_score"], r["_early"])
            r["_warnings"], r["_read"] = [], not r["_early"]
        else:  # as the pipeline decides (bench/quality/evaluate.py): hopeless pages unread, the others read
            d = decide(r)
            r["_score"], r["_early"], r["_final"], r["_legibility"] = d["image"], d["early"], d["reasons"], d["legibility"]
            r["_warnings"], r["_read"] = d["warnings"], d["read"]
            r["_ev"] = ocr_evidence(r, page_measures(r)) if d["read"] else None
            r["_cut"] = bool(page_measures(r).cut_off)
        r["_hold"] = bool(r["_final"])
    lines = []
    add = lines.append
    order = {}
    for r in recs:
        order.setdefault(r["kind"], len(order))
    groups = defaultdict(list)
    for r in recs:
        groups[(r["kind"], r["level"], r["severity"])].append(r)
    add("## Per degradation kind and severity\n")
    add("| kind | severity | n | skew err ° (mean) | orient. ok | CER raw | CER Khana | CER clean page | illegible | pass | hold | held early | top reasons | quality ms |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    fmt = lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"  # noqa: E731
    for key in sorted(groups, key=lambda k: (order[k[0]], k[1])):
        g = groups[key]
        cr = [r["cer_raw"] for r in g if r["cer_raw"] is not None]
        ca = [r["cer_after"] for r in g if r["cer_after"] is not None]
        cc = [r["cer_clean"] for r in g if r.get("cer_clean") is not None]
        reasons = defaultdict(int)
        for r in g:
            for c in r["_final"]:
                reasons[c] += 1
        top = ", ".join(f"{k}×{v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        add(f"| {key[0]} | {key[2]} | {len(g)} | {np.mean([r['skew_err'] for r in g]):.3f} | "
            f"{sum(r['orientation_ok'] for r in g)}/{len(g)} | {fmt(np.mean(cr) if cr else None)} | "
            f"{fmt(np.mean(ca) if ca else None)} | {fmt(np.mean(cc) if cc else None)} | {sum(illegible(r) for r in g)} | "
            f"{sum(not r['_hold'] for r in g)} | {sum(r['_hold'] for r in g)} | {sum(bool(r['_early']) for r in g)} | "
            f"{top} | {np.mean([r['ms_quality'] for r in g]):.0f} |")
    # geometry
    add("\n## Orientation and skew\n")
    text_pages = [r for r in recs if r["kind"] != "blank"]
    sk = [r for r in text_pages if r["kind"] in ("skew", "rotate", "combo") or r["true_skew"] == 0]
    within15 = [r for r in text_pages if abs(r["true_skew"]) <= 15]
    within45 = [r for r in text_pages if abs(r["true_skew"]) <= 45]
    add(f"- skew MAE (projection profile, kept), |true skew| ≤ 15°: {np.mean([r['skew_err'] for r in within15]):.3f}° over {len(within15)} pages")
    add(f"- skew MAE (projection profile, kept), |true skew| ≤ 45°: {np.mean([r['skew_err'] for r in within45]):.3f}° over {len(within45)} pages")
    skew_only = [r for r in text_pages if r["kind"] == "skew"]
    if skew_only:
        add(f"- skew kind only: projection MAE {np.mean([r['skew_err'] for r in skew_only]):.3f}°, max {max(r['skew_err'] for r in skew_only):.3f}°")
        ff = [r["skew_fourier_err"] for r in skew_only if r.get("skew_fourier_err") is not None]
        if ff:
            add(f"- skew kind only: Fourier-spectrum method MAE {np.mean(ff):.3f}°, max {max(ff):.3f}° (compared, not kept)")
    ok = [r["orientation_ok"] for r in text_pages]
    add(f"- orientation right (total rotation within 10°) on {sum(ok)}/{len(ok)} text pages = {100 * np.mean(ok):.1f}%")
    osd = [r for r in text_pages if r.get("osd_rotation") is not None]
    if osd:
        # Tesseract's "Rotate" is the clockwise rotation to apply; ours is CCW
        osd_ok = [((-r["osd_rotation"]) % 360) == r["true_rotation"] for r in osd]
        add(f"- Tesseract OSD orientation right on {sum(osd_ok)}/{len(osd)} pages (measured for comparison)")
    bad = [r for r in text_pages if not r["orientation_ok"]]
    if bad:
        add("- orientation misses: " + ", ".join(f"{r['id']} ({r['severity']}, est {r['rotation']}/{r['skew']:.1f}°)" for r in bad[:12]))
    # score
    add("\n## Legibility score vs OCR\n")
    withtext = [r for r in recs if r["cer_after"] is not None]
    if len(withtext) > 3:
        from quality.final_score import FINAL_MODEL
        from quality.score import SCORE_MODEL
        y = [1 - r["cer_after"] for r in withtext]
        rho_f = spearmanr([r["_legibility"] for r in withtext], y).statistic
        rho = spearmanr([r["_score"] for r in withtext], y).statistic
        n_ocr = sum(r["_ev"] is not None for r in withtext)
        add(f"- **final legibility** (the report's `legibility`: {FINAL_MODEL} after OCR, the image score on "
            f"the {len(withtext) - n_ocr} early-held pages) vs (1 − CER after correction): **{rho_f:.3f}** over "
            f"{len(withtext)} pages with text (in-sample)")
        if all(r.get("source") is not None for r in withtext) and all(r.get("ocr") for r in withtext):
            from bench.quality.calibrate_final import INIT_PARAMS, cross_validate, load_records
            rows = load_records(withtext)
            oof = cross_validate(rows, INIT_PARAMS)[0]
            add(f"- final legibility **out of fold**: **{spearmanr(oof, [1 - r.cer for r in rows]).statistic:.3f}** "
                f"(refitted without each source article in turn, 5 folds; bench/quality/calibrate_final.py)")
        add(f"- image score alone (pre-OCR, {SCORE_MODEL}): **{rho:.3f}** over {len(withtext)} pages with text")
        cc = [r for r in withtext if r.get("cer_clean") is not None]
        if len(cc) > 3:
            rho_n = spearmanr([r["cer_after"] for r in cc], [r["cer_clean"] for r in cc]).statistic
            add(f"- noise ceiling: Spearman(CER after correction, CER of the same page undegraded) = {rho_n:.3f} over "
                f"{len(cc)} pages (how reproducible a page's CER is; among legible pages it is Tesseract's page-to-page noise)")
        nolost = [r for r in withtext if not r["content_lost"]]
        yn = [1 - r["cer_after"] for r in nolost]
        add(f"- the same without cut-off/covered pages: final {spearmanr([r['_legibility'] for r in nolost], yn).statistic:.3f}, "
            f"image {spearmanr([r['_score'] for r in nolost], yn).statistic:.3f} over {len(nolost)} pages")
        cells = defaultdict(list)
        for r in withtext:
            cells[(r["kind"], r["severity"])].append(r)
        cc_ = [1 - np.mean([r["cer_after"] for r in g]) for g in cells.values()]
        rho_cf = spearmanr([np.mean([r["_legibility"] for r in g]) for g in cells.values()], cc_).statistic
        rho_c = spearmanr([np.mean([r["_score"] for r in g]) for g in cells.values()], cc_).statistic
        add(f"- per (kind, severity) cell, mean score vs 1 − mean CER: final {rho_cf:.3f}, image {rho_c:.3f} over {len(cells)} cells")
        lo = [r for r in withtext if r["cer_after"] > 0.02 or r["_score"] < 0.9]
        if len(lo) > 3:
            yl = [1 - r["cer_after"] for r in lo]
            add(f"- pages where either the image score < 0.9 or CER > 2%: final {spearmanr([r['_legibility'] for r in lo], yl).statistic:.3f}, "
                f"image {spearmanr([r['_score'] for r in lo], yl).statistic:.3f} over {len(lo)} pages")
        oc = [r for r in withtext if r.get("ocr") and r["ocr"].get("mean_confidence") is not None]
        if oc:
            rho3 = spearmanr([r["ocr"]["mean_confidence"] for r in oc], [1 - r["cer_after"] for r in oc]).statistic
            add(f"- for comparison, Tesseract mean word confidence alone vs (1 − CER): {rho3:.3f} over {len(oc)} pages")
    # confusion
    add("\n## Gate confusion matrix\n")
    add(f"illegible = CER after Khana's correction > {ILLEGIBLE_CER:.0%}, or content lost (cut off, covered by a border, blank)\n")
    tp = sum(illegible(r) and r["_hold"] for r in recs)
    fn = sum(illegible(r) and not r["_hold"] for r in recs)
    fp = sum((not illegible(r)) and r["_hold"] for r in recs)
    tn = sum((not illegible(r)) and not r["_hold"] for r in recs)
    add("| | held | passed |\n|---|---:|---:|")
    add(f"| illegible | {tp} | **{fn}** |")
    add(f"| legible | {fp} | {tn} |")
    add(f"\n- illegible pages passed: **{fn}** (target 0)")
    add(f"- legible pages held: **{fp}/{fp + tn} = {100 * fp / max(fp + tn, 1):.1f}%** (target ≤ 5%)")
    if fn:
        add("- passed illegible: " + ", ".join(f"{r['id']} ({r['severity']}, CER {r['cer_after']})" for r in recs if illegible(r) and not r["_hold"])[:1500])
    if fp:
        add("- held legible: " + ", ".join(f"{r['id']} ({r['severity']}, CER {r['cer_after']:.3f}, {r['_final']})" for r in recs if not illegible(r) and r["_hold"])[:2500])
    # CER targets
    add("\n## CER after correction on the correctable kinds (target ≤ 2%)\n")
    add("| kind | severities | n | CER raw mean | CER Khana mean | CER Khana median | CER Khana max | pages ≤ 2% | same pages undegraded: mean | Khana − undegraded (mean) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, sev in CER_TARGET_KINDS.items():
        g = [r for r in recs if r["kind"] == kind and r["cer_after"] is not None and (sev is None or r["severity"] in sev)]
        if g:
            add(f"| {kind} | {'all' if sev is None else ', '.join(sorted(sev))} | {len(g)} | {fmt(np.mean(raw) if (raw := [r['cer_raw'] for r in g if r['cer_raw'] is not None]) else None)} | "
                f"{np.mean([r['cer_after'] for r in g]):.3f} | {np.median([r['cer_after'] for r in g]):.3f} | {max(r['cer_after'] for r in g):.3f} | "
                f"{sum(r['cer_after'] <= 0.02 for r in g)}/{len(g)} | "
                f"{fmt(np.mean([r['cer_clean'] for r in g if r.get('cer_clean') is not None]) if any(r.get('cer_clean') is not None for r in g) else None)} | "
                f"{fmt(np.mean([r['cer_after'] - r['cer_clean'] for r in g if r.get('cer_clean') is not None]) if any(r.get('cer_clean') is not None for r in g) else None)} |")
    ms = np.array([r["ms_quality"] for r in recs])
    full = np.array([r["ms_quality"] for r in recs if r["dpi"] == 300])
    cpu = np.array([r.get("cpu_ms_quality", np.nan) for r in recs if r["dpi"] == 300])
    add(f"\n## Speed\n\n- quality stage (correct + measure + early gate), wall time, all pages: mean {ms.mean():.0f} ms, median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms")
    if full.size:
        add(f"- 300-dpi pages only, wall: mean {full.mean():.0f} ms, median {np.median(full):.0f} ms, p95 {np.percentile(full, 95):.0f} ms")
    if np.isfinite(cpu).any():
        cpu = cpu[np.isfinite(cpu)]
        add(f"- 300-dpi pages only, CPU time of the process (OpenCV on 1 thread): mean {cpu.mean():.0f} ms, median {np.median(cpu):.0f} ms, p95 {np.percentile(cpu, 95):.0f} ms")
    early = [r for r in recs if r["_early"]]
    from bench.quality.evaluate import reason_table, summary
    add("\n## Issue 12 figures (decided as the pipeline does: bench/quality/evaluate.py)\n")
    decisions = [{"decision": "hold" if r["_hold"] else "pass", "reasons": r["_final"], "legibility": r["_legibility"],
                  "warnings": r.get("_warnings") or []} for r in recs]
    lines += summary(recs, decisions)
    add("\nTrue cause (by construction) against the first reason given, held pages:\n")
    lines += reason_table(recs, decisions)
    if early:
        add(f"- pages held by the early gate (OCR skipped): {len(early)}; their quality stage mean {np.mean([r['ms_quality'] for r in early]):.0f} ms")
    return "\n".join(lines)


def remeasure(recs, size="full", seed=0):
    """Recompute the image measures (not OCR) with the current quality/ code, in place.

    Valid when only measures/score/gate changed, not the corrected image fed to OCR.
    """
    import cv2

    from quality import correct_page, measure_page
    from testpages.corpus import iter_corpus
    cv2.setNumThreads(1)
    by_id = {r["id"]: r for r in recs}
    import time
    for it in iter_corpus(size, seed):
        r = by_id.get(it.id)
        if r is None:
            continue
        t0, p0 = time.perf_counter(), time.process_time()
        c = correct_page(it.image)
        m = measure_page(it.image, c, it.dpi)
        r["ms_quality"] = 1000 * (time.perf_counter() - t0)
        r["cpu_ms_quality"] = 1000 * (time.process_time() - p0)
        r["measures"] = m.as_dict()
        changed = c.rotation != r["rotation"] or abs(c.skew_degrees - r["skew"]) > 0.05
        if changed and it.text:  # the corrected image differs: OCR it again
            from bench.quality.run import _ocr, _ocr_dict
            from testpages.metrics import cer
            hyp, om, to = _ocr(c.image, it.dpi * c.upscale, 40.0)
            r["cer_after"] = 1.0 if to else min(1.0, cer(it.text, hyp))
            r["ocr"], r["ocr_timeout"] = _ocr_dict(om), to
            r["reocr"] = True
        from bench.quality.run import angle_err
        from quality.geometry import wrap45
        r["skew"], r["rotation"] = c.skew_degrees, c.rotation
        r["total_err"] = angle_err(c.skew_degrees - c.rotation, it.true_skew - it.true_rotation)
        r["orientation_ok"] = r["total_err"] < 10.0
        r["skew_err"] = abs(wrap45(c.skew_degrees - it.true_skew))
    return recs


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    recs = []
    for p in args:
        recs += [json.loads(l) for l in open(p) if l.strip()]
    if "--remeasure" in sys.argv:
        size = "full" if any("full" in a for a in args) else "small"
        recs = remeasure(recs, size)
        out = Path(args[0]).with_suffix(".remeasured.jsonl")
        with open(out, "w") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"remeasured -> {out}", file=sys.stderr)
    print(report(recs, stored="--stored" in sys.argv))
    csv_args = [a for a in sys.argv if a.startswith("--csv=")]
    if csv_args:
        import csv
        with open(csv_args[0].split("=", 1)[1], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "kind", "severity", "font", "size_pt", "dpi", "true_skew", "true_rotation", "skew", "rotation",
                        "skew_err", "cer_raw", "cer_khana", "cer_undegraded", "legibility_image", "legibility", "decision",
                        "reasons", "quality_ms", "quality_cpu_ms", "source", "early_held", "mean_confidence",
                        "p10_confidence", "lexicon_share", "garbage_share", "word_count", "missing_lines",
                        "unread_text_share", "read", "cut_off", "warnings", "weak_line_share", "ocr_cpu_s",
                        "content_lost", "cer_from_stored_run"])
            for r in recs:
                rnd = lambda v: "" if v is None else round(v, 4)  # noqa: E731
                w.writerow([r["id"], r["kind"], r["severity"], r["font"], r["size_pt"], r["dpi"], r["true_skew"],
                            r["true_rotation"], r["skew"], r["rotation"], rnd(r["skew_err"]), rnd(r["cer_raw"]),
                            rnd(r["cer_after"]), rnd(r.get("cer_clean")), rnd(r["_score"]), rnd(r["_legibility"]),
                            "hold" if r["_hold"] else "pass", " ".join(r["_final"]), round(r["ms_quality"]),
                            round(r.get("cpu_ms_quality") or 0), r.get("source", ""), int(bool(r["_early"]))]
                           + [("" if r["_ev"] is None or r["_ev"].get(k) is None else r["_ev"][k])
                              for k in ("mean_confidence", "p10_confidence", "lexicon_share", "garbage_share",
                                        "word_count", "missing_lines", "unread_text_share")]
                           + [int(bool(r.get("_read"))), int(bool(r.get("_cut"))), " ".join(r.get("_warnings") or []),
                              "" if not r.get("ocr") else rnd(r["ocr"].get("weak_line_share")),
                              "" if r.get("ocr_cpu_s") is None else round(r["ocr_cpu_s"], 2),
                              int(bool(r.get("content_lost"))), int(bool(r.get("cer_from_stored_run")))])
