"""The web service against a real `khana serve` process: access rules, sessions and CSRF, upload hardening.

Every request goes over a real socket to uvicorn; accounts are made with the real `khana admin` command.
"""
from __future__ import annotations

import socket
import time

import httpx
import pytest
from conftest import png_bytes
from web_fixtures import start_server, stop_server

from testpages import degrade

FORM = {"court": "tehran-civil-12", "case_number": "140209987654321", "document_type": "petition"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    return png_bytes(degrade.blank(seed=4))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server for the module: small upload limits so the limits are quick to test."""
    s = start_server(tmp_path_factory.mktemp("web") / "home",
                     {"KHANA_MAX_UPLOAD_BYTES": str(5 * MIB), "KHANA_UPLOAD_BUDGET_BYTES": str(16 * MIB),
                      "KHANA_UPLOAD_WAIT_S": "1"})
    s.tok = {"a": s.token("station", office="office-a"), "b": s.token("station", office="office-b"),
             "qa": s.token("qa"), "clerk": s.token("clerk", court="tehran-civil-12"), "admin": s.token("admin")}
    yield s
    stop_server(s)


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(scope="module")
def held_batch(srv, blank_png) -> str:
    r = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, headers=bearer(srv.tok["a"]),
                   files=[("files", ("blank.png", blank_png, "image/png"))], timeout=60)
    assert r.status_code == 202, r.text
    batch = r.json()["batch"]
    body = srv.wait_batch(batch, srv.tok["a"])
    assert body["status"] == "held" and body["office"] == "office-a"
    return batch


def test_first_try_mode_only_until_an_account_exists(live_server):
    url = live_server.url
    r = httpx.get(f"{url}/station")
    assert r.status_code == 200 and "حالت آزمایشی" in r.text  # the banner of the first-try mode
    assert httpx.get(f"{url}/api/v1/batches/0123456789abcdef0123456789abcdef").status_code == 404
    assert httpx.get(f"{url}/admin/accounts").status_code == 404  # never the admin pages
    live_server.token("station", office="11-2301")
    r = httpx.get(f"{url}/station")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/station")
    assert httpx.get(f"{url}/api/v1/batches/0123456789abcdef0123456789abcdef").status_code == 401


def test_serve_on_a_public_address_needs_accounts(tmp_path):
    from conftest import run_khana

    r = run_khana("serve", "--host", "0.0.0.0", "--port", "1", env={"KHANA_HOME": str(tmp_path / "h"),
                                                                    "KHANA_API_TOKENS": ""})
    assert r.returncode == 2 and "khana admin" in r.stderr


def test_a_station_sees_only_its_office(srv, held_batch):
    b = held_batch
    paths = [f"/api/v1/batches/{b}", f"/api/v1/batches/{b}/pdf", f"/api/v1/batches/{b}/pages/1/problems.png",
             f"/api/v1/batches/{b}/pages/1/thumbnail.jpg"]
    own = {p: httpx.get(srv.url + p, headers=bearer(srv.tok["a"])).status_code for p in paths}
    assert own == {paths[0]: 200, paths[1]: 404, paths[2]: 200, paths[3]: 200}  # no PDF: its only page is held
    for who in ("b", "clerk", "admin"):
        for p in paths:
            r = httpx.get(srv.url + p, headers=bearer(srv.tok[who]))
            assert r.status_code == 404, (who, p, r.status_code)
            assert b"PNG" not in r.content[:8] and b"JFIF" not in r.content[:20]
    for p in paths:  # no document without credentials
        assert httpx.get(srv.url + p).status_code == 401
        assert httpx.get(srv.url + p, headers=bearer("not-a-token")).status_code == 401
    # QA sees held pages of every office, but not the station's status API
    assert httpx.get(srv.url + paths[2], headers=bearer(srv.tok["qa"])).status_code == 200
    assert httpx.get(srv.url + paths[0], headers=bearer(srv.tok["qa"])).status_code == 404
    # the station's web page of another office's batch is a 404 too
    assert httpx.get(f"{srv.url}/station/batches/{b}", headers=bearer(srv.tok["b"])).status_code == 404


def test_a_revoked_token_stops_working(srv):
    tok = srv.token("station", office="office-c")
    assert httpx.get(f"{srv.url}/api/v1/batches/x", headers=bearer(tok)).status_code == 404
    tid = [line.split()[0] for line in srv.admin("token", "list").splitlines() if "office-c" in line][0]
    srv.admin("token", "revoke", tid)
    assert httpx.get(f"{srv.url}/api/v1/batches/x", headers=bearer(tok)).status_code == 401


def _raw(srv, head: str, body: bytes = b"", read: bool = True, timeout: float = 10) -> tuple[socket.socket, str]:
    host, port = srv.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    if not read:
        return sock, ""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return sock, data.decode("latin-1")


def test_huge_upload_without_token_is_refused_before_reading(srv):
    head = ("POST /api/v1/batches HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=zz\n"
            f"Content-Length: {5 * 1024 ** 3}\n")
    t0 = time.monotonic()
    sock, resp = _raw(srv, head, b"--zz\r\n" + b"x" * 65536)
    sock.close()
    assert resp.startswith("HTTP/1.1 401") and time.monotonic() - t0 < 5


def test_over_limit_content_length_is_413_at_once(srv):
    head = (f"POST /api/v1/batches HTTP/1.1\nHost: x\nAuthorization: Bearer {srv.tok['a']}\n"
            f"Content-Type: multipart/form-data; boundary=zz\nContent-Length: {5 * 1024 ** 3}\n")
    sock, resp = _raw(srv, head)
    sock.close()
    assert resp.startswith("HTTP/1.1 413")


def test_streamed_body_is_cut_at_the_limit(srv):
    def body():  # chunked: no Content-Length; 8 MiB of file against a 5 MiB limit
        yield b'--zz\r\nContent-Disposition: form-data; name="court"\r\n\r\nc1\r\n'
        yield b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        for _ in range(8):
            yield b"\0" * MIB
        yield b"\r\n--zz--\r\n"

    try:
        r = httpx.post(f"{srv.url}/api/v1/batches", content=body(), timeout=30,
                       headers={**bearer(srv.tok["a"]), "Content-Type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 413 and "MiB" in r.json()["detail"] and "مگابایت" in r.json()["detail"]
    except httpx.HTTPError:  # the server may close the connection while the client is still sending
        pass
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_concurrent_uploads_share_a_byte_budget(srv, blank_png):
    # a slow upload reserves 2 x 5 MiB of the 16 MiB budget and keeps sending nothing
    head = (f"POST /api/v1/batches HTTP/1.1\nHost: x\nAuthorization: Bearer {srv.tok['a']}\n"
            f"Content-Type: multipart/form-data; boundary=zz\nContent-Length: {5 * MIB}\n")
    slow, _ = _raw(srv, head, b"--zz\r\n", read=False)
    try:
        time.sleep(0.5)
        big = b"\0" * (4 * MIB)
        r = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, headers=bearer(srv.tok["a"]),
                       files=[("files", ("big.png", big, "image/png"))], timeout=30)
        assert r.status_code == 503 and r.headers.get("retry-after") and "NOT accepted" in r.json()["detail"]
    finally:
        slow.close()
    time.sleep(0.5)
    r = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, headers=bearer(srv.tok["a"]),
                   files=[("files", ("blank.png", blank_png, "image/png"))], timeout=30)
    assert r.status_code == 202


def test_idempotency_key_with_another_filing_is_409(srv, blank_png):
    files = [("files", ("blank.png", blank_png, "image/png"))]
    h = {**bearer(srv.tok["a"]), "Idempotency-Key": "idem-1"}
    a = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, files=files, headers=h, timeout=30)
    b = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, files=files, headers=h, timeout=30)
    assert a.status_code == b.status_code == 202 and a.json()["batch"] == b.json()["batch"] and not b.json()["created"]
    c = httpx.post(f"{srv.url}/api/v1/batches", data={**FORM, "court": "another-court"}, files=files, headers=h, timeout=30)
    assert c.status_code == 409 and "Idempotency-Key" in c.json()["detail"] and "پذیرفته نشد" in c.json()["detail"]
    # the key belongs to the office: another office may use the same key for its own filing
    d = httpx.post(f"{srv.url}/api/v1/batches", data=FORM, files=files,
                   headers={**bearer(srv.tok["b"]), "Idempotency-Key": "idem-1"}, timeout=30)
    assert d.status_code == 202 and d.json()["batch"] != a.json()["batch"]


@pytest.mark.parametrize("field,value", [("court", "../../x"), ("court", "/etc"), ("court", "x" * 300),
                                         ("deadline", "1900-01-01"), ("deadline", "1405/13/40"),
                                         ("case_number", "12; DROP"), ("court", "")])
def test_bad_metadata_is_refused_at_the_door(srv, blank_png, field, value):
    r = httpx.post(f"{srv.url}/api/v1/batches", data={**FORM, field: value}, headers=bearer(srv.tok["a"]),
                   files=[("files", ("blank.png", blank_png, "image/png"))], timeout=30)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith(field) and any("\u0600" <= ch <= "\u06ff" for ch in detail)  # English and Persian


def test_solar_hijri_deadline_and_persian_digits_are_accepted(srv, blank_png):
    r = httpx.post(f"{srv.url}/api/v1/batches", headers=bearer(srv.tok["a"]),
                   data={**FORM, "case_number": "۱۴۰۲-۰۹۹۸", "deadline": "۱۴۰۵/۰۹/۲۰"},
                   files=[("files", ("blank.png", blank_png, "image/png"))], timeout=30)
    assert r.status_code == 202
    body = httpx.get(f"{srv.url}/api/v1/batches/{r.json()['batch']}", headers=bearer(srv.tok["a"])).json()
    assert body["case_number"] == "14020998" and body["deadline"] == "2026-12-11"


def _login(srv, client: httpx.Client, user: str, password: str) -> httpx.Response:
    client.get(f"{srv.url}/login")
    return client.post(f"{srv.url}/login", data={"username": user, "password": password,
                                                  "csrf_token": client.cookies.get("khana_csrf")})


def test_sessions_cookies_and_csrf(srv, blank_png):
    srv.user("sara", "a long enough password", "station", office="office-a")
    with httpx.Client(timeout=30) as c:
        c.get(f"{srv.url}/login")
        assert c.post(f"{srv.url}/login", data={"username": "sara", "password": "a long enough password"}).status_code == 403
        r = c.post(f"{srv.url}/login", data={"username": "sara", "password": "a long enough password",
                                             "csrf_token": c.cookies.get("khana_csrf")})
        assert r.status_code == 303 and r.headers["location"] == "/station"
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("khana_session=")][0]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert "Secure" not in cookie  # plain http on loopback; KHANA_COOKIE_SECURE decides elsewhere
        assert c.get(f"{srv.url}/station").status_code == 200
        files = [("files", ("blank.png", blank_png, "image/png"))]
        # a session-authenticated upload without the CSRF token is refused
        assert c.post(f"{srv.url}/api/v1/batches", data=FORM, files=files).status_code == 403
        assert c.post(f"{srv.url}/api/v1/batches", data=FORM, files=files,
                      headers={"X-CSRF-Token": "forged"}).status_code == 403
        ok = c.post(f"{srv.url}/api/v1/batches", data=FORM, files=files,
                    headers={"X-CSRF-Token": c.cookies.get("khana_csrf")})
        assert ok.status_code == 202
        # a cross-site form post is refused even with a token
        assert c.post(f"{srv.url}/logout", data={"csrf_token": c.cookies.get("khana_csrf")},
                      headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.post(f"{srv.url}/logout", data={"csrf_token": c.cookies.get("khana_csrf")}).status_code == 303
        assert c.get(f"{srv.url}/station").status_code == 303  # signed out


def test_security_headers_on_pages(srv):
    for path in ("/login", "/station"):
        r = httpx.get(srv.url + path, headers=bearer(srv.tok["a"]))
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    page = httpx.get(srv.url + "/station", headers=bearer(srv.tok["a"])).text
    assert "<script>" not in page and " style=" not in page and "onclick" not in page  # nothing inline


def test_login_rate_limit(live_server):
    live_server.user("ali", "the right password", "qa")
    with httpx.Client(timeout=30) as c:
        for _ in range(5):
            assert _login(live_server, c, "ali", "a wrong password").status_code == 400
        r = _login(live_server, c, "ali", "the right password")
        assert r.status_code == 429 and "دقیقه" in r.text


def test_no_endpoint_returns_a_document_without_credentials(srv, held_batch):
    """Every GET route of the app (station, clerk, QA, admin), its path filled with a real batch and page 1:
    without a token or session nothing answers 2xx with content, and no document or picture leaks."""
    spec = httpx.get(f"{srv.url}/openapi.json").json()
    paths = list(spec["paths"])
    paths += ["/station", "/station/filings", f"/station/batches/{held_batch}", f"/station/batches/{held_batch}/pages",
              "/admin/accounts", "/qa", "/qa/stats", f"/qa/{held_batch}/pages/1", "/court", "/court/search",
              f"/court/filings/{held_batch}"]
    checked = 0
    for path in paths:
        if "get" not in spec["paths"].get(path, {"get": 1}) or path in ("/healthz", "/openapi.json", "/readyz"):
            continue
        url = srv.url + path.replace("{batch_id}", held_batch).replace("{batch}", held_batch) \
            .replace("{seq}", "1").replace("{n}", "1").replace("{page}", "1").replace("{kind}", "problems")
        if "{" in url:
            url = url.split("{")[0] + "x"
        r = httpx.get(url, timeout=30)
        checked += 1
        ctype = r.headers.get("content-type", "")
        assert r.status_code in (303, 401, 404, 405, 422), (path, r.status_code)
        assert not ctype.startswith(("image/", "application/pdf")), (path, ctype)
    assert checked >= 10
