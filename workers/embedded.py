"""The embedded worker: the same pipeline steps as the Celery tasks, in a local process pool.

Parallelism is across pages (one Tesseract per process, OMP_THREAD_LIMIT=1),
never inside Tesseract. Used by `khana process` and `khana serve` when no
broker is configured.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterable

from khana.settings import Settings
from pipeline import stages
from pipeline.finalise import finalise_batch
from pipeline.runtime import Runtime

_rt: Runtime | None = None


def _init(settings: Settings) -> None:
    global _rt
    os.environ["OMP_THREAD_LIMIT"] = "1"
    _rt = Runtime.from_settings(settings, migrate=False)


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
        self.processes = max(1, processes or rt.settings.workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            os.environ["OMP_THREAD_LIMIT"] = "1"
            self._pool = ProcessPoolExecutor(self.processes, mp_context=mp.get_context("spawn"),
                                             initializer=_init, initargs=(self.rt.settings,))
        return self._pool

    def run(self, page_ids: Iterable[str], batch_of: dict[str, str],
            on_page: Callable[[str], None] | None = None) -> None:
        """Process `page_ids` (highest priority first, as given); finalise each batch when complete."""
        page_ids = list(page_ids)
        if len(page_ids) <= 1 and self.processes >= 1 and self._pool is None:
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
