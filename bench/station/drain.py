"""Station benchmark: how long an outbox of N small filings takes to drain once the server is back.

    .venv/bin/python bench/station/drain.py [--filings 200] [--json bench/station/results.json]

1. The server is down: N one-page filings (a rendered Persian A4 page at 300 dpi, PNG, ~0.2-0.4 MB, with
   varied deadlines) are queued into a fresh outbox (the station's own validation; no local check, which is
   measured separately below).
2. `khana serve` starts (embedded default, KHANA_WORKERS=1, a station token) on a loopback port.
3. The clock runs from starting `khana station send` to its exit: every filing uploaded with its
   Idempotency-Key and acknowledged (originals stored and recorded). The server's embedded worker processes
   the pages meanwhile (it competes for the same cores, as it would on a real server).
4. Checks: the server holds exactly N batches, one per filing (counted in its database).

It also times the verdict at the counter: `khana station push --check` of one page (CLI start included) and
the local check alone per page.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ["OMP_THREAD_LIMIT"] = "1"

from PIL import Image  # noqa: E402

from station_helpers import OFFICE, TOKEN, Server, khana_cmd  # noqa: E402


def page_png(seed: int) -> bytes:
    from testpages import render_page

    buf = io.BytesIO()
    Image.fromarray(render_page(n_words=80, seed=seed, size_pt=13).image).save(buf, "PNG", dpi=(300, 300))
    return buf.getvalue()


def _env(home: Path, url: str, work: Path, parallel: int = 1) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env.update(PYTHONPATH=str(REPO), OMP_THREAD_LIMIT="1", KHANA_STATION_HOME=str(home), KHANA_STATION_URL=url,
               KHANA_STATION_TOKEN=TOKEN, KHANA_STATION_CONFIG=str(work / "none.toml"),
               KHANA_STATION_PARALLEL=str(parallel))
    return env


def drain(n_filings: int, pages: list[bytes], parallel: int) -> dict:
    """Queue N filings with the server down, start it, time `khana station send`; check N batches arrived."""
    from station.config import StationSettings
    from station.intake import FilingMeta, queue_filing
    from station.outbox import Outbox

    work = Path(tempfile.mkdtemp(prefix="khana-bench-station-"))
    settings = StationSettings(home=work / "outbox", office=OFFICE)
    today = date.today()
    t0 = time.perf_counter()
    with Outbox(settings.home) as outbox:
        for i in range(n_filings):
            deadline = None if i % 7 == 0 else (today + timedelta(days=i % 30)).isoformat()
            queue_filing(outbox, settings, [(f"page-{i}.png", pages[i % len(pages)])],
                         FilingMeta("tehran-civil-12", f"1405{i:06d}", "petition", deadline))
    queue_s = time.perf_counter() - t0
    total_bytes = sum(len(pages[i % len(pages)]) for i in range(n_filings))
    server = Server(work / "server").start()
    try:
        t0 = time.perf_counter()
        r = subprocess.run(khana_cmd() + ["station", "send"], env=_env(settings.home, server.url, work, parallel),
                           capture_output=True, text=True)
        drain_s = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"send failed ({r.returncode}): {r.stderr[-2000:]}")
        with sqlite3.connect(server.home / "khana.db") as c:
            n, keys = c.execute("SELECT count(*), count(DISTINCT idempotency_key) FROM batches").fetchone()
        assert n == keys == n_filings, (n, keys)
    finally:
        server.stop()
    return {"parallel": parallel, "mib": round(total_bytes / 2**20, 1), "queue_seconds": round(queue_s, 2),
            "drain_seconds": round(drain_s, 2), "filings_per_second": round(n_filings / drain_s, 2),
            "server_batches": n, "load_after": round(os.getloadavg()[0], 1)}


def counter_verdict(work: Path, page: bytes) -> tuple[list[float], list[float]]:
    """`khana station push --check` of one page, CLI start included (no server needed)."""
    one = work / "one.png"
    one.write_bytes(page)
    env = _env(work / "outbox", "http://127.0.0.1:9", work)
    push_s, check_s = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.run(khana_cmd() + ["station", "push", str(one), "--court", "c", "--case", "1", "--type", "t",
                                          "--json"], env=env, capture_output=True, text=True)
        push_s.append(time.perf_counter() - t0)
        assert p.returncode in (0, 3), p.stderr
        check_s += [v["seconds"] for v in json.loads(p.stdout)["precheck"]]
    return push_s, check_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filings", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--parallel", default="1,2", help="uploads in flight (KHANA_STATION_PARALLEL), one run each")
    args = ap.parse_args()

    load0 = round(os.getloadavg()[0], 1)
    pages = [page_png(s) for s in range(5)]
    runs = [drain(args.filings, pages, int(p)) for p in args.parallel.split(",")]
    work = Path(tempfile.mkdtemp(prefix="khana-bench-station-"))
    push_s, check_s = counter_verdict(work, pages[0])

    from station.precheck import check_file
    import quality

    policy = quality.load_policy()
    per_page, cpu_page = [], []
    check_file(pages[0], "p.png", 1, work / "checks", policy)  # warm-up (imports, first allocations)
    for data in pages:
        t0, c0 = time.perf_counter(), time.process_time()
        check_file(data, "p.png", 1, work / "checks", policy)
        per_page.append(time.perf_counter() - t0)
        cpu_page.append(time.process_time() - c0)

    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "filings": args.filings,
        "runs": runs,
        "push_with_check_seconds_median": round(statistics.median(push_s), 2),
        "local_check_seconds_per_page_median": round(statistics.median(per_page), 3),
        "local_check_seconds_per_page_max": round(max(per_page), 3),
        "local_check_cpu_seconds_per_page_median": round(statistics.median(cpu_page), 3),
        "push_check_seconds": check_s,
        "load_avg_1m_start": load0,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
