"""Real Redis broker + real Celery worker processes run batches end to end.

The production stack: PostgreSQL metadata, S3 (moto over HTTP, real `minio` client),
Redis broker, separate quality and OCR worker processes. A second case runs the
same task code on the embedded stores (SQLite file + local object store).
"""
from __future__ import annotations

import json

import pytest

from fixtures_services import KhanaStack

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def prod_stack(tmp_path, redis_url, postgres_url, s3_server):
    stack = KhanaStack(tmp_path, redis_url=redis_url, database_url=postgres_url, s3_endpoint=s3_server.endpoint)
    yield stack
    stack.close()


@pytest.fixture
def embedded_stores_stack(tmp_path, redis_url):
    stack = KhanaStack(tmp_path, redis_url=redis_url)
    yield stack
    stack.close()


def _check_forwarded(stack: KhanaStack, sub) -> None:
    from sqlalchemy import select

    from storage.models import Batch, Delivery, Page

    counts = stack.decided_counts(sub.batch_id)
    assert counts and all(n == 1 for n in counts.values()), counts
    with stack.rt.db.session() as s:
        batch = s.get(Batch, sub.batch_id)
        pages = list(s.scalars(select(Page).where(Page.batch_id == sub.batch_id)))
        delivery = s.scalar(select(Delivery).where(Delivery.batch_id == sub.batch_id))
        assert all(p.status == "decided" and p.decision == "pass" for p in pages)
        assert batch.pdf_key and delivery is not None
        pdf_key, pdf_sha, manifest_key, manifest_sha = batch.pdf_key, batch.pdf_sha256, delivery.manifest_key, delivery.manifest_sha256
    pdf = stack.rt.store.get("documents", pdf_key, pdf_sha)
    assert pdf.startswith(b"%PDF")
    manifest = json.loads(stack.rt.store.get("deliveries", manifest_key, manifest_sha))
    for obj in manifest["objects"]:  # every delivered object is there and matches its digest
        stack.rt.store.get(obj["bucket"], obj["key"], obj["sha256"])
    # a clerk's download link works without credentials
    url = stack.rt.store.url("documents", pdf_key)
    if url.startswith("http"):
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read() == pdf


def test_batch_end_to_end_postgres_minio_redis_separate_workers(prod_stack):
    from storage.minio_store import MinioObjectStore

    assert isinstance(prod_stack.rt.store, MinioObjectStore)
    assert prod_stack.rt.db.engine.dialect.name == "postgresql"
    prod_stack.worker("quality,assemble", concurrency=1, name="light")
    prod_stack.worker("ocr", concurrency=1, name="ocr")
    sub = prod_stack.submit(3)
    assert prod_stack.wait_final(sub.batch_id, timeout=180) == "forwarded"
    _check_forwarded(prod_stack, sub)
    # the OCR worker did the OCR, the light worker the quality stage
    from sqlalchemy import select

    from storage.models import AuditEvent

    with prod_stack.rt.db.session() as s:
        actors = set(s.scalars(select(AuditEvent.actor).where(AuditEvent.batch_id == sub.batch_id,
                                                              AuditEvent.action == "page_decided")))
    assert actors and all(a.startswith("worker:ocr@") for a in actors), actors


def test_batch_end_to_end_embedded_stores(embedded_stores_stack):
    st = embedded_stores_stack
    assert st.rt.db.engine.dialect.name == "sqlite"
    st.worker("quality,ocr,assemble", concurrency=2, name="all")
    sub = st.submit(2)
    assert st.wait_final(sub.batch_id, timeout=180) == "forwarded"
    _check_forwarded(st, sub)
