"""Search benchmark: clerk queries over 100,000 synthetic forwarded pages, on SQLite FTS5 and PostgreSQL.

    PYTHONPATH=. .venv/bin/python bench/search/run.py [--pages 100000] [--queries 200] [--db sqlite,postgresql]
                                                      [--pg-server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Builds a migrated Khana database per backend (SQLite file in a scratch folder; a fresh
PostgreSQL database, dropped afterwards) holding `--pages` forwarded pages: filings of
five pages for ten courts, each page about 200 words of Persian generated from the seed
articles (a word-bigram chain over ../shared/seeds, or testpages' built-in text), a
header with the case number, the date and the parties' names, and spelling variants a
scanner's OCR produces (Arabic yeh and kaf, نیم‌فاصله or not, Persian or Latin digits).
Rows go in with bulk inserts; the full-text index is filled by the same machinery as in
production (FTS5 triggers / the generated tsvector column).

Then `--queries` clerk searches of each kind, each within one court, through the real
domain call `pipeline.court.search` (index query, ranking, join with the filings, snippets
with highlighted words): one word, two words, a case number (typed in Persian or Latin
digits, with or without separators), a rare word (a party's name). Prints p50/p95/max
latency per kind and backend and writes them as JSON (`--out`).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from pipeline import court as court_mod  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Batch, Delivery, OriginalFile, Page, SearchBatch, SearchPage  # noqa: E402
from ocr.search_text import case_key, index_text  # noqa: E402
from storage.search import court_token  # noqa: E402
from testpages.render import seed_texts  # noqa: E402

COURTS = [f"tehran-civil-{i}" for i in range(1, 11)]
PAGES_PER_FILING = 5
WORDS_PER_PAGE = 200
SYLLABLES = ["با", "نو", "ری", "زا", "ده", "مه", "سا", "لو", "پور", "کی", "تا", "جو", "فر", "شی", "رو", "گل", "مین",
             "دا", "نی", "بخ", "تیا", "وش", "هر", "زی", "کا"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ZWNJ = "\u200c"


class Corpus:
    """Deterministic synthetic filings: a bigram chain over the seed articles plus headers."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.words: list[str] = []
        for t in seed_texts():
            self.words.extend(t.split())
        self.next: dict[str, list[str]] = {}
        for a, b in zip(self.words, self.words[1:]):
            self.next.setdefault(a, []).append(b)
        self.names_used: list[str] = []

    def name(self) -> str:
        r = self.rng
        return "".join(r.choice(SYLLABLES) for _ in range(r.randint(3, 4)))

    def body(self, n: int) -> str:
        r = self.rng
        w = r.choice(self.words)
        out = []
        for _ in range(n):
            out.append(w)
            w = r.choice(self.next.get(w) or self.words)
        text_ = " ".join(out)
        if r.random() < 0.3:  # what scanners' OCR and keyboards produce
            text_ = text_.replace("ی", "ي").replace("ک", "ك")
        if r.random() < 0.3:
            text_ = text_.replace(ZWNJ, " ")
        return text_

    def filing(self, i: int) -> dict:
        r = self.rng
        case = f"{r.randint(1399, 1405)}{r.randint(10, 99):02d}{r.randint(10**9, 10**10 - 1)}"
        parties = [self.name(), self.name()]
        self.names_used.extend(parties)
        date_ = f"{r.randint(1399, 1405)}/{r.randint(1, 12):02d}/{r.randint(1, 29):02d}"
        digits = case if r.random() < 0.5 else case.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
        pages = []
        for p in range(PAGES_PER_FILING):
            head = (f"شماره پرونده: {digits} تاریخ: {date_} خواهان: {parties[0]} خوانده: {parties[1]} "
                    if p == 0 else f"پرونده {digits} صفحه {p + 1} ")
            pages.append(head + self.body(WORDS_PER_PAGE))
        return {"case": case, "court": COURTS[i % len(COURTS)], "pages": pages, "parties": parties}


def build(db: Database, n_pages: int, seed: int, chunk: int = 500) -> dict:
    """Fill `db` with forwarded filings; returns what the queries draw from."""
    corpus = Corpus(seed)
    n_filings = n_pages // PAGES_PER_FILING
    cases: list[tuple[str, str]] = []
    samples: list[tuple[str, str]] = []  # (court, page text) to draw words from
    names: list[tuple[str, str]] = []
    t = time.perf_counter()
    for start in range(0, n_filings, chunk):
        rows = {k: [] for k in ("b", "f", "p", "d", "sb", "sp")}
        for i in range(start, min(n_filings, start + chunk)):
            f = corpus.filing(i)
            bid = uuid.UUID(int=corpus.rng.getrandbits(128)).hex
            at = T0 + timedelta(minutes=i)
            rows["b"].append(dict(id=bid, office=f"office-{i % 37}", court=f["court"], case_number=f["case"],
                                  document_type="petition", priority=5, source="api", status="forwarded",
                                  created_at=at, updated_at=at))
            fid = bid[:16] + "f" * 16
            rows["f"].append(dict(id=fid, batch_id=bid, position=1, name="scan.pdf", kind="pdf", object_key=f"{bid}/1",
                                  sha256="0" * 64, size=1, page_count=PAGES_PER_FILING))
            rows["d"].append(dict(id=bid[:16] + "d" * 16, batch_id=bid, court=f["court"], manifest_key=f"{bid}/m",
                                  manifest_sha256="0" * 64, delivered_at=at))
            rows["sb"].append(dict(batch_id=bid, court=f["court"], case_key=case_key(f["case"]), indexed_at=at))
            for seq, page_text in enumerate(f["pages"], start=1):
                pid = bid[:16] + f"{seq:016d}"
                rows["p"].append(dict(id=pid, batch_id=bid, file_id=fid, file_page=seq, seq=seq, status="decided",
                                      decision="pass", reasons=[], text=page_text, search_text="", seconds=0.0,
                                      attempts=1, updated_at=at))
                rows["sp"].append(dict(page_id=pid, batch_id=bid, court=f["court"], court_token=court_token(f["court"]), seq=seq, body=index_text(page_text)))
            cases.append((f["court"], f["case"]))
            if i % 50 == 0:
                samples.append((f["court"], f["pages"][1]))
            names.append((f["court"], f["parties"][0]))
        with db.engine.begin() as conn:
            conn.execute(insert(Batch), rows["b"])
            conn.execute(insert(OriginalFile), rows["f"])
            conn.execute(insert(Page), rows["p"])
            conn.execute(insert(Delivery), rows["d"])
            conn.execute(insert(SearchBatch), rows["sb"])
            conn.execute(insert(SearchPage), rows["sp"])
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('optimize')"))
            conn.execute(text("ANALYZE"))
    return {"cases": cases, "samples": samples, "names": names, "seconds": time.perf_counter() - t}


def _variant(case: str, rng: random.Random) -> str:
    c = case
    form = rng.randrange(4)
    if form == 1:
        c = f"{c[:4]}/{c[4:6]}/{c[6:]}"
    elif form == 2:
        c = f"{c[:4]}-{c[4:6]}-{c[6:]}"
    if rng.random() < 0.5:
        c = c.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return c


def queries(data: dict, n: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {"one word": [], "two words": [], "case number": [], "rare word": []}
    for _ in range(n):
        court, page = rng.choice(data["samples"])
        words = [w for w in page.split() if len(index_text(w)) >= 3 and not any(ch.isdigit() for ch in w)]
        a = rng.randrange(len(words) - 1)
        out["one word"].append((court, words[a]))
        b = rng.randrange(len(words))
        out["two words"].append((court, f"{words[a]} {words[b]}"))
        c_court, case = rng.choice(data["cases"])
        out["case number"].append((c_court, _variant(case, rng)))
        n_court, name = rng.choice(data["names"])
        out["rare word"].append((n_court, name.replace("ی", "ي") if rng.random() < 0.5 else name))
    return out


def _server_cpu(db: Database) -> float:
    """Seconds of CPU the PostgreSQL backends of this database have used (from /proc; 0 when not readable)."""
    if db.engine.dialect.name != "postgresql":
        return 0.0
    with db.engine.connect() as c:
        pids = [r[0] for r in c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                             ))]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(db: Database, qs: dict[str, list[tuple[str, str]]], limit: int) -> dict:
    """Wall-clock latency per query, and the CPU it used (this process, plus the PostgreSQL server's
    backends): on a machine shared with other work the wall clock includes waiting for a core."""
    results = {}
    warm = [q for kind in qs.values() for q in kind[:10]]
    for court, q in warm:
        court_mod.search(db, court, q, limit=limit)
    for kind, items in qs.items():
        times, cpu, found = [], [], 0
        server0 = _server_cpu(db)
        for court, q in items:
            t, c = time.perf_counter(), time.process_time()
            hits = court_mod.search(db, court, q, limit=limit)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            found += bool(hits)
        server_ms = (_server_cpu(db) - server0) * 1000 / len(items)
        times.sort()
        cpu.sort()
        results[kind] = {"n": len(times), "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "max_ms": round(times[-1], 1),
                         "cpu_p50_ms": round(statistics.median(cpu), 1),
                         "cpu_p95_ms": round(cpu[int(0.95 * (len(cpu) - 1))], 1),
                         "server_cpu_mean_ms": round(server_ms, 1), "with_hits": found}
    return results


def _pg_database(server: str) -> str:
    name = f"khana_bench_{uuid.uuid4().hex[:8]}"
    eng = create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def _pg_drop(server: str, url: str) -> None:
    eng = create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200, help="queries of each kind")
    ap.add_argument("--limit", type=int, default=20, help="results per search (one page of results)")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--pg-server", default=os.environ.get("KHANA_TEST_POSTGRES_URL",
                                                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench" / "search" / "results.json"))
    ap.add_argument("--keep", metavar="DIR", help="keep the databases in DIR (and reuse them on the next run: "
                    "only the queries are run again)")
    args = ap.parse_args()
    report = {"pages": args.pages, "queries_per_kind": args.queries, "limit": args.limit,
              "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "backends": {}}
    for backend in args.db.split(","):
        keep = Path(args.keep) if args.keep else None
        tmp = None if keep else tempfile.TemporaryDirectory(prefix="khana-bench-search-")
        folder = keep or Path(tmp.name)
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder / f"{backend}.json"
        if backend == "sqlite":
            url = f"sqlite:///{folder}/khana.db"
        elif keep and saved.exists():
            url = json.loads(saved.read_text())["url"]
        else:
            url = _pg_database(args.pg_server)
        db = Database(url)
        try:
            if saved.exists():
                db.migrate()
                data = json.loads(saved.read_text())["data"]
            else:
                db.migrate()
                data = build(db, args.pages, args.seed)
                if keep:
                    saved.write_text(json.dumps({"url": url, "data": data}, ensure_ascii=False))
            size = (Path(folder, "khana.db").stat().st_size if backend == "sqlite" else
                    db.engine.connect().execute(text("SELECT pg_database_size(current_database())")).scalar())
            print(f"{backend}: {args.pages} pages loaded and indexed in {data['seconds']:.0f} s, database {size / 2**20:.0f} MiB",
                  flush=True)
            res = measure(db, queries(data, args.queries, args.seed + 1), args.limit)
            for kind, r in res.items():
                print(f"  {kind:12s} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms"
                      f"  | CPU p50 {r['cpu_p50_ms']:5.1f} ms p95 {r['cpu_p95_ms']:5.1f} ms"
                      f" + server {r['server_cpu_mean_ms']:5.1f} ms  ({r['with_hits']}/{r['n']} with hits)", flush=True)
            report["backends"][backend] = {"load_seconds": round(data["seconds"], 1), "database_mib": round(size / 2**20),
                                           "queries": res, "load_average_1min": round(os.getloadavg()[0], 1)}
            Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        finally:
            db.dispose()
            if not keep:
                if backend != "sqlite":
                    _pg_drop(args.pg_server, url)
                tmp.cleanup()

if __name__ == "__main__":
    main()
