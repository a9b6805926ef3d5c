"""The embedded worker behind `khana serve` (what a small office runs) losing a process, with the SHIPPED
defaults (issue 11 item 8): nothing here shortens a lease, a sweep or a stuck limit.

A pool process SIGKILLed in the middle of a page (what the out-of-memory killer does) must not stop the
server: the pool is replaced, the pages it held are run again and decided exactly once, the next filing is
served, and /healthz and /readyz tell the truth throughout.
"""
from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import png_bytes

from fixtures_services import wait_for
from live_serve import FORM, Serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def text_pngs():
    from testpages import render_page

    return [png_bytes(render_page(n_words=150, seed=40 + i).image) for i in range(3)]


def test_serve_replaces_a_pool_process_killed_mid_page_and_serves_the_next_filing(tmp_path, text_pngs):
    srv = Serve(tmp_path).start()  # shipped defaults: workers = CPU cores, lease 45 s, sweep 15 s
    try:
        batch = srv.upload(text_pngs)
        tess_pid, pool_pid = wait_for(lambda: (srv.tesseracts() or [None])[0], 150, interval=0.05,
                                      what="Tesseract in a pool process")
        os.kill(pool_pid, signal.SIGKILL)  # the out-of-memory killer
        try:
            os.kill(tess_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        killed = time.monotonic()
        st = srv.wait_final(batch, timeout=240)
        took = time.monotonic() - killed
        assert st["status"] == "forwarded" and st["pages_decided"] == 3, st
        assert sorted(srv.decided_counts(batch).values()) == [1, 1, 1]  # every page decided exactly once
        assert pool_pid not in srv.pool_processes() and srv.pool_processes()  # a new pool took over
        h = srv.get("/healthz")
        assert h.status_code == 200 and h.json()["embedded_worker"] == "ok"
        ready = srv.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["embedded_worker"]["pool_restarts"] >= 1 and ready.json()["waiting"]["pages"] == 0
        assert "worker process was lost" in srv.log_path.read_text()
        # and the next filing is served
        nxt = srv.upload(text_pngs[:1])
        assert srv.wait_final(nxt, timeout=180)["status"] == "forwarded"
        print(f"pool process killed mid-page: batch finished {took:.0f} s later")
    finally:
        srv.stop()


def test_embedded_worker_whose_processes_cannot_start_reports_unhealthy(khana_home):
    """Processes that die at start (here: a gate policy file that is not there) break every pool: the worker
    says so, /healthz and /readyz answer 503, and the page waits (nothing is lost or decided wrongly)."""
    import numpy as np
    from fastapi.testclient import TestClient

    from api.app import create_app
    from khana.bootstrap import build_runtime
    from khana.settings import Settings

    import functools

    from pipeline.accounts import Accounts

    good = Settings(home=khana_home, workers=1)
    rt = build_runtime(good)
    broken = Settings(home=khana_home, gate_policy=khana_home / "no-such-policy.toml", workers=1)
    rt.rebuild = functools.partial(build_runtime, broken, migrate=False)  # what each pool process runs at start
    _tid, tok = Accounts(rt.db).create_token("station", office="11-2301")
    with TestClient(create_app(rt, settings=good), headers={"Authorization": f"Bearer {tok}"}) as c:
        r = c.post("/api/v1/batches", data=FORM,
                   files=[("files", ("p.png", png_bytes(np.full((900, 700), 255, np.uint8)), "image/png"))])
        assert r.status_code == 202
        batch = r.json()["batch"]
        wait_for(lambda: c.get("/healthz").status_code == 503, 120, interval=1.0, what="/healthz 503")
        body = c.get("/healthz").json()
        assert "worker processes keep dying" in body["embedded_worker"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["embedded_worker"]["alive"] is False
        st = c.get(f"/api/v1/batches/{batch}").json()
        assert st["status"] in ("received", "processing") and st["pages_decided"] == 0
        assert st["waiting"]["pages"] == 1 and st["waiting"]["worker_available"] is False
    rt.close()
