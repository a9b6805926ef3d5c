"""The bad-input corpus (tests/bad_inputs.py, generated) through the CLI and through a live `khana serve`
(issue 11): each kind has one exact outcome.

* refused: the CLI exits 2 with one line on stderr naming the problem in Persian and English, and writes
  nothing; the API answers 400 with that line, records nothing and stores nothing; the server stays healthy.
* accepted (odd but legitimate files, hostile names): the CLI exits 3 (the page is held for the expected
  reason) and the API accepts it and decides it; no control character of a name reaches a report, an
  output file name or a status answer.

Also here: the object store's folder replaced by a file while the server runs (503 + Retry-After, nothing
recorded, healthy again once the folder is back).
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bad_inputs import Case, corpus
from conftest import run_khana, run_khana_here
from live_serve import FORM, Serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the CLI cases run once, together (module fixture)

CASES = corpus()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_the_corpus_has_at_least_40_kinds():
    kinds = {c.kind for c in CASES}
    assert len(kinds) == len(CASES) >= 40
    assert sum(c.outcome == "refused" for c in CASES) >= 25 and sum(c.outcome == "held" for c in CASES) >= 15


# --- the CLI ---------------------------------------------------------------------------------------------
def _cli_path(root: Path, case: Case) -> tuple[Path, str]:
    """(working folder, argument) for a case: the file is written under its (possibly hostile) name."""
    work = root / case.kind
    name = case.name
    if name.startswith("../"):
        (work / "a" / "b").mkdir(parents=True)
        name = "a/b/" + name
    target = work / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(case.data)
    return work, name


# Every CLI case runs in this process (conftest.run_khana_here: the same typer app, environment, working folder,
# stdout/stderr at the file-descriptor level; an accepted file still goes through the embedded worker's own
# pool processes), which spares ~2 CPU-seconds of imports each. These kinds (one per decoder and per limit, and
# accepted files of four sorts) ALSO run as real `khana` processes: the status a shell sees and a real stderr
# without a traceback; the in-process run must give exactly what the process gives.
PROCESS_LEVEL = ("empty", "gif", "truncated-png", "truncated-jpeg", "truncated-tiff", "pdf-garbage",
                 "pdf-user-password", "pdf-501-pages", "png-bomb", "tiff-last-page-truncated",
                 "png-16bit", "tiff-multipage", "pdf-broken-xref", "name-newline-ansi")
CLI_CASES = [c for c in CASES if "api-only" not in c.tags]


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Every CLI case run once: {kind: [(how, result, work folder)]}. The PROCESS_LEVEL kinds also run as real
    `khana process` runs (three at a time) while the in-process runs go on."""
    root = tmp_path_factory.mktemp("bad-cli")
    base_env = dict(os.environ)  # before any in-process run adds its KHANA_HOME

    def in_process(case: Case):
        work, arg = _cli_path(root / "here", case)
        return run_khana_here("process", arg, "--out", "out", "--json", cwd=work,
                              env={"KHANA_HOME": str(work / "home")}), work

    def as_process(case: Case):
        work, arg = _cli_path(root / "process", case)
        return run_khana("process", arg, "--out", "out", "--json", cwd=work, timeout=600,
                         env={**base_env, "KHANA_HOME": str(work / "home")}), work

    runs: dict[str, list] = {c.kind: [] for c in CLI_CASES}
    with ThreadPoolExecutor(3) as pool:
        futures = [(c, pool.submit(as_process, c)) for c in CLI_CASES if c.kind in PROCESS_LEVEL]
        for c in CLI_CASES:
            runs[c.kind].append(("in-process", *in_process(c)))
        for c, fut in futures:
            runs[c.kind].append(("process", *fut.result()))
    return runs


def test_the_process_level_kinds_cover_every_decoder_and_run_both_ways(cli_results):
    refused = {c.kind for c in CASES if c.outcome == "refused"}
    held = {c.kind for c in CLI_CASES if c.outcome == "held"}
    assert len(set(PROCESS_LEVEL) & refused) >= 10 and len(set(PROCESS_LEVEL) & held) >= 4
    assert set(PROCESS_LEVEL) <= refused | held
    for kind in refused | held:
        hows = sorted(how for how, _r, _w in cli_results[kind])
        assert hows == (["in-process", "process"] if kind in PROCESS_LEVEL else ["in-process"]), (kind, hows)


@pytest.mark.parametrize("kind", PROCESS_LEVEL)
def test_in_process_cli_gives_exactly_what_the_process_gives(kind, cli_results):
    runs = {how: r for how, r, _w in cli_results[kind]}
    here, proc = runs["in-process"], runs["process"]
    assert (here.returncode, here.stderr) == (proc.returncode, proc.stderr)

    def pages(out: str) -> list[dict]:  # the JSON lines but their timing
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in out.splitlines()]

    assert pages(here.stdout) == pages(proc.stdout)


def test_in_process_cli_would_see_a_stray_warning_log_line_or_c_library_message(tmp_path, monkeypatch):
    """The in-process runner cannot hide what a process would print: a Python warning, a log record and a write
    to file descriptor 2 (what a C library does) all reach the captured stderr, so the one-line assertions
    above can fail for them."""
    import logging
    import warnings

    import khana.cli

    real = khana.cli._read_input

    def noisy(f):
        warnings.warn("a library warning", UserWarning)
        logging.getLogger("some.library").warning("a library log line")
        os.write(2, b"a C library message\n")
        return real(f)

    monkeypatch.setattr(khana.cli, "_read_input", noisy)
    (tmp_path / "empty.png").write_bytes(b"")
    r = run_khana_here("process", "empty.png", "--out", "out", "--json", cwd=tmp_path,
                       env={"KHANA_HOME": str(tmp_path / "home")})
    assert r.returncode == 2
    assert "a library warning" in r.stderr and "a library log line" in r.stderr
    assert "a C library message" in r.stderr and "the file is empty" in r.stderr
    assert len(r.stderr.strip().splitlines()) > 1  # what test_cli_refuses_... would reject


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "refused"], ids=lambda c: c.kind)
def test_cli_refuses_with_one_clear_line_and_writes_nothing(case, cli_results):
    assert cli_results[case.kind]
    for how, r, work in cli_results[case.kind]:
        assert r.returncode == 2, (how, r.returncode, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, (how, r.stderr)  # one line: no traceback, no library warning
        assert case.en in lines[0] and case.fa in lines[0], (how, lines[0])
        assert "Traceback" not in r.stderr and "<" not in lines[0] and "PDFium" not in lines[0]
        assert r.stdout == ""
        assert not (work / "out").exists()


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "held" and "api-only" not in c.tags],
                         ids=lambda c: c.kind)
def test_cli_accepts_odd_files_and_holds_them_for_the_reason(case, cli_results):
    assert cli_results[case.kind]
    for how, r, work in cli_results[case.kind]:
        assert r.returncode == 3, (how, r.returncode, r.stderr[-2000:])
        pages = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(pages) == case.pages, how
        for p in pages:
            assert p["decision"] == "hold" and case.reason in p["reasons"], (how, p)
            assert not CONTROL.search(p["file"]), p["file"]
        report = json.loads((work / "out" / "report.json").read_text(encoding="utf-8"))
        assert not CONTROL.search(json.dumps(report, ensure_ascii=False))
        for f in (work / "out").iterdir():  # every output stays in --out, with a clean name
            assert f.parent == work / "out" and not CONTROL.search(f.name), f.name
        assert not CONTROL.search(r.stderr)


# --- the API (a live khana serve) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Serve(tmp_path_factory.mktemp("bad-api")).start()
    yield srv
    srv.stop()


def _counts(srv: Serve) -> tuple[int, int]:
    from storage.models import Batch

    rt = srv.runtime()
    try:
        with rt.db.session() as s:
            batches = s.scalar(select(func.count()).select_from(Batch))
    finally:
        rt.close()
    originals = srv.home / "objects" / "originals"
    return batches, sum(1 for p in originals.rglob("*") if p.is_file()) if originals.exists() else 0


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "refused"], ids=lambda c: c.kind)
def test_api_refuses_with_400_one_line_nothing_stored_server_healthy(case, server):
    before = _counts(server)
    r = server.post_raw(case.name.encode(), case.data)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and case.en in detail and case.fa in detail, detail
    assert _counts(server) == before  # no batch, no original kept
    assert server.get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def held_uploads(server) -> dict:
    """Every accepted kind uploaded at once (after the refusals' tests, which count what is stored), so the
    server's pool processes decide them side by side; each test then waits for its own filing."""
    return {c.kind: server.post_raw(c.name.encode(), c.data) for c in CASES if c.outcome == "held"}


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "held"], ids=lambda c: c.kind)
def test_api_accepts_odd_files_decides_them_and_cleans_names(case, server, held_uploads):
    r = held_uploads[case.kind]
    assert r.status_code == 202, r.text
    batch = r.json()["batch"]
    st = server.wait_final(batch, timeout=600)  # the filings uploaded together are decided in turn
    assert st["status"] == "held" and st["pages_decided"] == case.pages, st
    for p in st["pages"]:
        assert p["decision"] == "hold" and case.reason in p["reasons"], p
    assert not CONTROL.search(json.dumps(st, ensure_ascii=False))
    assert server.get("/healthz").status_code == 200


def test_store_folder_replaced_by_a_file_is_503_with_retry_after_and_nothing_recorded(server):
    """Issue 11 item 4: the local store's OS errors are the documented 503, not a 500; healthy once repaired."""
    from conftest import png_bytes
    import numpy as np

    png = png_bytes(np.full((877, 620), 255, np.uint8))
    objects = server.home / "objects"
    before = _counts(server)
    moved = objects.with_name("objects.moved")
    objects.rename(moved)
    objects.write_bytes(b"not a folder")
    try:
        r = httpx.post(f"{server.base}/api/v1/batches", data=FORM, files=[("files", ("p.png", png, "image/png"))],
                       timeout=60)
        assert r.status_code == 503 and r.headers.get("retry-after"), (r.status_code, r.text)
        assert "NOT accepted" in r.json()["detail"]
        assert server.get("/healthz").status_code == 503  # the store is broken: said so, not hidden
        from storage.models import Batch

        rt = server.runtime()
        with rt.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Batch)) == before[0]
        rt.close()
    finally:
        objects.unlink()
        moved.rename(objects)
    assert server.get("/healthz").status_code == 200  # repaired: healthy, and it takes filings again
    r = httpx.post(f"{server.base}/api/v1/batches", data=FORM, files=[("files", ("p.png", png, "image/png"))],
                   timeout=60)
    assert r.status_code == 202
    assert server.wait_final(r.json()["batch"], timeout=120)["status"] == "held"
