"""PostgreSQL as the metadata database: a batch runs end to end on it (embedded worker, same steps)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_batch_end_to_end_on_postgres(tmp_path, postgres_url):
    import io

    from PIL import Image

    from khana.settings import Settings
    from pipeline.runtime import Runtime
    from pipeline.service import BatchMeta, KhanaService, Upload
    from storage.models import AuditEvent, Batch, Page
    from testpages import render_page
    from workers.embedded import EmbeddedWorker

    settings = Settings(home=tmp_path / "home", database_url=postgres_url)
    rt = Runtime.from_settings(settings)
    assert rt.db.engine.dialect.name == "postgresql"
    service = KhanaService(rt)
    uploads = []
    for i in range(2):
        buf = io.BytesIO()
        Image.fromarray(render_page(n_words=60, seed=10 + i).image).save(buf, format="PNG", dpi=(300, 300))
        uploads.append(Upload(f"p{i}.png", buf.getvalue()))
    sub = service.submit_batch(uploads, BatchMeta(court="court-3", office="office-1"), idempotency_key="pg-e2e-1")
    again = service.submit_batch(uploads, BatchMeta(court="court-3"), idempotency_key="pg-e2e-1")
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
