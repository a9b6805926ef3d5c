"""The local object store: atomic durable writes, SHA-256 recorded and verified, safe keys."""
from __future__ import annotations

import pytest

from storage.objects import IntegrityError, LocalObjectStore, ObjectNotFound, sha256_hex


@pytest.fixture
def store(tmp_path):
    s = LocalObjectStore(tmp_path / "objects")
    s.ensure_buckets()
    return s


def test_put_get_stat_list_copy_delete(store):
    info = store.put("originals", "b1/001-scan.png", b"abc", "image/png")
    assert info.sha256 == sha256_hex(b"abc") and info.size == 3
    assert store.get("originals", "b1/001-scan.png") == b"abc"
    assert store.stat("originals", "b1/001-scan.png").content_type == "image/png"
    assert store.list("originals") == ["b1/001-scan.png"]
    store.copy("originals", "b1/001-scan.png", "deliveries", "court-1/b1/scan.png")
    assert store.get("deliveries", "court-1/b1/scan.png", info.sha256) == b"abc"
    store.delete("originals", "b1/001-scan.png")
    assert not store.exists("originals", "b1/001-scan.png")
    with pytest.raises(ObjectNotFound):
        store.get("originals", "b1/001-scan.png")


def test_tampered_object_is_detected(store):
    store.put("pages", "p/corrected.png", b"original bytes")
    (store.root / "pages" / "p" / "corrected.png").write_bytes(b"tampered bytes")
    with pytest.raises(IntegrityError):
        store.get("pages", "p/corrected.png")
    with pytest.raises(IntegrityError):
        store.get("pages", "p/corrected.png", expected_sha256=sha256_hex(b"other"))


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        store.put("pages", key, b"x")


def test_unknown_bucket_is_refused(store):
    with pytest.raises(ValueError):
        store.put("nope", "k", b"x")


def test_no_temporary_files_left_behind(store):
    for i in range(5):
        store.put("documents", f"d/{i}.pdf", b"%PDF" * 100)
    leftovers = [p for p in (store.root / "documents").rglob(".tmp-*")]
    assert leftovers == []
