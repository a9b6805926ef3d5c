"""Khana's errors and the process exit codes they map to (after OCRmyPDF's ``exceptions.py``).

Every error that can reach an operator derives from `KhanaError`: it carries an exit code and a one-line
message, in English and (where an operator reads it) Persian. The entry points (the CLI, the API, the
workers) turn it into that line, a status code or a retry; never a traceback.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of the `khana` commands."""

    ok = 0
    bad_args = 1  # reserved: click/typer already use 2 for usage errors, which we fold into bad_input
    bad_input = 2  # an input file or argument Khana refuses (nothing was processed)
    held = 3  # everything ran; some page is held for rescan or QA
    missing_dependency = 4  # Tesseract, its Persian model or another installed part is missing or broken
    output_error = 5  # the output folder or file cannot be written
    unavailable = 6  # a service (database, object store, broker, Khana server) is unreachable: retry later
    other_error = 15  # a bug: reported with a reference to the log
    ctrl_c = 130


class KhanaError(Exception):
    """Base class of Khana's own errors: an exit code and a one-line message (English, optional Persian)."""

    exit_code: ExitCode = ExitCode.other_error
    message_fa: str | None = None

    def __init__(self, message: str = "", *, fa: str | None = None):
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        if fa is not None:
            self.message_fa = fa

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def one_line(self, *, persian: bool = True) -> str:
        """The message on one line: Persian and English when a Persian message is known."""
        en = " ".join(self.message.split())
        if persian and self.message_fa:
            return f"{' '.join(self.message_fa.split())} / {en}"
        return en


class BadInput(KhanaError, ValueError):
    """The input cannot be accepted (a file Khana cannot read, an invalid value): nothing was processed."""

    exit_code = ExitCode.bad_input


class MissingDependency(KhanaError, RuntimeError):
    """A part of the installation is missing or broken (Tesseract, its `fas` model, a font)."""

    exit_code = ExitCode.missing_dependency


class OutputError(KhanaError, OSError):
    """The results cannot be written where they were asked for."""

    exit_code = ExitCode.output_error


class Unavailable(KhanaError):
    """A service Khana needs is unreachable right now (transient: retry later)."""

    exit_code = ExitCode.unavailable
