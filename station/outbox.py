"""The station's durable outbox: SQLite (WAL, synchronous=FULL) plus a copy of every queued file.

A filing is acknowledged to the operator only after its files are copied (each written to a temporary file,
fsync'd and renamed; then the folder renamed into place and its parent fsync'd) and its row committed.
A power cut at any moment therefore leaves either nothing (the operator saw no id) or a complete filing.

    HOME/outbox.db                      filings and their files
    HOME/files/<filing id>/NN-name      the copies that will be uploaded
    HOME/checks/<filing id>/...         pictures of the pages the local check would hold
    HOME/sender.lock                    held by the one process delivering this outbox

States: queued -> sending -> accepted (the server stored it) -> held (pages to rescan) | forwarded (delivered to
the court); queued/sending -> rejected (the server refused the filing: its message is kept); queued -> cancelled.
A filing left in `sending` by a killed sender is sent again with the same Idempotency-Key: the server answers
with the batch it already has, so nothing is lost and nothing is duplicated.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

from core.errors import KhanaError, OutputError, Unavailable
from storage.durable import fsync_dir, write_synced

STATES = ("queued", "sending", "accepted", "held", "forwarded", "rejected", "cancelled")
OPEN_STATES = ("queued", "sending")  # not yet with the server
FINAL_STATES = ("forwarded", "rejected", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS filings (
    id            TEXT PRIMARY KEY,
    created_at    REAL NOT NULL,
    court         TEXT NOT NULL,
    case_number   TEXT NOT NULL,
    document_type TEXT NOT NULL,
    deadline      TEXT,              -- ISO Gregorian date, NULL when none
    office        TEXT NOT NULL DEFAULT '',
    source        TEXT UNIQUE,       -- watch-folder fingerprint: a folder is queued once
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_try_at   REAL NOT NULL DEFAULT 0,
    last_error    TEXT,              -- the last transient failure (connection, 5xx, 429)
    message       TEXT,              -- the server's refusal, for the operator
    batch_id      TEXT,
    server_status TEXT,
    rescan        TEXT,              -- JSON: pages to rescan and why (from the server)
    precheck      TEXT,              -- JSON: the local verdict per page
    pages         INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    sent_at       REAL,
    updated_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS filings_state ON filings (state, deadline, created_at);
CREATE TABLE IF NOT EXISTS files (
    filing_id TEXT NOT NULL REFERENCES filings (id),
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    path      TEXT NOT NULL,         -- relative to HOME
    sha256    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    pages     INTEGER NOT NULL,
    PRIMARY KEY (filing_id, position)
);
"""

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "tiff": "image/tiff", "pdf": "application/pdf"}
_SAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE.sub("_", base).strip("._")[:100] or "file"


class OutboxError(OutputError):
    """The outbox folder cannot be written (disk full, permissions): nothing was queued."""

    message_fa = "صف ارسال ایستگاه قابل نوشتن نیست (دیسک پر است یا دسترسی ندارد)؛ چیزی در صف قرار نگرفت"


class SenderBusy(Unavailable):
    """Another sender is already delivering this outbox."""

    message_fa = "فرستنده دیگری هم‌اکنون در حال ارسال همین صف است"


@dataclass
class QueuedFile:
    name: str
    data: bytes
    kind: str  # png | jpeg | tiff | pdf
    pages: int


@dataclass
class StoredFile:
    position: int
    name: str
    path: Path
    sha256: str
    size: int
    kind: str
    pages: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.kind, "application/octet-stream")


@dataclass
class Filing:
    id: str
    created_at: float
    court: str
    case_number: str
    document_type: str
    deadline: str | None
    office: str
    state: str
    attempts: int
    next_try_at: float
    last_error: str | None
    message: str | None
    batch_id: str | None
    server_status: str | None
    rescan: list = field(default_factory=list)
    precheck: list = field(default_factory=list)
    pages: int = 0
    bytes: int = 0
    sent_at: float | None = None
    updated_at: float = 0.0
    source: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Filing":
        d = dict(row)
        d["rescan"] = json.loads(d["rescan"]) if d["rescan"] else []
        d["precheck"] = json.loads(d["precheck"]) if d["precheck"] else []
        return cls(**d)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "state": self.state, "court": self.court, "case_number": self.case_number,
            "document_type": self.document_type, "deadline": self.deadline, "office": self.office,
            "created_at": _iso(self.created_at), "sent_at": _iso(self.sent_at), "pages": self.pages,
            "bytes": self.bytes, "attempts": self.attempts, "batch": self.batch_id, "server_status": self.server_status,
            "message": self.message, "last_error": self.last_error, "rescan": self.rescan, "precheck": self.precheck,
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")




def new_filing_id(now: float | None = None) -> str:
    """A local id the operator can read out: date-time of queuing plus a random tail (20261201-153012-4f9a1c)."""
    t = datetime.fromtimestamp(now or time.time())
    return f"{t:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Outbox:
    def __init__(self, home: Path):
        self.home = Path(home)
        self._lock = threading.RLock()  # one connection shared by the sender's threads: one transaction at a time
        self.files_dir = self.home / "files"
        self.checks_dir = self.home / "checks"
        try:
            fresh = not self.files_dir.is_dir()
            self.files_dir.mkdir(parents=True, exist_ok=True)
            self.checks_dir.mkdir(parents=True, exist_ok=True)
            if fresh:
                fsync_dir(self.home)  # the new folders' entries are durable before any filing is
            self.db = sqlite3.connect(self.home / "outbox.db", timeout=30.0, isolation_level=None,
                                      check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the operator sees an id
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('station_id', ?)", (secrets.token_hex(8),))
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"the outbox {self.home} cannot be opened: {exc}") from None
        self.station_id = self.db.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _rows(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def idempotency_key(self, filing_id: str) -> str:
        """The API's Idempotency-Key of a filing: this outbox's id and the filing's local id."""
        return f"station-{self.station_id}-{filing_id}"

    # --- queuing ------------------------------------------------------------------------------------
    def add(self, files: list[QueuedFile], *, court: str, case_number: str, document_type: str,
            deadline: str | None, office: str = "", source: str | None = None) -> Filing:
        """Copy the files durably and record the filing; returns only once both are on disk."""
        now = time.time()
        fid = new_filing_id(now)
        tmp_dir = self.files_dir / f".tmp-{fid}"
        final_dir = self.files_dir / fid
        rows = []
        try:
            tmp_dir.mkdir()
            for pos, f in enumerate(files, start=1):
                rel = Path("files") / fid / f"{pos:02d}-{_safe_name(f.name)}"
                write_synced(tmp_dir / rel.name, f.data)
                rows.append((fid, pos, f.name, str(rel), hashlib.sha256(f.data).hexdigest(), len(f.data), f.kind, f.pages))
            fsync_dir(tmp_dir)
            os.rename(tmp_dir, final_dir)
            fsync_dir(self.files_dir)
            with self._tx() as db:
                db.execute(
                    "INSERT INTO filings (id, created_at, court, case_number, document_type, deadline, office, source,"
                    " state, pages, bytes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (fid, now, court, case_number, document_type, deadline, office, source,
                     sum(f.pages for f in files), sum(len(f.data) for f in files), now))
                db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except (OSError, sqlite3.Error) as exc:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if not self._exists(fid):
                shutil.rmtree(final_dir, ignore_errors=True)
            if isinstance(exc, sqlite3.IntegrityError) and source is not None:
                raise AlreadyQueued(f"this folder was already queued ({source})") from None
            raise OutboxError(f"the filing could not be queued in {self.home}: {exc}") from None
        return self.get(fid)

    def _exists(self, fid: str) -> bool:
        try:
            return bool(self._rows("SELECT 1 FROM filings WHERE id = ?", (fid,)))
        except sqlite3.Error:
            return False

    def by_source(self, source: str) -> Filing | None:
        rows = self._rows("SELECT * FROM filings WHERE source = ?", (source,))
        return Filing.from_row(rows[0]) if rows else None

    def set_precheck(self, fid: str, verdicts: list[dict]) -> None:
        with self._tx() as db:
            db.execute("UPDATE filings SET precheck = ?, updated_at = ? WHERE id = ?",
                       (json.dumps(verdicts, ensure_ascii=False), time.time(), fid))

    def remove_orphans(self, older_than_s: float = 3600.0) -> int:
        """Delete copies left by a queuing that was cut off before its row was committed."""
        removed = 0
        cutoff = time.time() - older_than_s
        known = {r[0] for r in self._rows("SELECT id FROM filings")}
        for d in self.files_dir.iterdir():
            name = d.name[5:] if d.name.startswith(".tmp-") else d.name
            if name not in known and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    # --- reading --------------------------------------------------------------------------------------
    def get(self, fid: str) -> Filing:
        rows = self._rows("SELECT * FROM filings WHERE id = ?", (fid,))
        if not rows:
            raise LookupError(fid)
        return Filing.from_row(rows[0])

    def files(self, fid: str) -> list[StoredFile]:
        return [StoredFile(r["position"], r["name"], self.home / r["path"], r["sha256"], r["size"], r["kind"], r["pages"])
                for r in self._rows("SELECT * FROM files WHERE filing_id = ? ORDER BY position", (fid,))]

    _ORDER = "ORDER BY deadline IS NULL, deadline, created_at, id"

    def all(self) -> list[Filing]:
        return [Filing.from_row(r) for r in self._rows(f"SELECT * FROM filings {self._ORDER}")]

    def in_states(self, *states: str) -> list[Filing]:
        marks = ",".join("?" * len(states))
        return [Filing.from_row(r) for r in self._rows(f"SELECT * FROM filings WHERE state IN ({marks}) {self._ORDER}",
                                                       states)]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._rows("SELECT state, count(*) FROM filings GROUP BY state")}

    def next_try_at(self) -> float | None:
        return self._rows("SELECT min(next_try_at) FROM filings WHERE state = 'queued'")[0][0]

    # --- sending -------------------------------------------------------------------------------------
    def claim_next(self, now: float | None = None) -> Filing | None:
        """The due queued filing with the nearest deadline, marked `sending` (only the lock holder calls this)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(f"SELECT * FROM filings WHERE state = 'queued' AND next_try_at <= ? {self._ORDER} LIMIT 1",
                             (now,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE filings SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                       (now, row["id"]))
        return self.get(row["id"])

    def retry_later(self, fid: str, error: str, next_try_at: float, *, count: bool = True) -> None:
        with self._tx() as db:
            db.execute("UPDATE filings SET state = 'queued', last_error = ?, next_try_at = ?, updated_at = ?"
                       + ("" if count else ", attempts = max(attempts - 1, 0)") + " WHERE id = ? AND state = 'sending'",
                       (error, next_try_at, time.time(), fid))

    def mark_accepted(self, fid: str, batch_id: str, server_status: str | None = None) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE filings SET state = 'accepted', batch_id = ?, server_status = ?, last_error = NULL,"
                       " sent_at = ?, updated_at = ? WHERE id = ?", (batch_id, server_status or "received", now, now, fid))

    def mark_rejected(self, fid: str, message: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE filings SET state = 'rejected', message = ?, updated_at = ? WHERE id = ?",
                       (message, time.time(), fid))

    def update_from_server(self, fid: str, state: str, server_status: str, rescan: list,
                           message: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE filings SET state = ?, server_status = ?, rescan = ?, message = coalesce(?, message),"
                       " updated_at = ? WHERE id = ?",
                       (state, server_status, json.dumps(rescan, ensure_ascii=False), message, time.time(), fid))

    def cancel(self, fid: str) -> bool:
        """Withdraw a filing that has not been sent yet; False when it is already with the server."""
        with self._tx() as db:
            res = db.execute("UPDATE filings SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'queued'",
                             (time.time(), fid))
        return res.rowcount == 1

    def recover(self) -> int:
        """Filings a killed sender left in `sending` go back to the queue (call with the sender lock held)."""
        with self._tx() as db:
            return db.execute("UPDATE filings SET state = 'queued', next_try_at = 0 WHERE state = 'sending'").rowcount

    @contextlib.contextmanager
    def sender_lock(self) -> Iterator[None]:
        """One sender per outbox (an OS lock: released by the kernel if the sender is killed)."""
        path = self.home / "sender.lock"
        fh = open(path, "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                other = fh.read().strip() or "?"
                raise SenderBusy(f"another sender (process {other}) is already delivering the outbox {self.home}") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            self.recover()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()  # still holding the lock: nobody is sending any more
                fh.flush()
        finally:
            fh.close()

    def sender_running(self) -> bool:
        """Whether the last sender that took the lock is still alive (for display: never takes the lock itself)."""
        try:
            pid = int((self.home / "sender.lock").read_text().strip() or 0)
        except (OSError, ValueError):
            return False
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class AlreadyQueued(KhanaError):
    """This watch-folder filing is already in the outbox."""
