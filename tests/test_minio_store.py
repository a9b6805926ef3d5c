"""The MinIO backend against a real S3-compatible HTTP server (moto), through the real `minio` client."""
from __future__ import annotations

import socket
import urllib.request
import uuid

import pytest

from storage.objects import BUCKETS, DigestMismatch, ObjectNotFound, StoreUnavailable

pytestmark = pytest.mark.services


def _settings(endpoint: str, prefix: str, **kw):
    from khana.settings import Settings

    return Settings(object_store="minio", minio_endpoint=endpoint, minio_access_key="khana-test",
                    minio_secret_key="khana-test-secret", bucket_prefix=prefix, **kw)


@pytest.fixture
def store(s3_server):
    from storage.factory import make_object_store

    st = make_object_store("minio", minio=_settings(s3_server.endpoint, f"t{uuid.uuid4().hex[:8]}-").minio_config())
    st.ensure_buckets()
    return st


def test_factory_builds_minio_store_and_buckets_exist(store):
    from storage.minio_store import MinioObjectStore

    assert isinstance(store, MinioObjectStore)
    for b in BUCKETS:
        assert store.client.bucket_exists(store.bucket_name(b))
    store.ensure_buckets()  # idempotent


def test_put_get_stat_list_delete_roundtrip(store):
    data = "صفحه‌ی نخست پرونده".encode() * 1000
    info = store.put("originals", "b1/001-scan.png", data, "image/png")
    assert info.size == len(data) and len(info.sha256) == 64
    st = store.stat("originals", "b1/001-scan.png")
    assert (st.sha256, st.size, st.content_type) == (info.sha256, len(data), "image/png")
    # the digest travels with the object as user metadata
    raw = store.client.stat_object(store.bucket_name("originals"), "b1/001-scan.png")
    assert raw.metadata.get("x-amz-meta-sha256") == info.sha256
    assert store.get("originals", "b1/001-scan.png") == data
    assert store.get("originals", "b1/001-scan.png", info.sha256) == data
    store.put("originals", "b1/002-scan.png", b"x")
    store.put("originals", "b2/001-scan.png", b"y")
    assert store.list("originals", "b1/") == ["b1/001-scan.png", "b1/002-scan.png"]
    assert store.exists("originals", "b2/001-scan.png")
    store.delete("originals", "b2/001-scan.png")
    assert not store.exists("originals", "b2/001-scan.png")
    store.delete("originals", "b2/001-scan.png")  # deleting a missing object is fine
    with pytest.raises(ObjectNotFound):
        store.get("originals", "b2/001-scan.png")


def test_large_object_multipart(store):
    data = bytes(range(256)) * (12 * 1024 * 1024 // 256)  # 12 MiB
    info = store.put("documents", "big/filing.pdf", data, "application/pdf")
    assert store.get("documents", "big/filing.pdf", info.sha256) == data


def test_read_verifies_sha256(store):
    info = store.put("pages", "b/p1/corrected.png", b"good bytes", "image/png")
    with pytest.raises(DigestMismatch):
        store.get("pages", "b/p1/corrected.png", expected_sha256="0" * 64)
    # tamper with the object behind Khana's back (same metadata, other bytes)
    import io

    store.client.put_object(store.bucket_name("pages"), "b/p1/corrected.png", io.BytesIO(b"evil bytes"), 10,
                            metadata={"sha256": info.sha256})
    with pytest.raises(DigestMismatch):
        store.get("pages", "b/p1/corrected.png")
    # an object written without a digest is never served unverified
    store.client.put_object(store.bucket_name("pages"), "b/p1/nodigest.png", io.BytesIO(b"abc"), 3)
    with pytest.raises(DigestMismatch):
        store.get("pages", "b/p1/nodigest.png")


def test_server_side_copy_keeps_digest(store):
    info = store.put("documents", "b/filing.pdf", b"%PDF-1.7 ...", "application/pdf")
    copied = store.copy("documents", "b/filing.pdf", "deliveries", "court-7/b/filing.pdf")
    assert copied.sha256 == info.sha256
    assert store.get("deliveries", "court-7/b/filing.pdf", info.sha256) == b"%PDF-1.7 ..."


def test_presigned_url_downloads_without_credentials(store):
    data = "رای دادگاه".encode()
    store.put("documents", "b/report.json", data, "application/json")
    url = store.url("documents", "b/report.json", expires_s=600)
    assert "X-Amz-Signature" in url and "X-Amz-Expires=600" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data


def test_bad_bucket_and_key_rejected(store):
    with pytest.raises(ValueError):
        store.put("elsewhere", "k", b"x")
    with pytest.raises(ValueError):
        store.put("pages", "../escape", b"x")


def test_unreachable_store_raises_objectstoreerror_quickly():
    import time

    from storage.factory import make_object_store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    st = make_object_store("minio", minio=_settings(f"127.0.0.1:{port}", "khana-").minio_config())
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable) as exc:
        st.put("originals", "b/x.png", b"x")
    assert not isinstance(exc.value, (ObjectNotFound, DigestMismatch))
    assert time.monotonic() - t0 < 15
    with pytest.raises(StoreUnavailable):
        st.get("originals", "b/x.png")
