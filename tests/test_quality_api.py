"""Public interface of quality/: shapes, types, reason vocabulary, bad inputs."""
import json
import re

import numpy as np
import pytest

import quality
from quality import (REASONS, CorrectedPage, GatePolicy, OcrEvidence, PolicyError, PageMeasures, annotate_problems, correct_page,
                     early_gate, final_gate, legibility_score, load_policy, measure_page, reason_message)

CODES = ["blank", "cut_off", "blurred", "noisy", "too_dark", "faded", "low_resolution", "uneven_lighting",
         "skew_unrecoverable", "low_ocr_confidence", "unreadable_file", "ocr_timeout"]


def test_reasons_vocabulary():
    """Every contract code has a distinct Persian and English message, in the right script."""
    fa_letters = re.compile("[\u0600-\u06ff]")
    for c in CODES:
        fa, en = reason_message(c, "fa"), reason_message(c)
        assert fa != c and en != c, c  # a real message, not the code echoed back
        assert fa_letters.search(fa) and not fa_letters.search(en), c
    assert len({reason_message(c, "fa") for c in CODES}) == len(CODES)
    assert len({reason_message(c) for c in CODES}) == len(CODES)
    assert reason_message("nope") == "nope"  # an unknown code is shown as it is, never dropped


def test_policy_loads_with_version(tmp_path):
    p = load_policy()
    assert isinstance(p, GatePolicy) and p.version
    f = tmp_path / "p.toml"
    f.write_text('version = "test-2"\n[final]\nlegibility_min = 0.9\n')
    q = load_policy(str(f))
    assert q.version == "test-2" and q.final.legibility_min == 0.9
    assert q.early.blur_rel_max == p.early.blur_rel_max  # the shipped values fill in the rest
    bad = tmp_path / "bad.toml"
    bad.write_text("[final]\n")
    with pytest.raises(PolicyError):
        load_policy(str(bad))


@pytest.mark.parametrize("body, words", [
    ('[final]\nlow_word_confidance = 50\n', "low_word_confidance"),   # a misspelt key
    ('[reason]\nblur_rel_max = 0.5\n', "reason"),                    # a misspelt section
    ('[early]\nblur_rel_max = "high"\n', "not a float"),              # a wrong type
    ('[final]\nmin_words = 2.5\n', "not a int"),
])
def test_policy_typos_fail_at_load_time(tmp_path, body, words):
    f = tmp_path / "typo.toml"
    f.write_text('version = "t-1"\n' + body)
    with pytest.raises(PolicyError, match=words):
        load_policy(f)


def test_policy_is_typed_attributes():
    p = load_policy()
    assert isinstance(p.final.low_word_confidence, float) and isinstance(p.final.min_words, int)
    with pytest.raises(AttributeError):
        p.final.low_word_confidance  # noqa: B018 - a typo in code is an error, not a silent default


def _OCR(mean=90.0, p10=70.0, lex=0.9, garb=0.0, n=200) -> OcrEvidence:
    return OcrEvidence(mean_confidence=mean, p10_confidence=p10, lexicon_share=lex, garbage_share=garb, word_count=n)


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


def test_public_names_are_what_they_say():
    """The package's public names are the real functions and types, and `__all__` lists only real names."""
    for name in quality.__all__:
        assert getattr(quality, name) is not None, name
    assert quality.early_gate is __import__("quality.gate", fromlist=["early_gate"]).early_gate
    assert isinstance(quality.load_policy(), quality.GatePolicy)
    assert callable(quality.correct_page) and callable(quality.measure_page)


@pytest.fixture(scope="module")
def clean_page():
    from testpages.render import render_page
    return render_page(font="naskh", size_pt=12, dpi=200, seed=5).image
