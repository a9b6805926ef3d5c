"""Issue 12: pages built differently from the corpus (testpages/hard.py), one test per class of gate error."""
import numpy as np
import pytest

from quality import annotate_problems, correct_page, early_gate, final_gate, load_policy, measure_page, OcrEvidence
from quality.page_frame import photo_dpi, rectify_page
from testpages import hard
from testpages.render import render_page

GOOD_READ = OcrEvidence(mean_confidence=88.0, p10_confidence=70.0, lexicon_share=0.95, word_count=180)


@pytest.fixture(scope="module")
def policy():
    return load_policy()


@pytest.fixture(scope="module")
def full_pages():
    return {f: render_page(hard.FULL_TEXT, font=f, size_pt=12, dpi=300).image for f in ("naskh", "nazli")}


def _measure(img, dpi=300.0, photo=False):
    if photo:
        frame = rectify_page(img)
        if frame.found:
            img, dpi = frame.image, photo_dpi(frame.image)
    c = correct_page(img)
    return c, measure_page(img, c, dpi)


def _red(ov):
    return (ov[:, :, 2] > 180) & (ov[:, :, 1] < 60) & (ov[:, :, 0] < 60)


@pytest.mark.parametrize("font", ["naskh", "nazli"])
@pytest.mark.parametrize("angle", [25, 32, 40])
@pytest.mark.parametrize("lid", [235, 120])
def test_class1_steep_scan_with_lost_corners_is_held_cut_off(full_pages, policy, font, angle, lid):
    scan, lost = hard.steep_scan(full_pages[font], angle, lid=lid)
    assert 0.02 <= lost <= 0.09  # 2-9 % of the page's ink outside the scanned area
    c, m = _measure(scan)
    assert abs(m.skew_degrees - angle) < 0.5
    reasons = early_gate(m, policy)
    assert "cut_off" in reasons, (reasons, m.as_dict())
    # the QA image marks where the text is lost: along the scan's edge, slanted after deskew
    assert m.cut_off_segments
    x0, y0, x1, y1 = max(m.cut_off_segments, key=lambda s: abs(s[2] - s[0]) + abs(s[3] - s[1]))
    assert abs(x1 - x0) > 5 and abs(y1 - y0) > 5  # neither horizontal nor vertical: the slanted scan edge
    ov = annotate_problems(c.image, m, reasons)
    assert _red(ov).mean() > 0.0005


@pytest.mark.parametrize("font", ["naskh", "nazli"])
@pytest.mark.parametrize("edges,pad", [("lrtb", 2), ("lrtb", 4), ("r", 3), ("l", 3)])
def test_class2_intact_text_near_the_edge_passes(full_pages, policy, font, edges, pad):
    img = hard.near_edge(full_pages[font], 12, pad=pad, edges=edges)
    c, m = _measure(img)
    assert not m.cut_off, m.as_dict()
    assert early_gate(m, policy) == [] and final_gate(m, GOOD_READ, policy) == []


@pytest.mark.parametrize("font", ["naskh", "nazli"])
@pytest.mark.parametrize("angle", [1, 2, 4, -4])
def test_class2_intact_text_at_the_edge_of_a_slightly_skewed_page_passes(full_pages, policy, font, angle):
    """Skewed by a few degrees and cropped 1 px around its text: each line's slanted end (the last line's
    bottom, a justified side) touches the edge over d / tan(angle) of it. That is one straight edge of
    intact text, not text running off the page (before: held `cut_off` on its bottom edge)."""
    img = hard.near_edge(full_pages[font], angle, pad=1)
    c, m = _measure(img)
    assert not m.cut_off, m.as_dict()
    assert early_gate(m, policy) == [] and final_gate(m, GOOD_READ, policy) == []


@pytest.mark.parametrize("font", ["naskh", "nazli"])
@pytest.mark.parametrize("angle,edge", [(1, "r"), (2, "b"), (4, "l"), (4, "b"), (0, "r")])
def test_text_cut_at_the_edge_of_a_slightly_skewed_page_is_held(full_pages, policy, font, angle, edge):
    """The same page with 60 px more taken off one side: text lost, held `cut_off`."""
    img = hard.near_edge(full_pages[font], angle, pad=3)
    h, w = img.shape
    img = {"r": img[:, :w - 60], "l": img[:, 60:], "b": img[:h - 60]}[edge]
    c, m = _measure(img)
    assert m.cut_off and "cut_off" in early_gate(m, policy), m.as_dict()


@pytest.mark.parametrize("font,seed", [("naskh", 12), ("nazli", 41), ("sans", 58), ("naskh-bold", 83)])
def test_class4_shaded_small_photo_cut_at_the_edge_is_held_cut_off_first(policy, font, seed):
    """A small phone photo (1500 x 2000 px) of a 10 pt page, shaded from top to bottom, 15 % of the sheet
    outside the picture on the right. The sheet's outline cannot close on the right, and the brightness
    outline ended where the shading crossed its threshold, across the text: the page was flattened to
    its bare lower part and held `blurred`/`faded`/`blank`. The operator must read `cut_off`."""
    page = render_page(font=font, size_pt=10, dpi=300, seed=3).image
    photo = hard.edge_cut_photo(page, outside=0.15, seed=seed, size=(1500, 2000))
    c, m = _measure(photo, photo=True)
    reasons = early_gate(m, policy)
    assert reasons and reasons[0] == "cut_off", (reasons, m.cut_off_edges)
    assert "right" in m.cut_off_edges


@pytest.mark.parametrize("form_seed,photo_seed", [(2, 0), (8, 0), (11, 2), (12, 1)])
def test_class4_edge_cut_photo_marks_the_cut_edge(policy, form_seed, photo_seed):
    # a framed court form (دادنامه) photographed with its right part outside the picture
    page = hard.form_page(seed=form_seed).image
    photo = hard.edge_cut_photo(page, outside=0.2, seed=photo_seed)
    c, m = _measure(photo, photo=True)
    reasons = early_gate(m, policy)
    assert "cut_off" in reasons
    assert m.cut_off_edges == ["right"], m.cut_off_edges
    ov = annotate_problems(c.image, m, reasons)
    red = _red(ov)
    h, w = red.shape
    assert red[:, int(0.97 * w):].mean() > 0.005 and np.nonzero(red)[1].mean() > 0.95 * w  # along the right edge
    assert red[int(0.97 * h):, :int(0.9 * w)].mean() < 0.01  # not the bottom
    assert red[:, :int(0.03 * w)].mean() < 0.01  # not the left


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_class9_small_photo_is_low_resolution_not_cut_off(policy, seed):
    page = hard.form_page(seed=4).image
    photo = hard.small_photo(page, seed=seed)
    c, m = _measure(photo, photo=True)
    assert 40 < m.dpi < 80 and 5 < m.char_height_px < 14, m.as_dict()
    assert m.rotation in (0, 180)  # not sideways: the form's frame is not taken for text lines (up/down at 57 dpi is a guess)
    assert early_gate(m, policy) == []  # not held before the read: the read decides (quality.gate.READ_DECIDES)
    # as Tesseract reads such photos (CER 35-78 %, mean confidence 40-66) or worse: held, the real cause first
    for ocr in (OcrEvidence(mean_confidence=45.0, p10_confidence=10.0, word_count=40),
                OcrEvidence(mean_confidence=66.0, p10_confidence=28.0, lexicon_share=0.74, word_count=120)):
        reasons = final_gate(m, ocr, policy)
        assert reasons and reasons[0] == "low_resolution" and "cut_off" not in reasons, reasons
    # a read that shows the text legible passes the page, warning of the low resolution (never "cut off")
    from quality import read_warnings
    assert final_gate(m, GOOD_READ, policy) == [] and read_warnings(m, GOOD_READ, policy)[0] == "low_resolution"


def test_form_frame_is_not_a_text_line():
    c = correct_page(hard.form_page(seed=4).image)
    assert c.rotation == 0 and abs(c.skew_degrees) < 0.3
    assert 30 < c.line_height_px < 60  # 12 pt at 300 dpi, not the frame's height


def test_qa_image_shows_the_reports_legibility(full_pages, policy):
    img = full_pages["naskh"]
    c, m = _measure(img)
    a = annotate_problems(c.image, m, ["low_ocr_confidence"], legibility=0.0)
    b = annotate_problems(c.image, m, ["low_ocr_confidence"], legibility=m.legibility)
    banner = slice(0, 40)
    assert m.legibility > 0.5 and not np.array_equal(a[banner], b[banner])
    assert np.array_equal(a[200:], b[200:])
