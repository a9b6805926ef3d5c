"""Soak benchmark: pages through the whole Celery stack while its parts are being killed (issue 11).

    .venv/bin/python bench/soak/run.py [--pages 1000] [--batch 5] [--interval 20] [--kill-every 20]
                                       [--json bench/soak/results.json]

Real parts, SHIPPED timings (lease 45 s, renewal 15 s, sweep 15 s; nothing shortened):
a private Redis (AOF), PostgreSQL (a fresh database on KHANA_TEST_POSTGRES_URL's server or
127.0.0.1:5432), the S3 server (moto, over HTTP with the real `minio` client), a quality+assemble
worker (1 process), an OCR worker (2 processes), the sweeper.

Filings of `--batch` pages are uploaded every `--interval` seconds (through the service layer: originals
stored, batch recorded, pages published) until `--pages` pages are in. Meanwhile:

* every `--kill-every` seconds one worker pool process is SIGKILLed (round robin over the quality and
  OCR workers; Celery's main process forks a new one), with its Tesseract if it runs one;
* once, half-way through the uploads, Redis is stopped and started again (3 s down);
* a worker whose main process exits is started again (as docker compose's restart policy would), and
  the event is reported.

Reported (stdout, and `--json`): pages per minute (from the first upload to the last decision), pages
decided exactly once (one `page_decided` audit event each: must be all), pages lost (never decided),
filings forwarded, the worst and the 95th-percentile time from upload to decision, kills done.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ["OMP_THREAD_LIMIT"] = "1"


def _pages(n: int) -> list[bytes]:
    from PIL import Image

    from testpages import render_page

    out = []
    for i in range(n):
        img = render_page(n_words=90, seed=500 + i).image
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG", dpi=(300, 300))
        out.append(buf.getvalue())
    return out


def _pg_server() -> str:
    return os.environ.get("KHANA_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=5, help="pages per filing")
    ap.add_argument("--interval", type=float, default=20.0, help="seconds between two uploads")
    ap.add_argument("--kill-every", type=float, default=20.0, help="seconds between two SIGKILLs of a pool process")
    ap.add_argument("--ocr-concurrency", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up this long after the last upload")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from fixtures_services import KhanaStack, RedisServer, S3Server, drop_postgres_db, make_postgres_db

    work = Path(tempfile.mkdtemp(prefix="khana-soak-"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "khana-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "khana-test-secret")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # a stopped run still cleans up (finally below)
    redis = s3 = st = sweeper = None
    db_url = None
    try:
        redis = RedisServer(persist=True).start()
        s3 = S3Server().start()
        db_url = make_postgres_db(_pg_server(), prefix="khana_soak")
        st = KhanaStack(work, redis_url=redis.url, database_url=db_url, s3_endpoint=s3.endpoint)
        sweeper = subprocess.Popen([sys.executable, "-m", "khana.cli", "sweeper", "--no-migrate"], cwd=REPO,
                                   env=st.env, stdout=open(work / "sweeper.log", "ab"), stderr=subprocess.STDOUT)
        result = _soak(args, st, redis)
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    finally:
        if sweeper is not None:
            sweeper.terminate()
            sweeper.wait(20)
        if st is not None:
            st.close()
        if s3 is not None:
            s3.stop()
        if redis is not None:
            redis.close()
        if db_url:
            drop_postgres_db(db_url)


def _soak(args, st, redis) -> dict:
    from pipeline.service import BatchMeta, Upload

    light = st.worker("quality,assemble", concurrency=1, name="soak-light", start=False).start(timeout=300)
    ocr = st.worker("ocr", concurrency=args.ocr_concurrency, name="soak-ocr", start=False).start(timeout=300)
    pages = _pages(min(args.batch * 2, 10))
    stop = threading.Event()
    kills: list[dict] = []
    events: list[str] = []
    t0 = time.monotonic()

    def chaos():
        workers = [light, ocr]
        n = 0
        while not stop.wait(args.kill_every):
            for dead in [w for w in workers if w.proc is None or w.proc.poll() is not None]:
                # what docker compose's restart policy does for a worker whose main process exited
                events.append(f"{dead.name} main process exited at {time.monotonic() - t0:.0f} s: restarted")
                dead.start(timeout=300)
            w = workers[n % len(workers)]
            n += 1
            pool = w.pool_processes()
            if not pool:
                continue
            victim = random.choice(pool)
            tess = [t for t, parent in w.tesseracts() if parent == victim]
            for pid in [victim, *tess]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            kills.append({"t": round(time.monotonic() - t0, 1), "worker": w.name, "pid": victim,
                          "mid_ocr": bool(tess)})

    batches: list[str] = []
    started = datetime.now(timezone.utc)
    chaos_thread = threading.Thread(target=chaos, daemon=True)
    chaos_thread.start()
    n_batches = (args.pages + args.batch - 1) // args.batch
    restarted = False
    try:
        for i in range(n_batches):
            k = min(args.batch, args.pages - i * args.batch)
            ups = [Upload(f"f{i:04d}-p{j + 1}.png", pages[(i + j) % len(pages)]) for j in range(k)]
            meta = BatchMeta(office="soak-office", court="court-7", document_type="petition")
            for attempt in range(30):  # the station retries with its idempotency key while Redis is down
                try:
                    batches.append(st.service.submit_batch(ups, meta, idempotency_key=f"soak-{i}").batch_id)
                    break
                except Exception as exc:  # noqa: BLE001
                    events.append(f"upload {i} retry {attempt + 1}: {type(exc).__name__}")
                    time.sleep(2)
            if not restarted and i >= n_batches // 2:
                redis.restart(down_s=3.0)
                restarted = True
                events.append(f"redis restarted at {time.monotonic() - t0:.0f} s")
            if i < n_batches - 1:
                time.sleep(args.interval)
        last_upload = time.monotonic()

        def all_final():
            from sqlalchemy import func, select

            from storage.models import Batch

            with st.rt.db.session() as s:
                return s.scalar(select(func.count()).select_from(Batch).where(
                    Batch.id.in_(batches), Batch.status.in_(("received", "processing")))) == 0

        while time.monotonic() - last_upload < args.timeout:
            try:
                if all_final():
                    break
            except Exception:  # noqa: BLE001
                pass
            time.sleep(2)
    finally:
        stop.set()
        chaos_thread.join(5)
    return _measure(st, batches, started, args, kills, events, restarted)


def _measure(st, batches, started, args, kills, events, restarted) -> dict:
    from sqlalchemy import func, select

    from storage.models import AuditEvent, Batch, Page

    def utc(d):
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)

    with st.rt.db.session() as s:
        pages = list(s.execute(select(Page.id, Page.batch_id, Batch.created_at).join(Batch, Batch.id == Page.batch_id)
                               .where(Page.batch_id.in_(batches))))
        decided = {}
        for pid, at in s.execute(select(AuditEvent.page_id, AuditEvent.at).where(
                AuditEvent.batch_id.in_(batches), AuditEvent.action == "page_decided")):
            decided.setdefault(pid, []).append(utc(at))
        statuses = dict(s.execute(select(Batch.status, func.count()).where(Batch.id.in_(batches)).group_by(Batch.status)).all())
        parked = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.batch_id.in_(batches), AuditEvent.action == "page_parked"))
    waits = sorted((min(decided[pid]) - utc(created)).total_seconds() for pid, _b, created in pages if pid in decided)
    once = sum(1 for pid, _b, _c in pages if len(decided.get(pid, [])) == 1)
    twice = sum(1 for pid, _b, _c in pages if len(decided.get(pid, [])) > 1)
    last = max((max(v) for v in decided.values()), default=started)
    minutes = max(1e-9, (last - started).total_seconds() / 60)
    return {
        "when": started.isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores), load average at the end {os.getloadavg()[0]:.1f}",
        "command": "bench/soak/run.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                                   if k != "json" and v is not None),
        "pages": len(pages), "filings": len(batches),
        "pages_per_minute": round(len(waits) / minutes, 2),
        "decided_exactly_once": once, "decided_more_than_once": twice, "never_decided": len(pages) - len(waits),
        "parked_for_qa": parked,
        "filings_by_status": statuses,
        "upload_to_decision_s": {"worst": round(waits[-1], 1) if waits else None,
                                 "p95": round(waits[int(0.95 * (len(waits) - 1))], 1) if waits else None,
                                 "median": round(waits[len(waits) // 2], 1) if waits else None},
        "sigkills": len(kills), "sigkills_mid_ocr": sum(k["mid_ocr"] for k in kills), "redis_restarted": restarted,
        "events": events[-20:],
    }


if __name__ == "__main__":
    main()
