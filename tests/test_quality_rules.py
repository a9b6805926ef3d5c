"""quality._img.rules_mask opens only the rows/columns that can hold a rule: the same mask as opening all of it."""
import cv2
import numpy as np
import pytest

from quality._img import rules_mask


def _reference(mask):
    h, w = mask.shape
    m = mask.astype(np.uint8)
    kv, kh = max(15, h // 12), max(15, w // 6)
    vert = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, kv)))
    hor = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (kh, 1)))
    return cv2.dilate(vert | hor, np.ones((3, 3), np.uint8)) > 0


@pytest.mark.parametrize("seed", range(12))
def test_same_rules_as_opening_the_whole_mask(seed):
    rng = np.random.default_rng(seed)
    m = rng.random((200 + 37 * seed, 150 + 53 * seed)) < rng.uniform(0.05, 0.6)
    for _ in range(3):  # rules, some broken, some at the edges
        r, c = rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])
        m[r, : rng.integers(1, m.shape[1] + 1)] = True
        m[: rng.integers(1, m.shape[0] + 1), c] = True
    got = rules_mask(m)
    assert got.dtype == bool and (got == _reference(m)).all()


def test_a_form_page_keeps_its_frame():
    from testpages.hard import form_page

    ink = form_page(seed=1).image < 128
    got = rules_mask(ink)
    assert got.sum() > 10_000 and (got == _reference(ink)).all()
