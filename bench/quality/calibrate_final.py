"""Fit the final legibility score (quality/final_score.py) on benchmark results, with cross-validation.

    .venv/bin/python -m bench.quality.calibrate_final bench/quality/out/results-full-v3.jsonl
        [--refit-image] [--lexicon-dic /usr/share/hunspell/fa_IR.dic] [--restarts N]

Per page: the image score (quality/score.py as shipped), the early-gate decision, the OCR
measures of the read of the corrected page (stored by bench/quality/run.py) and the missing
lines (quality.gate.missing_lines on the stored line bands and word boxes).  The page's final
legibility is what the report says: the image score when the early gate skips OCR, else
final_legibility(image score, OCR measures).

The (midpoint, width) of every OCR term are fitted with scipy (Nelder-Mead, restarts) to
maximise Spearman's rho between the final legibility and 1 - CER after correction.  Reported:

* in-sample rho (fitted and evaluated on every page);
* out-of-fold rho: leave-one-source-article-out (the corpus renders every page from one of the
  five seed articles, so pages sharing text, and near-duplicate renders of one text window,
  never sit on both sides of a split); the model is refitted on the other articles' pages and
  predicts the held-out article's pages; rho over the pooled out-of-fold predictions, and the
  mean per-fold rho;
* with --refit-image, the image score's own parameters (quality/score.py, which were
  calibrated on this whole corpus) are refitted inside each fold too, so no part of the
  final score has seen the held-out article;
* with --lexicon-dic, lexicon_share is recomputed from the stored words with a lexicon built
  from that hunspell .dic alone (no hand-added words), to check that the lexicon does not
  carry the corpus's text.

Prints FINAL_PARAMS fitted on all pages; paste them into quality/final_score.py and bump FINAL_MODEL.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OCR_KEYS = ("mean_confidence", "p10_confidence", "lexicon_share", "garbage_share", "missing_lines")


def page_measures(rec):
    from quality import PageMeasures
    fields = PageMeasures.__dataclass_fields__
    m = PageMeasures(**{k: v for k, v in rec["measures"].items() if k in fields})
    m.corrected_size = tuple(m.corrected_size)
    return m


def ocr_evidence(rec, m=None, lexicon=None) -> dict | None:
    """The OCR measures of the read of the corrected page, with `missing_lines` (None: no OCR record)."""
    from quality.gate import missing_lines
    o = rec.get("ocr")
    if not o:
        return None
    d = {k: o.get(k) for k in ("mean_confidence", "p10_confidence", "lexicon_share", "garbage_share", "word_count")}
    words = o.get("words") or []
    if lexicon is not None and words and all("text" in w for w in words):
        d["lexicon_share"] = lexicon_share_with(words, lexicon)
    m = m if m is not None else page_measures(rec)
    d["missing_lines"] = missing_lines(m, words) if words else 0
    d["unread_text_share"] = float(o.get("unread_text_share") or 0.0)
    return d


def lexicon_share_with(words, lex) -> float:
    """ocr.measures' lexicon_share recomputed with another lexicon (a frozenset of search forms)."""
    from ocr.lexicon import in_lexicon
    from ocr.measures import _EDGE_PUNCT, _PERSIAN, is_garbage
    tokens = [w["text"] for w in words]
    persian = [t.strip(_EDGE_PUNCT) for t in tokens if _PERSIAN.search(t) and not is_garbage(t)]
    n_fa = sum(1 for t in tokens if _PERSIAN.search(t))
    return sum(1 for t in persian if in_lexicon(t, lex)) / n_fa if n_fa else 0.0


def lexicon_from_dic(path: str) -> frozenset[str]:
    """Every entry of a hunspell .dic in search form (as ocr/build_lexicon.py, without its EXTRA_WORDS)."""
    from ocr.normalize import search_form
    words = set()
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        w = search_form(line.split("/", 1)[0]).replace(" ", "")
        if w and any("\u0600" <= c <= "\u06ff" for c in w):
            words.add(w)
    return frozenset(words)


def load(paths, lexicon=None):
    """Per-page rows (id, source article, CER, image score, early-held flag, OCR evidence) of JSONL results."""
    recs = []
    for p in paths:
        recs += [json.loads(line) for line in open(p) if line.strip()]
    return load_records(recs, lexicon)


def load_records(recs, lexicon=None):
    """As `load`, from records already read (pages without text are left out)."""
    from bench.quality.evaluate import decide
    from bench.quality.run import source_of
    from quality import legibility_score, load_policy
    pol = load_policy()
    rows = []
    for r in recs:
        if r.get("cer_after") is None:
            continue
        m = page_measures(r)
        d = decide(r, pol)
        early = not d["read"]  # held without a read (hopeless) or OCR timed out: the image score stands
        src = r.get("source")
        if src is None and "page_seed" in r:
            src = source_of(r["page_seed"])
        rows.append(SimpleNamespace(id=r["id"], kind=r["kind"], severity=r["severity"],
                                    source=None if src is None else int(src),
                                    cer=float(r["cer_after"]), cer_clean=r.get("cer_clean"),
                                    image=float(legibility_score(m)), early=early, cut=bool(m.cut_off), m=m,
                                    ocr=None if early else ocr_evidence(r, m, lexicon), rec=r))
    return rows


def _params_from_theta(theta, template):
    """(OCR term params, image weight, cut-off factor) from the fit's parameter vector."""
    out = {}
    for j, (name, (key, _, _, sign)) in enumerate(template.items()):
        out[name] = (key, float(theta[2 * j]), float(math.exp(theta[2 * j + 1])), sign)
    return Fit(out, float(theta[-2]), float(theta[-1]))


def _theta_from_params(params, image_weight=None, cut_off_factor=None):
    return np.array([v for (_, mid, width, _) in params.values() for v in (mid, math.log(width))]
                    + [INIT_IMAGE_WEIGHT if image_weight is None else image_weight,
                       INIT_CUT_OFF_FACTOR if cut_off_factor is None else cut_off_factor])


# box constraints of the fit per OCR term: (midpoint range, width range).  The lower width bounds
# keep every term a smooth ramp (a near-step would tie pages and follow a few training pages);
# they are a smoothness prior set before fitting, not tuned on the test folds
BOUNDS = {
    "confidence": ((0.0, 100.0), (2.0, 50.0)),
    "low_confidence": ((0.0, 100.0), (3.0, 50.0)),
    "lexicon": ((0.0, 1.0), (0.02, 0.5)),
    "garbage": ((-1.0, 1.0), (0.01, 0.5)),
    "missing": ((-10.0, 3.0), (0.3, 1.0)),
}
# (missing lines: midpoint at most 3 lines, width at most 1 line, a domain prior: a read that skipped 3 of a
# page's ~15 text lines has lost a fifth of its text, whatever the confidence of the rest; unbounded, the
# 2026-12-01 fit put the midpoint at 6.6 or the width at 5 lines, where 3 lines of 5 missing cost a quarter of
# the score: few corpus reads drop lines, and those also have low confidence)

# starting point of every fit, fixed before looking at the data (never the shipped fit: the folds'
# fits must not start from parameters that have seen the held-out article)
INIT_IMAGE_WEIGHT = 0.5
INIT_CUT_OFF_FACTOR = 0.5


class Fit(SimpleNamespace):
    """A fitted final score: OCR term parameters, image weight, cut-off factor."""

    def __init__(self, params, image_weight, cut_off_factor):
        super().__init__(params=params, image_weight=image_weight, cut_off_factor=cut_off_factor)


INIT_PARAMS: dict[str, tuple[str, float, float, int]] = {
    "confidence": ("mean_confidence", 70.0, 5.0, +1),
    "low_confidence": ("p10_confidence", 20.0, 10.0, +1),
    "lexicon": ("lexicon_share", 0.7, 0.05, +1),
    "garbage": ("garbage_share", 0.15, 0.03, -1),
    "missing": ("missing_lines", 1.5, 0.5, -1),
}

# the image score's exponent and the cut-off factor (quality/final_score.py): bounds and starting values
IMAGE_WEIGHT_BOUNDS = (0.0, 1.0)
CUT_OFF_BOUNDS = (0.01, 1.0)

TAU = 0.05  # the OCR factor is fitted to exp(-CER / TAU): CER 0.5 % -> 0.90, 2 % -> 0.67, 10 % -> 0.14


def predict(rows, params, image=None, cap=True) -> np.ndarray:
    """The report's legibility per page: the image score when the early gate skipped OCR, else the final score.

    cap=False (for comparison only): after OCR the OCR factor alone, the image score ignored.
    """
    from quality.final_score import final_legibility, read_factor
    if not isinstance(params, Fit):  # the OCR terms alone: the shipped image weight and cut-off factor
        from quality.final_score import CUT_OFF_FACTOR, IMAGE_WEIGHT
        params = Fit(params, IMAGE_WEIGHT, CUT_OFF_FACTOR)
    img = [r.image for r in rows] if image is None else image
    return np.array([s if r.early or r.ocr is None else
                     (final_legibility(s, r.ocr, measures=r.m, params=params.params, image_weight=params.image_weight,
                                       cut_off_factor=params.cut_off_factor) if cap else read_factor(r.ocr, params=params.params))
                     for r, s in zip(rows, img)])


class _Vec:
    """The OCR factor of quality.final_score, vectorised over pages for fitting (same formula)."""

    def __init__(self, rows, template):
        from quality.final_score import PERFECT_READ
        keys = [t[0] for t in template.values()]
        self.ocr_rows = np.array([not (r.early or r.ocr is None) for r in rows])
        self.X = np.array([[float(r.ocr[k]) if (r.ocr is not None and r.ocr.get(k) is not None) else PERFECT_READ[k]
                            for k in keys] for r in rows])
        self.ideal = np.array([PERFECT_READ[k] for k in keys])
        self.signs = np.array([t[3] for t in template.values()], float)
        self.nowords = np.array([bool(r.ocr is not None and (r.ocr.get("word_count") or 0) <= 0) for r in rows])
        self.read = np.array([1.0 - float((r.ocr or {}).get("unread_text_share") or 0.0) for r in rows])
        self.image = np.clip(np.array([r.image for r in rows], float), 0.0, 1.0)
        self.cut = np.array([bool(getattr(r, "cut", False)) for r in rows])

    def factor(self, theta):
        t = theta[:-2]
        mid, w = t[0::2], np.exp(t[1::2])
        z = self.signs * (self.X - mid) / w
        zi = self.signs * (self.ideal - mid) / w
        lt = -np.logaddexp(0, -z) + np.logaddexp(0, -zi)  # log of each normalised logistic term
        f = np.exp(np.minimum(lt, 0.0).sum(axis=1)) * self.read
        f[self.nowords] = 0.0
        beta, cut = theta[-2], theta[-1]
        f = f * np.where(self.image > 0, np.power(np.maximum(self.image, 1e-300), beta), 0.0)
        return np.where(self.cut, f * cut, f)


def fit(rows, template, tau=TAU, restarts=4, seed=0):
    """Fit the OCR terms: least squares between the OCR factor and exp(-CER/tau) over the pages read by OCR.

    A smooth, bounded objective (L-BFGS-B from the template and `restarts` random starts; the best
    training loss wins).  Spearman is only the evaluation measure, never optimised.
    """
    from scipy.optimize import minimize
    ocr = [r for r in rows if not (r.early or r.ocr is None)]
    t = np.exp(-np.array([r.cer for r in ocr]) / tau)
    vec = _Vec(ocr, template)
    bounds = [b for k in template for b in (BOUNDS[k][0], (math.log(BOUNDS[k][1][0]), math.log(BOUNDS[k][1][1])))]
    bounds += [IMAGE_WEIGHT_BOUNDS, CUT_OFF_BOUNDS]
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])

    def loss(theta):
        return float(np.mean((vec.factor(theta) - t) ** 2))

    rng = np.random.default_rng(seed)
    theta0 = _theta_from_params(template)
    widths = np.array([v[2] for v in template.values()])
    scale = np.ravel(np.column_stack([2.0 * widths, np.full(len(widths), 0.5)]))  # midpoint, log width
    scale = np.concatenate([scale, [0.2, 0.2]])  # image weight, cut-off factor
    best = None
    for k in range(restarts + 1):
        th = theta0 if k == 0 else theta0 + rng.normal(0, 1, theta0.shape) * scale
        res = minimize(loss, np.clip(th, lo, hi), method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    return _params_from_theta(best.x, template)


def fit_image(rows):
    """Refit quality/score.py's PARAMS on `rows` (as bench/quality/calibrate.py does); returns a scorer."""
    from scipy.optimize import minimize
    from scipy.stats import spearmanr

    from bench.quality.calibrate import _features, score_matrix
    from quality.score import IDEAL, PARAMS
    names, X, flags = _features([r.rec for r in rows], PARAMS)
    y = 1.0 - np.clip([r.cer for r in rows], 0, 1)
    good = (np.array([r.cer for r in rows]) <= 0.10).astype(float)
    th = np.array([v for n in names for v in (PARAMS[n][1], math.log(PARAMS[n][2]))])
    ideal = np.array([[IDEAL[PARAMS[n][0]] for n in names]])

    def loss(theta):
        s = score_matrix(theta, names, X, flags, PARAMS)
        rho = spearmanr(s, y).statistic
        return -(rho if np.isfinite(rho) else 0.0) + 0.2 * float(np.mean((s - good) ** 2))

    for it in range(3):
        th = minimize(loss, th, method="Nelder-Mead", options={"maxiter": 4000 if it == 0 else 3000}).x

    def scorer(rows2):
        _, X2, f2 = _features([r.rec for r in rows2], PARAMS)
        ip = score_matrix(th, names, ideal, np.zeros((1, 3)), PARAMS)[0]
        return np.clip(score_matrix(th, names, X2, f2, PARAMS) / max(ip, 1e-9), 0, 1)
    return scorer


def cross_validate(rows, template, tau=TAU, refit_image=False, restarts=4):
    """Leave-one-source-article-out: out-of-fold legibility per page, per-fold figures, fitted params per fold."""
    from scipy.stats import spearmanr
    oof = np.full(len(rows), np.nan)
    oof_img = np.full(len(rows), np.nan)
    oof_nocap = np.full(len(rows), np.nan)
    folds = []
    for s in sorted({r.source for r in rows}):
        tr = [r for r in rows if r.source != s]
        te_idx = [i for i, r in enumerate(rows) if r.source == s]
        te = [rows[i] for i in te_idx]
        img_te = fit_image(tr)(te) if refit_image else np.array([r.image for r in te])
        params = fit(tr, template, tau=tau, restarts=restarts, seed=s)
        p = predict(te, params, image=img_te)
        oof[te_idx], oof_img[te_idx] = p, img_te
        oof_nocap[te_idx] = predict(te, params, image=img_te, cap=False)
        y = [1 - r.cer for r in te]
        folds.append((s, len(te), spearmanr(p, y).statistic, spearmanr(img_te, y).statistic, params))
    return oof, oof_img, oof_nocap, folds


def _figures(rows, scores) -> str:
    from bench.quality.evaluate import auc, cell_spearman, spearman
    recs = [r.rec for r in rows]
    rho_c, n_c = cell_spearman(recs, scores)
    return (f"AUC (CER <= 10 %) {auc(list(scores), [r.cer <= 0.10 for r in rows]):.4f}, "
            f"Spearman per-condition means {rho_c:.3f} ({n_c} cells), over pages {spearman(scores, [1 - r.cer for r in rows]):.3f}")


def main(argv=None):
    from quality.final_score import CUT_OFF_FACTOR, FINAL_MODEL, FINAL_PARAMS, IMAGE_WEIGHT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--refit-image", action="store_true", help="refit the image score inside each fold too")
    ap.add_argument("--lexicon-dic", default="", help="recompute lexicon_share with this hunspell .dic only")
    ap.add_argument("--tau", type=float, default=TAU, help="fit target exp(-CER/tau) (default %(default)s)")
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--drop", default="", help="comma-separated OCR terms to leave out (ablation)")
    a = ap.parse_args(argv)
    lex = lexicon_from_dic(a.lexicon_dic) if a.lexicon_dic else None
    rows = load(a.paths, lex)
    template = {k: v for k, v in INIT_PARAMS.items() if k not in set(filter(None, a.drop.split(",")))}
    shipped = Fit({k: v for k, v in FINAL_PARAMS.items() if k in template}, IMAGE_WEIGHT, CUT_OFF_FACTOR)
    img = np.array([r.image for r in rows])
    n_ocr = sum(r.ocr is not None and not r.early for r in rows)
    print(f"{len(rows)} pages with text, {n_ocr} read (the others, held early as hopeless or timed out, keep the image "
          f"score), {len({r.source for r in rows})} source articles; fit target exp(-CER/{a.tau:g})"
          + (f"; lexicon_share from {a.lexicon_dic} only" if lex else ""))
    print(f"image score alone (pre-OCR, shipped):            {_figures(rows, img)}")
    mc = np.array([r.ocr["mean_confidence"] / 100 if (r.ocr and not r.early) else r.image for r in rows])
    print(f"mean word confidence (image score if not read):  {_figures(rows, mc)}")
    print(f"final score as shipped ({FINAL_MODEL}): {_figures(rows, predict(rows, shipped))}")
    params = fit(rows, template, tau=a.tau, restarts=a.restarts)
    print(f"final score fitted on all pages (in-sample):     {_figures(rows, predict(rows, params))}")
    if any(r.source is None for r in rows):
        sys.exit("these results do not record each page's source article (re-run bench.quality.run)")
    oof, oof_img, oof_nocap, folds = cross_validate(rows, template, tau=a.tau, refit_image=a.refit_image, restarts=a.restarts)
    tag = "image score and final score refitted per fold" if a.refit_image else "final score refitted per fold"
    print(f"final score OUT OF FOLD ({tag}, 5 folds = source articles): {_figures(rows, oof)}")
    print(f"  for comparison, the read factor alone (image score ignored), out of fold: {_figures(rows, oof_nocap)}")
    # the targets proposed in the issue-12 note: AUC over pages whose content is all there (a cut-off
    # page's CER against the whole page says nothing of what is past the edge: cut_off is judged by its
    # own recall), and per-condition Spearman over conditions whose mean CER is above 1 %
    from bench.quality.evaluate import auc as _auc, cell_spearman
    present = [i for i, r in enumerate(rows) if not r.rec.get("content_lost")]
    rho_1, n_1 = cell_spearman([r.rec for r in rows], list(oof), min_cer=0.01)
    print(f"  out of fold, content present: AUC (CER <= 10 %) "
          f"{_auc([oof[i] for i in present], [rows[i].cer <= 0.10 for i in present]):.4f} over {len(present)} pages; "
          f"Spearman per-condition means over conditions with mean CER > 1 %: {rho_1:.3f} ({n_1} cells)")
    if a.refit_image:
        print(f"image score alone, out of fold: {_figures(rows, oof_img)}")
    from bench.quality.evaluate import auc
    for s, n, rho, rho_img, p in folds:
        te = [r for r in rows if r.source == s]
        o = [x for x, r in zip(oof, rows) if r.source == s]
        print(f"  held-out article {s}: {n:3d} pages, AUC {auc(o, [r.cer <= 0.10 for r in te]):.4f}, Spearman {rho:.3f}; "
              f"image weight {p.image_weight:.3f}, cut-off factor {p.cut_off_factor:.3f}; "
              + ", ".join(f"{k} {v[1]:.3g}/{v[2]:.3g}" for k, v in p.params.items()))
    worst = sorted(((x, r) for x, r in zip(oof, rows) if r.cer > 0.10), key=lambda t: -t[0])[:8]
    print("  highest out-of-fold scores of pages read at CER > 10 %: "
          + ", ".join(f"{r.id} {x:.3f} (CER {r.cer:.3f})" for x, r in worst))
    low = sorted(((x, r) for x, r in zip(oof, rows) if r.cer <= 0.10), key=lambda t: t[0])[:8]
    print("  lowest out-of-fold scores of pages read at CER <= 10 %: "
          + ", ".join(f"{r.id} {x:.3f} (CER {r.cer:.3f})" for x, r in low))
    print("FINAL_PARAMS: dict[str, tuple[str, float, float, int]] = {")
    for name, (key, mid, width, sign) in params.params.items():
        print(f'    "{name}": ("{key}", {mid:.4g}, {width:.4g}, {sign:+d}),')
    print("}")
    print(f"IMAGE_WEIGHT = {params.image_weight:.4g}\nCUT_OFF_FACTOR = {params.cut_off_factor:.4g}")


if __name__ == "__main__":
    main()
