"""OCR benchmark: CER/WER per degradation kind (raw Tesseract vs Khana's corrected
pipeline), seconds per page with OMP_THREAD_LIMIT=1 vs Tesseract's default threads,
PDF bytes per page, and how well the OCR-confidence measures separate legible from
illegible pages.

    PYTHONPATH=. .venv/bin/python -m bench.ocr.run [--size small|full] [--workers 2] [--out bench/ocr/results.json]

"raw" = recognise() on the page as scanned; "corrected" = recognise() on
quality.correct_page(page).image (deskew, orientation, illumination). A page is
"legible" when its corrected CER is <= 10 % (design.md's bar).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor


from ocr import OcrError, PdfPage, build_searchable_pdf, ocr_measures, recognise
from testpages.metrics import cer, levenshtein, normalize_text
from testpages.render import available_fonts, render_page

LEGIBLE_CER = 0.10


def wer(ref: str, hyp: str) -> float:
    r, h = normalize_text(ref).split(), normalize_text(hyp).split()
    if not r:
        return 0.0 if not h else 1.0
    return levenshtein(r, h) / len(r)


def _correct(img):
    from quality import correct_page  # noqa: WPS433 (optional: the quality package)

    cp = correct_page(img)
    return cp.image, float(getattr(cp, "upscale", 1.0) or 1.0)


def _ocr_item(args):
    item_id, kind, severity, font, img, dpi, text, content_lost = args
    row = {"id": item_id, "kind": kind, "severity": severity, "font": font, "content_lost": content_lost}
    for mode in ("raw", "corrected"):
        try:
            t0 = time.perf_counter()
            if mode == "raw":
                page, page_dpi = img, dpi
            else:
                page, up = _correct(img)
                page_dpi = int(round(dpi * up))
            res = recognise(page, dpi=page_dpi, timeout_s=60)
            m = ocr_measures(res)
            row[mode] = {
                "cer": cer(text, res.text) if text else None,
                "wer": wer(text, res.text) if text else None,
                "seconds": time.perf_counter() - t0,
                "measures": m.as_dict(),
            }
        except OcrError as exc:
            row[mode] = {"error": f"{type(exc).__name__}: {exc}", "cer": 1.0 if text else None, "wer": 1.0 if text else None}
        except ImportError as exc:
            row[mode] = {"error": f"quality not available: {exc}"}
    return row


def run_corpus(size: str, workers: int) -> list[dict]:
    from testpages.corpus import iter_corpus

    jobs = [
        (it.id, it.kind, it.severity, it.font, it.image, it.dpi, it.text, it.content_lost)
        for it in iter_corpus(size)
    ]
    rows = []
    with ProcessPoolExecutor(workers) as pool:
        for i, row in enumerate(pool.map(_ocr_item, jobs, chunksize=1)):
            rows.append(row)
            r, c = row.get("raw", {}), row.get("corrected", {})
            print(f"[{i + 1}/{len(jobs)}] {row['id']:<18} {row['severity']:<22} raw={_pct(r.get('cer'))} corrected={_pct(c.get('cer'))}", file=sys.stderr)
    return rows


def clean_fonts(seeds: int) -> dict:
    out = {}
    for font in available_fonts():
        cers, wers, secs = [], [], []
        for s in range(seeds):
            page = render_page(font=font, seed=100 + s)
            res = recognise(page.image, dpi=page.dpi)
            cers.append(cer(page.text, res.text))
            wers.append(wer(page.text, res.text))
            secs.append(res.seconds)
        out[font] = {"cer": statistics.mean(cers), "cer_max": max(cers), "wer": statistics.mean(wers), "seconds": statistics.mean(secs), "pages": seeds}
        print(f"clean {font}: CER {out[font]['cer']:.4f} WER {out[font]['wer']:.4f}", file=sys.stderr)
    return out


def _timed(args):
    img, threads = args
    return recognise(img, threads=threads, timeout_s=120).seconds


def timing(n_pages: int) -> dict:
    pages = [render_page(font=f, seed=200 + i).image for i, f in enumerate((available_fonts() * 4)[:n_pages])]
    res = {}
    for label, threads in (("omp1", 1), ("omp_default", None)):
        t0 = time.perf_counter()
        per = [_timed((p, threads)) for p in pages]
        res[f"sequential_{label}"] = {"s_per_page": statistics.mean(per), "wall_s": time.perf_counter() - t0}
        print(f"sequential {label}: {statistics.mean(per):.2f} s/page", file=sys.stderr)
    for label, threads in (("omp1", 1), ("omp_default", None)):
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_timed, [(p, threads) for p in pages]))
        wall = time.perf_counter() - t0
        res[f"two_workers_{label}"] = {"s_per_page": wall / len(pages), "wall_s": wall}
        print(f"2 workers {label}: {wall / len(pages):.2f} s/page (throughput)", file=sys.stderr)
    res["cpus"] = os.cpu_count()
    return res


def pdf_sizes() -> dict:
    out = {}
    cases = {"clean": render_page(font="nazli", seed=300).image}
    try:
        from testpages import degrade as D

        scan = D.shadow(D.gaussian_noise(cases["clean"], 10, seed=1), 0.4, seed=2)
        cases["scan-like (noise 10, shadow 0.4), raw"] = scan
        try:
            from quality import correct_page

            cases["scan-like, after quality.correct_page"] = correct_page(scan).image
        except ImportError:
            pass
    except Exception:  # pragma: no cover
        pass
    for name, img in cases.items():
        res = recognise(img)
        for fmt, q, whiten in (("auto", 75, True), ("gray4", 0, True), ("jpeg", 75, True), ("png", 0, True), ("jpeg", 75, False), ("png", 0, False)):
            pdf = build_searchable_pdf([PdfPage(img, 300, res.words, "1")] * 3, title="bench", image_format=fmt, jpeg_quality=q or 75, whiten=whiten)
            key = f"{name} / {fmt}{q if fmt == 'jpeg' else ''}{' whitened' if whiten else ''}"
            out[key] = len(pdf) / 3
            print(f"pdf {key}: {len(pdf) / 3 / 1024:.0f} KiB/page", file=sys.stderr)
    return out


def _auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def separation(rows: list[dict], include_lost: bool = True) -> dict:
    out = {}
    pages = [r for r in rows if r.get("corrected", {}).get("measures") and r["corrected"].get("cer") is not None]
    if not include_lost:
        pages = [r for r in pages if not r["content_lost"]]
    legible = [r for r in pages if r["corrected"]["cer"] <= LEGIBLE_CER]
    illegible = [r for r in pages if r["corrected"]["cer"] > LEGIBLE_CER]
    for key, higher_is_better in (("mean_confidence", True), ("p10_confidence", True), ("lexicon_share", True), ("garbage_share", False)):
        lv = [r["corrected"]["measures"][key] for r in legible]
        iv = [r["corrected"]["measures"][key] for r in illegible]
        auc = _auc(lv, iv) if higher_is_better else _auc([-v for v in lv], [-v for v in iv])
        out[key] = {
            "legible_median": statistics.median(lv) if lv else None,
            "legible_min_or_max": (min(lv) if higher_is_better else max(lv)) if lv else None,
            "illegible_median": statistics.median(iv) if iv else None,
            "illegible_max_or_min": (max(iv) if higher_is_better else min(iv)) if iv else None,
            "auc": auc,
        }
    out["n_legible"], out["n_illegible"] = len(legible), len(illegible)
    return out


def _pct(v):
    return "  -   " if v is None else f"{100 * v:5.1f}%"


def summarise(rows: list[dict]) -> dict:
    kinds: dict[str, dict] = {}
    for r in rows:
        k = kinds.setdefault(r["kind"], {"raw": [], "corrected": [], "raw_wer": [], "corrected_wer": []})
        for mode in ("raw", "corrected"):
            v = r.get(mode, {}).get("cer")
            if v is not None:
                k[mode].append(v)
                k[mode + "_wer"].append(r[mode].get("wer") or 0.0)
    return {
        kind: {
            "pages": len(v["raw"]),
            "raw_cer_median": statistics.median(v["raw"]) if v["raw"] else None,
            "corrected_cer_median": statistics.median(v["corrected"]) if v["corrected"] else None,
            "raw_cer_mean": statistics.mean(v["raw"]) if v["raw"] else None,
            "corrected_cer_mean": statistics.mean(v["corrected"]) if v["corrected"] else None,
            "raw_cer_max": max(v["raw"]) if v["raw"] else None,
            "corrected_cer_max": max(v["corrected"]) if v["corrected"] else None,
            "raw_wer_median": statistics.median(v["raw_wer"]) if v["raw_wer"] else None,
            "corrected_wer_median": statistics.median(v["corrected_wer"]) if v["corrected_wer"] else None,
        }
        for kind, v in kinds.items()
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clean-seeds", type=int, default=3)
    ap.add_argument("--timing-pages", type=int, default=4)
    ap.add_argument("--skip", default="", help="comma list of: clean,timing,pdf,corpus")
    ap.add_argument("--out", default="bench/ocr/results.json")
    a = ap.parse_args(argv)
    skip = set(a.skip.split(",")) - {""}
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if "clean" not in skip:
        results["clean_fonts"] = clean_fonts(a.clean_seeds)
    if "timing" not in skip:
        results["timing"] = timing(a.timing_pages)
    if "pdf" not in skip:
        results["pdf_bytes_per_page"] = pdf_sizes()
    if "corpus" not in skip:
        rows = run_corpus(a.size, a.workers)
        results["per_kind"] = summarise(rows)
        results["separation"] = separation(rows)
        results["separation_without_content_lost"] = separation(rows, include_lost=False)
        results["per_severity"] = [
            {"id": r["id"], "kind": r["kind"], "severity": r["severity"], "font": r["font"],
             "raw_cer": r.get("raw", {}).get("cer"), "corrected_cer": r.get("corrected", {}).get("cer"),
             "raw_error": r.get("raw", {}).get("error"), "corrected_error": r.get("corrected", {}).get("error"),
             "corrected_seconds": r.get("corrected", {}).get("seconds")}
            for r in rows
        ]
        results["rows"] = rows
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(results, fh, ensure_ascii=False, indent=1, default=float)
    print(json.dumps({k: v for k, v in results.items() if k != "rows"}, ensure_ascii=False, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
