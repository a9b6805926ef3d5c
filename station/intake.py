"""Taking a filing in at the counter: read and validate its files, parse its metadata, queue it, check its pages.

The files get the server's own checks (type sniffed from the content, every image page decoded, size and page
limits), so a corrupt or unsupported file is refused at once, with nothing queued, instead of after the outage.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInput
from pipeline import metadata
from pipeline.files import check_files
from station.config import StationSettings
from station.outbox import Filing, Outbox, QueuedFile

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf"}


def parse_deadline(text: str | None) -> str | None:
    """`YYYY-MM-DD` or Solar Hijri `1405/09/10` / `۱۴۰۵/۰۹/۱۰` -> ISO Gregorian date (the server's own rules)."""
    d = metadata.parse_deadline(None if text is None else str(text))
    return d.isoformat() if d else None


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def scan_files(folder: Path) -> list[Path]:
    """A folder's page files in natural name order (page2 before page10); hidden and partial files skipped."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                   and not p.name.startswith((".", "~"))), key=_natural_key)


def read_paths(paths: list[Path]) -> list[tuple[str, bytes]]:
    """The files to queue, read whole (a folder stands for its page files)."""
    out: list[tuple[str, bytes]] = []
    for p in paths:
        if p.is_dir():
            files = scan_files(p)
            if not files:
                raise BadInput(f"{p}: the folder has no PNG, JPEG, TIFF or PDF files",
                               fa=f"{p}: در این پوشه فایل تصویر یا PDF نیست")
        elif p.is_file():
            files = [p]
        else:
            raise BadInput(f"{p}: no such file", fa=f"{p}: چنین فایلی وجود ندارد")
        for f in files:
            try:
                out.append((f.name, f.read_bytes()))
            except OSError as exc:
                raise BadInput(f"{f}: cannot be read ({exc.strerror})", fa=f"{f}: فایل خوانده نمی‌شود") from None
    if not out:
        raise BadInput("a filing needs at least one file", fa="پرونده باید دست‌کم یک فایل داشته باشد")
    return out


def validate(named: list[tuple[str, bytes]], settings: StationSettings) -> list[QueuedFile]:
    """The server's checks on every file (`pipeline.files.check_files`); the first problem refuses the whole
    filing, and nothing is queued."""
    try:
        infos = check_files(named, settings)
    except BadInput as exc:
        raise BadInput(f"{exc.message} (nothing was queued)",
                       fa=f"{exc.message_fa} (چیزی در صف قرار نگرفت)") from None
    return [QueuedFile(name, data, info.kind, info.page_count) for (name, data), info in zip(named, infos)]


@dataclass
class FilingMeta:
    court: str
    case_number: str
    document_type: str
    deadline: str | None = None  # ISO Gregorian

    @classmethod
    def parse(cls, court: str | None, case: str | None, doc_type: str | None, deadline: str | None,
              office: str | None = None) -> "FilingMeta":
        """The server's own metadata checks (`pipeline.metadata.validate_meta`): refused here, not after the outage."""
        missing = [n for n, v in (("court", court), ("case", case), ("type", doc_type)) if not (v and str(v).strip())]
        if missing:
            raise BadInput(f"missing {', '.join(missing)} of the filing", fa="دادگاه، شماره پرونده و نوع سند لازم است")
        m = metadata.validate_meta(office=office, office_required=False, court=str(court), case_number=str(case),
                                   document_type=str(doc_type), deadline=None if deadline is None else str(deadline))
        return cls(m.court, m.case_number or "", m.document_type, m.deadline.isoformat() if m.deadline else None)


def queue_filing(outbox: Outbox, settings: StationSettings, named: list[tuple[str, bytes]], meta: FilingMeta,
                 source: str | None = None) -> Filing:
    files = validate(named, settings)
    return outbox.add(files, court=meta.court, case_number=meta.case_number, document_type=meta.document_type,
                      deadline=meta.deadline, office=settings.office, source=source)


def check_filing(outbox: Outbox, settings: StationSettings, filing: Filing, on_page=None) -> list[dict]:
    """Run the local quality checks on a queued filing's pages and record the verdicts in the outbox."""
    import quality
    from station.precheck import check_file

    policy = quality.load_policy()
    out_dir = outbox.checks_dir / filing.id
    verdicts = []
    for f in outbox.files(filing.id):
        stem = f.path.name.rsplit(".", 1)[0]
        for v in check_file(f.path.read_bytes(), f.name, f.pages, out_dir, policy, dpi=settings.raster_dpi,
                            max_pixels=settings.max_image_pixels, stem=stem):
            verdicts.append(v.as_dict())
            if on_page is not None:
                on_page(v)
    outbox.set_precheck(filing.id, verdicts)
    return verdicts
