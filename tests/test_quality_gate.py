"""Gate decisions and reason codes for each kind of problem (150-dpi pages, fast)."""
import json

import numpy as np
import pytest

from quality import (REASONS, OcrEvidence, annotate_problems, correct_page, early_gate, final_gate, load_policy,
                     measure_page)
from testpages import degrade as D
from testpages.render import render_page

DPI = 150


def OCR(mean=88.0, p10=70.0, lex=0.95, garb=0.0, n=180, words=None) -> OcrEvidence:
    return OcrEvidence(mean_confidence=mean, p10_confidence=p10, lexicon_share=lex, garbage_share=garb,
                       word_count=n, words=words)


@pytest.fixture(scope="module")
def policy():
    return load_policy()


@pytest.fixture(scope="module")
def page():
    return render_page(font="sans", size_pt=12, dpi=DPI, seed=7).image


def _gate(img, policy, dpi=DPI, ocr=None):
    c = correct_page(img)
    m = measure_page(img, c, dpi)
    return m, early_gate(m, policy), final_gate(m, ocr if ocr is not None else OCR(), policy)


def test_clean_and_correctable_pages_pass(page, policy):
    for img in (page, D.skew(page, 12), D.rotate90(page, 2), D.shadow(page, 0.6), D.darken(page, 0.4),
                D.fade(page, 0.3), D.jpeg(page, 20)):
        m, early, final = _gate(img, policy)
        assert early == [] and final == [], (early, final, m.as_dict())


@pytest.mark.parametrize("kind,make,code", [
    ("blank", lambda p: D.blank((1754, 1240), seed=3), "blank"),
    ("cut_off", lambda p: D.cut_off(p, 0.2, "right"), "cut_off"),
    ("covered", lambda p: D.black_border(p, 230, "l"), "cut_off"),
    ("blurred", lambda p: D.blur(p, 4.0), "blurred"),
    ("noisy", lambda p: D.salt_pepper(p, 0.45, seed=1), "noisy"),
    ("faded", lambda p: D.fade(p, 0.015), "faded"),
    ("too_dark", lambda p: D.darken(p, 0.025), "too_dark"),
])
def test_early_gate_holds_hopeless_pages(page, policy, kind, make, code):
    m, early, final = _gate(make(page), policy)
    assert code in early, (early, m.as_dict())
    assert code in final
    assert set(final) <= set(REASONS)


def test_low_resolution(policy):
    big = render_page(font="sans", size_pt=10, dpi=300, seed=7).image
    img = D.downsample(big, 300, 40)
    m, early, final = _gate(img, policy, dpi=40)
    assert "low_resolution" in final, (final, m.as_dict())


def test_skew_unrecoverable(policy):
    import cv2
    rng = np.random.default_rng(0)
    img = np.full((1754, 1240), 255, np.uint8)
    for _ in range(700):  # ink without any line structure
        x, y = int(rng.integers(0, 1240)), int(rng.integers(0, 1754))
        cv2.ellipse(img, (x, y), (int(rng.integers(3, 15)), int(rng.integers(3, 15))), float(rng.integers(0, 180)),
                    0, 360, 0, 2)
    m, early, final = _gate(img, policy)
    assert "skew_unrecoverable" in early


def test_uneven_lighting_reason_when_held(page, policy):
    img = D.shadow(page, 0.995, seed=0)
    m, early, final = _gate(img, policy, ocr=OCR(mean=40, p10=0))
    assert "low_ocr_confidence" in final
    assert "uneven_lighting" in final


def test_final_gate_ocr_confidence(page, policy):
    m, early, final = _gate(page, policy, ocr=OCR(mean=35.0, p10=5.0))
    assert early == [] and final[0] == "low_ocr_confidence"
    m, early, final = _gate(page, policy, ocr=OCR(n=0))
    assert "low_ocr_confidence" in final
    # text lines without any OCR word on them (Tesseract dropped them); the policy tolerates one
    c = correct_page(page)
    m = measure_page(page, c, DPI)
    words = [{"top": a, "height": b - a} for a, b in m.line_bands[2:]]
    assert "low_ocr_confidence" in final_gate(m, OCR(words=words), policy)
    words = [{"top": a, "height": b - a} for a, b in m.line_bands]
    assert final_gate(m, OCR(words=words), policy) == []


def test_policy_threshold_change_takes_effect(page, policy, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text('version = "strict-1"\n[final]\nlegibility_min = 0.999\nocr_mean_confidence_min = 95.0\n')
    pol = load_policy(str(strict))
    m, early, final = _gate(page, pol)
    assert "low_ocr_confidence" in final


def test_annotate_marks_problems(page, policy):
    img = D.cut_off(D.shadow(page, 0.95, seed=1), 0.2, "right")
    c = correct_page(img)
    m = measure_page(img, c, DPI)
    reasons = final_gate(m, OCR(mean=30), policy)
    ov = annotate_problems(c.image, m, reasons, [(100, 100, 80, 30)])
    assert ov.ndim == 3 and ov.dtype == np.uint8
    gray = c.image if max(c.image.shape) <= 2400 else None
    if gray is not None:
        assert ov.shape[:2] == gray.shape
    # the red cut-off bar on the right edge and coloured pixels somewhere
    assert (ov[:, -3:, 2] > 150).mean() > 0.5 and (ov[:, -3:, 0] < 100).mean() > 0.5
    colour = (np.abs(ov[:, :, 0].astype(int) - ov[:, :, 2].astype(int)) > 40).mean()
    assert colour > 0.01
    json.dumps(m.as_dict())


def test_final_gate_regional_checks(page, policy):
    """A good page mean does not hide a part of the page that read badly or not at all."""
    c = correct_page(page)
    m = measure_page(page, c, DPI)
    assert final_gate(m, OCR(), policy) == []
    weak = OCR()
    weak.weak_line_share = 0.25  # a quarter of the lines read at low confidence
    assert "low_ocr_confidence" in final_gate(m, weak, policy)
    weak.weak_line_share = 0.05  # one weak line of twenty: a signature line, a stamp
    assert final_gate(m, weak, policy) == []
    unread = OCR()
    unread.unread_text_share, unread.unread_tiles, unread.unread_blurred_tiles = 0.3, 20, 15
    assert final_gate(m, unread, policy)[:2] == ["low_ocr_confidence", "blurred"]
    unread.unread_blurred_tiles = 2  # not read, but not blurred either (faded, covered): no blur claim
    assert "blurred" not in final_gate(m, unread, policy)
    unread.unread_tiles = 2  # a stamp or a logo
    assert final_gate(m, unread, policy) == []
    low_p10 = OCR(p10=30.0)
    assert "low_ocr_confidence" in final_gate(m, low_p10, policy)
