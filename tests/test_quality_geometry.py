"""Skew and orientation accuracy on a small sample (the benchmark covers the full corpus)."""
import numpy as np
import pytest

from quality import correct_page
from quality.geometry import decompose, wrap45
from testpages import degrade as D
from testpages.render import render_page


@pytest.fixture(scope="module")
def pages():
    return [render_page(font=f, size_pt=12, dpi=150, seed=s).image
            for f, s in (("naskh", 1), ("nazli", 2), ("homa", 3))]


@pytest.mark.parametrize("angle", [-44.0, -30.0, -7.3, -1.0, 0.0, 2.5, 15.0, 38.0])
def test_skew_estimate(pages, angle):
    img = D.skew(pages[0], angle)
    c = correct_page(img)
    assert c.rotation == 0
    assert abs(c.skew_degrees - angle) < (0.15 if abs(angle) <= 15 else 0.3)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_orientation_quarter_turns(pages, k):
    for img in pages:
        c = correct_page(D.rotate90(img, k))
        assert c.rotation == (360 - 90 * k) % 360
        assert abs(c.skew_degrees) < 0.2


def test_rotation_plus_skew(pages):
    img = D.rotate90(D.skew(pages[1], -12.0), 1)  # content at 78 degrees
    c = correct_page(img)
    assert c.rotation == 270 and abs(c.skew_degrees + 12.0) < 0.2
    img = D.rotate90(D.skew(pages[2], 6.0), 2)
    c = correct_page(img)
    assert c.rotation == 180 and abs(c.skew_degrees - 6.0) < 0.2


def test_corrected_page_reads_upright(pages):
    """After correction the page matches the original orientation (image correlation)."""
    import cv2
    src = pages[0]
    c = correct_page(D.rotate90(D.skew(src, 9.0), 3))
    out = c.image
    small = lambda a: cv2.resize(a, (200, 280), interpolation=cv2.INTER_AREA).astype(np.float32)  # noqa: E731
    ys, xs = np.nonzero(out < 128)
    crop = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    ys, xs = np.nonzero(src < 128)
    ref = src[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    a, b = small(crop), small(ref)
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    flip = np.corrcoef(a[::-1, ::-1].ravel(), b.ravel())[0, 1]
    assert corr > flip and corr > 0.5


def test_decompose_convention():
    assert decompose(78.0) == (-12.0, 270)
    assert decompose(185.0) == (5.0, 180)
    assert decompose(-3.0) == (-3.0, 0)
    assert wrap45(46.0) == -44.0
