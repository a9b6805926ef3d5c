"""Throughput benchmark: the same 20-page batch through raw Tesseract, OCRmyPDF and Khana.

    .venv/bin/python bench/throughput/run.py [--pages 20] [--json bench/throughput/results.json]

(a) raw Tesseract, two processes at a time, OMP_THREAD_LIMIT=1, TSV output, Khana's page
    segmentation mode (so the difference is Khana's own work, not a different OCR setup);
(b) OCRmyPDF -j 2 --deskew -l fas on the batch as one PDF (if ocrmypdf is installed);
(c) Khana's distributed mode: a real Celery worker (prefork) on the Redis broker running
    every stage (quality, OCR, assemble: searchable PDF, report, delivery) with 1 and with
    2 pool processes; the clock runs from submitting the batch (originals stored, records
    written) to the batch being forwarded;
(d) for reference, `khana process` (embedded worker, 2 processes, no servers).

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


def bench_raw_tesseract(pages: list[Path], work: Path, procs: int = 2) -> float:
    from ocr.engine import DEFAULT_PSM

    out = work / "raw"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(p: Path) -> None:
        subprocess.run(["tesseract", str(p), str(out / p.stem), "-l", "fas", "--psm", str(DEFAULT_PSM), "--dpi", "300",
                        "tsv"], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        list(pool.map(one, pages))
    return time.perf_counter() - t0


def bench_ocrmypdf(pages: list[Path], work: Path) -> tuple[float | None, str]:
    exe = shutil.which("ocrmypdf") or str(Path(sys.executable).with_name("ocrmypdf"))
    if not Path(exe).exists():
        return None, "ocrmypdf is not installed (pip install ocrmypdf)"
    import img2pdf

    src = work / "batch.pdf"
    src.write_bytes(img2pdf.convert([str(p) for p in pages]))
    dst = work / "ocrmypdf-out.pdf"
    cmd = [exe, "-j", "2", "--deskew", "-l", "fas", str(src), str(dst)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    dt = time.perf_counter() - t0
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    if r.returncode != 0:
        return None, f"ocrmypdf {version} failed (exit {r.returncode}): {r.stderr.strip()[-400:]}"
    return dt, f"ocrmypdf {version}: {' '.join(['ocrmypdf', *cmd[1:4], '-l', 'fas', 'batch.pdf', 'out.pdf'])}"


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
                       database_url: str | None) -> float:
    from fixtures_services import KhanaStack
    from pipeline.service import BatchMeta, Upload

    stack = KhanaStack(work / f"khana-c{concurrency}", redis_url=redis_url, database_url=database_url)
    try:
        stack.worker("quality,ocr,assemble", concurrency=concurrency, name=f"bench{concurrency}")
        # warm-up: the first task of each pool process imports the OCR and PDF libraries
        warm = [Upload(p.name, p.read_bytes()) for p in pages[:concurrency]]
        sub = stack.service.submit_batch(warm, BatchMeta(court="court-1"))
        stack.wait_final(sub.batch_id, timeout=600)
        uploads = [Upload(p.name, p.read_bytes()) for p in pages]
        t0 = time.perf_counter()
        sub = stack.service.submit_batch(uploads, BatchMeta(court="court-1", office="bench"))
        status = stack.wait_final(sub.batch_id, timeout=1800)
        dt = time.perf_counter() - t0
        if status != "forwarded":
            print(f"warning: the batch ended {status}", file=sys.stderr)
        return dt
    finally:
        stack.close()


def bench_khana_embedded(pages: list[Path], work: Path) -> float:
    exe = Path(sys.executable).with_name("khana")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env.update(KHANA_HOME=str(work / "embedded-home"), OMP_THREAD_LIMIT="1", KHANA_WORKERS="2")
    t0 = time.perf_counter()
    subprocess.run([str(exe), "process", *map(str, pages), "--out", str(work / "embedded-out"), "--json"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "_work" / "throughput")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "throughput" / "results.json")
    ap.add_argument("--skip-ocrmypdf", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true")
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
    results["load_average_at_start"] = os.getloadavg()

    print(f"{n} pages in {work / 'pages'}", file=sys.stderr)
    secs["raw_tesseract_2proc"] = bench_raw_tesseract(pages, work)
    print(f"(a) raw tesseract x2: {secs['raw_tesseract_2proc']:.1f}s", file=sys.stderr)
    if not args.skip_ocrmypdf:
        dt, note = bench_ocrmypdf(pages, work)
        results["notes"].append(note)
        if dt is not None:
            secs["ocrmypdf_j2_deskew"] = dt
            print(f"(b) ocrmypdf: {dt:.1f}s", file=sys.stderr)
    for c in (1, 2):
        secs[f"khana_celery_{c}proc"] = bench_khana_celery(pages, work, c, redis_url, db_url)
        print(f"(c) khana celery c={c}: {secs[f'khana_celery_{c}proc']:.1f}s", file=sys.stderr)
    if not args.skip_embedded:
        secs["khana_process_embedded_2proc"] = bench_khana_embedded(pages, work)
        print(f"(d) khana process: {secs['khana_process_embedded_2proc']:.1f}s", file=sys.stderr)
    if db_url:
        from fixtures_services import drop_postgres_db

        drop_postgres_db(db_url)

    results["load_average_at_end"] = os.getloadavg()
    ppm = {k: round(n / v * 60.0, 1) for k, v in secs.items()}
    results["pages_per_minute"] = ppm
    k2, k1, raw = ppm["khana_celery_2proc"], ppm["khana_celery_1proc"], ppm["raw_tesseract_2proc"]
    ratios = {"khana2_vs_raw_tesseract": round(k2 / raw, 3), "khana2_vs_khana1": round(k2 / k1, 3)}
    if "ocrmypdf_j2_deskew" in ppm:
        ratios["khana2_vs_ocrmypdf"] = round(k2 / ppm["ocrmypdf_j2_deskew"], 3)
    results["ratios"] = ratios
    results["targets"] = {"khana2_vs_raw_tesseract >= 0.9": ratios["khana2_vs_raw_tesseract"] >= 0.9,
                          "khana2_vs_khana1 >= 1.8": ratios["khana2_vs_khana1"] >= 1.8}
    if "khana2_vs_ocrmypdf" in ratios:
        results["targets"]["khana2_vs_ocrmypdf >= 2"] = ratios["khana2_vs_ocrmypdf"] >= 2.0
    results["seconds"] = {k: round(v, 2) for k, v in secs.items()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
