"""Intake through the service layer: validation, durability before acknowledgement, idempotency."""
from __future__ import annotations

import dataclasses
import io
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from pipeline.service import BadInput, BatchMeta, KhanaService, Upload, deadline_priority
from storage.models import AuditEvent, Batch, OriginalFile, Page
from storage.objects import StoreUnavailable


def png(value: int = 255, size=(300, 400)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, "PNG")
    return buf.getvalue()


def tiff(n: int) -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("L", (100, 100), 200) for _ in range(n)]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


class Recorder:
    def __init__(self):
        self.calls = []

    def dispatch(self, batch_id, page_ids, priority):
        self.calls.append((batch_id, list(page_ids), priority))


META = BatchMeta(office="11-2301", court="tehran-civil-12", case_number="140209987654321", document_type="petition")


def counts(rt):
    with rt.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Batch, OriginalFile, Page))


def test_submit_stores_originals_records_pages_and_dispatches_by_priority(rt):
    rec = Recorder()
    svc = KhanaService(rt, rec)
    meta = BatchMeta(**{**META.__dict__, "deadline": date.today() + timedelta(days=1)})
    sub = svc.submit_batch([Upload("p1.png", png()), Upload("att.tiff", tiff(3))], meta)
    assert sub.created and len(sub.page_ids) == 4
    assert counts(rt) == (1, 2, 4)
    assert rec.calls == [(sub.batch_id, sub.page_ids, 1)]
    with rt.db.session() as s:
        files = list(s.scalars(select(OriginalFile).order_by(OriginalFile.position)))
        for f, data in zip(files, (png(), tiff(3))):
            assert rt.store.get("originals", f.object_key, f.sha256) == data
        pages = list(s.scalars(select(Page).order_by(Page.seq)))
        assert [(p.seq, p.file_page, p.status) for p in pages] == [(1, 1, "pending"), (2, 1, "pending"), (3, 2, "pending"), (4, 3, "pending")]
        assert s.scalar(select(AuditEvent.action)) == "batch_received"


def test_same_idempotency_key_returns_the_same_batch(rt):
    rec = Recorder()
    svc = KhanaService(rt, rec)
    a = svc.submit_batch([Upload("p.png", png())], META, idempotency_key="station-7:abc")
    b = svc.submit_batch([Upload("p.png", png())], META, idempotency_key="station-7:abc")
    assert b.batch_id == a.batch_id and not b.created and b.page_ids == a.page_ids
    assert counts(rt) == (1, 1, 1)
    assert len(rec.calls) == 1


def test_bad_file_refuses_the_whole_batch_and_stores_nothing(rt):
    svc = KhanaService(rt)
    with pytest.raises(BadInput, match="broken.png"):
        svc.submit_batch([Upload("ok.png", png()), Upload("broken.png", png()[:40])], META)
    assert counts(rt) == (0, 0, 0)
    assert rt.store.list("originals") == []


def test_empty_batch_and_limits(rt):
    svc = KhanaService(rt)
    with pytest.raises(BadInput, match="at least one file"):
        svc.submit_batch([], META)
    rt.config = dataclasses.replace(rt.config, max_pages_per_batch=2)
    with pytest.raises(BadInput, match="at most 2"):
        svc.submit_batch([Upload("a.tiff", tiff(3))], META)


class FailingStore:
    """A real local store that becomes unreachable after `ok` writes."""

    def __init__(self, inner, ok: int):
        self.inner, self.ok = inner, ok

    def put(self, *a, **kw):
        if self.ok <= 0:
            raise StoreUnavailable("connection refused")
        self.ok -= 1
        return self.inner.put(*a, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_store_failure_means_no_acknowledgement_and_no_records(rt):
    rt.store = FailingStore(rt.store, ok=1)
    rec = Recorder()
    with pytest.raises(StoreUnavailable):
        KhanaService(rt, rec).submit_batch([Upload("a.png", png()), Upload("b.png", png())], META)
    assert counts(rt) == (0, 0, 0)
    assert rec.calls == []
    assert rt.store.list("originals") == []  # the one original that was written is removed again


@pytest.mark.parametrize("days,prio", [(-3, 0), (0, 0), (1, 1), (3, 3), (6, 4), (10, 5), (60, 6), (None, 6)])
def test_deadline_priority(days, prio):
    today = date(2026, 11, 24)
    assert deadline_priority(None if days is None else today + timedelta(days=days), today) == prio
