"""The local object store: atomic durable writes, SHA-256 recorded and verified, safe keys."""
from __future__ import annotations

import pytest

from storage.objects import DigestMismatch, LocalObjectStore, ObjectNotFound, sha256_hex


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
    with pytest.raises(DigestMismatch):
        store.get("pages", "p/corrected.png")
    with pytest.raises(DigestMismatch):
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


@pytest.mark.parametrize("breakage", ["root_is_a_file", "bucket_is_a_file"])
def test_os_errors_are_the_store_being_unavailable(tmp_path, breakage):
    """A broken local store (not a folder, unwritable, ...) is 'unavailable, retry', not a crash or 'not found'."""
    from storage.objects import StoreUnavailable

    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    store.ensure_buckets()
    store.put("pages", "a/b.png", b"x")
    if breakage == "root_is_a_file":
        import shutil

        shutil.rmtree(root)
        root.write_bytes(b"not a folder")
    else:
        import shutil

        shutil.rmtree(root / "originals")
        (root / "originals").write_bytes(b"")
    with pytest.raises(StoreUnavailable) as exc:
        store.put("originals", "k/file.png", b"data")
    assert "cannot" in str(exc.value) and exc.value.exit_code == 6
    with pytest.raises(StoreUnavailable):
        store.ensure_buckets()
    if breakage == "root_is_a_file":
        with pytest.raises(StoreUnavailable):
            store.get("pages", "a/b.png")


@pytest.mark.parametrize("durable", [True, False])
def test_fsyncs_only_when_durable(tmp_path, monkeypatch, durable):
    """The service's store fsyncs every object and its folder; `khana process`'s scratch workspace
    (removed after the run) does not, and still renames atomically."""
    import os

    from storage.database import Database

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    s = LocalObjectStore(tmp_path / "objects", durable=durable)
    s.ensure_buckets()
    s.put("originals", "b/1.png", b"x" * 100)
    assert s.get("originals", "b/1.png") == b"x" * 100
    assert (len(synced) >= 3) if durable else (synced == [])
    db = Database(f"sqlite:///{tmp_path}/k.db", durable=durable)
    with db.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == (2 if durable else 0)
