"""Throughput benchmark: the same 20-page batch through raw Tesseract, OCRmyPDF and Khana.

    .venv/bin/python bench/throughput/run.py [--pages 20] [--json bench/throughput/results.json]

(a) raw Tesseract, two processes at a time, OMP_THREAD_LIMIT=1, TSV output, Khana's page
    segmentation mode (so the difference is Khana's own work, not a different OCR setup);
(b) OCRmyPDF -j 2 --deskew -l fas on the batch as one PDF (if ocrmypdf is installed);
(c) Khana's distributed mode: a real Celery worker (prefork) on the Redis broker running
    every stage (quality, OCR, assemble: searchable PDF, report, delivery) with 1 and with
    2 pool processes; the clock runs from submitting the batch (originals stored, records
    written) to the batch being forwarded;
(d) `khana process` (embedded worker, 2 processes, no servers) as a user runs it: its records in a
    scratch workspace thrown away after the run, results in --out (`_keep`: with KHANA_HOME set, the
    records kept in a durable data folder, every object and commit fsynced).

Contenders run in interleaved rounds (--rounds, default 3) and the median time of each
counts (the best is recorded too), so a busy spell caused by other work on the machine
does not pick on one of them. CPU seconds per page (all processes involved; for Khana
including worker start-up and warm-up pages) are recorded too: unlike wall time they do
not depend on load. OCRmyPDF may live in its own virtualenv (--ocrmypdf PATH).

Pages: rendered Persian A4 pages at 300 dpi (testpages), with the small skews of real
scans (0 to 3 degrees), PNG. Needs Redis (KHANA_TEST_REDIS_URL, 127.0.0.1:6379, or a
redis-server binary); uses PostgreSQL when reachable, else SQLite.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ["OMP_THREAD_LIMIT"] = "1"

SKEWS = (0.0, 1.5, -2.0, 3.0, -1.0)


def _child_cpu() -> float:
    """CPU seconds (user + system) of all finished child processes and their waited-for descendants."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _self_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def make_pages(work: Path, n: int) -> list[Path]:
    from PIL import Image

    from testpages import render_page
    from testpages.degrade import skew

    pages_dir = work / "pages"
    pages_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = pages_dir / f"page{i + 1:02d}.png"
        if not p.exists():
            img = render_page(seed=i, font=("naskh", "sans")[i % 2]).image
            angle = SKEWS[i % len(SKEWS)]
            if angle:
                img = skew(img, angle)
            Image.fromarray(img).save(p, dpi=(300, 300))
        paths.append(p)
    return paths


def bench_raw_tesseract(pages: list[Path], work: Path, procs: int = 2) -> tuple[float, float]:
    from ocr.engine import DEFAULT_PSM

    out = work / "raw"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(p: Path) -> None:
        subprocess.run(["tesseract", str(p), str(out / p.stem), "-l", "fas", "--psm", str(DEFAULT_PSM), "--dpi", "300",
                        "tsv"], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    c0, t0 = _child_cpu(), time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        list(pool.map(one, pages))
    return time.perf_counter() - t0, _child_cpu() - c0


def bench_ocrmypdf(pages: list[Path], work: Path, exe: str | None = None) -> tuple[float | None, float | None, str]:
    exe = exe or shutil.which("ocrmypdf") or str(Path(sys.executable).with_name("ocrmypdf"))
    if not Path(exe).exists():
        return None, None, "ocrmypdf is not installed (pip install ocrmypdf)"
    src = work / "batch.pdf"
    try:
        import img2pdf

        src.write_bytes(img2pdf.convert([str(p) for p in pages]))
    except ImportError:  # OCRmyPDF in its own virtualenv: use its img2pdf (a dependency of OCRmyPDF)
        subprocess.run([str(Path(exe).with_name("python")), "-c", "import img2pdf, sys; "
                        "open(sys.argv[1], 'wb').write(img2pdf.convert(sys.argv[2:]))", str(src), *map(str, pages)],
                       check=True)
    dst = work / "ocrmypdf-out.pdf"
    cmd = [exe, "-j", "2", "--deskew", "-l", "fas", str(src), str(dst)]
    c0, t0 = _child_cpu(), time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    dt, cpu = time.perf_counter() - t0, _child_cpu() - c0
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    if r.returncode != 0:
        return None, None, f"ocrmypdf {version} failed (exit {r.returncode}): {r.stderr.strip()[-400:]}"
    return dt, cpu, f"ocrmypdf {version}: {' '.join(['ocrmypdf', *cmd[1:4], '-l', 'fas', 'batch.pdf', 'out.pdf'])}"


def _redis_url() -> str:
    from fixtures_services import RedisServer, port_open

    url = os.environ.get("KHANA_TEST_REDIS_URL")
    if url:
        return url
    if port_open("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/13"
    server = RedisServer().start()  # left to exit with this process
    return server.url


def _database_url(work: Path) -> tuple[str | None, str]:
    from fixtures_services import _pg_server_url, make_postgres_db

    server = _pg_server_url()
    if server:
        try:
            return make_postgres_db(server, prefix="khana_bench"), "postgresql"
        except Exception:  # noqa: BLE001
            pass
    return None, "sqlite"


def bench_khana_celery(pages: list[Path], work: Path, concurrency: int, redis_url: str,
                       database_url: str | None):
    from fixtures_services import KhanaStack
    from pipeline.service import BatchMeta, Upload

    run_dir = work / f"khana-c{concurrency}-{time.time_ns()}"
    stack = KhanaStack(run_dir, redis_url=redis_url, database_url=database_url)
    c0, s0 = _child_cpu(), _self_cpu()
    try:
        stack.worker("quality,ocr,assemble", concurrency=concurrency, name=f"bench{concurrency}")
        # warm-up: the first task of each pool process imports the OCR and PDF libraries
        warm = [Upload(p.name, p.read_bytes()) for p in pages[:concurrency]]
        sub = stack.service.submit_batch(warm, BatchMeta(court="court-1"))
        stack.wait_final(sub.batch_id, timeout=600)
        uploads = [Upload(p.name, p.read_bytes()) for p in pages]
        t0 = time.perf_counter()
        sub = stack.service.submit_batch(uploads, BatchMeta(court="court-1", office="bench"))
        t_decided = None
        deadline = t0 + 1800
        while time.perf_counter() < deadline:
            if t_decided is None and sum(stack.decided_counts(sub.batch_id).values()) == len(pages):
                t_decided = time.perf_counter() - t0
            status = stack.batch_status(sub.batch_id)
            if status in ("held", "passed", "forwarded", "failed"):
                break
            time.sleep(0.2)
        dt = time.perf_counter() - t0
        if t_decided is None:
            t_decided = dt
        if status != "forwarded":
            print(f"warning: the batch ended {status}", file=sys.stderr)
    finally:
        stack.close()
    # worker processes (pool, Tesseract) + this process's intake work; includes the warm-up pages
    cpu = (_child_cpu() - c0) + (_self_cpu() - s0)
    stage = _stage_times(run_dir)
    return dt, t_decided, cpu, len(pages) + concurrency, stage


def _stage_times(run_dir: Path) -> dict:
    """Mean wall seconds per task from the worker log: where a page's time goes."""
    import re

    sums: dict[str, list[float]] = {}
    for log in run_dir.glob("celery-*.log"):
        for m in re.finditer(r"Task (khana\.\w+)\[[^\]]+\] succeeded in ([0-9.]+)s", log.read_text(errors="replace")):
            sums.setdefault(m.group(1), []).append(float(m.group(2)))
    return {k: {"tasks": len(v), "mean_s": round(sum(v) / len(v), 2)} for k, v in sorted(sums.items())}


def bench_khana_embedded(pages: list[Path], work: Path, src: Path | None = None, keep: bool = False) -> tuple[float, float]:
    """`khana process` on the pages, as a user runs it (no KHANA_HOME: the records live in a scratch
    workspace thrown away after the run, the results go to --out; nothing to fsync). `keep`: with
    KHANA_HOME set instead, the records kept in a durable data folder (every object and commit fsynced).
    `src`: run another checkout of Khana (e.g. before a change)."""
    exe = Path(sys.executable).with_name("khana")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env.update(OMP_THREAD_LIMIT="1", KHANA_WORKERS="2")
    if keep:
        env["KHANA_HOME"] = str(work / "embedded-home")
    env["PYTHONPATH"] = os.pathsep.join([str(src or REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    shutil.rmtree(work / "embedded-home", ignore_errors=True)  # every round starts from an empty store
    shutil.rmtree(work / "embedded-out", ignore_errors=True)
    c0, t0 = _child_cpu(), time.perf_counter()
    r = subprocess.run([str(exe), "process", *map(str, pages), "--out", str(work / "embedded-out"), "--json"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt, cpu = time.perf_counter() - t0, _child_cpu() - c0
    reports = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode not in (0, 3) or len(reports) != len(pages):
        print(f"warning: khana process exit {r.returncode}, {len(reports)} page reports: {r.stderr[-300:]}", file=sys.stderr)
    return dt, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "_work" / "throughput")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "throughput" / "results.json")
    ap.add_argument("--skip-ocrmypdf", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--skip-celery", action="store_true", help="leave out contender (c), the Celery stack")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median time of each contender counts")
    ap.add_argument("--compare-src", type=Path, default=None,
                    help="also run `khana process` from this checkout (e.g. `git archive` of the previous commit), interleaved")
    ap.add_argument("--ocrmypdf", default=None, help="the ocrmypdf executable (default: on PATH or beside this Python)")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    pages = make_pages(work, args.pages)
    n = len(pages)
    redis_url = _redis_url()
    db_url, db_kind = _database_url(work)
    results: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "tesseract": subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
        "pages": n,
        "khana_stack": {"broker": "redis", "database": db_kind, "object_store": "local"},
        "seconds": {},
        "notes": [],
    }
    secs = results["seconds"]
    results["compare_src"] = str(args.compare_src) if args.compare_src else None
    results["load_average_at_start"] = os.getloadavg()

    print(f"{n} pages in {work / 'pages'}", file=sys.stderr)
    runs: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}
    stages: dict[str, dict] = {}

    def note(key: str, dt: float) -> None:
        runs.setdefault(key, []).append(round(dt, 2))
        print(f"  {key}: {dt:.1f}s", file=sys.stderr)

    for rnd in range(args.rounds):  # interleaved, so a busy spell on the machine hits every contender
        print(f"round {rnd + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
        dt, c = bench_raw_tesseract(pages, work)
        note("raw_tesseract_2proc", dt)
        cpu["raw_tesseract_2proc"] = round(c / n, 2)
        if not args.skip_ocrmypdf and (rnd == 0 or "ocrmypdf_j2_deskew" in runs):
            dt, c, txt = bench_ocrmypdf(pages, work, args.ocrmypdf)
            if rnd == 0:
                results["notes"].append(txt)
            if dt is not None:
                note("ocrmypdf_j2_deskew", dt)
                cpu["ocrmypdf_j2_deskew"] = round(c / n, 2)
        for conc in (() if args.skip_celery else (1, 2)):
            total, decided, c, n_cpu_pages, st = bench_khana_celery(pages, work, conc, redis_url, db_url)
            note(f"khana_celery_{conc}proc", total)
            note(f"khana_celery_{conc}proc_pages_decided", decided)
            cpu[f"khana_celery_{conc}proc"] = round(c / n_cpu_pages, 2)
            stages[f"khana_celery_{conc}proc"] = st
        if not args.skip_embedded:
            dt, c = bench_khana_embedded(pages, work)
            note("khana_process_embedded_2proc", dt)
            cpu["khana_process_embedded_2proc"] = round(c / n, 2)
            dt, c = bench_khana_embedded(pages, work, keep=True)
            note("khana_process_embedded_2proc_keep", dt)
            cpu["khana_process_embedded_2proc_keep"] = round(c / n, 2)
            if args.compare_src:
                dt, c = bench_khana_embedded(pages, work, args.compare_src)
                note("khana_process_embedded_2proc_compare_src", dt)
                cpu["khana_process_embedded_2proc_compare_src"] = round(c / n, 2)
    if db_url:
        from fixtures_services import drop_postgres_db

        drop_postgres_db(db_url)
    import statistics

    secs.update({k: statistics.median(v) for k, v in runs.items()})  # median of the interleaved rounds
    results["best_seconds"] = {k: min(v) for k, v in runs.items()}
    results["all_runs_seconds"] = runs
    results["cpu_seconds_per_page"] = cpu
    results["khana_task_wall_seconds"] = stages
    results["load_average_at_end"] = os.getloadavg()
    ppm = {k: round(n / v * 60.0, 1) for k, v in secs.items()}
    results["pages_per_minute"] = ppm
    raw = ppm["raw_tesseract_2proc"]
    k2, k1 = ppm.get("khana_celery_2proc"), ppm.get("khana_celery_1proc")
    ratios, targets = {}, {}
    if k2 and k1:
        ratios = {"khana2_vs_raw_tesseract": round(k2 / raw, 3), "khana2_vs_khana1": round(k2 / k1, 3)}
        targets = {"celery: khana2_vs_khana1 >= 1.8": ratios["khana2_vs_khana1"] >= 1.8}
    emb = ppm.get("khana_process_embedded_2proc")
    if emb:
        ratios["embedded_vs_raw_tesseract"] = round(emb / raw, 3)
        targets["embedded_vs_raw_tesseract >= 0.9"] = ratios["embedded_vs_raw_tesseract"] >= 0.9
        if k2:
            ratios["celery2_vs_embedded"] = round(k2 / emb, 3)
            targets["celery2_vs_embedded >= 0.9"] = ratios["celery2_vs_embedded"] >= 0.9
        if "khana_process_embedded_2proc_compare_src" in ppm:
            ratios["compare_src_embedded_vs_raw_tesseract"] = round(ppm["khana_process_embedded_2proc_compare_src"] / raw, 3)
    if "ocrmypdf_j2_deskew" in ppm:
        if k2:
            ratios["khana2_vs_ocrmypdf"] = round(k2 / ppm["ocrmypdf_j2_deskew"], 3)
        if emb:
            ratios["embedded_vs_ocrmypdf"] = round(emb / ppm["ocrmypdf_j2_deskew"], 3)
            if "khana_process_embedded_2proc_keep" in ppm:
                ratios["embedded_keep_vs_ocrmypdf"] = round(ppm["khana_process_embedded_2proc_keep"] / ppm["ocrmypdf_j2_deskew"], 3)
            if "khana_process_embedded_2proc_compare_src" in ppm:
                ratios["compare_src_embedded_vs_ocrmypdf"] = round(
                    ppm["khana_process_embedded_2proc_compare_src"] / ppm["ocrmypdf_j2_deskew"], 3)
            targets["embedded_vs_ocrmypdf >= 2"] = ratios["embedded_vs_ocrmypdf"] >= 2.0
    results["ratios"] = ratios
    results["targets"] = targets
    results["seconds"] = {k: round(v, 2) for k, v in secs.items()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
