"""The MinIO (S3-compatible) backend of the object store, through the `minio` client.

Same interface as `storage.objects.LocalObjectStore`:

* bucket names are ``settings.bucket_prefix`` + the logical name (``originals``,
  ``pages``, ``documents``, ``deliveries``);
* every object carries its SHA-256 in its user metadata (``x-amz-meta-sha256``),
  computed before upload, and every read is verified against the digest the
  caller recorded (or, failing that, the stored one);
* ``url()`` is a presigned GET URL a clerk can download from without credentials;
* ``copy()`` is a server-side copy (the bytes never travel through Khana);
* a server that is down, unreachable or answering 5xx raises
  `StoreUnavailable` (transient: the caller may retry), a missing object
  `ObjectNotFound`, a digest mismatch `DigestMismatch`.

HTTP calls are bounded (connect/read timeouts, a couple of quick retries), so an
unreachable store fails an upload in seconds instead of hanging it.
"""
from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from storage.minio_config import MinioConfig  # noqa: F401  (its home before; imported from here too)
from storage.objects import (BUCKETS, DigestMismatch, ObjectInfo, ObjectNotFound, StoreBase, StoreUnavailable, check_key,
                             sha256_hex, verify_sha256)

SHA_META = "sha256"  # sent as x-amz-meta-sha256
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound", "NotFound"}
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError, TimeoutError)


def _http_client(connect_timeout: float, read_timeout: float, retries: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.util.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504],
                              allowed_methods=None, raise_on_status=False),
    )


def _meta(headers: Any, name: str) -> str | None:
    """A user-metadata value from response headers / stat metadata (case-insensitive)."""
    if headers is None:
        return None
    want = f"x-amz-meta-{name}".lower()
    for k, v in headers.items():
        if k.lower() in (want, name.lower()):
            return v
    return None


class MinioObjectStore(StoreBase):
    def __init__(self, client: Minio, *, bucket_prefix: str = "khana-", presign_client: Minio | None = None):
        self.client = client
        self.presign_client = presign_client or client
        self.bucket_prefix = bucket_prefix

    @classmethod
    def from_config(cls, cfg: MinioConfig) -> "MinioObjectStore":
        client = Minio(
            cfg.endpoint,
            access_key=cfg.access_key or None,
            secret_key=cfg.secret_key or None,
            secure=cfg.secure,
            region=cfg.region,
            http_client=_http_client(5.0, 60.0, 2),
        )
        # Presigned URLs are signed for the host the clerk's browser uses, which in a
        # compose deployment differs from the internal one (minio:9000).
        presign = None
        if cfg.public_endpoint:
            secure = cfg.secure if cfg.public_secure is None else cfg.public_secure
            presign = Minio(cfg.public_endpoint, access_key=cfg.access_key or None,
                            secret_key=cfg.secret_key or None, secure=secure, region=cfg.region)
        return cls(client, bucket_prefix=cfg.bucket_prefix, presign_client=presign)

    # --- helpers --------------------------------------------------------------
    def bucket_name(self, bucket: str) -> str:
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}")
        return f"{self.bucket_prefix}{bucket}"

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(what) from exc
            raise StoreUnavailable(f"{what}: {exc.code}: {exc.message}") from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StoreUnavailable(f"{what}: {exc}") from exc
        except MinioException as exc:
            raise StoreUnavailable(f"{what}: {exc}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StoreUnavailable(f"{what}: object store unreachable ({exc.__class__.__name__}: {exc})") from exc

    # --- interface ----------------------------------------------------------------
    def ensure_buckets(self) -> None:
        for b in BUCKETS:
            name = self.bucket_name(b)
            if self._call(name, self.client.bucket_exists, name):
                continue
            try:
                self._call(name, self.client.make_bucket, name)
            except StoreUnavailable as exc:  # another process created it meanwhile
                if not self._call(name, self.client.bucket_exists, name):
                    raise exc

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        name = self.bucket_name(bucket)
        check_key(key)
        digest = sha256_hex(data)
        what = f"{name}/{key}"
        result = self._call(what, self.client.put_object, name, key, io.BytesIO(data), len(data),
                            content_type=content_type, metadata={SHA_META: digest})
        etag = (getattr(result, "etag", None) or "").strip('"')
        if etag and "-" not in etag and len(etag) == 32 and etag != hashlib.md5(data).hexdigest():
            raise StoreUnavailable(f"{what}: the server stored different bytes (ETag {etag})")
        return ObjectInfo(bucket, key, len(data), digest, content_type)

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        name = self.bucket_name(bucket)
        check_key(key)
        st = self._call(f"{name}/{key}", self.client.stat_object, name, key)
        digest = _meta(st.metadata, SHA_META)
        if not digest:
            raise DigestMismatch(f"{name}/{key}: no sha256 recorded with the object")
        return ObjectInfo(bucket, key, int(st.size or 0), digest, st.content_type or "application/octet-stream")

    def get(self, bucket: str, key: str, expected_sha256: str | None = None) -> bytes:
        name = self.bucket_name(bucket)
        check_key(key)
        what = f"{name}/{key}"

        def _read():
            resp = self.client.get_object(name, key)
            try:
                return resp.read(), _meta(resp.headers, SHA_META)
            finally:
                resp.close()
                resp.release_conn()

        data, stored = self._call(what, _read)
        want = expected_sha256 or stored
        if not want:
            raise DigestMismatch(f"{what}: no sha256 recorded with the object")
        return verify_sha256(what, data, want)

    def delete(self, bucket: str, key: str) -> None:
        name = self.bucket_name(bucket)
        check_key(key)
        try:
            self._call(f"{name}/{key}", self.client.remove_object, name, key)
        except ObjectNotFound:
            pass

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        src = self.stat(src_bucket, src_key)  # also: the source must carry its digest
        dst_name = self.bucket_name(dst_bucket)
        check_key(dst_key)
        self._call(f"{dst_name}/{dst_key}", self.client.copy_object, dst_name, dst_key,
                   CopySource(self.bucket_name(src_bucket), src_key))
        info = self.stat(dst_bucket, dst_key)
        if info.sha256 != src.sha256 or info.size != src.size:
            raise DigestMismatch(f"{dst_name}/{dst_key}: server-side copy lost the digest or bytes")
        return info

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        name = self.bucket_name(bucket)
        objs = self._call(name, lambda: list(self.client.list_objects(name, prefix=prefix or None, recursive=True)))
        return sorted(o.object_name for o in objs if not o.is_dir)

    def url(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        name = self.bucket_name(bucket)
        check_key(key)
        return self._call(f"{name}/{key}", self.presign_client.presigned_get_object, name, key,
                          expires=timedelta(seconds=max(1, min(int(expires_s), 7 * 24 * 3600))))
