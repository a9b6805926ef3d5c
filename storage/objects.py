"""Object storage: the interface, and the local-filesystem backend of the embedded default.

Objects live in buckets under keys, like S3/MinIO. Every object's SHA-256 is
computed on write, returned to the caller (who records it in the metadata
database) and verified on read, so a corrupted or tampered object is never
served silently.

Buckets used by Khana (see `BUCKETS`): originals (what stations uploaded),
pages (processed page images and QA overlays), documents (searchable PDFs and
reports), deliveries (court deliveries with their manifests).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import KhanaError, Unavailable
from storage.durable import fsync_dir, write_synced

BUCKETS = ("originals", "pages", "documents", "deliveries")


class ObjectStoreError(KhanaError):
    """Base class of the object store's errors; catch a subclass, they call for different answers."""


class StoreUnavailable(ObjectStoreError, Unavailable):
    """The store cannot be used right now (server down or unreachable, disk full, folder unusable):
    transient, the caller may retry; an upload is refused with 503 and nothing is accepted."""

    message_fa = "انبار اسناد در دسترس نیست؛ کمی بعد دوباره تلاش کنید"


class ObjectNotFound(ObjectStoreError):
    """No object under this key (permanent: retrying does not help)."""


class DigestMismatch(ObjectStoreError):
    """An object's bytes no longer match the SHA-256 recorded when it was written (permanent)."""


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(what: str, data: bytes, want: str) -> bytes:
    """Return `data` if its SHA-256 is `want`, else raise DigestMismatch naming `what`."""
    digest = sha256_hex(data)
    if digest != want:
        raise DigestMismatch(f"{what}: sha256 {digest} != recorded {want}")
    return data


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key: {key!r}")
    return key


class ObjectStore(Protocol):
    def ensure_buckets(self) -> None: ...

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store durably (fsync'd / acknowledged by the server) before returning."""

    def get(self, bucket: str, key: str, expected_sha256: str | None = None) -> bytes:
        """Return the bytes, verifying them against `expected_sha256` (or the stored digest)."""

    def stat(self, bucket: str, key: str) -> ObjectInfo: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo: ...

    def list(self, bucket: str, prefix: str = "") -> list[str]: ...

    def url(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """A URL a clerk can download from (presigned for MinIO, file:// locally)."""


class StoreBase:
    """What every backend derives from its `stat`."""

    def stat(self, bucket: str, key: str) -> ObjectInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.stat(bucket, key)
            return True
        except ObjectNotFound:
            return False


def _unavailable(root: Path, op: str, exc: OSError) -> StoreUnavailable:
    """An OS error of the local store (not a folder, disk full, permission, read-only) as a transient outage."""
    return StoreUnavailable(f"local object store {root}: cannot {op}: {exc.strerror or exc.__class__.__name__}"
                            f"{f' ({exc.filename})' if getattr(exc, 'filename', None) else ''}")


class LocalObjectStore(StoreBase):
    """Buckets as folders, keys as paths; the digest and content type in a sidecar `.meta.json`.

    Writes go to a temporary file in the same folder, are fsync'd and renamed
    into place, so a crash never leaves a half-written object under its key.
    """

    META_SUFFIX = ".meta.json"

    def __init__(self, root: str | os.PathLike, *, durable: bool = True):
        self.root = Path(root)
        self.durable = durable  # False: no fsyncs (a scratch workspace removed after the run)

    def _path(self, bucket: str, key: str) -> Path:
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}")
        return self.root / bucket / check_key(key)

    def ensure_buckets(self) -> None:
        try:
            for b in BUCKETS:
                (self.root / b).mkdir(parents=True, exist_ok=True)
                if not os.access(self.root / b, os.W_OK | os.X_OK):
                    raise PermissionError(13, "Permission denied", str(self.root / b))
        except OSError as exc:
            raise _unavailable(self.root, "prepare its folders", exc) from exc

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        path = self._path(bucket, key)
        info = ObjectInfo(bucket, key, len(data), sha256_hex(data), content_type)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the object first, then its sidecar (an object without a sidecar does not exist for
            # stat/get), then one fsync of the folder makes both renames durable
            write_synced(path, data, durable=self.durable)
            meta = {"sha256": info.sha256, "size": info.size, "content_type": content_type}
            write_synced(path.with_name(path.name + self.META_SUFFIX), json.dumps(meta).encode(), durable=self.durable)
            if self.durable:
                fsync_dir(path.parent)
        except OSError as exc:
            raise _unavailable(self.root, f"write {bucket}/{key}", exc) from exc
        return info

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        path = self._path(bucket, key)
        meta_path = path.with_name(path.name + self.META_SUFFIX)
        try:
            if not self.root.is_dir():
                raise NotADirectoryError(20, "Not a directory", str(self.root))
            if not path.is_file() or not meta_path.is_file():
                raise ObjectNotFound(f"{bucket}/{key}")
            meta = json.loads(meta_path.read_text())
        except OSError as exc:
            raise _unavailable(self.root, f"read {bucket}/{key}", exc) from exc
        return ObjectInfo(bucket, key, meta["size"], meta["sha256"], meta["content_type"])

    def get(self, bucket: str, key: str, expected_sha256: str | None = None) -> bytes:
        info = self.stat(bucket, key)
        try:
            data = self._path(bucket, key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"{bucket}/{key}") from exc
        except OSError as exc:
            raise _unavailable(self.root, f"read {bucket}/{key}", exc) from exc
        return verify_sha256(f"{bucket}/{key}", data, expected_sha256 or info.sha256)

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink(missing_ok=True)
            path.with_name(path.name + self.META_SUFFIX).unlink(missing_ok=True)
        except OSError as exc:
            raise _unavailable(self.root, f"delete {bucket}/{key}", exc) from exc

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        info = self.stat(src_bucket, src_key)
        return self.put(dst_bucket, dst_key, self.get(src_bucket, src_key), info.content_type)

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.root / bucket
        if not base.is_dir():
            return []
        keys = []
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(self.META_SUFFIX) and not p.name.startswith(".tmp-"):
                k = p.relative_to(base).as_posix()
                if k.startswith(prefix):
                    keys.append(k)
        return sorted(keys)

    def url(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return self._path(bucket, key).resolve().as_uri()
