"""The QA image marks where a page is blurred, not the whole text area."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import quality
from quality.blur_map import blurred_regions
from testpages import render_page


@pytest.fixture(scope="module")
def page():
    return render_page(font="naskh", size_pt=12, seed=21, n_words=260).image


def _blur_lower_text_half(page, sigma=6.0):
    """Blur the lower half of the text block (a page curled off the glass at one end)."""
    img = page.copy()
    rows = np.flatnonzero((img < 128).any(axis=1))
    mid = (rows[0] + rows[-1]) // 2
    img[mid:] = cv2.GaussianBlur(img[mid:], (0, 0), sigma)
    return img, mid / img.shape[0]


def _measured(img):
    cp = quality.correct_page(img)
    return cp, quality.measure_page(img, cp, 300)


def test_a_sharp_page_has_no_blurred_tiles(page):
    cp, m = _measured(page)
    assert blurred_regions(cp.image, m) == []


def test_only_the_blurred_half_is_marked(page):
    img, mid = _blur_lower_text_half(page)
    cp, m = _measured(img)
    boxes = blurred_regions(cp.image, m)
    assert boxes, "the blurred half must be found"
    ch = cp.image.shape[0]
    assert min(y + bh for _, y, _, bh in boxes) > (mid - 0.03) * ch  # nothing wholly in the sharp half
    assert len(boxes) >= 8  # most of the blurred half's text tiles


def test_unread_text_finds_the_part_the_ocr_did_not_read(page):
    import ocr

    img, mid = _blur_lower_text_half(page)
    cp, m = _measured(img)
    words = ocr.recognise(cp.image).words
    u = quality.unread_text(cp.image, words, m)
    assert u["unread_share"] > 0.15 and u["unread_tiles"] >= 8
    assert len(u["blurred_boxes"]) >= u["unread_tiles"] // 2
    assert min(y + bh for _, y, _, bh in u["unread_boxes"]) > (mid - 0.03) * cp.image.shape[0]
    cp0, m0 = _measured(page)  # the same page, sharp: everything read
    assert quality.unread_text(cp0.image, ocr.recognise(cp0.image).words, m0)["unread_tiles"] == 0


def test_held_blurred_page_overlay_marks_only_the_blurred_part(page):
    img, mid = _blur_lower_text_half(page)
    cp, m = _measured(img)
    out = quality.annotate_problems(cp.image, m, ["blurred"], [])
    oh = out.shape[0]
    g = cv2.resize(cp.image, (out.shape[1], oh), interpolation=cv2.INTER_AREA)
    tint = (out[..., 2].astype(int) - out[..., 0].astype(int)) > 40  # orange: red well above blue
    ink = g < 128
    rows = np.flatnonzero(ink.any(axis=1))
    top = slice(rows[0] + oh // 40, int((mid - 0.06) * oh))
    bottom = slice(int((mid + 0.06) * oh), rows[-1])
    # measured on the text itself: the sharp half's words are untouched, the blurred half's tinted
    assert tint[top][ink[top]].mean() < 0.02
    assert tint[bottom].any(axis=1).mean() > 0.8
