"""Text from outside (file names, metadata) made safe to show: one line, no control or bidi-override characters.

A hostile file name can carry NUL, newlines, ANSI escapes or Unicode bidi overrides (U+202E makes
"gpj.exe" read as "exe.jpg"); `printable` replaces each with "?" so it can fake nothing in a report, an
output file name, a log line or a web page. PostgreSQL refuses NUL in text: names are cleaned at intake.
"""
from __future__ import annotations

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROL = {c: "?" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI)}


def printable(text: str, limit: int | None = None) -> str:
    """`text` on one line with every control, C1 and bidi-control character replaced by "?"."""
    out = str(text).translate(_CONTROL)
    return out if limit is None or len(out) <= limit else out[: max(0, limit - 1)] + "…"
