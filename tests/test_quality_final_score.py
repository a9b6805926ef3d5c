"""The final legibility score (image score x evidence of the OCR read): range, monotonicity, regimes."""
import csv
import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from quality.final_score import (CUT_OFF_FACTOR, FINAL_MODEL, FINAL_PARAMS, IMAGE_WEIGHT, PERFECT_READ,
                                 final_legibility, ocr_factor, read_factor)

ROOT = Path(__file__).resolve().parents[1]

GOOD_READ = {"mean_confidence": 88.0, "p10_confidence": 65.0, "lexicon_share": 0.96, "garbage_share": 0.005,
             "word_count": 220, "missing_lines": 0}
BAD_READ = {"mean_confidence": 40.0, "p10_confidence": 5.0, "lexicon_share": 0.45, "garbage_share": 0.25,
            "word_count": 150, "missing_lines": 0}
PERFECT = {**PERFECT_READ, "word_count": 200}

# each OCR measure with values from worst to best
LADDERS = {
    "mean_confidence": [0, 20, 40, 55, 65, 75, 85, 92, 100],
    "p10_confidence": [0, 10, 20, 30, 45, 60, 80, 100],
    "lexicon_share": [0.0, 0.3, 0.5, 0.7, 0.8, 0.88, 0.94, 0.98, 1.0],
    "garbage_share": [1.0, 0.5, 0.3, 0.15, 0.08, 0.04, 0.02, 0.0],
    "missing_lines": [20, 8, 4, 3, 2, 1, 0],
}


def test_model_is_versioned_and_fitted():
    assert FINAL_MODEL.startswith("khana-final-legibility-") and "unfitted" not in FINAL_MODEL
    assert {v[0] for v in FINAL_PARAMS.values()} <= set(PERFECT_READ)
    for key, mid, width, sign in FINAL_PARAMS.values():
        assert width > 0 and sign in (-1, 1) and math.isfinite(mid)


def test_in_unit_interval_everywhere():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        ocr = {"mean_confidence": rng.uniform(-10, 110), "p10_confidence": rng.uniform(-10, 110),
               "lexicon_share": rng.uniform(-0.2, 1.2), "garbage_share": rng.uniform(-0.2, 1.2),
               "word_count": int(rng.integers(0, 400)), "missing_lines": int(rng.integers(0, 30))}
        s = rng.uniform(-0.5, 1.5)
        v = final_legibility(s, ocr)
        assert 0.0 <= v <= 1.0
        assert v <= read_factor(ocr) + 1e-12  # never above what the read itself shows
    for s in (float("nan"), float("inf"), -float("inf")):
        assert 0.0 <= final_legibility(s, GOOD_READ) <= 1.0
    assert 0.0 <= final_legibility(0.9, {**GOOD_READ, "mean_confidence": float("nan")}) <= 1.0


@pytest.mark.parametrize("key", list(LADDERS))
@pytest.mark.parametrize("base", [GOOD_READ, BAD_READ], ids=["good", "bad"])
def test_monotone_in_each_ocr_measure(key, base):
    vals = [final_legibility(0.9, {**base, key: x}) for x in LADDERS[key]]
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:])), (key, vals)
    # and the measure matters: from its worst to its best value the score rises (by a factor, since
    # on a bad read the other terms already hold the product near 0)
    assert vals[-1] > 1.5 * vals[0] and (base is BAD_READ or vals[-1] > vals[0] + 0.3), (key, vals)


def test_monotone_in_the_image_score():
    for read in (GOOD_READ, BAD_READ, PERFECT):
        vals = [final_legibility(s, read) for s in np.linspace(0, 1, 41)]
        assert all(b >= a for a, b in zip(vals, vals[1:]))
        assert vals[0] == 0.0


def test_monotone_jointly_on_a_grid():
    grid = {k: v[::2] for k, v in LADDERS.items()}
    keys = list(grid)
    for combo in itertools.product(*(range(len(grid[k])) for k in keys)):
        read = {k: grid[k][i] for k, i in zip(keys, combo)}
        v = final_legibility(0.8, read)
        for j, k in enumerate(keys):
            if combo[j] + 1 < len(grid[k]):
                better = {**read, k: grid[k][combo[j] + 1]}
                assert final_legibility(0.8, better) >= v - 1e-12


@pytest.mark.parametrize("s", [0.0, 0.05, 0.3, 0.62, 0.9, 1.0])
def test_a_perfect_read_leaves_the_image_score_its_small_weight(s):
    assert 0.0 < IMAGE_WEIGHT < 1.0 and 0.0 < CUT_OFF_FACTOR < 1.0
    assert final_legibility(s, PERFECT) == pytest.approx(s ** IMAGE_WEIGHT if s > 0 else 0.0, abs=1e-9)
    assert final_legibility(s, None) == s  # OCR skipped: the image score
    assert ocr_factor(PERFECT) == pytest.approx(1.0)


def test_a_good_read_of_a_poor_image_ranks_above_a_poor_read_of_a_good_image():
    """Issue 12: a 75-dpi or faded page that the correction restores (image score 0.01-0.3) and that reads well
    is legible; a page read at CER 10-30 % is not, whatever its image score."""
    assert final_legibility(1.0, GOOD_READ) > 0.8
    for s in (0.01, 0.05, 0.2):
        assert final_legibility(s, GOOD_READ) > 0.7 > 0.3 > final_legibility(1.0, {**GOOD_READ, "mean_confidence": 62.0,
                                                                                   "p10_confidence": 30.0,
                                                                                   "lexicon_share": 0.7})


def test_cut_off_text_and_unread_text_lower_the_score():
    from types import SimpleNamespace as NS
    whole = final_legibility(0.9, GOOD_READ, measures=NS(cut_off=False, line_bands=[]))
    cut = final_legibility(0.9, GOOD_READ, measures=NS(cut_off=True, line_bands=[]))
    assert cut == pytest.approx(whole * CUT_OFF_FACTOR)
    half_unread = final_legibility(0.9, {**GOOD_READ, "unread_text_share": 0.5})
    assert half_unread == pytest.approx(0.5 * final_legibility(0.9, GOOD_READ))


def test_low_confidence_non_lexicon_read_drops():
    assert final_legibility(1.0, BAD_READ) < 0.2
    assert final_legibility(1.0, {**GOOD_READ, "mean_confidence": 45.0, "p10_confidence": 0.0}) < 0.6
    assert final_legibility(1.0, {**GOOD_READ, "lexicon_share": 0.5}) < 0.5
    assert final_legibility(1.0, {**GOOD_READ, "missing_lines": 5}) < 0.5
    assert final_legibility(1.0, {**GOOD_READ, "word_count": 0}) == 0.0


def test_accepts_objects_and_computes_missing_lines_from_words():
    from ocr.measures import OcrMeasures
    om = OcrMeasures(88.0, 65.0, 0.96, 0.005, 220)
    assert final_legibility(0.9, om) == pytest.approx(final_legibility(0.9, om.as_dict()))
    assert final_legibility(0.9, SimpleNamespace(**GOOD_READ)) == pytest.approx(final_legibility(0.9, GOOD_READ))
    # five text lines in the image; the OCR words cover only the first two
    m = SimpleNamespace(line_bands=[(100 + 60 * i, 140 + 60 * i) for i in range(5)])
    words = [{"top": 105 + 60 * i, "height": 30} for i in range(2)]
    ocr = SimpleNamespace(**{k: v for k, v in GOOD_READ.items() if k != "missing_lines"}, words=words)
    dropped = final_legibility(0.9, ocr, measures=m)
    full = final_legibility(0.9, SimpleNamespace(**vars(ocr) | {"words": words + [
        {"top": 105 + 60 * i, "height": 30} for i in range(2, 5)]}), measures=m)
    assert dropped < full - 0.2
    assert full == pytest.approx(final_legibility(0.9, GOOD_READ))


def _corpus_rows():
    path = ROOT / "bench" / "quality" / "results-full.csv"
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["cer_khana"] != ""]


def test_recorded_corpus_legibility_is_the_shipped_score_and_separates_legible_pages():
    """On the committed benchmark rows (bench/quality/results-full.csv, written by bench.quality.report), the
    report's legibility is what the shipped function computes from the recorded read, and it separates pages
    read at CER <= 10 % from the others better than the image score (in-sample: the fit's own corpus;
    the out-of-fold figures are in bench/quality/RESULTS.md)."""
    from bench.quality.evaluate import auc
    rows = _corpus_rows()
    if "unread_text_share" not in rows[0]:
        pytest.skip("results-full.csv predates the columns of the 2026-12-01 model")
    from types import SimpleNamespace as NS
    final = []
    for r in rows:
        s = float(r["legibility_image"])
        if r["read"] != "1":
            final.append(s)
        else:
            ocr = {k: float(r[k]) for k in (*PERFECT_READ, "word_count", "unread_text_share")}
            final.append(final_legibility(s, ocr, measures=NS(cut_off=r["cut_off"] == "1", line_bands=[])))
    assert np.allclose(final, [float(r["legibility"]) for r in rows], atol=1e-4)
    good = [float(r["cer_khana"]) <= 0.10 for r in rows]
    a_final, a_image = auc(final, good), auc([float(r["legibility_image"]) for r in rows], good)
    assert a_final > 0.98 and a_final > a_image + 0.01, (a_final, a_image)
