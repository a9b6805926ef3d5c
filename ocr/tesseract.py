"""The Tesseract process (after OCRmyPDF's `_exec/tesseract.py`): command, languages,
environment, one run with a hard timeout. Knows nothing of words or layout.

Tesseract runs as a subprocess per call. We call the binary directly (the same call
pytesseract makes) so that each call gets its own environment (`OMP_THREAD_LIMIT=1`
unless asked otherwise; parallelism comes from running pages side by side), its own
process group (a timeout kills Tesseract and anything it spawned), and a clear error
when the binary or the language data is missing (`MissingDependency`, exit status 4).

The command and the tessdata directory are constructor values (`Tesseract(cmd=...,
tessdata=...)`): nothing here reads Khana's settings. The child process inherits the
environment, so a `TESSDATA_PREFIX` set there still applies when no directory is given.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import KhanaError, MissingDependency

# PSM 6 ("a single uniform block of text") reads single-column petitions and court
# headers in strict line order; PSM 4 / 3 split headers with left and right columns
# into separate blocks. See docs/ocr.md and bench/ocr for the measurements.
DEFAULT_PSM = 6


class OcrError(KhanaError, RuntimeError):
    """OCR could not run (Tesseract missing, language data missing, crash)."""


class OcrTimeout(OcrError):
    """Tesseract did not finish within the per-page time limit (reason `ocr_timeout`).

    A page outcome (the page is held with reason `ocr_timeout`), not an installation error."""

    reason = "ocr_timeout"


class TesseractNotFound(OcrError, MissingDependency):
    """The `tesseract` binary is not installed (or not where the configuration says)."""

    exit_code = MissingDependency.exit_code


class LanguageDataMissing(OcrError, MissingDependency):
    """Tesseract runs but the language model asked for (`fas`) is not installed."""

    exit_code = MissingDependency.exit_code


def _env(threads: int | None, tessdata: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if threads is None:
        env.pop("OMP_THREAD_LIMIT", None)
    else:
        env["OMP_THREAD_LIMIT"] = str(int(threads))
    if tessdata:
        env["TESSDATA_PREFIX"] = str(tessdata)
    return env


@functools.lru_cache(maxsize=8)
def _languages(cmd: str, tessdata: str | None) -> frozenset[str]:
    try:
        proc = subprocess.run([cmd, "--list-langs"], capture_output=True, text=True, timeout=30, env=_env(1, tessdata))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrError(f"cannot run Tesseract ({cmd}): {exc}") from exc
    langs = set()
    for line in (proc.stdout + "\n" + proc.stderr).splitlines()[1:]:
        line = line.strip()
        if line and " " not in line:
            langs.add(line)
    return frozenset(langs)


@dataclass(frozen=True)
class Tesseract:
    """How to run Tesseract: the command, an optional tessdata directory, OpenMP threads."""

    cmd: str = "tesseract"
    tessdata: str | None = None
    threads: int | None = 1

    def path(self) -> str:
        """The binary's full path; `TesseractNotFound` when it is not there."""
        found = shutil.which(self.cmd)
        if not found:
            raise TesseractNotFound(
                f"Tesseract is not installed (looked for {self.cmd!r}; install tesseract-ocr and tesseract-ocr-fas)",
                fa="Tesseract نصب نیست (بسته‌های tesseract-ocr و tesseract-ocr-fas را نصب کنید)",
            )
        return found

    def languages(self) -> frozenset[str]:
        """Installed language models (`tesseract --list-langs`, cached per command and tessdata)."""
        # the child reads TESSDATA_PREFIX from the inherited environment when no directory is given:
        # it is part of the cache key, not a Khana setting
        return _languages(self.path(), self.tessdata or os.environ.get("TESSDATA_PREFIX"))

    def check(self, lang: str) -> None:
        """Raise `MissingDependency` (`TesseractNotFound`, `LanguageDataMissing`) unless `lang` can run."""
        langs = self.languages()
        missing = [part for part in lang.split("+") if part and part not in langs]
        if missing:
            name = "+".join(missing)
            raise LanguageDataMissing(
                f"Tesseract language data missing for {name!r} (install tesseract-ocr-{missing[0]} or point the "
                f"tessdata directory at its .traineddata; installed: {', '.join(sorted(langs)) or 'none'})",
                fa=f"داده‌های زبان {name} برای Tesseract نصب نیست (بستهٔ tesseract-ocr-{missing[0]} را نصب کنید)",
            )

    def run(
        self,
        gray: np.ndarray,
        *,
        dpi: int = 300,
        timeout_s: float = 60.0,
        lang: str = "fas",
        psm: int = DEFAULT_PSM,
        extra: tuple[str, ...] = (),
        renderers: tuple[str, ...] = ("tsv",),
    ) -> dict[str, bytes]:
        """Run Tesseract on a grayscale image; returns {renderer: output bytes}."""
        cmd = self.path()
        self.check(lang)
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError("recognise expects a 2-D uint8 grayscale page")
        with tempfile.TemporaryDirectory(prefix="khana-ocr-") as tmp:
            # uncompressed TIFF: ~0.01 s to write and the cheapest for Tesseract to read (measured per
            # A4 page at 300 dpi: PNG level 1 0.09 s to encode + 0.05 s for Tesseract to decode; PGM is
            # free to write but Leptonica reads it 0.15 s slower); the resolution goes in --dpi
            src = Path(tmp) / "page.tif"
            ok, buf = cv2.imencode(".tif", gray, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
            if not ok:
                raise OcrError("could not encode the page for Tesseract")
            src.write_bytes(buf.tobytes())
            base = Path(tmp) / "out"
            args = [cmd, str(src), str(base), "-l", lang, "--psm", str(psm), "--dpi", str(int(dpi)), *extra, *renderers]
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(self.threads, self.tessdata),
                start_new_session=True,
            )
            try:
                _, err = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.communicate()
                raise OcrTimeout(f"Tesseract did not finish within {timeout_s:g} s (reason ocr_timeout)") from None
            if proc.returncode != 0:
                msg = err.decode("utf-8", "replace").strip()
                raise OcrError(f"Tesseract failed (exit {proc.returncode}): {msg[-500:]}")
            out = {}
            for r in renderers:
                path = base.with_suffix("." + ("txt" if r == "txt" else r))
                if not path.exists():
                    raise OcrError(f"Tesseract produced no {r} output: {err.decode('utf-8', 'replace')[-300:]}")
                out[r] = path.read_bytes()
            return out


def available_languages(tesseract_cmd: str = "tesseract", tessdata: str | None = None) -> frozenset[str]:
    """Language models the given Tesseract has installed."""
    return Tesseract(tesseract_cmd, tessdata).languages()
