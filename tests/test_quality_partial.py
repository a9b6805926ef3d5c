"""Pages blurred in one part (top, bottom, one side) beyond reading are held as `blurred` (issue 12).

The blurred part of such a page used to be invisible to the regional checks: defocused text (σ ≥ 4 px at
300 dpi) is a grey smudge whose darkest pixels stay above the ink level, so its tiles did not count as
text, and a part Tesseract read as garbage was held for low confidence without naming the blur.
"""
from __future__ import annotations

import numpy as np
import pytest

import quality
from quality.blur_map import unread_text
from quality.gate import OcrEvidence, final_gate, load_policy
from testpages import degrade as D
from testpages import render_page

POL = load_policy()


def _page(font, seed):
    return render_page(font=font, size_pt=12, dpi=300, seed=seed, n_words=900).image


def _part(img, fn, part):
    """`img` blurred by `fn` in one half of its text block (a sheet curled off the glass at one end)."""
    out, bl = img.copy(), fn(img)
    rows, cols = np.flatnonzero((img < 128).any(axis=1)), np.flatnonzero((img < 128).any(axis=0))
    h, w = 2 * ((rows[0] + rows[-1]) // 2), 2 * ((cols[0] + cols[-1]) // 2)  # h // 2, w // 2: the text block's middle
    if part == "lower-page":  # the lower half of the sheet, wherever the text ends
        out[img.shape[0] // 2:] = bl[img.shape[0] // 2:]
    elif part == "lower":
        out[h // 2:] = bl[h // 2:]
    elif part == "upper":
        out[: h // 2] = bl[: h // 2]
    elif part == "right":
        out[:, w // 2:] = bl[:, w // 2:]
    else:
        out[:, : w // 2] = bl[:, : w // 2]
    return out


def _words_on_sharp_lines(m, part, shape, h):
    """What Tesseract reads of such a page: a word box over each text line in the sharp part only."""
    out = []
    for a, b in m.line_bands:
        c = (a + b) / 2
        if (part == "lower" and c < h / 2) or (part == "upper" and c > h / 2):
            out.append({"left": 0, "top": a, "width": shape[1], "height": b - a})
    return out


@pytest.mark.parametrize("font,seed,sigma,part", [
    ("nazli", 2, 6, "lower"), ("naskh", 3, 6, "lower"), ("sans", 5, 8, "lower"), ("homa", 7, 5, "upper"),
])
def test_the_unread_blurred_part_counts_as_text(font, seed, sigma, part):
    page = _page(font, seed)
    img = _part(page, lambda im: D.blur(im, sigma), part)
    cp = quality.correct_page(img)
    m = quality.measure_page(img, cp, 300)
    rows = np.flatnonzero((page < 128).any(axis=1))
    words = _words_on_sharp_lines(m, part, cp.image.shape, rows[0] + rows[-1])
    assert words
    u = unread_text(cp.image, words, m, POL.reasons.blur_rel_max)
    # the blurred text is still text: about as many text tiles as on the sharp page (before: the blurred
    # part's tiles were not text, so they could not be unread either)
    cs = quality.correct_page(page)
    sharp = unread_text(cs.image, [], quality.measure_page(page, cs, 300))["text_tiles"]
    assert u["text_tiles"] >= 0.85 * sharp, (u["text_tiles"], sharp)
    f = POL.final
    assert u["unread_tiles"] >= f.unread_tiles_min and u["unread_share"] > f.unread_text_share_max, u["unread_share"]
    assert 2 * len(u["blurred_boxes"]) >= u["unread_tiles"]
    ev = OcrEvidence(mean_confidence=87, p10_confidence=77, word_count=400, words=words,
                     unread_text_share=u["unread_share"], unread_tiles=u["unread_tiles"],
                     unread_blurred_tiles=len(u["blurred_boxes"]), text_tiles=u["text_tiles"])
    assert "blurred" in final_gate(m, ev, POL)


@pytest.mark.parametrize("font,seed,fn", [
    ("naskh", 2, lambda im: im), ("nazli", 3, lambda im: D.blur(im, 2)), ("sans", 4, lambda im: D.motion_blur(im, 5)),
])
def test_an_evenly_readable_page_has_no_unread_text(font, seed, fn):
    img = fn(_page(font, seed))
    cp = quality.correct_page(img)
    m = quality.measure_page(img, cp, 300)
    words = [{"left": 0, "top": a, "width": cp.image.shape[1], "height": b - a} for a, b in m.line_bands]
    u = unread_text(cp.image, words, m, POL.reasons.blur_rel_max)
    assert u["unread_tiles"] == 0


def test_a_page_held_on_its_read_names_a_blurred_part():
    """Tesseract reads a motion-blurred side as low-confidence garbage: no tile is unread, the blur is the cause."""
    img = _part(_page("naskh", 2), lambda im: D.motion_blur(im, 15), "right")
    cp = quality.correct_page(img)
    m = quality.measure_page(img, cp, 300)
    boxes = quality.blurred_regions(cp.image, m, POL.reasons.blur_rel_max)
    u = unread_text(cp.image, [{"left": 0, "top": 0, "width": cp.image.shape[1], "height": cp.image.shape[0]}], m)
    weak = OcrEvidence(mean_confidence=61, p10_confidence=9, word_count=400, weak_line_share=0.14,
                       text_tiles=u["text_tiles"], blurred_text_tiles=len(boxes))
    assert final_gate(m, weak, POL)[-1] == "blurred" and "low_ocr_confidence" in final_gate(m, weak, POL)
    # the same read of a page with no blurred part is held for its read only
    sharp = OcrEvidence(mean_confidence=61, p10_confidence=9, word_count=400, text_tiles=u["text_tiles"],
                        blurred_text_tiles=1)
    assert "blurred" not in final_gate(m, sharp, POL)


@pytest.mark.slow
@pytest.mark.parametrize("font,seed,fn,part,held", [
    ("nazli", 2, lambda im: D.blur(im, 6), "lower-page", True),  # the finding: CER 24 %, 6 lines lost, passed
    ("nazli", 2, lambda im: D.blur(im, 6), "lower", True),
    ("sans", 2, lambda im: D.blur(im, 6), "lower", True),
    ("homa", 2, lambda im: D.motion_blur(im, 15), "right", True),
    ("nazli", 3, lambda im: D.motion_blur(im, 25), "left", True),
    ("naskh", 3, lambda im: D.motion_blur(im, 9), "lower", False),  # CER 2.4 %: readable
])
def test_whole_decision_of_partly_blurred_pages(font, seed, fn, part, held):
    from ocr import TesseractEngine
    from pipeline.decide import assess_image, assess_read
    page = _page(font, seed)
    img = _part(page, fn, part)
    a = assess_image(img, 300, POL)
    assert not a.early_reasons
    res = TesseractEngine().recognise(a.corrected.image, dpi=int(round(a.image_dpi)))
    r = assess_read(a.corrected.image, a.measures, res, POL, image_legibility=a.image_legibility)
    if held:
        assert "blurred" in r.reasons and a.measures.blur_regions, r.reasons
        rows, cols = np.flatnonzero((page < 128).any(axis=1)), np.flatnonzero((page < 128).any(axis=0))
        my, mx, tol = (rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2, 200  # a straight page: corrected = raw pixels
        ys = np.array([y + hh / 2 for _, y, _, hh in a.measures.blur_regions])
        xs = np.array([x + ww / 2 for x, _, ww, _ in a.measures.blur_regions])
        # the marked tiles lie in the blurred part
        inside = {"lower": np.mean(ys > my - tol), "lower-page": np.mean(ys > page.shape[0] / 2 - tol), "right": np.mean(xs > mx - tol), "left": np.mean(xs < mx + tol)}[part]
        assert inside >= 0.8
    else:
        assert r.reasons == [], r.reasons
