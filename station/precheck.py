"""The verdict at the counter: Khana's quality checks run locally on each page, before the client leaves.

decode -> photo flattening -> correction -> legibility measures -> early gate (the shipped policy) and, for a
page the gate would hold, the picture with its problems marked. No OCR: a page takes a fraction of a second.
The server's verdict is the one that counts (it also reads the text); this one only says early which pages
will be held and why, so the client can rescan them while still at the counter.

The image assessment is the server's own (`pipeline.decide.assess_image`, which `run_quality` calls).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

import quality
from pipeline.decide import assess_image
from pipeline.decode import UnreadableFile, decode_page


@dataclass
class PageVerdict:
    file: str  # the file's name as queued
    page: int  # 1-based page number within the file
    decision: str  # "pass" (so far: OCR may still hold it) or "hold"
    reasons: list[str] = field(default_factory=list)
    picture: str | None = None  # the page with its problems marked (held pages only)
    legibility: float = 0.0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"file": self.file, "page": self.page, "decision": self.decision, "reasons": list(self.reasons),
                "picture": self.picture, "legibility": self.legibility, "seconds": self.seconds}


def _write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - OpenCV cannot fail on a uint8 image
        raise ValueError("PNG encoding failed")
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def check_file(data: bytes, name: str, pages: int, out_dir: Path, policy: quality.GatePolicy, *,
               dpi: int = 300, max_pixels: int = 120_000_000, stem: str | None = None) -> list[PageVerdict]:
    """Verdicts for every page of one (already validated) file; problem pictures go to `out_dir`."""
    verdicts = []
    stem = stem or Path(name).stem
    for n in range(1, pages + 1):
        t0 = time.perf_counter()
        try:
            decoded = decode_page(data, n, dpi=dpi, max_pixels=max_pixels)
            a = assess_image(decoded.image, decoded.dpi, policy)
        except UnreadableFile:
            verdicts.append(PageVerdict(name, n, "hold", ["unreadable_file"], seconds=round(time.perf_counter() - t0, 3)))
            continue
        picture = None
        if a.overlay is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{stem}.page{n}.problems.png"
            _write_png(path, a.overlay)
            picture = str(path)
        verdicts.append(PageVerdict(name, n, "hold" if a.early_reasons else "pass", list(a.early_reasons), picture,
                                    round(a.image_legibility, 3), round(time.perf_counter() - t0, 3)))
    return verdicts
