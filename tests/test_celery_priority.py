"""Filings with a near legal deadline go first: Redis really honours the priorities.

Kombu's Redis transport keeps one list per priority step and BRPOPs them in
ascending order, so priority 0 (deadline today) is served before 6 (no deadline).
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from fixtures_services import KhanaStack

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_priority_mapping_is_deadline_first():
    from pipeline.service import deadline_priority

    today = date(2026, 3, 1)
    assert deadline_priority(today, today) == 0
    assert deadline_priority(today + timedelta(days=1), today) < deadline_priority(today + timedelta(days=10), today)
    assert deadline_priority(None, today) > deadline_priority(today + timedelta(days=7), today)


def test_celery_config_for_redis_priorities():
    from khana.settings import Settings
    from workers.celery_app import make_celery

    app = make_celery(Settings(broker_url="redis://127.0.0.1:1/0"))
    opts = app.conf.broker_transport_options
    assert opts["priority_steps"] == list(range(10)) and opts["queue_order_strategy"] == "priority"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert {q.name for q in app.conf.task_queues} == {"quality", "ocr", "assemble"}


@pytest.fixture
def stack(tmp_path, redis_url):
    st = KhanaStack(tmp_path, redis_url=redis_url)
    yield st
    st.close()


def test_urgent_filing_overtakes_queued_ordinary_ones(stack):
    import redis as redis_lib
    from sqlalchemy import select

    from storage.models import Page

    # ordinary filings queued first, then one due today; no worker is running yet
    ordinary = [stack.submit(2, seed=20 + 2 * i, n_words=60) for i in range(2)]
    urgent = stack.submit(2, seed=40, n_words=60, deadline=date.today())
    assert urgent.priority == 0 and all(o.priority == 6 for o in ordinary)

    # the messages sit in per-priority Redis lists: "quality" (0) and "quality:6"
    prefix = stack.settings.broker_key_prefix
    r = redis_lib.Redis.from_url(stack.env["KHANA_BROKER_URL"])
    assert r.llen(f"{prefix}quality") == 2
    assert r.llen(f"{prefix}quality:6") == 4

    # one quality worker process, taking one message at a time
    stack.worker("quality", concurrency=1, name="prio")

    def order():
        with stack.rt.db.session() as s:
            rows = list(s.execute(select(Page.id, Page.updated_at).where(Page.status != "pending")))
        return [pid for pid, _ in sorted(rows, key=lambda r: r[1])]

    from fixtures_services import wait_for

    done = wait_for(lambda: (lambda o: o if len(o) == 6 else None)(order()), 120, what="6 pages through quality")
    assert set(done[:2]) == set(urgent.page_ids), "the urgent filing's pages were not processed first"
    # OCR messages inherit the batch priority
    assert r.llen(f"{prefix}ocr") == 2 and r.llen(f"{prefix}ocr:6") == 4
    r.close()
