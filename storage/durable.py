"""Durable local writes: a file is written beside its final name, fsync'd and renamed into place, and the
folder is fsync'd so the rename itself survives a power cut. Used by the local object store and by the
station's outbox (nothing is acknowledged before its bytes are on disk)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_synced", "fsync_dir"]


def write_synced(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to a temporary file beside `path`, fsync it and rename it into place (the folder's
    entry is made durable by `fsync_dir` of the parent, once for several files). `durable=False`: the
    same atomic rename without the fsync (a scratch workspace thrown away after the run)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """Make the entries of folder `path` (files renamed or created in it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
