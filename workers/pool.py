"""The embedded worker's process pool: started early, every process spawned at once, quick to exit.

Kept free of heavy imports on purpose: `khana process` starts the pool before it has imported the
pipeline itself, so the pool processes import OpenCV, SQLAlchemy, the OCR and PDF code and build
their runtime while the parent imports, migrates the database and checks the input files (on two
cores that start-up used to come in series, ~3-4 s of a 20-page run). The pool processes are
spawned (never forked: a fork would copy the parent's database connections and threads).

A spawned process that ends normally tears its interpreter down (frees every module and object:
~0.3 CPU-s with OpenCV, NumPy and SQLAlchemy loaded), and the parent waits for it when the pool is
shut down. A pool process has nothing left to do at exit once its task loop has returned (results
are sent synchronously, multiprocessing's own exit function has run, Tesseract's temporary files are
removed by then), so it flushes its output and leaves with `os._exit(0)` from the exit handler it
registers last (the first to run): the other libraries' exit handlers and the teardown are skipped.
"""
from __future__ import annotations

import atexit
import functools
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os._exit(0)


_rt = None  # this pool process's runtime (set by its initialiser)


def _init(rebuild: Callable[[], Any]) -> None:
    global _rt
    import cv2

    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)  # one page per process: no thread oversubscription
    _rt = rebuild()


def _run_page(page_id: str) -> tuple[str, str]:
    from pipeline import stages

    assert _rt is not None
    return page_id, stages.run_page(_rt, page_id)


def _finalise(batch_id: str) -> str:
    from pipeline.finalise import finalise_or_park

    assert _rt is not None
    return finalise_or_park(_rt, batch_id)


def init_process(rebuild: Callable[[], Any]) -> None:
    """Pool process initialiser: one page per process, the runtime built from `rebuild`."""
    _init(rebuild)
    atexit.register(_exit_now)  # registered last, so it runs first: the handlers before it and the teardown are skipped


def init_from_settings(settings) -> None:
    """Pool process initialiser when the parent has no runtime yet: build it from the settings."""
    from khana.bootstrap import build_runtime

    init_process(functools.partial(build_runtime, settings, migrate=False))


def _ready() -> int:
    return os.getpid()


def start_pool(processes: int, initializer: Callable[..., None], initargs: tuple) -> ProcessPoolExecutor:
    """A pool of `processes` spawned processes, all started now (not one by one on the first tasks)."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    pool = ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"), initializer=initializer,
                               initargs=initargs)
    try:
        for _ in range(processes):  # with "spawn" each submit without an idle process starts one
            pool.submit(_ready)
    except BrokenProcessPool:
        pass  # a process died at start: the caller finds the pool broken at its own first submit, as before
    return pool


def kill_pool(pool: ProcessPoolExecutor) -> None:
    """End a pool that is no longer wanted (bad input found while it was starting): no waiting for imports."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        try:
            p.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    for p in processes:
        p.join(timeout=5)
