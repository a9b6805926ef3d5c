"""More faults with real parts and the SHIPPED timings (issue 11): a Celery worker killed in the quality stage
and during finalise/delivery, the object store failing during processing and during finalise, the database
down when an upload arrives. Every accepted page is decided exactly once; nothing is lost or delivered twice.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from fixtures_services import REPO, KhanaStack, PostgresCluster, S3Server, make_postgres_db, port_open, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(900)]


def _sweeper(st: KhanaStack, tmp_path):
    return subprocess.Popen([sys.executable, "-m", "khana.cli", "sweeper", "--no-migrate"], cwd=REPO, env=st.env,
                            stdout=open(tmp_path / "sweeper.log", "ab"), stderr=subprocess.STDOUT)


def _count(st: KhanaStack, model, **where) -> int:
    with st.rt.db.session() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


@pytest.fixture
def stack(tmp_path, redis_url, postgres_url, s3_server):
    st = KhanaStack(tmp_path, redis_url=redis_url, database_url=postgres_url, s3_endpoint=s3_server.endpoint)
    sw = _sweeper(st, tmp_path)
    yield st
    sw.terminate()
    sw.wait(20)
    st.close()


def test_quality_worker_killed_mid_stage_pages_come_back(stack):
    from core.status import PageStatus
    from storage.models import Page

    light = stack.worker("quality,assemble", name="light1")
    stack.worker("ocr", name="ocr")
    sub = stack.submit(3, n_words=120)

    def leased_in_quality():
        with stack.rt.db.session() as s:
            return s.scalar(select(Page.id).where(Page.batch_id == sub.batch_id, Page.status == PageStatus.pending,
                                                  Page.lease_until.is_not(None)))

    wait_for(leased_in_quality, 120, interval=0.02, what="a page in the quality stage")
    light.kill()
    killed = time.monotonic()
    stack.worker("quality,assemble", name="light2")
    assert stack.wait_final(sub.batch_id, timeout=240) == "forwarded"
    assert sorted(stack.decided_counts(sub.batch_id).values()) == [1, 1, 1]
    assert time.monotonic() - killed < 150


def test_worker_killed_during_finalise_delivers_once(stack):
    from storage.models import AuditEvent, Delivery

    light = stack.worker("quality,assemble", name="light1")
    stack.worker("ocr", name="ocr")
    sub = stack.submit(2, n_words=60)
    wait_for(lambda: "Task khana.finalise[" in light.log(), 240, interval=0.02, what="the finalise task received")
    light.kill()
    killed = time.monotonic()
    stack.worker("quality,assemble", name="light2")
    assert stack.wait_final(sub.batch_id, timeout=240) == "forwarded"
    assert time.monotonic() - killed < 150
    assert sorted(stack.decided_counts(sub.batch_id).values()) == [1, 1]
    assert _count(stack, Delivery, batch_id=sub.batch_id) == 1
    assert _count(stack, AuditEvent, batch_id=sub.batch_id, action="batch_forwarded") == 1


def test_object_store_down_during_processing_and_finalise_then_back(tmp_path, redis_url, postgres_url):
    """The S3 server stops while pages are being processed and stays down past their decisions (finalise
    fails too); the steps retry, nothing is parked for an outage, and the filing is forwarded once it is back."""
    from storage.models import AuditEvent

    s3 = S3Server().start()
    st = KhanaStack(tmp_path, redis_url=redis_url, database_url=postgres_url, s3_endpoint=s3.endpoint)
    sw = _sweeper(st, tmp_path)
    try:
        st.worker("quality,assemble", name="light")
        st.worker("ocr", name="ocr")
        sub = st.submit(3, n_words=80)
        wait_for(lambda: sum(st.decided_counts(sub.batch_id).values()) >= 1, 240, what="first page decided")
        s3.server.stop()
        time.sleep(20)  # processing and (for the decided pages) finalise meet a dead store
        assert st.batch_status(sub.batch_id) in ("received", "processing")
        s3.server.start()
        wait_for(lambda: port_open("127.0.0.1", s3.port), 15)
        assert st.wait_final(sub.batch_id, timeout=300) == "forwarded"
        assert sorted(st.decided_counts(sub.batch_id).values()) == [1, 1, 1]
        for action in ("page_parked", "batch_parked"):  # an outage is nobody's fault
            assert _count(st, AuditEvent, batch_id=sub.batch_id, action=action) == 0
    finally:
        sw.terminate()
        sw.wait(20)
        st.close()
        s3.stop()


def test_database_down_at_upload_is_503_and_nothing_accepted(tmp_path, s3_server):
    import io

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from api.app import create_app
    from khana.bootstrap import build_runtime
    from khana.settings import Settings
    from storage.models import Batch

    class Recorder:
        def __init__(self):
            self.calls = []

        def dispatch(self, *a):
            self.calls.append(a)

    buf = io.BytesIO()
    Image.fromarray(np.full((877, 620), 255, np.uint8)).save(buf, "PNG")
    form = {"court": "tehran-civil-12", "document_type": "petition"}
    pg = PostgresCluster().start()
    try:
        url = make_postgres_db(pg.server_url)
        settings = Settings(home=tmp_path / "home", database_url=url, object_store="minio",
                            minio_endpoint=s3_server.endpoint, minio_access_key="khana-test",
                            minio_secret_key="khana-test-secret", bucket_prefix="dbdown-")
        rt = build_runtime(settings)
        rec = Recorder()
        from pipeline.accounts import Accounts

        _tid, tok = Accounts(rt.db).create_token("station", office="11-2301")
        with TestClient(create_app(rt, rec, settings=settings), headers={"Authorization": f"Bearer {tok}"}) as c:
            pg.stop("immediate")
            r = c.post("/api/v1/batches", data=form, files=[("files", ("p.png", buf.getvalue(), "image/png"))],
                       headers={"Idempotency-Key": "k1"})
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert "پایگاه داده" in r.json()["detail"] and "database is unavailable" in r.json()["detail"]
            r = c.post("/api/v1/batches", data=form, files=[("files", ("p.png", buf.getvalue(), "image/png"))])
            assert r.status_code == 503, r.text  # without an idempotency key: the record fails after the store
            assert rt.store.list("originals") == []  # the original stored first was removed again
            assert rec.calls == []
            pg.start()
            rt.db.dispose()
            with rt.db.session() as s:
                assert s.scalar(select(func.count()).select_from(Batch)) == 0
            r = c.post("/api/v1/batches", data=form, files=[("files", ("p.png", buf.getvalue(), "image/png"))],
                       headers={"Idempotency-Key": "k1"})
            assert r.status_code == 202 and len(rec.calls) == 1
        rt.close()
    finally:
        pg.close()
