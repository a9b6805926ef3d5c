"""The embedded worker: the same pipeline steps as the Celery tasks, in a local process pool.

Parallelism is across pages (one Tesseract per process, OMP_THREAD_LIMIT=1),
never inside Tesseract. Used by `khana process` and `khana serve` when no
broker is configured.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterable

from khana.settings import Settings, get_settings
from pipeline import stages
from pipeline.finalise import finalise_batch
from pipeline.runtime import Runtime
from pipeline.service import Dispatcher
from storage.models import Page
from workers.sweeper import sweep

_rt: Runtime | None = None


def _init(rebuild: Callable[[], Runtime]) -> None:
    global _rt
    import cv2

    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)  # one page per process: no thread oversubscription
    _rt = rebuild()


def _run_page(page_id: str) -> tuple[str, str]:
    assert _rt is not None
    return page_id, stages.run_page(_rt, page_id)


def _finalise(batch_id: str) -> str:
    assert _rt is not None
    return finalise_batch(_rt, batch_id)


class EmbeddedWorker:
    """A pool of worker processes; `run` processes pages and finalises their batches."""

    def __init__(self, rt: Runtime, processes: int | None = None):
        self.rt = rt
        if rt.rebuild is None:
            raise ValueError("the embedded worker needs a runtime that can be rebuilt in its pool processes "
                             "(built by khana.bootstrap.build_runtime)")
        self.processes = max(1, processes or rt.config.workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            os.environ["OMP_THREAD_LIMIT"] = "1"
            self._pool = ProcessPoolExecutor(self.processes, mp_context=mp.get_context("spawn"),
                                             initializer=_init, initargs=(self.rt.rebuild,))
        return self._pool

    def run(self, page_ids: Iterable[str], batch_of: dict[str, str],
            on_page: Callable[[str], None] | None = None) -> None:
        """Process `page_ids` (highest priority first, as given); finalise each batch when complete."""
        page_ids = list(page_ids)
        if len(page_ids) <= 1 and self._pool is None:  # one page: no pool start-up cost
            self._run_inline(page_ids, batch_of, on_page)
            return
        pool = self._ensure_pool()
        pending: set[Future] = {pool.submit(_run_page, pid) for pid in page_ids}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                if isinstance(result, tuple):
                    pid, nxt = result
                    if on_page:
                        on_page(pid)
                    if nxt == "finalise":
                        pending.add(pool.submit(_finalise, batch_of[pid]))

    def _run_inline(self, page_ids, batch_of, on_page) -> None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
        for pid in page_ids:
            nxt = stages.run_page(self.rt, pid)
            if on_page:
                on_page(pid)
            if nxt == "finalise":
                finalise_batch(self.rt, batch_of[pid])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class BackgroundWorker(Dispatcher):
    """The embedded worker of `khana serve` (no broker): a priority queue feeding the process pool.

    Implements the service's `Dispatcher`. Urgent filings (priority 0) are taken first;
    at most `processes` pages are in flight, so a newly arrived urgent page waits for one
    page, not for the whole backlog. On start it re-drives whatever an earlier run left
    open (pages pending or half-done, complete batches not finalised).
    """

    def __init__(self, rt: Runtime, processes: int | None = None, *, settings: Settings | None = None):
        self.rt = rt
        self.worker = EmbeddedWorker(rt, processes)
        self.sweep_options = (settings or get_settings()).sweep_options()
        self._queue: "queue.PriorityQueue[tuple[int, int, str, str]]" = queue.PriorityQueue()
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="khana-embedded-worker", daemon=True)
        self._idle = threading.Event()

    # Dispatcher protocol -----------------------------------------------------
    def dispatch(self, batch_id: str, page_ids: list[str], priority: int) -> None:
        for pid in page_ids:
            self._queue.put((priority, next(self._counter), "page", f"{pid}:{batch_id}"))

    def redrive(self, page_id: str, status: str, priority: int) -> bool:
        with self.rt.db.session() as s:
            page = s.get(Page, page_id)
            if page is None:
                return False
            self.dispatch(page.batch_id, [page_id], priority)
        return True

    def finalise(self, batch_id: str, priority: int) -> bool:
        self._queue.put((priority, next(self._counter), "finalise", batch_id))
        return True

    # lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        sweep(self.rt, self, stuck_after_s=0, max_redrives=self.sweep_options["max_redrives"])  # recover what a previous run left open
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.worker.close()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """True once the queue is empty and nothing is in flight (used by tests and shutdown)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        log = logging.getLogger("khana.workers")
        pool = self.worker._ensure_pool()
        in_flight: dict[Future, tuple[str, str]] = {}
        next_sweep = time.monotonic() + 60
        while not self._stop.is_set():
            if time.monotonic() >= next_sweep:  # pages whose task failed (store or database hiccup)
                next_sweep = time.monotonic() + 60
                try:
                    sweep(self.rt, self, **self.sweep_options)
                except Exception:  # noqa: BLE001
                    log.warning("embedded sweep failed", exc_info=True)
            while len(in_flight) < self.worker.processes:
                try:
                    _prio, _n, kind, arg = self._queue.get(timeout=0.2 if not in_flight else 0.0)
                except queue.Empty:
                    break
                self._idle.clear()
                if kind == "page":
                    pid, batch_id = arg.split(":", 1)
                    in_flight[pool.submit(_run_page, pid)] = ("page", batch_id)
                else:
                    in_flight[pool.submit(_finalise, arg)] = ("finalise", arg)
            if not in_flight:
                if self._queue.empty():
                    self._idle.set()
                continue
            done, _ = wait(list(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                kind, batch_id = in_flight.pop(fut)
                try:
                    result = fut.result()
                except Exception:  # noqa: BLE001 - store/database hiccup: the periodic sweep re-drives it
                    log.exception("embedded %s task failed", kind)
                    continue
                if kind == "page" and result[1] == "finalise":
                    self.finalise(batch_id, 0)
