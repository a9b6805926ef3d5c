"""Public interface of quality/: shapes, types, reason vocabulary, bad inputs."""
import json

import numpy as np
import pytest

import quality
from quality import (REASONS, CorrectedPage, GatePolicy, PageMeasures, annotate_problems, correct_page,
                     early_gate, final_gate, legibility_score, load_policy, measure_page, reason_message)

CODES = ["blank", "cut_off", "blurred", "noisy", "too_dark", "faded", "low_resolution", "uneven_lighting",
         "skew_unrecoverable", "low_ocr_confidence", "unreadable_file", "ocr_timeout"]


def test_reasons_vocabulary():
    for c in CODES:
        assert c in REASONS
        assert REASONS[c]["fa"] and REASONS[c]["en"]
        assert reason_message(c, "fa") == REASONS[c]["fa"]
        assert reason_message(c) == REASONS[c]["en"]
    assert reason_message("nope") == "nope"


def test_policy_loads_with_version(tmp_path):
    p = load_policy()
    assert isinstance(p, GatePolicy) and p.version
    f = tmp_path / "p.toml"
    f.write_text('version = "test-2"\n[final]\nlegibility_min = 0.9\n')
    q = load_policy(str(f))
    assert q.version == "test-2" and q.final["legibility_min"] == 0.9
    assert q.early["blur_rel_max"] == p.early["blur_rel_max"]  # defaults filled in
    bad = tmp_path / "bad.toml"
    bad.write_text("[final]\n")
    with pytest.raises(ValueError):
        load_policy(str(bad))


class _OCR:
    def __init__(self, mean=90.0, p10=70.0, lex=0.9, garb=0.0, n=200):
        self.mean_confidence, self.p10_confidence, self.lexicon_share = mean, p10, lex
        self.garbage_share, self.word_count = garb, n


BAD_INPUTS = {
    "1x1": np.zeros((1, 1), np.uint8),
    "black": np.zeros((600, 400), np.uint8),
    "white": np.full((600, 400), 255, np.uint8),
    "u16": (np.random.default_rng(0).integers(0, 65535, (300, 200))).astype(np.uint16),
    "rgb": np.full((300, 200, 3), 200, np.uint8),
    "rgba": np.zeros((300, 200, 4), np.uint8),
    "gray_alpha": np.zeros((300, 200, 2), np.uint8),
    "float": np.random.default_rng(1).random((300, 200)),
    "thin": np.full((3, 5000), 255, np.uint8),
    "empty": np.zeros((0, 0), np.uint8),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_images_do_not_crash(name):
    img = BAD_INPUTS[name]
    pol = load_policy()
    c = correct_page(img)
    assert isinstance(c, CorrectedPage)
    assert c.image.ndim == 2 and c.image.dtype == np.uint8
    assert c.rotation in (0, 90, 180, 270)
    m = measure_page(img, c, 300)
    assert isinstance(m, PageMeasures)
    json.dumps(m.as_dict())
    assert 0.0 <= legibility_score(m) <= 1.0
    early = early_gate(m, pol)
    final = final_gate(m, None, pol)
    assert set(early) <= set(REASONS) and set(final) <= set(REASONS)
    if name in ("white", "empty", "rgb"):
        assert early == ["blank"]
    if name in ("1x1", "black", "rgba"):  # a black sheet: nothing visible, reported as too dark
        assert early in (["blank"], ["too_dark"])
    ov = annotate_problems(c.image, m, final, [(0, 0, 1, 1)])
    assert ov.ndim == 3 and ov.shape[2] == 3 and ov.dtype == np.uint8


def test_huge_dimensions_within_limits():
    img = np.full((7016, 4960), 250, np.uint8)  # A4 at 600 dpi
    img[3000:3040, 1000:4000] = 0
    c = correct_page(img)
    m = measure_page(img, c, 600)
    assert c.image.shape[0] >= 7016 - 2
    json.dumps(m.as_dict())


def test_clean_page_passes(clean_page):
    img = clean_page
    pol = load_policy()
    c = correct_page(img)
    m = measure_page(img, c, 300)
    assert c.rotation == 0 and abs(c.skew_degrees) < 0.2
    assert early_gate(m, pol) == []
    assert final_gate(m, _OCR(), pol) == []
    assert m.legibility > 0.8
    assert "low_ocr_confidence" in final_gate(m, _OCR(mean=20, p10=0), pol)


def test_exports():
    for name in ["REASONS", "reason_message", "CorrectedPage", "correct_page", "PageMeasures", "measure_page",
                 "legibility_score", "GatePolicy", "load_policy", "early_gate", "final_gate", "annotate_problems"]:
        assert hasattr(quality, name)


@pytest.fixture(scope="module")
def clean_page():
    from testpages.render import render_page
    return render_page(font="naskh", size_pt=12, dpi=200, seed=5).image
