"""Build the configured object store from explicit values (the entry point read the settings)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from storage.objects import LocalObjectStore, ObjectStore


def make_object_store(kind: Literal["local", "minio"], *, local_root: Path | None = None, minio=None,
                      durable: bool = True) -> ObjectStore:
    """`kind` "local": a folder store at `local_root` (`durable=False`: no fsyncs, for a scratch workspace);
    "minio": `minio` is a `storage.minio_store.MinioConfig`."""
    if kind == "minio":
        from storage.minio_store import MinioObjectStore

        if minio is None:
            raise ValueError("the MinIO object store needs its configuration")
        return MinioObjectStore.from_config(minio)
    if local_root is None:
        raise ValueError("the local object store needs its folder")
    return LocalObjectStore(local_root, durable=durable)
