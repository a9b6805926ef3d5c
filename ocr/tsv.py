"""Tesseract's TSV output -> `Word`s in reading order."""
from __future__ import annotations

from ocr.words import Word


def parse_tsv(tsv: str) -> list[Word]:
    """Tesseract TSV -> words in reading order with consecutive line indices.

    One row per word with box, confidence and the block/paragraph/line numbers.
    Tesseract's iterator already yields words of a right-to-left line in reading order
    (right to left), and lines top to bottom within a block; we keep that order and
    number lines consecutively.
    """
    words: list[Word] = []
    line_ids: dict[tuple[int, int, int, int], int] = {}
    rows = tsv.splitlines()
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        try:
            conf = float(cols[10])
        except ValueError:
            conf = -1.0
        if conf < 0:
            continue
        key = (int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4]))
        line = line_ids.setdefault(key, len(line_ids))
        words.append(
            Word(text, max(0.0, min(100.0, conf)), int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]), line)
        )
    return words
