"""Photos of a page: the sheet is found and flattened; scans are left alone."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from quality.page_frame import find_page_quad, rectify_page
from testpages import degrade, render_page
from testpages.photo import phone_photo


@pytest.fixture(scope="module")
def page():
    return render_page(n_words=80, seed=2, size_pt=14, dpi=200).image


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("shade", [0.0, 0.45])
def test_sheet_corners_are_found_within_one_percent(page, shade):
    jpeg, truth = phone_photo(page, size=(1500, 2000), shade=shade)
    quad = find_page_quad(decode(jpeg))
    assert quad is not None
    assert np.abs(quad - truth).max() < 0.01 * 2000


def test_flattened_photo_has_no_table_left(page):
    jpeg, _ = phone_photo(page, size=(1500, 2000))
    frame = rectify_page(decode(jpeg))
    assert frame.found
    flat = frame.image
    edges = np.concatenate([flat[:3].ravel(), flat[-3:].ravel(), flat[:, :3].ravel(), flat[:, -3:].ravel()])
    assert np.percentile(edges, 5) > 100  # the rim is paper, not the dark table
    assert 1.25 < flat.shape[0] / flat.shape[1] < 1.5  # roughly A4


@pytest.mark.parametrize("make", [
    lambda p: p,                                   # a clean flatbed scan
    lambda p: degrade.skew(p, 8),                  # a skewed scan on white
    lambda p: degrade.black_border(p, 40, "lt"),   # lid borders on two sides
    lambda p: degrade.blank(p.shape),              # an empty sheet
    lambda p: np.zeros((50, 50), np.uint8),        # tiny
    lambda p: np.zeros_like(p),                    # all black
])
def test_scans_are_left_untouched(page, make):
    img = make(page)
    frame = rectify_page(img)
    assert not frame.found and frame.image is img
