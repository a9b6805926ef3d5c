"""The composition root: settings in, a ready `pipeline.runtime.Runtime` out."""
from __future__ import annotations

import functools

from khana.settings import Settings, get_settings
from ocr.engine import TesseractEngine
from pipeline.runtime import Runtime
from quality.gate import load_policy
from storage.database import Database
from storage.factory import make_object_store


def build_runtime(settings: Settings | None = None, *, migrate: bool = True) -> Runtime:
    """A runtime for one process; `migrate` brings the schema to head and creates the buckets."""
    settings = settings or get_settings()
    db = Database(settings.resolved_database_url(), durable=settings.durable)
    store = make_object_store(settings.object_store, local_root=settings.resolved_store_dir(),
                              minio=settings.minio_config(), durable=settings.durable)
    policy = load_policy(settings.gate_policy)
    engine = ocr_engine(settings)
    if migrate:
        db.migrate()
        store.ensure_buckets()
    return Runtime(settings.pipeline_config(), db, store, policy, engine,
                   rebuild=functools.partial(build_runtime, settings, migrate=False))


def ocr_engine(settings: Settings) -> TesseractEngine:
    return TesseractEngine(lang=settings.ocr_lang, timeout_s=settings.ocr_timeout_s, tesseract_cmd=settings.tesseract,
                           cache_dir=settings.cache_dir)
