"""Build the configured object store."""
from __future__ import annotations

from khana.settings import Settings
from storage.objects import LocalObjectStore, ObjectStore


def make_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "minio":
        from storage.minio_store import MinioObjectStore

        return MinioObjectStore.from_settings(settings)
    return LocalObjectStore(settings.resolved_store_dir())
