"""Each legibility measure moves the right way as a degradation gets worse (150-dpi pages, fast)."""
import numpy as np
import pytest

from quality import correct_page, measure_page
from testpages import degrade as D
from testpages.render import render_page

DPI = 150


@pytest.fixture(scope="module")
def page():
    return render_page(font="naskh", size_pt=12, dpi=DPI, seed=11).image


def _m(img, dpi=DPI):
    return measure_page(img, correct_page(img), dpi)


def _increasing(vals, strict=True):
    pairs = list(zip(vals, vals[1:]))
    return all((b > a) if strict else (b >= a) for a, b in pairs)


def test_blur_monotone(page):
    v = [_m(D.blur(page, s)).blur_rel for s in (0, 1.0, 2.0, 3.5)]
    assert _increasing(v), v
    sh = [_m(D.blur(page, s)).sharpness for s in (0, 1.0, 2.0, 3.5)]
    assert _increasing(sh[::-1], strict=False), sh


def test_motion_blur_monotone(page):
    v = [_m(D.motion_blur(page, n)).blur_rel for s, n in enumerate((1, 5, 9, 15))]
    assert _increasing(v), v


def test_noise_monotone(page):
    v = [_m(D.gaussian_noise(page, s, seed=1)).noise for s in (0, 15, 40, 80)]
    assert _increasing(v), v


def test_impulse_monotone(page):
    v = [_m(D.salt_pepper(page, p, seed=1)).impulse_noise for p in (0.0, 0.02, 0.06, 0.15)]
    assert _increasing(v), v


def test_darkness_monotone(page):
    ms = [_m(D.darken(page, f)) for f in (1.0, 0.6, 0.3, 0.1)]
    assert _increasing([m.darkness for m in ms]), [m.darkness for m in ms]
    assert _increasing([-m.dynamic_range for m in ms]), [m.dynamic_range for m in ms]


def test_fade_monotone(page):
    v = [_m(D.fade(page, c)).contrast for c in (1.0, 0.5, 0.2, 0.05)]
    assert _increasing([-x for x in v]), v


def test_uneven_lighting_monotone(page):
    v = [_m(D.shadow(page, s, seed=0)).uneven_lighting for s in (0.0, 0.4, 0.7, 0.9)]
    assert _increasing(v), v


def test_resolution_monotone(page):
    big = render_page(font="naskh", size_pt=12, dpi=300, seed=11).image
    ms = [_m(D.downsample(big, 300, d), d) for d in (300, 150, 100, 60)]
    ch = [m.char_height_px for m in ms]
    assert _increasing([-x for x in ch]), ch


def test_text_coverage_and_blank(page):
    few = render_page(font="naskh", size_pt=12, dpi=DPI, seed=11, n_words=30).image
    assert _m(page).text_coverage > _m(few).text_coverage > 0
    mb = _m(D.blank((1754, 1240), seed=2))
    assert mb.blank and mb.text_coverage < 0.0015
    assert not _m(page).blank


def test_cut_off_and_border(page):
    assert not _m(page).cut_off
    fr = [_m(D.cut_off(page, f, "right")) for f in (0.05, 0.2)]
    assert all(m.cut_off and "right" in m.cut_off_edges for m in fr)
    bottom = _m(D.cut_off(page, 0.1, "bottom"))
    assert bottom.cut_off and "bottom" in bottom.cut_off_edges
    # a lid border inside the margin is not a cut-off; one over the text is
    thin = _m(D.black_border(page, 30))
    assert thin.border_fraction > 0 and not thin.cut_off
    over = _m(D.black_border(page, 220, "r"))
    assert over.cut_off


def test_legibility_monotone(page):
    from quality import legibility_score
    for series in ([D.blur(page, s) for s in (0, 2.0, 4.0)],
                   [D.gaussian_noise(page, s, seed=3) for s in (0, 40, 120)],
                   [D.fade(page, c) for c in (1.0, 0.1, 0.02)]):
        v = [legibility_score(_m(img)) for img in series]
        assert _increasing(v[::-1], strict=False) and v[0] > v[-1], v
