"""The station's parts in-process: deadlines, backoff, the outbox, the watch folder, the settings, the local check."""
from __future__ import annotations

import os
import random
import sqlite3
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from core.errors import BadInput
from station.config import StationSettings, load_settings, write_config
from station.intake import FilingMeta, parse_deadline, queue_filing, validate
from station.outbox import Outbox, QueuedFile, SenderBusy
from station.sender import BadToken, Sender, backoff_delay, retry_after_seconds
from station.watch import QUEUED, REFUSED, FolderWatcher


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith("KHANA_STATION_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KHANA_STATION_CONFIG", str(tmp_path / "station.toml"))
    monkeypatch.setenv("KHANA_STATION_HOME", str(tmp_path / "outbox"))
    return load_settings()


@pytest.fixture
def outbox(settings):
    with Outbox(settings.home) as ob:
        yield ob


@pytest.fixture(scope="module")
def blank_png(pages_dir) -> bytes:
    return (pages_dir / "blank.png").read_bytes()


def test_deadlines_gregorian_and_solar_hijri():
    assert parse_deadline("2026-12-01") == "2026-12-01"
    assert parse_deadline("1405/09/10") == "2026-12-01"
    assert parse_deadline("۱۴۰۵/۰۹/۱۰") == "2026-12-01"
    assert parse_deadline(" 1405/9/11 ") == "2026-12-02"
    assert parse_deadline("") is None and parse_deadline(None) is None
    for bad in ("1405/13/01", "2026-02-30", "tomorrow", "99/01/01", "1405-09-11"):
        with pytest.raises(BadInput) as e:
            parse_deadline(bad)
        assert "مهلت" in e.value.one_line() and "deadline" in e.value.one_line()
    with pytest.raises(BadInput, match="one year ago"):
        parse_deadline("2020-01-01")


def test_backoff_grows_with_jitter_and_honours_retry_after_within_the_cap():
    rng = random.Random(7)
    d1 = [backoff_delay(1, 1.0, 60.0, rng=rng) for _ in range(200)]
    d5 = [backoff_delay(5, 1.0, 60.0, rng=rng) for _ in range(200)]
    assert 0.5 <= min(d1) and max(d1) <= 1.0 and len(set(d1)) > 100  # jittered
    assert 8.0 <= min(d5) and max(d5) <= 16.0
    assert all(backoff_delay(30, 1.0, 60.0, rng=rng) <= 60.0 for _ in range(50))
    assert backoff_delay(1, 1.0, 60.0, retry_after=30, rng=rng) == 30.0
    assert backoff_delay(1, 1.0, 60.0, retry_after=600, rng=rng) == 60.0  # capped
    assert retry_after_seconds("30") == 30.0 and retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    when = datetime.now(timezone.utc) + timedelta(seconds=90)
    assert 80 <= retry_after_seconds(format_datetime(when, usegmt=True)) <= 91


def _resp(code: int, body=None, headers=None) -> httpx.Response:
    return httpx.Response(code, json=body, headers=headers, request=httpx.Request("POST", "http://x/api/v1/batches"))


def test_answers_are_judged_retry_refusal_or_bad_token(outbox, settings):
    s = Sender(outbox, settings)
    try:
        assert s._judge(_resp(202, {"batch": "b1"})).batch == "b1"
        for code in (408, 429, 500, 502, 503, 504):
            assert s._judge(_resp(code, {"detail": "later"})).kind == "retry"
        assert s._judge(_resp(429, {"detail": "slow"}, {"Retry-After": "7"})).retry_after == 7.0
        conflict = s._judge(_resp(409, {"detail": "idempotency key reused with another filing"}))
        assert conflict.kind == "rejected" and conflict.message == "409: idempotency key reused with another filing"
        bad = s._judge(_resp(422, {"detail": [{"loc": ["body", "court"], "msg": "Field required"}]}))
        assert bad.kind == "rejected" and bad.message == "422: court: Field required"
        assert s._judge(_resp(413, {"detail": "too large"})).kind == "rejected"
        for code in (401, 403):
            with pytest.raises(BadToken):
                s._judge(_resp(code, {"detail": "no"}))
    finally:
        s.close()


def _add(outbox, data, case, deadline=None, source=None):
    return outbox.add([QueuedFile("p.png", data, "png", 1)], court="c", case_number=case, document_type="petition",
                      deadline=deadline, source=source)


def test_outbox_keeps_files_durably_and_hands_out_nearest_deadline_first(outbox, blank_png):
    a = _add(outbox, blank_png, "1", None)
    b = _add(outbox, blank_png, "2", "2026-12-09")
    c = _add(outbox, blank_png, "3", "2026-12-02")
    [f] = outbox.files(a.id)
    assert f.path.read_bytes() == blank_png and f.path.parent.name == a.id
    assert sqlite3.connect(outbox.home / "outbox.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [outbox.claim_next().id for _ in range(3)] == [c.id, b.id, a.id]
    assert outbox.claim_next() is None
    # a killed sender leaves filings `sending`: the next sender takes them back
    with outbox.sender_lock():
        assert set(outbox.counts()) == {"queued"}
        with pytest.raises(SenderBusy), Outbox(outbox.home) as other, other.sender_lock():
            pass
    assert outbox.idempotency_key(a.id) == outbox.idempotency_key(a.id) != outbox.idempotency_key(b.id)
    # only a filing not yet with the server can be withdrawn
    outbox.mark_accepted(b.id, "batch-b")
    assert outbox.cancel(a.id) and not outbox.cancel(b.id) and outbox.claim_next().id == c.id
    assert outbox.idempotency_key(a.id).endswith(a.id)


def test_a_queuing_cut_off_before_its_commit_leaves_no_filing_and_is_cleaned_up(outbox, blank_png):
    # what a power cut leaves at worst: copies without a row (the operator never saw an id)
    half = outbox.files_dir / ".tmp-20261201-101010-abcdef"
    half.mkdir()
    (half / "01-p.png").write_bytes(blank_png[:100])
    whole = outbox.files_dir / "20261201-101011-abcdef"
    whole.mkdir()
    kept = _add(outbox, blank_png, "1")
    assert [f.id for f in outbox.all()] == [kept.id]
    assert outbox.remove_orphans(older_than_s=0) == 2
    assert [p.name for p in outbox.files_dir.iterdir()] == [kept.id]


def test_validation_is_the_servers_and_refuses_the_whole_filing(settings, blank_png):
    with pytest.raises(BadInput) as e:
        validate([("a.png", blank_png), ("b.pdf", b"%PDF-1.4 broken")], settings)
    assert "b.pdf" in e.value.message and "nothing was queued" in e.value.message and "خراب" in e.value.one_line()
    with pytest.raises(BadInput) as e:
        validate([("notes.txt", b"hello")], settings)
    assert "unsupported" in e.value.message and "پشتیبانی" in e.value.one_line()
    small = StationSettings(max_pages_per_batch=1)
    with pytest.raises(BadInput, match="at most 1"):
        validate([("a.png", blank_png), ("b.png", blank_png)], small)
    with pytest.raises(BadInput, match="missing court, type"):
        FilingMeta.parse("", "123", None, None)
    # the server's metadata rules, at the counter
    assert FilingMeta.parse("tehran-civil-12", "۱۴۰۲ ۰۹۹۸-۷", "petition", "۱۴۰۵/۰۹/۱۰").case_number == "140209987"
    with pytest.raises(BadInput, match="case_number") as e:
        FilingMeta.parse("c", "12ab", "petition", None)
    assert "شمارهٔ پرونده" in e.value.one_line()
    with pytest.raises(BadInput, match="court"):
        FilingMeta.parse("-bad court", "1", "petition", None)


def _folder(root: Path, name: str, png: bytes, meta: str | None = 'court = "c"\ncase = "77"\ntype = "petition"\n'):
    d = root / name
    d.mkdir(parents=True)
    (d / "page-1.png").write_bytes(png)
    if meta is not None:
        (d / "filing.toml").write_text(meta, encoding="utf-8")
    return d


def test_watch_folder_queues_a_complete_folder_once_and_moves_it_aside(outbox, settings, blank_png, tmp_path):
    scans = tmp_path / "scans"
    done = _folder(scans, "done", blank_png, 'court = "c"\ncase_number = "۷۷"\ndocument_type = "p"\n'
                                              'deadline = "1405/09/12"\n')
    no_meta = _folder(scans, "no-meta", blank_png, None)
    growing = _folder(scans, "growing", blank_png)
    partial = _folder(scans, "partial", blank_png)
    (partial / "page-2.png.part").write_bytes(b"...")
    torn = _folder(scans, "torn", blank_png[:2000])
    w = FolderWatcher(outbox, settings, scans, check=False)
    assert w.poll() == []  # first sight: wait for one more poll
    with open(growing / "page-1.png", "ab") as fh:  # the scanner is still writing
        fh.write(b"\0")
    events = w.poll()
    assert sorted((e.kind, e.folder.parent.name) for e in events) == [("queued", QUEUED), ("refused", REFUSED)]
    queued = next(e for e in events if e.kind == "queued")
    assert queued.filing.case_number == "77" and queued.filing.deadline == "2026-12-03"
    assert not done.exists() and queued.folder.name == f"done--{queued.filing.id}"
    assert (scans / REFUSED / "torn" / "khana-refused.txt").read_text(encoding="utf-8").count("/") >= 1
    assert not torn.exists() and no_meta.exists() and partial.exists()
    assert [e.kind for e in w.poll()] == ["queued"]  # the folder that grew, now stable
    assert not growing.exists() and w.poll() == [] and len(outbox.all()) == 2


def test_watch_folder_queued_before_a_crash_is_moved_aside_not_queued_again(outbox, settings, blank_png, tmp_path):
    scans = tmp_path / "scans"
    d = _folder(scans, "f1", blank_png)
    w = FolderWatcher(outbox, settings, scans, check=False)
    w.poll()
    from station.watch import _snapshot

    # the previous run queued this folder and died before moving it
    first = queue_filing(outbox, settings, [("page-1.png", blank_png)], FilingMeta("c", "77", "petition"),
                         source=w._fingerprint(d, _snapshot(d)))
    [ev] = w.poll()
    assert ev.filing.id == first.id and len(outbox.all()) == 1 and not d.exists()


def test_settings_from_the_config_file_overridden_by_the_environment_token_never_shown(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith("KHANA_STATION_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KHANA_STATION_CONFIG", str(tmp_path / "cfg" / "station.toml"))
    path = write_config({"url": "https://khana.example.ir/", "token": "s3cret-tok", "office": "11-2301"})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    s = load_settings()
    assert s.url == "https://khana.example.ir" and s.office == "11-2301" and s.token_value() == "s3cret-tok"
    assert "s3cret-tok" not in repr(s) and "s3cret-tok" not in str(s.model_dump())
    monkeypatch.setenv("KHANA_STATION_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KHANA_STATION_HOME", str(tmp_path / "ob"))
    s = load_settings()
    assert s.url == "http://127.0.0.1:9" and s.home == tmp_path / "ob" and s.office == "11-2301"
    monkeypatch.setenv("KHANA_STATION_URL", "khana.example.ir")
    with pytest.raises(BadInput, match="http"):
        load_settings()
    monkeypatch.delenv("KHANA_STATION_URL")
    path.write_text("url = [broken", encoding="utf-8")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_settings()


def test_local_check_holds_a_blank_page_with_its_picture_and_passes_a_clean_one(pages_dir, tmp_path):
    import quality
    from station.precheck import check_file

    policy = quality.load_policy()
    t0 = time.perf_counter()
    [blank] = check_file((pages_dir / "blank.png").read_bytes(), "blank.png", 1, tmp_path, policy)
    [clean] = check_file((pages_dir / "clean.png").read_bytes(), "clean.png", 1, tmp_path, policy)
    [blurred] = check_file((pages_dir / "blurred.png").read_bytes(), "blurred.png", 1, tmp_path, policy)
    assert time.perf_counter() - t0 < 60  # a sanity bound only; speed is measured in bench/station
    assert blank.decision == "hold" and blank.reasons == ["blank"]
    assert Path(blank.picture).read_bytes().startswith(b"\x89PNG")
    assert clean.decision == "pass" and clean.reasons == [] and clean.picture is None
    assert blurred.decision == "hold" and "blurred" in blurred.reasons
