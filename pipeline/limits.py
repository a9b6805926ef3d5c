"""A CPU-time bound around one page stage, in the process that runs it.

`cpu_budget(seconds)` sets the process's soft ``RLIMIT_CPU`` to the CPU time used so far plus
`seconds`; the kernel sends SIGXCPU when it is crossed, and the handler raises `PageTimeLimit` in the
main thread (the page is held as `processing_timeout`). The soft limit is put back afterwards, so a
long-lived worker process can run any number of pages. Tesseract runs in a subprocess with its own
timeout and does not count here.

Python runs a signal handler between bytecodes: a single C call (one OpenCV function) that never
returns cannot be interrupted this way. The lease heartbeat (`pipeline.lease`) is the backstop: a
process that ignores the limit for `seconds` more is ended, its lease runs out, and the page is
parked after `max_attempts` (see `watchdog`).

Outside the main thread (signals cannot be handled there) and on systems without ``resource`` the
budget is not enforced.
"""
from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from contextlib import contextmanager

log = logging.getLogger("khana.pipeline")


class PageTimeLimit(Exception):
    """A page stage used more CPU time than its budget (reason `processing_timeout`)."""


def _raise(signum, frame):  # noqa: ARG001
    raise PageTimeLimit("the page used more CPU time than allowed")


def _cpu_used() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextmanager
def cpu_budget(seconds: float | None):
    """Raise `PageTimeLimit` in this (main) thread once the process has used `seconds` more CPU time."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    limit = int(_cpu_used() + seconds) + 1
    if hard != resource.RLIM_INFINITY and limit > hard:
        yield  # a stricter limit is already in force
        return
    old_handler = signal.signal(signal.SIGXCPU, _raise)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    watchdog = _Watchdog(seconds)
    try:
        yield
    finally:
        watchdog.stop()
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        signal.signal(signal.SIGXCPU, old_handler)


def _stage_cpu_clock():
    """A clock of the CPU time of the thread running the page stage (this, the main thread), or None."""
    try:
        return time.pthread_getcpuclockid(threading.main_thread().ident)
    except (AttributeError, OSError):  # not on this platform
        return None


class _Watchdog(threading.Thread):
    """Ends the process when the stage's CPU time passes its budget by as much again (the handler could not
    run: stuck in C code). It counts the stage's own thread where the platform says it (other threads of a
    long-lived process, the lease heartbeat or a host application's, do not bring the end nearer), else the
    process's."""

    def __init__(self, budget_s: float):
        super().__init__(name="khana-cpu-watchdog", daemon=True)
        self._clock = _stage_cpu_clock()
        self._used = (lambda: time.clock_gettime(self._clock)) if self._clock is not None else _cpu_used
        self.hard_s = self._used() + 2 * budget_s + 1
        self._stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._stop_event.wait(1.0):
            if self._used() > self.hard_s:
                log.error("page stage still running %.0f s of CPU past its budget: ending the process", self.hard_s)
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        self._stop_event.set()
