"""The embedded worker's pool (`workers.pool`): every process started at once, a quick exit, and
`khana process` starting it early without leaving processes behind when the input is bad."""
from __future__ import annotations

import os

import pytest
from conftest import run_khana


def test_every_pool_process_is_started_before_any_page_is_submitted():
    from workers.pool import start_pool

    pool = start_pool(2, os.getcwd, ())  # any picklable initialiser
    try:
        procs = list(pool._processes.values())
        assert len(procs) == 2  # spawned now, importing while the parent checks the files
        assert all(p.is_alive() or p.exitcode is None for p in procs)
        assert len({pool.submit(os.getpid).result(timeout=60) for _ in range(8)}) <= 2
    finally:
        pool.shutdown(wait=True)
    assert [p.exitcode for p in procs] == [0, 0]


def _write(path: str) -> None:
    with open(path, "w") as fh:
        fh.write("exit handlers and teardown ran")


def _init_with_marker(rebuild, path: str) -> None:
    import atexit

    from workers.pool import init_process

    atexit.register(_write, path)  # like the exit handlers of the libraries imported before the pool's own
    init_process(rebuild)


def test_pool_process_with_the_pipeline_loaded_skips_the_interpreter_teardown(khana_home, tmp_path):
    """A pool process (OpenCV, SQLAlchemy, NumPy loaded) leaves with status 0 without tearing its interpreter
    down (~0.3 CPU-s each, and the parent waits for it): nothing registered to run at exit before it runs."""
    from khana.bootstrap import build_runtime
    from workers.pool import start_pool

    rt = build_runtime()
    marker = tmp_path / "torn-down"
    pool = start_pool(1, _init_with_marker, (rt.rebuild, str(marker)))
    proc = next(iter(pool._processes.values()))
    pool.submit(os.getpid).result(timeout=120)  # the initialiser has run: the pipeline is imported
    pool.shutdown(wait=True)
    rt.close()
    assert proc.exitcode == 0
    assert not marker.exists()


@pytest.mark.parametrize("bad_position", [0, 2])
def test_process_with_a_bad_file_among_many_leaves_no_pool_processes(khana_home, pages_dir, tmp_path, bad_position):
    """Enough files for the early pool: a bad one is still refused before anything is written (exit 2), and the
    pool processes started meanwhile are ended, not left running."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    files = [str(pages_dir / "blank.png")] * 3
    files.insert(bad_position, str(bad))
    out = tmp_path / "out"
    r = run_khana("process", *files, "--out", str(out), "--json", env={"KHANA_WORKERS": "2"})
    assert r.returncode == 2, r.stderr
    assert "bad.png" in r.stderr and r.stdout == "" and not out.exists()
    assert _processes_with_env(f"KHANA_HOME={khana_home}") == []


def _processes_with_env(entry: str) -> list[int]:
    """Live processes whose environment holds `entry` (the test's own data folder: only its khana run's)."""
    found = []
    want = entry.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as fh:
                if want in fh.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            pass
    return found


def test_a_pool_started_early_whose_processes_died_at_start_is_replaced(khana_home):
    """`khana process` hands the worker a pool started early; if its processes died before taking a task
    (here: they exit at once), the worker starts a new pool and every page is still processed."""
    import time

    from conftest import png_bytes

    from khana.bootstrap import build_runtime
    from pipeline.service import BatchMeta, KhanaService, Upload
    from testpages import render_page
    from workers.embedded import EmbeddedWorker
    from workers.pool import start_pool

    rt = build_runtime()
    dead = start_pool(2, os._exit, (3,))
    deadline = time.monotonic() + 60
    while any(p.exitcode is None for p in list(dead._processes.values())) and time.monotonic() < deadline:
        time.sleep(0.2)
    svc = KhanaService(rt)
    subs = [svc.submit_batch([Upload(f"p{i}.png", png_bytes(render_page(seed=i, n_words=40).image))], BatchMeta(),
                             actor="cli", source="cli") for i in range(2)]
    batch_of = {pid: s.batch_id for s in subs for pid in s.page_ids}
    worker = EmbeddedWorker(rt, processes=2, pool=dead)
    try:
        worker.run(list(batch_of), batch_of)
    finally:
        worker.close()
    assert worker.restarts >= 1
    assert all(svc.report(s.batch_id)["status"] in ("passed", "held") for s in subs)
    rt.close()


def test_pages_fed_while_the_worker_runs_are_all_processed_and_work_starts_before_the_last_arrives(khana_home):
    """`khana process` stores and records its files in a thread and feeds each file's pages to the running
    worker: the first pages are worked on while later files are still being stored (before, every file
    was stored first: ~0.5 s of a 20-page run with idle workers), and every page fed is processed."""
    import queue
    import threading

    from conftest import png_bytes

    from khana.bootstrap import build_runtime
    from pipeline.service import BatchMeta, KhanaService, Upload
    from testpages import render_page
    from workers.embedded import EmbeddedWorker

    rt = build_runtime()
    svc = KhanaService(rt)
    uploads = [Upload(f"p{i}.png", png_bytes(render_page(seed=i, n_words=40).image)) for i in range(4)]
    batch_of: dict[str, str] = {}
    feed: queue.Queue = queue.Queue()
    done: list[str] = []
    first_done = threading.Event()
    subs = []

    def intake():
        for k, up in enumerate(uploads):
            sub = svc.submit_batch([up], BatchMeta(), actor="cli", source="cli")
            subs.append(sub)
            batch_of.update((pid, sub.batch_id) for pid in sub.page_ids)
            feed.put(list(sub.page_ids))
            if k == 0:  # the later files arrive only once the first page is done: it must not wait for them
                assert first_done.wait(120), "the first page was not worked on while the feed was open"
        feed.put(None)

    def on_page(pid):
        done.append(pid)
        first_done.set()

    feeder = threading.Thread(target=intake, daemon=True)
    feeder.start()
    worker = EmbeddedWorker(rt, processes=2)
    try:
        worker.run([], batch_of, on_page=on_page, feed=feed)
    finally:
        worker.close()
    feeder.join(5)
    assert sorted(done) == sorted(batch_of) and len(done) == 4
    assert all(svc.report(s.batch_id)["status"] in ("passed", "held") for s in subs)  # finalised too
    rt.close()
