"""The sweeper re-drives what a lost message or an outage left behind."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from fixtures_services import REPO, KhanaStack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def stack(tmp_path, redis_url):
    st = KhanaStack(tmp_path, redis_url=redis_url)
    yield st
    st.close()


def _events(stack, action: str, batch_id: str) -> int:
    from storage.models import AuditEvent

    with stack.rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.batch_id == batch_id, AuditEvent.action == action))


def test_broker_down_at_upload_batch_accepted_then_sweeper_redrives(stack):
    from workers.celery_app import make_celery
    from workers.dispatch import CeleryDispatcher

    dead = stack.settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    stack.service.dispatcher = CeleryDispatcher(make_celery(dead))
    t0 = time.monotonic()
    sub = stack.submit(2)  # accepted: originals and records are durable; publishing failed
    assert sub.created and time.monotonic() - t0 < 60
    assert stack.batch_status(sub.batch_id) in ("received", "processing")
    stack.worker("quality,ocr,assemble", concurrency=2, name="all")
    r = subprocess.run([sys.executable, "-m", "khana.cli", "sweeper", "--once", "--stuck-after", "0", "--no-migrate"],
                       cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert set(sub.page_ids) <= set(__import__("json").loads(r.stdout.strip().splitlines()[-1])["redriven"])
    assert stack.wait_final(sub.batch_id, timeout=120) == "forwarded"
    assert sorted(stack.decided_counts(sub.batch_id).values()) == [1, 1]
    assert _events(stack, "page_redriven", sub.batch_id) == 2


def test_lost_finalise_message_is_redriven(stack):
    from fixtures_services import wait_for
    from workers.sweeper import sweep

    w = stack.worker("quality,ocr", concurrency=2, name="pages")
    sub = stack.submit(2)
    wait_for(lambda: sum(stack.decided_counts(sub.batch_id).values()) == 2, 120, what="pages decided")
    w.stop()
    stack.purge_queues()  # the finalise message is lost
    assert stack.batch_status(sub.batch_id) in ("received", "processing")
    res = sweep(stack.rt, stack.dispatcher, stuck_after_s=0)
    assert res.finalised == [sub.batch_id] and res.redriven == []
    stack.worker("assemble", name="asm")
    assert stack.wait_final(sub.batch_id, timeout=60) == "forwarded"
    assert sweep(stack.rt, stack.dispatcher, stuck_after_s=0).finalised == []  # nothing left to do


def test_sweeper_gives_up_on_a_page_after_max_redrives(stack):
    from workers.sweeper import sweep

    class Recorder:
        def __init__(self):
            self.calls = []

        def redrive(self, page_id, status, priority):
            self.calls.append((page_id, status, priority))
            return True

        def finalise(self, batch_id, priority):
            return True

    stack.service.dispatcher = None
    sub = stack.submit(1)
    rec = Recorder()
    for _ in range(3):
        time.sleep(0.01)
        sweep(stack.rt, rec, stuck_after_s=0, max_redrives=2)
    assert [c[0] for c in rec.calls] == [sub.page_ids[0]] * 2
    assert rec.calls[0][1:] == ("pending", 6)
    assert _events(stack, "page_stuck", sub.batch_id) == 1
    # a fresh page is not touched before the timeout
    sub2 = stack.submit(1, seed=5)
    assert sub2.page_ids[0] not in sweep(stack.rt, rec, stuck_after_s=3600).redriven
