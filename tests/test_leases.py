"""Per-page leases, attempts and parking, the CPU budget of a page stage, and parking a batch whose finalise
keeps failing (issue 11 items 3, 5 and 9), in process on the embedded default.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import png_bytes
from sqlalchemy import func, select, update

from core.status import BatchStatus, PageStatus
from pipeline import lease, stages
from pipeline.finalise import finalise_or_park
from pipeline.limits import PageTimeLimit, cpu_budget
from pipeline.service import BatchMeta, KhanaService, Upload
from storage.models import AuditEvent, Batch, Page
from workers.sweeper import sweep

META = BatchMeta(office="11-2301", court="tehran-civil-12", case_number="140209987654321", document_type="petition")


class Recorder:
    def __init__(self):
        self.redriven, self.finalised = [], []

    def dispatch(self, batch_id, page_ids, priority):
        pass

    def redrive(self, page_id, status, priority):
        self.redriven.append(page_id)
        return True

    def finalise(self, batch_id, priority):
        self.finalised.append(batch_id)
        return True


def _blank_png() -> bytes:
    import numpy as np

    return png_bytes(np.full((800, 600), 255, np.uint8))


@pytest.fixture
def sub(rt):
    return KhanaService(rt).submit_batch([Upload("a.png", _blank_png()), Upload("b.png", _blank_png())], META)


def _page(rt, page_id) -> Page:
    with rt.db.session() as s:
        return s.get(Page, page_id)


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite gives naive UTC back


def _events(rt, action, page_id=None, batch_id=None) -> list[AuditEvent]:
    with rt.db.session() as s:
        q = select(AuditEvent).where(AuditEvent.action == action)
        if page_id:
            q = q.where(AuditEvent.page_id == page_id)
        if batch_id:
            q = q.where(AuditEvent.batch_id == batch_id)
        return list(s.scalars(q))


def test_shipped_lease_defaults_bring_lost_work_back_within_about_a_minute():
    from khana.settings import Settings

    s = Settings(_env_file=None)
    cfg = s.pipeline_config()
    assert cfg.lease_s + s.sweep_interval_s <= 60  # worst case from a crash to the re-drive
    assert cfg.lease_renew_s * 3 <= cfg.lease_s  # two missed renewals do not lose a live page
    assert cfg.max_attempts == 3


def test_claim_is_exclusive_while_the_lease_is_live_and_counts_attempts(rt, sub):
    pid = sub.page_ids[0]
    assert lease.claim(rt, pid, PageStatus.pending) == 1
    assert lease.claim(rt, pid, PageStatus.pending) is None  # a live lease: nobody else takes it
    assert stages.run_quality(rt, pid) == "busy"
    assert lease.claim(rt, pid, PageStatus.corrected) is None  # wrong status
    with rt.db.session() as s:  # the holder died: its lease ran out
        s.execute(update(Page).where(Page.id == pid).values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert lease.claim(rt, pid, PageStatus.pending) == 2
    lease.release(rt, pid, forget_attempt=True)
    p = _page(rt, pid)
    assert p.lease_until is None and p.attempts == 1


def test_sweeper_redrives_an_expired_lease_at_once_and_never_a_live_one(rt, sub):
    live, dead = sub.page_ids
    now = datetime.now(timezone.utc)
    with rt.db.session() as s:
        s.execute(update(Page).where(Page.id == live).values(lease_until=now + timedelta(seconds=30), attempts=1,
                                                             updated_at=now - timedelta(hours=2)))
        s.execute(update(Page).where(Page.id == dead).values(lease_until=now - timedelta(seconds=1), attempts=1))
    rec = Recorder()
    res = sweep(rt, rec, stuck_after_s=900)
    assert res.redriven == [dead] and rec.redriven == [dead]  # no flat stuck limit for a leased page
    assert _page(rt, dead).lease_until is None
    assert sweep(rt, rec, stuck_after_s=900).redriven == []  # claimed once: not re-driven every round
    ev = _events(rt, "page_redriven", page_id=dead)
    assert len(ev) == 1 and ev[0].detail["cause"] == "lease_expired"
    # a page waiting in a queue (no lease) is re-driven only after the stuck limit (its message was lost)
    assert sweep(rt, rec, stuck_after_s=0).redriven == [dead]


def test_heartbeat_renews_the_lease_of_a_long_stage(rt, sub):
    rt.config = dataclasses.replace(rt.config, lease_s=1.5, lease_renew_s=0.3)
    pid = sub.page_ids[0]
    assert lease.claim(rt, pid, PageStatus.pending) == 1
    with lease.Heartbeat(rt, pid):
        time.sleep(3.5)  # more than twice the lease
        assert _utc(_page(rt, pid).lease_until) > datetime.now(timezone.utc)
        assert sweep(Runtime_of(rt), Recorder(), stuck_after_s=0).redriven == [sub.page_ids[1]]
    time.sleep(2.0)  # the heartbeat stopped: the lease runs out
    assert _utc(_page(rt, pid).lease_until) < datetime.now(timezone.utc)


def Runtime_of(rt):  # the same runtime (the sweeper reads config.max_attempts)
    return rt


def test_a_page_that_keeps_killing_its_worker_is_parked_for_qa(rt, sub):
    """Each crash leaves its lease behind; after max_attempts starts the page is held, audited, decided once."""
    pid = sub.page_ids[0]
    rec = Recorder()
    for attempt in range(1, rt.config.max_attempts + 1):
        assert lease.claim(rt, pid, PageStatus.pending) == attempt  # a worker starts the page ... and dies
        with rt.db.session() as s:
            s.execute(update(Page).where(Page.id == pid).values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
        res = sweep(rt, rec)
        if attempt < rt.config.max_attempts:
            assert res.redriven == [pid]
    assert res.parked == [pid] and res.redriven == []
    p = _page(rt, pid)
    assert p.status == PageStatus.decided and p.decision == "hold" and p.reasons == ["processing_error"]
    assert "stopped 3 times" in p.report["warnings"][-1]
    assert len(_events(rt, "page_parked", page_id=pid)) == 1 and len(_events(rt, "page_decided", page_id=pid)) == 1
    assert sweep(rt, rec).redriven == [] and sweep(rt, rec).parked == []  # never retried again
    # the other page is decided normally; the batch then finalises as held, with the parked page for QA
    assert stages.run_page(rt, sub.page_ids[1]) == "finalise"
    assert finalise_or_park(rt, sub.batch_id) == BatchStatus.held


def test_a_stage_that_fails_the_same_way_is_retried_then_parked(rt, sub, monkeypatch):
    pid = sub.page_ids[0]

    def boom(*a, **kw):
        raise LookupError("the page's original is gone")

    monkeypatch.setattr(stages, "decode_page", boom)
    for attempt in range(1, rt.config.max_attempts):
        with pytest.raises(LookupError):
            stages.run_quality(rt, pid)
        p = _page(rt, pid)
        assert p.status == PageStatus.pending and p.attempts == attempt
        assert _utc(p.lease_until) <= datetime.now(timezone.utc)  # run out at once: the next sweep retries it
        assert sweep(rt, Recorder()).redriven == [pid]
    assert stages.run_quality(rt, pid) == "done"  # the last attempt parks it
    p = _page(rt, pid)
    assert p.decision == "hold" and p.reasons == ["processing_error"] and "LookupError" in p.report["warnings"][-1]
    assert len(_events(rt, "page_failed", page_id=pid)) == rt.config.max_attempts


def test_an_outage_does_not_count_as_an_attempt(rt, sub, monkeypatch):
    from storage.objects import StoreUnavailable

    pid = sub.page_ids[0]

    def down(*a, **kw):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(rt.store, "get", down)
    for _ in range(rt.config.max_attempts + 2):
        with pytest.raises(StoreUnavailable):
            stages.run_quality(rt, pid)
    p = _page(rt, pid)
    assert p.status == PageStatus.pending and p.attempts == 0 and p.lease_until is None


def _in_a_fresh_process(fn, rt=None) -> None:
    """Run `fn` in a forked child and require it to succeed. The CPU limit counts the whole process's CPU
    time, and a worker process runs one stage at a time; the pytest process carries whatever threads earlier
    tests left running (servers run in-process), which would spend the budget in their place. A forked child
    has only this thread."""
    import os
    import traceback

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        import signal

        signal.alarm(60)  # a limit that never fires must fail the test, not hang it (SIGALRM ends the child)
        code = 1
        try:
            if rt is not None:
                rt.db.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
            fn()
            code = 0
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed (its traceback is above)"


def test_cpu_budget_raises_in_the_main_thread():
    def check():
        import resource

        t0 = time.process_time()
        with pytest.raises(PageTimeLimit):
            with cpu_budget(1.0):
                while True:
                    sum(range(10000))
        assert time.process_time() - t0 < 6
        assert resource.getrlimit(resource.RLIMIT_CPU)[0] == resource.RLIM_INFINITY  # put back

    _in_a_fresh_process(check)


def test_a_page_over_its_cpu_budget_is_held_processing_timeout(rt, sub, monkeypatch):
    rt.config = dataclasses.replace(rt.config, page_cpu_s=1.0)

    def spin(*a, **kw):
        while True:
            sum(range(10000))

    monkeypatch.setattr(stages, "assess_image", spin)
    pid = sub.page_ids[0]

    def run():
        assert stages.run_quality(rt, pid) == "done"

    _in_a_fresh_process(run, rt)
    p = _page(rt, pid)
    assert p.decision == "hold" and p.reasons == ["processing_timeout"]
    from quality import reason_message

    assert "computing time" in reason_message("processing_timeout", "en") and reason_message("processing_timeout", "fa")


def test_a_batch_whose_finalise_keeps_failing_is_parked_not_swept_forever(rt, sub, caplog):
    for pid in sub.page_ids:
        stages.run_page(rt, pid)
    with rt.db.session() as s:  # a page object the finalise needs is corrupted
        s.execute(update(Page).where(Page.batch_id == sub.batch_id).values(corrected_sha256="0" * 64, pdf_image=None,
                                                                        decision="pass", reasons=[]))
        s.execute(update(Batch).where(Batch.id == sub.batch_id).values(status=BatchStatus.processing))
    from storage.objects import DigestMismatch

    for _ in range(rt.config.max_attempts - 1):
        with pytest.raises(DigestMismatch):
            finalise_or_park(rt, sub.batch_id)
    assert finalise_or_park(rt, sub.batch_id) == BatchStatus.failed
    with rt.db.session() as s:
        assert s.get(Batch, sub.batch_id).status == BatchStatus.failed
    parked = _events(rt, "batch_parked", batch_id=sub.batch_id)
    assert len(parked) == 1 and "DigestMismatch" in parked[0].detail["error"]
    rec = Recorder()
    with rt.db.session() as s:  # long after: the sweeper leaves it alone
        s.execute(update(Page).where(Page.batch_id == sub.batch_id).values(updated_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert sweep(rt, rec).finalised == [] and rec.finalised == []
    with rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "batch_finalise_failed")) == rt.config.max_attempts


@pytest.mark.services
def test_a_broker_restart_reenqueues_every_waiting_page_at_once(rt, sub):
    """Redis keeps nothing on disk: after a restart its queues are gone. The sweeper notices the new run id
    and enqueues every waiting page again in that round, instead of after the 15-minute stuck limit."""
    import threading

    from fixtures_services import RedisServer
    from workers.celery_app import broker_run_id
    from workers.sweeper import BrokerWatch, run_forever

    server = RedisServer(persist=False).start()
    try:
        watch = BrokerWatch(lambda: broker_run_id(server.url))
        assert not watch.restarted() and not watch.restarted()  # first look, then the same server
        rec, stop = Recorder(), threading.Event()
        loop = threading.Thread(target=run_forever, args=(rt, rec), daemon=True,
                                kwargs=dict(interval_s=0.1, stop=stop.is_set, stuck_after_s=900.0,
                                            broker_epoch=lambda: broker_run_id(server.url)))
        loop.start()
        time.sleep(1.0)
        assert rec.redriven == []  # just queued: nothing to re-drive while the broker keeps its queues
        server.restart()
        deadline = time.monotonic() + 15
        while sorted(rec.redriven) != sorted(sub.page_ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        loop.join(10)
        assert sorted(rec.redriven) == sorted(sub.page_ids)
        assert watch.restarted()  # the watch sees the new run id too
    finally:
        server.close()
    assert broker_run_id("amqp://guest@localhost//") is None  # other brokers: no epoch, no such round
