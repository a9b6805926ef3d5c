"""PostgreSQL as the metadata database: a batch runs end to end on it (embedded worker, same steps)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_batch_end_to_end_on_postgres(tmp_path, postgres_url):
    import io

    from PIL import Image

    from khana.settings import Settings
    from khana.bootstrap import build_runtime
    from pipeline.service import BatchMeta, KhanaService, Upload
    from storage.models import AuditEvent, Batch, Page
    from testpages import render_page
    from workers.embedded import EmbeddedWorker

    settings = Settings(home=tmp_path / "home", database_url=postgres_url)
    rt = build_runtime(settings)
    assert rt.db.engine.dialect.name == "postgresql"
    service = KhanaService(rt)
    uploads = []
    for i in range(2):
        buf = io.BytesIO()
        Image.fromarray(render_page(n_words=60, seed=10 + i).image).save(buf, format="PNG", dpi=(300, 300))
        uploads.append(Upload(f"p{i}.png", buf.getvalue()))
    sub = service.submit_batch(uploads, BatchMeta(court="court-3", office="office-1"), idempotency_key="pg-e2e-1")
    again = service.submit_batch(uploads, BatchMeta(court="court-3", office="office-1"), idempotency_key="pg-e2e-1")
    assert again.batch_id == sub.batch_id and not again.created
    worker = EmbeddedWorker(rt, processes=2)
    try:
        worker.run(sub.page_ids, {p: sub.batch_id for p in sub.page_ids})
    finally:
        worker.close()
    assert service.batch_status(sub.batch_id) == "forwarded"
    with rt.db.session() as s:
        decided = dict(s.execute(select(AuditEvent.page_id, func.count()).where(
            AuditEvent.batch_id == sub.batch_id, AuditEvent.action == "page_decided").group_by(AuditEvent.page_id)).all())
        assert decided == {pid: 1 for pid in sub.page_ids}
        assert s.get(Batch, sub.batch_id).pdf_sha256
        texts = list(s.scalars(select(Page.text).where(Page.batch_id == sub.batch_id)))
    assert all(texts)
    assert service.searchable_pdf(sub.batch_id).startswith(b"%PDF")
    rt.close()


def test_pages_decided_at_once_finalise_the_batch_exactly_once(tmp_path, postgres_url):
    """Two pages of one batch decided in two transactions at the same moment: exactly one of them
    must see the batch complete (READ COMMITTED would let both count the other as still open)."""
    import threading

    from khana.settings import Settings
    from pipeline import stages
    from khana.bootstrap import build_runtime
    from pipeline.service import BatchMeta, KhanaService, Upload

    rt = build_runtime(Settings(home=tmp_path / "home", database_url=postgres_url))
    service = KhanaService(rt)
    from conftest import png_bytes
    from testpages import render_page

    page = png_bytes(render_page(n_words=20, seed=1).image)
    for attempt in range(12):
        sub = service.submit_batch([Upload("a.png", page), Upload("b.png", page)], BatchMeta(court="c"))
        barrier = threading.Barrier(len(sub.page_ids))
        results: list[str] = []

        def decide(pid: str) -> None:
            report = stages.PageReport(file="x.png", page=1)
            report.hold([])
            barrier.wait()
            results.append(stages._decide(rt, pid, "pending", report, {}, "test"))

        threads = [threading.Thread(target=decide, args=(pid,)) for pid in sub.page_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["done", "finalise"], f"attempt {attempt}: {results}"
    rt.close()
