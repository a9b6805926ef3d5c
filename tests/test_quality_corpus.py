"""The degraded corpus is deterministic and carries consistent ground truth; CER helper."""
import numpy as np

from testpages.corpus import SPECS, corpus_size, iter_corpus
from testpages.metrics import cer, normalize_text


def test_corpus_sizes():
    assert corpus_size("small") >= 70
    assert corpus_size("full") >= 300  # several hundred pages
    assert len(SPECS) >= 15


def test_corpus_deterministic_and_geometry():
    a = list(iter_corpus("small", seed=0, kinds=["rotate"]))
    b = list(iter_corpus("small", seed=0, kinds=["rotate"]))
    assert [x.id for x in a] == [y.id for y in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert {x.true_rotation for x in a} == {90, 180, 270}
    for x in a:
        assert x.text and x.image.dtype == np.uint8 and not x.content_lost


def test_cer_normalisation():
    assert cer("كتاب ي ۱۲۳", "کتاب ی 123") == 0.0
    assert cer("می‌شود", "میشود") == 0.0
    assert abs(cer("abcd", "abcf") - 0.25) < 1e-9
    assert cer("", "") == 0.0 and cer("", "x") == 1.0
    assert normalize_text("  a \n b  ") == "a b"
