"""The station API: uploads acknowledged only once stored, status and rescan lists, PDFs, auth."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import png_bytes
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from khana.settings import get_settings
from khana.bootstrap import build_runtime
from storage.models import Batch
from testpages import degrade, render_page


@pytest.fixture(scope="module")
def text_png() -> bytes:
    return png_bytes(render_page(n_words=50, seed=21, size_pt=14).image)


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    return png_bytes(degrade.blank(seed=4))


FORM = {"court": "tehran-civil-12", "case_number": "140209987654321", "document_type": "petition"}


def station_token(office: str = "11-2301", rt=None) -> dict:
    """A database station token for the current KHANA_HOME (or `rt`'s database), as request headers."""
    from pipeline.accounts import Accounts

    own = rt is None
    rt = rt or build_runtime()
    try:
        _tid, tok = Accounts(rt.db).create_token("station", office=office)
    finally:
        if own:
            rt.close()
    return {"Authorization": f"Bearer {tok}"}


def client(app, headers: dict | None = None) -> TestClient:
    return TestClient(app, headers=headers if headers is not None else station_token())


def wait_decided(client, batch_id, headers=None, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/batches/{batch_id}", headers=headers).json()
        if body["status"] not in ("received", "processing"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} not finished: {body}")


@pytest.mark.slow
def test_upload_status_rescan_list_pdf_and_problem_image(khana_home, text_png, blank_png):
    with client(create_app()) as c:
        r = c.post("/api/v1/batches", data={**FORM, "office": "spoofed"},
                   files=[("files", ("p1.png", text_png, "image/png")), ("files", ("p2.png", blank_png, "image/png"))])
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["created"] and body["pages"] == 2
        st = wait_decided(c, body["batch"])
        assert st["status"] == "held" and st["pages_decided"] == 2
        assert [(x["file"], x["page"]) for x in st["rescan"]] == [("p2.png", 1)]
        reason = st["rescan"][0]["reasons"][0]
        assert reason["code"] == "blank" and reason["fa"] and reason["en"]
        pdf = c.get(f"/api/v1/batches/{body['batch']}/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        img = c.get(f"/api/v1/batches/{body['batch']}/pages/2/problems.png")
        assert img.status_code == 200 and img.content.startswith(b"\x89PNG")
        assert c.get(f"/api/v1/batches/{body['batch']}/pages/1/problems.png").status_code == 404


def test_idempotency_key_returns_the_same_batch(khana_home, blank_png):
    with client(create_app(start_worker=False)) as c:
        files = [("files", ("p.png", blank_png, "image/png"))]
        a = c.post("/api/v1/batches", data=FORM, files=files, headers={"Idempotency-Key": "k-1"}).json()
        b = c.post("/api/v1/batches", data=FORM, files=files, headers={"Idempotency-Key": "k-1"}).json()
        assert a["batch"] == b["batch"] and a["created"] and not b["created"]
        rt = build_runtime()
        with rt.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Batch)) == 1
        rt.close()


def test_bad_file_is_refused_with_a_clear_message(khana_home, blank_png):
    with client(create_app(start_worker=False)) as c:
        r = c.post("/api/v1/batches", data=FORM,
                   files=[("files", ("ok.png", blank_png, "image/png")), ("files", ("notes.txt", b"hello", "text/plain"))])
        assert r.status_code == 400
        assert "notes.txt" in r.json()["detail"] and "unsupported" in r.json()["detail"]
        assert c.post("/api/v1/batches", data={"case_number": "1"}, files=[("files", ("ok.png", blank_png))]).status_code == 422
        assert c.get("/api/v1/batches/nope").status_code == 404


def test_station_tokens_and_office_isolation(khana_home, monkeypatch, blank_png):
    monkeypatch.setenv("KHANA_API_TOKENS", "tok-a=office-a,tok-b=office-b")
    get_settings.cache_clear()
    with TestClient(create_app(start_worker=False)) as c:
        files = [("files", ("p.png", blank_png, "image/png"))]
        assert c.post("/api/v1/batches", data=FORM, files=files).status_code == 401
        assert c.post("/api/v1/batches", data=FORM, files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/api/v1/batches", data={**FORM, "office": "spoofed"}, files=files,
                   headers={"Authorization": "Bearer tok-a"})
        assert r.status_code == 202
        batch = r.json()["batch"]
        own = c.get(f"/api/v1/batches/{batch}", headers={"Authorization": "Bearer tok-a"})
        assert own.status_code == 200 and own.json()["office"] == "office-a"  # the token's office, not the form's
        assert c.get(f"/api/v1/batches/{batch}", headers={"Authorization": "Bearer tok-b"}).status_code == 404


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_object_store_down_means_503_and_nothing_recorded(khana_home, monkeypatch, blank_png):
    monkeypatch.setenv("KHANA_OBJECT_STORE", "minio")
    monkeypatch.setenv("KHANA_MINIO_ENDPOINT", f"127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("KHANA_MINIO_ACCESS_KEY", "k")
    monkeypatch.setenv("KHANA_MINIO_SECRET_KEY", "s")
    get_settings.cache_clear()
    rt = build_runtime(get_settings(), migrate=False)
    rt.db.migrate()
    with client(create_app(rt, start_worker=False), station_token(rt=rt)) as c:
        r = c.post("/api/v1/batches", data=FORM, files=[("files", ("p.png", blank_png, "image/png"))])
        assert r.status_code == 503 and "NOT accepted" in r.json()["detail"]
        assert c.get("/healthz").status_code == 503
    with rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 0
    rt.close()


@pytest.mark.slow
def test_khana_serve_end_to_end(tmp_path, blank_png):
    port = free_port()
    env = {**os.environ, "KHANA_HOME": str(tmp_path / "home"), "KHANA_WORKERS": "1"}
    for var in ("KHANA_DATABASE_URL", "KHANA_OBJECT_STORE", "KHANA_BROKER_URL", "KHANA_API_TOKENS"):
        env.pop(var, None)
    exe = Path(sys.executable).with_name("khana")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("khana serve did not start")
        r = httpx.post(f"{base}/api/v1/batches", data=FORM, files=[("files", ("p.png", blank_png, "image/png"))],
                       timeout=30)
        assert r.status_code == 202
        batch = r.json()["batch"]
        with httpx.Client(base_url=base, timeout=10) as c:
            st = wait_decided(c, batch, timeout=90)
        assert st["status"] == "held" and st["rescan"][0]["reasons"][0]["code"] == "blank"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_refuses_a_public_address_without_tokens(tmp_path):
    env = {**os.environ, "KHANA_HOME": str(tmp_path / "home")}
    env.pop("KHANA_API_TOKENS", None)
    exe = Path(sys.executable).with_name("khana")
    r = subprocess.run([str(exe), "serve", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "KHANA_API_TOKENS" in r.stderr


@pytest.mark.slow
def test_embedded_worker_finishes_batches_left_open_by_a_previous_run(khana_home, blank_png):
    # a run that accepted a batch and stopped before processing it (no worker: as after a crash)
    headers = station_token()
    with client(create_app(start_worker=False), headers) as c:
        batch = c.post("/api/v1/batches", data=FORM, files=[("files", ("p.png", blank_png, "image/png"))]).json()["batch"]
        assert c.get(f"/api/v1/batches/{batch}").json()["status"] == "received"
    # the next start re-drives it
    with client(create_app(), headers) as c:
        st = wait_decided(c, batch)
        assert st["status"] == "held" and st["rescan"][0]["reasons"][0]["code"] == "blank"
