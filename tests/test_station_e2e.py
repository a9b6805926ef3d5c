"""The station uploader end to end: the real `khana station` CLI against a real `khana serve` process."""
from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from station_helpers import OFFICE, TOKEN, Server, Station

from testpages import degrade

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pages(tmp_path_factory, pages_dir) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("station-pages")
    big = d / "big-blank.tif"  # an uncompressed A4 page (8.7 MB): uploads long enough to be killed in
    Image.fromarray(degrade.blank(seed=2)).save(big, dpi=(300, 300))
    corrupt = d / "torn.png"
    corrupt.write_bytes((pages_dir / "blank.png").read_bytes()[:3000])
    return {"blank": pages_dir / "blank.png", "clean": pages_dir / "clean.png", "blurred": pages_dir / "blurred.png",
            "big": big, "corrupt": corrupt}


def _wait(pred, timeout: float = 120, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_queue_during_outage_then_send_delivers_each_filing_once_nearest_deadline_first(tmp_path, pages):
    server = Server(tmp_path / "server")
    st = Station(tmp_path, server.url)
    # the central system is down: the operator keeps queuing; a local check answers at the counter
    r = st.run("push", str(pages["blurred"]), str(pages["blank"]), "--court", "tehran-civil-12", "--case", "1001",
               "--type", "petition", "--deadline", "1405/09/20")
    assert r.returncode == 3, r.stderr  # queued, and a page will be held
    later = r.stdout.strip()
    assert "2 of 2 page(s) will be held" in r.stderr and "blurred" in r.stderr
    assert "blank" in r.stderr and "صفحه خالی است" in r.stderr and "problems.png" in r.stderr
    picture = Path(next(line.split("picture: ", 1)[1] for line in r.stderr.splitlines() if "picture: " in line))
    assert picture.is_file() and picture.read_bytes().startswith(b"\x89PNG")
    soonest = st.push(pages["blank"], case="1002", deadline="۱۴۰۵/۰۹/۱۱")  # 2026-12-02
    no_deadline = st.push(pages["blank"], case="1003")
    middle = st.push(pages["blank"], case="1004", deadline="2026-12-05")
    down = st.run("send", "--give-up", "1")
    assert down.returncode == 6 and "still queued" in down.stderr
    assert set(st.states().values()) == {"queued"}

    server.start()
    try:
        sent = st.run("send")
        assert sent.returncode == 0, sent.stderr
        batches = server.batches()
        assert len(batches) == 4
        keys = Counter(b["idempotency_key"] for b in batches)
        assert len(keys) == 4 and all(k.startswith(f"{OFFICE}:station-") for k in keys)
        # nearest deadline first, no deadline last
        assert [b["case_number"] for b in batches] == ["1002", "1004", "1001", "1003"]
        assert {b["office"] for b in batches} == {OFFICE}
        assert batches[0]["deadline"] == "2026-12-02"
        # sending again delivers nothing twice
        again = st.run("send")
        assert again.returncode == 0 and len(server.batches()) == 4

        # afterwards: which filings arrived and which pages to rescan, and why (in Persian)
        def all_held():
            s = st.status()
            return s if all(f["state"] == "held" for f in s["filings"]) else None
        status = _wait(all_held)
        by_id = {f["id"]: f for f in status["filings"]}
        assert set(by_id) == {later, soonest, no_deadline, middle}
        rescan = by_id[later]["rescan"]
        assert [(p["file"], p["page"]) for p in rescan] == [("blurred.png", 1), ("blank.png", 1)]
        assert "blurred" in [x["code"] for x in rescan[0]["reasons"]]
        assert rescan[1]["reasons"][0]["code"] == "blank" and rescan[1]["reasons"][0]["fa"].startswith("صفحه خالی")
        text = st.run("status")
        assert text.returncode == 0 and "held" in text.stdout and "صفحه خالی است" in text.stdout
        assert TOKEN not in text.stdout + text.stderr + sent.stderr + down.stderr
    finally:
        server.stop()


def test_sender_killed_mid_upload_loses_nothing_and_duplicates_nothing(tmp_path, pages):
    server = Server(tmp_path / "server").start()
    st = Station(tmp_path, server.url)
    try:
        ids = [st.push(pages["big"], pages["big"], pages["big"], case=f"20{i:02d}", deadline=f"2026-12-{10 + i:02d}")
               for i in range(8)]
        kills_while_sending = 0
        for attempt in range(12):
            proc = st.popen("send")
            accepted_before = sum(1 for s in st.states().values() if s == "accepted")
            # wait until this run has delivered something (or is uploading), then kill it hard
            _wait(lambda: proc.poll() is not None or "sending" in st.states().values()
                  or sum(1 for s in st.states().values() if s == "accepted") > accepted_before, timeout=60, every=0.02)
            time.sleep(0.05 * (attempt % 4))
            if proc.poll() is not None:
                assert proc.returncode == 0, proc.stderr.read()
                break
            if "sending" in st.states().values():
                kills_while_sending += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            final = st.run("send")
            assert final.returncode == 0, final.stderr
        assert kills_while_sending >= 1  # the kill did land in the middle of an upload
        assert set(st.states().values()) == {"accepted"} or all(
            s in ("accepted", "held") for s in st.states().values())
        batches = server.batches()
        assert sorted(b["case_number"] for b in batches) == [f"20{i:02d}" for i in range(8)]  # no loss, no duplicate
        assert len({b["idempotency_key"] for b in batches}) == len(ids) == len(batches)
    finally:
        server.stop()


def test_storage_down_503_is_retried_until_it_succeeds(tmp_path, pages):
    server = Server(tmp_path / "server").start()
    st = Station(tmp_path, server.url)
    try:
        fid = st.push(pages["blank"], case="3001")
        server.storage_down()
        proc = st.popen("send", "--give-up", "60")
        _wait(lambda: " 503 " in server.log_text(), timeout=60, every=0.1)
        _wait(lambda: server.log_text().count(" 503 ") >= 3, timeout=60, every=0.1)  # a few more refusals, with backoff
        server.storage_up()
        out, errs = proc.communicate(timeout=120)
        assert proc.returncode == 0, errs
        assert "503" in errs and "storage is unavailable" in errs
        with sqlite3.connect(st.home / "outbox.db") as c:
            attempts, state = c.execute("SELECT attempts, state FROM filings WHERE id = ?", (fid,)).fetchone()
        assert attempts >= 2 and state == "accepted"
        assert server.log_text().count(" 503 ") >= 2
        assert [b["case_number"] for b in server.batches()] == ["3001"]
    finally:
        server.stop()


def test_corrupt_file_refused_at_push_and_a_filing_the_server_refuses_is_rejected_while_others_go(tmp_path, pages):
    # this server takes at most 2 pages per filing: a 3-page filing passes the station's checks but gets a 400
    server = Server(tmp_path / "server", KHANA_MAX_PAGES_PER_BATCH="2").start()
    st = Station(tmp_path, server.url, parallel="2")  # two uploads in flight
    try:
        bad = st.run("push", str(pages["blank"]), str(pages["corrupt"]), "--court", "c", "--case", "4000",
                     "--type", "petition")
        assert bad.returncode == 2 and bad.stdout == ""
        assert "torn.png" in bad.stderr and "خراب" in bad.stderr and "corrupt" in bad.stderr
        assert "nothing was queued" in bad.stderr and "Traceback" not in bad.stderr
        assert not (st.home / "outbox.db").exists() or st.states() == {}

        ok1 = st.push(pages["blank"], case="4001", deadline="2026-12-03")
        refused = st.push(pages["blank"], pages["blank"], pages["blank"], case="4002", deadline="2026-12-02")
        ok2 = st.push(pages["blank"], case="4003")
        r = st.run("send")
        assert r.returncode == 2, r.stderr  # something was rejected
        states = st.states()
        assert states[refused] == "rejected" and states[ok1] in ("accepted", "held") and states[ok2] in ("accepted", "held")
        rejected = next(f for f in st.status("--offline")["filings"] if f["id"] == refused)
        assert rejected["message"].startswith("400:") and "at most 2" in rejected["message"]
        assert sorted(b["case_number"] for b in server.batches()) == ["4001", "4003"]
        text = st.run("status", "--offline")
        assert "rejected" in text.stdout and "at most 2" in text.stdout
    finally:
        server.stop()


def test_a_bad_token_stops_everything_with_one_clear_line(tmp_path, pages):
    server = Server(tmp_path / "server").start()
    wrong = "wrong-token-8c1d"
    st = Station(tmp_path, server.url, token=wrong)
    try:
        a = st.push(pages["blank"], case="5001")
        b = st.push(pages["blank"], case="5002")
        r = st.run("send")
        assert r.returncode == 2
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "token" in lines[0] and "توکن" in lines[0]
        assert wrong not in r.stdout + r.stderr
        assert st.states() == {a: "queued", b: "queued"} and server.batches() == []
        shown = st.run("config")
        assert shown.returncode == 0 and "(set, hidden)" in shown.stdout and wrong not in shown.stdout + shown.stderr
        assert wrong not in st.run("status", "--json").stdout
    finally:
        server.stop()


def test_run_watches_the_scanner_folder_and_delivers_until_stopped(tmp_path, pages):
    server = Server(tmp_path / "server").start()
    st = Station(tmp_path, server.url, refresh_s="1")
    scans = tmp_path / "scans"
    scans.mkdir()
    proc = st.popen("run", "--watch", str(scans))
    try:
        folder = scans / "ahmadi"
        folder.mkdir()
        (folder / "page-2.png").write_bytes(pages["blank"].read_bytes())
        (folder / "page-10.png").write_bytes(pages["blank"].read_bytes())
        (folder / "filing.toml").write_text('court = "tehran-civil-12"\ncase = "6001"\ntype = "petition"\n'
                                            'deadline = "1405/09/15"\n', encoding="utf-8")
        batches = _wait(lambda: server.batches(), timeout=120)
        assert [b["case_number"] for b in batches] == ["6001"] and batches[0]["deadline"] == "2026-12-06"
        assert not folder.exists() and len(list((scans / ".queued").iterdir())) == 1
        held = _wait(lambda: [f for f in st.status("--offline")["filings"] if f["state"] == "held"], timeout=120)
        assert held[0]["rescan"] and held[0]["pages"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=60)
        server.stop()
    assert proc.returncode == 0, errs
    assert "queued" in errs and "accepted" in errs and "stopped" in errs
    assert len(server.batches()) == 1


def test_watch_command_queues_a_folder_and_a_queued_filing_can_be_cancelled(tmp_path, pages):
    st = Station(tmp_path, "http://127.0.0.1:9")  # no server: watching and queuing need none
    scans = tmp_path / "scans"
    (scans / "f1").mkdir(parents=True)
    (scans / "f1" / "p1.png").write_bytes(pages["clean"].read_bytes())
    (scans / "f1" / "filing.toml").write_text('court = "c"\ncase = "7001"\ntype = "petition"\n', encoding="utf-8")
    r = st.run("watch", str(scans), "--once")
    assert r.returncode == 0, r.stderr
    assert "queued" in r.stderr and "look fine" in r.stderr and not (scans / "f1").exists()
    [f] = st.status("--offline")["filings"]
    assert f["state"] == "queued" and f["case_number"] == "7001" and f["precheck"][0]["decision"] == "pass"
    assert st.run("watch", str(scans), "--once").returncode == 0 and len(st.status("--offline")["filings"]) == 1
    c = st.run("cancel", f["id"])
    assert c.returncode == 0 and st.states() == {f["id"]: "cancelled"}
    again = st.run("cancel", f["id"])
    assert again.returncode == 2 and "only a queued filing" in again.stderr
    assert st.run("send", "--give-up", "1").returncode == 0  # nothing left to send


def test_a_station_token_made_by_khana_admin_works(tmp_path, pages):
    import subprocess

    from station_helpers import base_env, khana_cmd

    server = Server(tmp_path / "server").start()
    try:
        made = subprocess.run(khana_cmd() + ["admin", "token", "create", "--role", "station", "--office", "22-0101"],
                              env={**base_env(), "KHANA_HOME": str(server.home)}, capture_output=True, text=True,
                              timeout=120)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        st = Station(tmp_path, server.url, token=token)
        st.push(pages["blank"], case="8001")
        r = st.run("send")
        assert r.returncode == 0, r.stderr
        assert [(b["case_number"], b["office"]) for b in server.batches()] == [("8001", "22-0101")]
        assert token not in r.stdout + r.stderr
    finally:
        server.stop()
