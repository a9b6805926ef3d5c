"""Generator of synthetic Persian test pages with known ground truth.

Used by the tests and the benchmarks: `render` draws real Persian text (the seed
articles) onto A4 pages, `degrade` damages them in controlled, graded ways.
"""
from testpages.render import FONTS, RenderedPage, available_fonts, render_page, seed_texts, text_sample

__all__ = ["FONTS", "RenderedPage", "available_fonts", "render_page", "seed_texts", "text_sample"]
