"""The embedded worker: the same pipeline steps as the Celery tasks, in a local process pool.

Parallelism is across pages (one Tesseract per process, OMP_THREAD_LIMIT=1),
never inside Tesseract. Used by `khana process` and `khana serve` when no
broker is configured.

A pool process that dies in the middle of a page (the out-of-memory killer, a SIGKILL) breaks a
`ProcessPoolExecutor` for good (`BrokenProcessPool`: every other process is ended too). The worker
then builds a new pool and runs the pages that were in flight again: their leases are released (the
parent knows their processes are gone) and they are run one at a time ("suspects"), so the page that
kills its process is found and counted alone; after `max_attempts` it is parked for QA instead of
killing the pool forever. Pages are decided exactly once anyway (conditional UPDATE). If no pool can
be built, `health()` says so and `/healthz` answers 503.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

from khana.settings import Settings, get_settings
from pipeline import lease, stages
from pipeline.finalise import finalise_or_park
from pipeline.runtime import Runtime
from pipeline.service import Dispatcher
from storage.models import Page

log = logging.getLogger("khana.workers")
from workers.pool import _finalise, _run_page, init_process, start_pool  # the pool processes' tasks
from workers.sweeper import sweep


class EmbeddedWorker:
    """A pool of worker processes; `run` processes pages and finalises their batches."""

    def __init__(self, rt: Runtime, processes: int | None = None, *, pool: ProcessPoolExecutor | None = None):
        """`pool`: a pool already started for this runtime (`workers.pool.start_pool`, `processes` processes)."""
        self.rt = rt
        if rt.rebuild is None:
            raise ValueError("the embedded worker needs a runtime that can be rebuilt in its pool processes "
                             "(built by khana.bootstrap.build_runtime)")
        self.processes = max(1, processes or rt.config.workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = pool
        self.restarts = 0  # pools rebuilt after a lost process

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = start_pool(self.processes, init_process, (self.rt.rebuild,))
        return self._pool

    def rebuild_pool(self) -> ProcessPoolExecutor:
        """Drop a broken pool (its processes are gone or ended) and start a new one."""
        old, self._pool = self._pool, None
        if old is not None:
            try:
                old.shutdown(wait=False, cancel_futures=True)
            except Exception:  # noqa: BLE001
                pass
        self.restarts += 1
        return self._ensure_pool()

    def lost(self, page_ids: Iterable[str], *, blame: bool) -> None:
        """Pages whose process died: release their leases now (no need to wait for them to run out).

        `blame`: the page ran alone, so it is the one that ended its process: the attempt counts.
        """
        for pid in page_ids:
            lease.release(self.rt, pid, forget_attempt=not blame)

    def run(self, page_ids: Iterable[str], batch_of: dict[str, str],
            on_page: Callable[[str], None] | None = None, feed: queue.Queue | None = None) -> None:
        """Process `page_ids` (highest priority first, as given); finalise each batch when complete.

        `feed`: more pages while this runs: lists of page ids put by another thread as their batches are
        accepted (`batch_of` filled before), then None when there are no more. The first pages are
        worked on while the rest are still being stored."""
        page_ids = list(page_ids)
        if len(page_ids) <= 1 and self._pool is None and feed is None:  # one page: no pool start-up cost
            self._run_inline(page_ids, batch_of, on_page)
            return
        pool = self._ensure_pool()
        todo: deque[tuple[str, str, bool]] = deque(("page", pid, False) for pid in page_ids)  # (kind, arg, suspect)
        pending: dict[Future, tuple[str, str, bool]] = {}
        feeding = feed is not None
        while todo or pending or feeding:
            if feeding:  # take what has arrived; wait for it only when there is nothing else to do
                block = not todo and not pending
                while True:
                    try:
                        item = feed.get(block=block)
                    except queue.Empty:
                        break
                    block = False
                    if item is None:
                        feeding = False
                        break
                    todo.extend(("page", pid, False) for pid in item)
            refused = False
            while todo and len(pending) < self.processes and not any(sus for _k, _a, sus in pending.values()):
                kind, arg, suspect = todo[0]
                if suspect and pending:
                    break  # a suspect runs alone
                try:
                    fut = pool.submit(_run_page if kind == "page" else _finalise, arg)
                except BrokenProcessPool:  # a process of a pool started early died before any task: nothing lost
                    refused = True
                    break
                todo.popleft()
                pending[fut] = (kind, arg, suspect)
            if refused and not pending:
                log.error("a worker process died before taking a task; starting a new pool")
                pool = self.rebuild_pool()
                continue
            if not pending:
                continue
            # while pages may still arrive and a process is free, look at the feed again soon
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED,
                           timeout=0.05 if feeding and len(pending) < self.processes else None)
            broken = False
            for fut in done:
                if isinstance(fut.exception(), BrokenProcessPool):
                    broken = True
                    continue
                kind, arg, _suspect = pending.pop(fut)
                result = fut.result()
                if kind == "page":
                    pid, nxt = result
                    if on_page:
                        on_page(pid)
                    if nxt == "finalise":
                        todo.appendleft(("finalise", batch_of[pid], False))
            if broken:
                lost = list(pending.values())
                pending.clear()
                alone = len(lost) == 1 and lost[0][2]
                log.error("a worker process was lost with %d task(s) in flight; starting a new pool and running "
                          "them again", len(lost))
                self.lost([arg for kind, arg, _s in lost if kind == "page"], blame=alone)
                for kind, arg, _s in reversed(lost):
                    todo.appendleft((kind, arg, kind == "page"))
                pool = self.rebuild_pool()

    def _run_inline(self, page_ids, batch_of, on_page) -> None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
        for pid in page_ids:
            nxt = stages.run_page(self.rt, pid)
            if on_page:
                on_page(pid)
            if nxt == "finalise":
                finalise_or_park(self.rt, batch_of[pid])

    def close(self, wait: bool = True) -> None:
        """Shut the pool down; `wait=False`: do not wait for its processes to exit (the interpreter joins them
        at exit), e.g. while `khana process` writes its output."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


class BackgroundWorker(Dispatcher):
    """The embedded worker of `khana serve` (no broker): a priority queue feeding the process pool.

    Implements the service's `Dispatcher`. Urgent filings (priority 0) are taken first;
    at most `processes` pages are in flight, so a newly arrived urgent page waits for one
    page, not for the whole backlog. On start it re-drives whatever an earlier run left
    open (pages pending or half-done, complete batches not finalised); every
    `sweep_interval_s` it sweeps (expired leases, lost work, `workers.sweeper`). A lost
    pool process is replaced and its pages run again (see the module's docstring).
    """

    def __init__(self, rt: Runtime, processes: int | None = None, *, settings: Settings | None = None):
        self.rt = rt
        self.worker = EmbeddedWorker(rt, processes)
        settings = settings or get_settings()
        self.sweep_options = settings.sweep_options()
        self.sweep_interval_s = settings.sweep_interval_s
        self._queue: "queue.PriorityQueue[tuple[int, int, str, str]]" = queue.PriorityQueue()
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="khana-embedded-worker", daemon=True)
        self._idle = threading.Event()
        self._error: str | None = None  # why the worker cannot process pages right now
        self.in_flight = 0
        self._breaks = 0  # pools broken in a row with no task finished in between

    # Dispatcher protocol -----------------------------------------------------
    def dispatch(self, batch_id: str, page_ids: list[str], priority: int) -> None:
        for pid in page_ids:
            self._put(priority, "page", f"{pid}:{batch_id}")

    def _put(self, priority: int, kind: str, arg: str) -> None:
        self._idle.clear()
        self._queue.put((priority, next(self._counter), kind, arg))

    def redrive(self, page_id: str, status: str, priority: int) -> bool:
        with self.rt.db.session() as s:
            page = s.get(Page, page_id)
            if page is None:
                return False
            self.dispatch(page.batch_id, [page_id], priority)
        return True

    def finalise(self, batch_id: str, priority: int) -> bool:
        self._put(priority, "finalise", batch_id)
        return True

    # lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        # recover what a previous run left open: no process of it is alive to hold a lease
        sweep(self.rt, self, stuck_after_s=0, max_redrives=self.sweep_options["max_redrives"], break_leases=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.worker.close()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """True once the queue is empty and nothing is in flight (used by tests and shutdown)."""
        return self._idle.wait(timeout)

    def health(self) -> dict:
        """Whether this worker can process pages: its thread runs and it has a working pool."""
        alive = self._thread.is_alive() and self._error is None
        return {"alive": alive, "processes": self.worker.processes, "in_flight": self.in_flight,
                "queued": self._queue.qsize(), "pool_restarts": self.worker.restarts,
                **({"error": self._error} if self._error else {})}

    def _loop(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by health(): /healthz answers 503
            self._error = f"the embedded worker stopped: {type(exc).__name__}: {exc}"
            log.exception("embedded worker stopped")

    def _new_pool(self):
        """A working pool, or None (error recorded for health()) when none can be started now."""
        try:
            pool = self.worker.rebuild_pool() if self.worker._pool is not None else self.worker._ensure_pool()
            if self._error and self._error.startswith("cannot start"):
                self._error = None
            return pool
        except Exception as exc:  # noqa: BLE001
            self._error = f"cannot start worker processes: {type(exc).__name__}: {exc}"
            log.error("embedded worker: %s", self._error)
            return None

    def _run(self) -> None:
        pool = self._new_pool()
        in_flight: dict[Future, tuple[str, str, bool]] = {}  # future -> (kind, arg, suspect)
        suspects: set[str] = set()  # page ids in flight when a process was lost: run alone next time
        next_sweep = time.monotonic() + self.sweep_interval_s
        while not self._stop.is_set():
            if pool is None:
                time.sleep(2.0)
                pool = self._new_pool()
                continue
            if time.monotonic() >= next_sweep:  # expired leases, lost work, complete batches
                next_sweep = time.monotonic() + self.sweep_interval_s
                try:
                    sweep(self.rt, self, **self.sweep_options)
                except Exception:  # noqa: BLE001
                    log.warning("embedded sweep failed", exc_info=True)
            broken = False
            while len(in_flight) < self.worker.processes and not any(sus for _k, _a, sus in in_flight.values()):
                try:
                    item = self._queue.get(timeout=0.2 if not in_flight else 0.0)
                except queue.Empty:
                    break
                _prio, _n, kind, arg = item
                suspect = kind == "page" and arg.split(":", 1)[0] in suspects
                if suspect and in_flight:
                    self._queue.put(item)  # a suspect runs alone: wait for the others to finish
                    break
                try:
                    fut = pool.submit(_run_page, arg.split(":", 1)[0]) if kind == "page" else pool.submit(_finalise, arg)
                except BrokenProcessPool:
                    self._queue.put(item)
                    broken = True
                    break
                in_flight[fut] = (kind, arg, suspect)
                if suspect:
                    break
            self.in_flight = len(in_flight)
            if not in_flight and not broken:
                if self._queue.empty():
                    self._idle.set()
                continue
            done = set()
            if in_flight:
                done, _ = wait(list(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                if isinstance(fut.exception(), BrokenProcessPool):
                    broken = True
                    continue
                kind, arg, _suspect = in_flight.pop(fut)
                self._breaks = 0
                if self._error and self._error.startswith("worker processes keep dying"):
                    self._error = None
                if kind == "page":
                    suspects.discard(arg.split(":", 1)[0])
                try:
                    result = fut.result()
                except Exception:  # noqa: BLE001 - store/database hiccup: the lease runs out, the sweep re-drives it
                    log.exception("embedded %s task failed", kind)
                    continue
                if kind == "page" and result[1] == "finalise":
                    self.finalise(arg.split(":", 1)[1], 0)
            if broken:
                pool = self._recover(in_flight, suspects)

    MAX_BREAKS = 5  # pools broken in a row (no task finished) before the worker reports itself unhealthy

    def _recover(self, in_flight: dict, suspects: set[str]):
        """A process of the pool died: new pool; the pages it held go back to the queue as suspects.

        A pool that keeps breaking with nothing finished in between (processes die at start: out of memory,
        a broken installation) makes the worker unhealthy (`health()`, `/healthz` 503); it keeps trying, more
        slowly, and is healthy again once a task finishes.
        """
        self._breaks += 1
        if self._breaks >= self.MAX_BREAKS:
            self._error = (f"worker processes keep dying: the pool broke {self._breaks} times in a row "
                           "without finishing a task")
            log.error("embedded worker: %s", self._error)
            self._stop.wait(5.0)
        lost = list(in_flight.values())
        in_flight.clear()
        pages = [arg.split(":", 1)[0] for kind, arg, _s in lost if kind == "page"]
        alone = len(lost) == 1 and lost[0][2]  # a suspect that ran alone: it ended its process
        log.error("embedded worker: a worker process was lost with %d page(s) in flight; starting a new pool and "
                  "running them again%s", len(pages), " (this page ran alone: the attempt counts)" if alone else "")
        try:
            self.worker.lost(pages, blame=alone)
        except Exception:  # noqa: BLE001 - database down: the leases run out by themselves
            log.warning("could not release the leases of lost pages", exc_info=True)
        for kind, arg, _s in lost:
            if kind == "page":
                suspects.add(arg.split(":", 1)[0])
            self._put(0, kind, arg)
        return self._new_pool()
