"""The scanner's watch folder: one sub-folder per filing, queued once it is complete, then moved aside.

    DIR/
      1405-09-10-ahmadi/          one filing (any folder name)
        filing.toml               its metadata (below); written LAST by the scanner software
        page-01.png  page-02.png  the pages, queued in natural name order (page-2 before page-10)
      .queued/                    folders already queued (renamed to NAME--<local id>)
      .refused/                   folders Khana refused, each with khana-refused.txt saying why

filing.toml:

    court = "tehran-civil-12"
    case = "140209987654321"       # or case_number
    type = "petition"              # or document_type
    deadline = "1405/09/12"        # optional: Solar Hijri or YYYY-MM-DD

A folder is complete when its filing.toml exists and no file in it changed size or modification time
between two polls, and it holds no partial file (hidden, `~`, `.part`, `.tmp`). Polling (not inotify) works on
network shares and USB scanners' folders alike. The folder's fingerprint is recorded with the filing, so a
crash between queuing and moving aside never queues it twice.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInput, KhanaError
from station.config import StationSettings
from station.intake import FilingMeta, check_filing, queue_filing, read_paths, scan_files
from station.outbox import Filing, Outbox

log = logging.getLogger("khana.station")

META_FILE = "filing.toml"
QUEUED, REFUSED = ".queued", ".refused"
_PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")


@dataclass
class WatchEvent:
    kind: str  # queued | refused
    folder: Path  # where the folder now is
    filing: Filing | None = None
    message: str = ""
    verdicts: list | None = None


def _snapshot(folder: Path) -> tuple | None:
    """(name, size, mtime_ns) of every entry; None while the folder is visibly still being written."""
    entries = []
    for p in sorted(folder.iterdir()):
        if p.is_dir():
            continue
        if p.name.startswith("~") or p.name.endswith(_PARTIAL_SUFFIXES) or (
                p.name.startswith(".") and p.name != META_FILE):
            return None
        st = p.stat()
        entries.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(entries)


def read_meta(folder: Path, office: str | None = None) -> FilingMeta:
    path = folder / META_FILE
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot be read as TOML ({exc})", fa=f"{path}: فایل مشخصات پرونده خوانا نیست") from None
    return FilingMeta.parse(data.get("court"), data.get("case", data.get("case_number")),
                            data.get("type", data.get("document_type")), data.get("deadline"), office)


def _move_aside(folder: Path, to: Path, name: str) -> Path:
    to.mkdir(exist_ok=True)
    dest = to / name
    n = 1
    while dest.exists():
        n += 1
        dest = to / f"{name}-{n}"
    os.rename(folder, dest)
    return dest


class FolderWatcher:
    def __init__(self, outbox: Outbox, settings: StationSettings, folder: Path, *, check: bool = True):
        self.outbox, self.settings, self.folder, self.check = outbox, settings, Path(folder), check
        self._last: dict[str, tuple] = {}

    def _fingerprint(self, folder: Path, snap: tuple) -> str:
        h = hashlib.sha256(str(folder.resolve()).encode())
        for name, size, mtime in snap:
            h.update(f"\0{name}\0{size}\0{mtime}".encode())
        return f"watch:{h.hexdigest()}"

    def poll(self) -> list[WatchEvent]:
        """Queue every sub-folder that was complete and unchanged since the previous poll."""
        if not self.folder.is_dir():
            raise BadInput(f"the watch folder {self.folder} does not exist", fa=f"پوشه {self.folder} وجود ندارد")
        events = []
        current: dict[str, tuple] = {}
        for sub in sorted(self.folder.iterdir()):
            if not sub.is_dir() or sub.name.startswith("."):
                continue
            try:
                snap = _snapshot(sub)
            except OSError:  # vanished or unreadable meanwhile: look again next time
                continue
            if snap is None or not any(name == META_FILE for name, _, _ in snap):
                continue
            current[sub.name] = snap
            if self._last.get(sub.name) != snap:
                continue  # new or still changing: wait for one more poll
            ev = self._take(sub, snap)
            if ev is not None:
                events.append(ev)
                current.pop(sub.name, None)
        self._last = current
        return events

    def _take(self, sub: Path, snap: tuple) -> WatchEvent | None:
        source = self._fingerprint(sub, snap)
        filing = self.outbox.by_source(source)  # queued before a crash, not yet moved aside
        verdicts = None
        if filing is None:
            try:
                meta = read_meta(sub, self.settings.office)
                files = scan_files(sub)
                if not files:
                    raise BadInput(f"{sub}: no PNG, JPEG, TIFF or PDF files beside {META_FILE}",
                                   fa=f"{sub}: در پوشه فایل تصویر یا PDF نیست")
                filing = queue_filing(self.outbox, self.settings, read_paths(files), meta, source=source)
            except BadInput as exc:
                return self._refuse(sub, exc)
            except KhanaError as exc:  # the outbox cannot be written: leave the folder for the next poll
                log.error("%s: %s", sub, exc.one_line())
                return None
            if self.check:
                verdicts = check_filing(self.outbox, self.settings, filing)
        dest = _move_aside(sub, self.folder / QUEUED, f"{sub.name}--{filing.id}")
        log.info("queued %s as %s", sub.name, filing.id)
        return WatchEvent("queued", dest, self.outbox.get(filing.id), verdicts=verdicts)

    def _refuse(self, sub: Path, exc: KhanaError) -> WatchEvent:
        dest = _move_aside(sub, self.folder / REFUSED, sub.name)
        text = exc.one_line() + "\n"
        try:
            (dest / "khana-refused.txt").write_text(text, encoding="utf-8")
        except OSError:
            pass
        log.warning("refused %s: %s", sub.name, exc.one_line())
        return WatchEvent("refused", dest, message=exc.one_line())
