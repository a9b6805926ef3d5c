"""The quality benchmark's decision of a stored page, as the pipeline makes it, and the issue-12 figures.

`decide(rec)` re-decides one page of a stored run (bench/quality/run.py's JSONL) with the current
quality/ code and gate policy, the way `pipeline.decide` and `pipeline.stages` do:

* early gate on the image measures; a page held early for a reason that leaves nothing readable
  (`pipeline.decide.READ_ANYWAY`: any reason but cut_off, skew_unrecoverable, low_resolution) is held
  without OCR and its report's `legibility` is the image score;
* every other page is read (the run stored the read of the corrected page: confidences, lexicon and
  garbage shares, every word with its box, the unread-text tiles); the final gate decides, and the
  report's `legibility` is `quality.final_legibility` of the image score and the read;
* a page the early gate held for an image fault keeps its hold (the read adds reasons, never removes one);
* an OCR timeout holds the page (`ocr_timeout`) and leaves the image score.

Figures (issue 12): AUC of the report's legibility separating CER <= 10 % from above; Spearman over
per-condition means (kind x severity); the gate's confusion matrix; true cause against the reason given.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import fields

ILLEGIBLE_CER = 0.10

# the cause a degradation puts on a page: the reason an operator should read first (several: any of them)
TRUE_CAUSE = {"blur": {"blurred"}, "motion_blur": {"blurred"}, "noise": {"noisy"}, "salt_pepper": {"noisy"},
              "dark": {"too_dark"}, "fade": {"faded"}, "lowres": {"low_resolution"}, "cut_off": {"cut_off"},
              "steep_cut": {"cut_off"}, "edge_cut_photo": {"cut_off"}, "blank": {"blank"},
              "shadow": {"uneven_lighting"}, "small_photo": {"low_resolution"}, "jpeg": {"jpeg"}}
COMBO_CAUSE = {"blur4+noise40": {"blurred", "noisy"}, "100dpi+jpeg10": {"low_resolution", "jpeg"},
               "dark0.4+noise20": {"too_dark", "noisy"}, "fade0.3+blur2": {"faded", "blurred"},
               "shadow0.9+dark0.5": {"uneven_lighting", "too_dark"}, "skew7+shadow0.7": {"uneven_lighting"},
               "rot90+fade0.2+jpeg30": {"faded", "jpeg"}, "150dpi+skew-4": {"low_resolution"}}


def true_causes(rec) -> set[str]:
    """What is wrong with the page by construction (empty: nothing, e.g. clean, skewed, rotated pages)."""
    if rec["kind"] == "black_border":
        return {"cut_off"} if rec.get("content_lost") else set()
    if rec["kind"] == "combo":
        return COMBO_CAUSE.get(rec["severity"], set())
    return TRUE_CAUSE.get(rec["kind"], set())


def page_measures(rec):
    from quality import PageMeasures
    names = {f.name for f in fields(PageMeasures)}
    m = PageMeasures(**{k: v for k, v in rec["measures"].items() if k in names})
    m.corrected_size = tuple(m.corrected_size)
    return m


def evidence(rec):
    """The OCR evidence of the stored read (None: no read stored)."""
    from quality import OcrEvidence
    o = rec.get("ocr")
    if not o:
        return None
    names = {f.name for f in fields(OcrEvidence)}
    return OcrEvidence(**{k: v for k, v in o.items() if k in names})


def decide(rec, policy=None, final_fn=None) -> dict:
    """The pipeline's decision of a stored page with the current code (see the module docstring).

    final_fn(image_score, evidence, measures) -> legibility replaces `quality.final_legibility` (fits).
    """
    from pipeline.decide import READ_ANYWAY
    from quality import early_gate, final_gate, final_legibility, legibility_score, load_policy, read_warnings
    pol = policy or load_policy()
    m = page_measures(rec)
    image = float(legibility_score(m))
    m.legibility = image
    early = list(early_gate(m, pol))
    hopeless = bool(early) and not set(early) <= READ_ANYWAY
    ev = None if hopeless else evidence(rec)
    out = {"image": image, "early": early, "hopeless": hopeless, "read": False, "warnings": []}
    if hopeless or rec.get("cer_after") is None:  # held without a read, or a page without text
        reasons = early or list(final_gate(m, None, pol))
        legibility = image
    elif rec.get("ocr_timeout") or ev is None:
        reasons = list(dict.fromkeys([*early, "ocr_timeout"]))
        legibility = image
    else:
        out["read"] = True
        reasons = list(dict.fromkeys([*early, *final_gate(m, ev, pol)]))
        fn = final_fn or final_legibility
        legibility = float(fn(image, ev, m))
        if not reasons:
            out["warnings"] = list(read_warnings(m, ev, pol))
    out.update(reasons=reasons, decision="hold" if reasons else "pass", legibility=legibility)
    return out


def illegible(rec) -> bool:
    """Content lost, no text, or read at CER above 10 % after correction."""
    c = rec.get("cer_after")
    return bool(rec.get("content_lost")) or c is None or c > ILLEGIBLE_CER


def auc(scores, positive) -> float:
    """Probability that a positive page scores above a negative one (ties count half)."""
    pos = sorted(s for s, p in zip(scores, positive) if p)
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return float("nan")
    import bisect
    wins = 0.0
    for b in neg:
        lo, hi = bisect.bisect_left(pos, b), bisect.bisect_right(pos, b)
        wins += (len(pos) - hi) + 0.5 * (hi - lo)
    return wins / (len(pos) * len(neg))


def spearman(x, y) -> float:
    from scipy.stats import spearmanr
    r = spearmanr(x, y).statistic
    return float(r) if r == r else float("nan")


def cell_spearman(recs, scores, min_cer: float = 0.0) -> tuple[float, int]:
    """Spearman over per-condition means (kind x severity): mean legibility against 1 - mean CER.

    `min_cer`: only conditions whose mean CER is above it (below ~1 % the order of the conditions is
    Tesseract's page-to-page noise, which no measure of the page predicts)."""
    cells = defaultdict(list)
    for r, s in zip(recs, scores):
        cells[(r["kind"], r["severity"])].append((s, r["cer_after"]))
    if min_cer > 0:
        cells = {k: v for k, v in cells.items() if sum(b for _, b in v) / len(v) > min_cer}
    xs = [sum(a for a, _ in v) / len(v) for v in cells.values()]
    ys = [1 - sum(b for _, b in v) / len(v) for v in cells.values()]
    return spearman(xs, ys), len(cells)


def figures(recs, decisions, scores=None) -> dict:
    """AUC, per-condition Spearman and the gate's counts for records and their decisions."""
    scores = [d["legibility"] for d in decisions] if scores is None else list(scores)
    text = [(r, s) for r, s in zip(recs, scores) if r.get("cer_after") is not None]
    tr = [r for r, _ in text]
    ts = [s for _, s in text]
    good = [r["cer_after"] <= ILLEGIBLE_CER for r in tr]
    rho_cells, n_cells = cell_spearman(tr, ts)
    ill = [illegible(r) for r in recs]
    held = [d["decision"] == "hold" for d in decisions]
    n_leg = sum(not i for i in ill)
    leg_held = sum((not i) and h for i, h in zip(ill, held))
    return {"pages": len(recs), "text_pages": len(tr), "auc": auc(ts, good),
            "spearman_pages": spearman(ts, [1 - r["cer_after"] for r in tr]),
            "spearman_cells": rho_cells, "cells": n_cells,
            "illegible_passed": sum(i and not h for i, h in zip(ill, held)),
            "illegible_held": sum(i and h for i, h in zip(ill, held)),
            "legible_held": leg_held, "legible": n_leg, "legible_held_share": leg_held / max(n_leg, 1)}


def reason_table(recs, decisions) -> list[str]:
    """Markdown: true cause (by construction) against the first reason given, held pages; and every reason."""
    conf = defaultdict(Counter)
    right = Counter()
    named = Counter()
    total = Counter()
    for r, d in zip(recs, decisions):
        if d["decision"] != "hold":
            continue
        causes = true_causes(r)
        key = "/".join(sorted(causes)) or "none"
        first = d["reasons"][0]
        conf[key][first] += 1
        total[key] += 1
        right[key] += bool(causes) and first in causes
        named[key] += bool(causes) and bool(causes & set(d["reasons"]))
    reasons = sorted({x for c in conf.values() for x in c})
    out = ["| true cause \\ first reason | " + " | ".join(reasons) + " | first reason right | named among reasons |",
           "|---" * (len(reasons) + 3) + "|"]
    for cause in sorted(conf):
        row = conf[cause]
        ok = "–" if cause == "none" else f"{right[cause]}/{total[cause]}"
        nm = "–" if cause == "none" else f"{named[cause]}/{total[cause]}"
        out.append(f"| {cause} | " + " | ".join(str(row.get(x, "")) for x in reasons) + f" | {ok} | {nm} |")
    return out


def summary(recs, decisions, label="") -> list[str]:
    f = figures(recs, decisions)
    lines = [f"{label}pages {f['pages']} ({f['text_pages']} with text)",
             "| | held | passed |", "|---|---:|---:|",
             f"| illegible | {f['illegible_held']} | **{f['illegible_passed']}** |",
             f"| legible | {f['legible_held']} | {f['legible'] - f['legible_held']} |",
             f"- illegible passed: **{f['illegible_passed']}**; legible held: **{f['legible_held']}/{f['legible']} = "
             f"{100 * f['legible_held_share']:.1f} %**",
             f"- AUC of the report's legibility, CER <= 10 % vs above (in-sample): **{f['auc']:.4f}** over "
             f"{f['text_pages']} pages",
             f"- Spearman over per-condition means (kind x severity): **{f['spearman_cells']:.3f}** over {f['cells']} cells; "
             f"over pages: {f['spearman_pages']:.3f}"]
    for r, d in zip(recs, decisions):
        if illegible(r) and d["decision"] == "pass":
            lines.append(f"  - ILLEGIBLE PASSED {r['id']} {r['severity']} CER {r.get('cer_after')}")
    for r, d in zip(recs, decisions):
        if not illegible(r) and d["decision"] == "hold":
            lines.append(f"  - legible held {r['id']} ({r['severity']}, {r.get('font')} {r.get('size_pt')} pt) "
                         f"CER {r['cer_after']:.3f} {d['reasons']}")
    warned = Counter(w for d in decisions for w in d["warnings"])
    if warned:
        lines.append("- passed with a warning: " + ", ".join(f"{k} ×{v}" for k, v in warned.most_common()))
    return lines

