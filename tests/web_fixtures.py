"""Fixtures for the web service: a real `khana serve` process, and a headless Chromium driven by Playwright.

    def test_x(live_server):
        tok = live_server.token("station", office="11-2301")
        r = httpx.post(live_server.url + "/api/v1/batches", headers={"Authorization": f"Bearer {tok}"}, ...)

    @pytest.mark.browser
    @pytest.mark.slow
    def test_y(live_server, page):
        live_server.user("sara", "a long password", "station", office="11-2301")
        live_server.login(page, "sara", "a long password")
        page.goto(live_server.url + "/station"); shot(page, "station-upload-fa")

`live_server` starts with a fresh KHANA_HOME (SQLite + local object store, embedded worker with one process) on a
free loopback port, so the first-try mode applies until an account is created. `page` is a Playwright page of
Debian's /usr/bin/chromium at 1366x768 (an ordinary office screen).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(__file__).resolve().parent / "_screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def khana_exe() -> list[str]:
    exe = Path(sys.executable).with_name("khana")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "khana.cli"]


@dataclass
class LiveServer:
    url: str
    home: Path
    env: dict
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _tokens: dict = field(default_factory=dict)

    def admin(self, *args: str, input: str | None = None) -> str:
        """Run `khana admin ARGS` against this server's database; returns stdout (raises on failure).

        It runs in this process (conftest.run_khana_here: the same command, with the server's environment):
        the tests call it ~40 times to set up accounts, and a `khana` process spends ~2 CPU-seconds importing
        the stack each time. `khana admin` as a real process is tested in tests/test_accounts.py."""
        from conftest import run_khana_here

        r = run_khana_here("admin", *args, env=self.env, input=input, replace_env=True)
        if r.returncode != 0:
            raise AssertionError(f"khana admin {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def token(self, role: str, office: str | None = None, court: str | None = None) -> str:
        args = ["token", "create", "--role", role]
        if office:
            args += ["--office", office]
        if court:
            args += ["--court", court]
        return self.admin(*args).strip()

    def user(self, username: str, password: str, role: str, office: str | None = None,
             court: str | None = None) -> None:
        args = ["user", "create", username, "--role", role, "--password-stdin"]
        if office:
            args += ["--office", office]
        if court:
            args += ["--court", court]
        self.admin(*args, input=password + "\n")

    def wait_batch(self, batch: str, token: str | None, statuses=("held", "passed", "forwarded", "failed"),
                   timeout: float = 120.0) -> dict:
        """Poll GET /api/v1/batches/{batch} until its status is one of `statuses`; returns the body."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        end = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < end:
            r = httpx.get(f"{self.url}/api/v1/batches/{batch}", headers=headers, timeout=10)
            r.raise_for_status()
            body = r.json()
            if body["status"] in statuses:
                return body
            time.sleep(0.1)
        raise AssertionError(f"batch {batch} did not reach {statuses} in {timeout}s: {body}")

    def login(self, page, username: str, password: str) -> None:
        """Sign in through the real login form in a Playwright page."""
        page.goto(f"{self.url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def launch_serve(env: dict, port: int, log_path: Path, *, host: str = "127.0.0.1", cwd: Path | None = None,
                 timeout: float = 120.0, append: bool = False) -> subprocess.Popen:
    """Start `khana serve` (this environment's console script) with exactly `env`, its output in `log_path`, and
    return once GET /healthz answers 200. The one way the tests start a server: `start_server` below,
    tests/live_serve.py (shipped defaults) and tests/station_helpers.py (restarts on one port) differ only in
    the environment they give it."""
    logf = open(log_path, "ab" if append else "wb")
    try:
        proc = subprocess.Popen(khana_exe() + ["serve", "--host", host, "--port", str(port)], env=env, stdout=logf,
                                stderr=subprocess.STDOUT, cwd=str(cwd) if cwd else None)
    finally:
        logf.close()
    url = f"http://127.0.0.1:{port}/healthz"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"khana serve exited ({proc.returncode}):\n"
                                 f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_process(proc)
    raise AssertionError(f"khana serve did not start in {timeout:.0f} s:\n{log_path.read_text(errors='replace')[-3000:]}")


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_server(home: Path, extra_env: dict | None = None, host: str = "127.0.0.1") -> LiveServer:
    port = free_port()
    env = {**os.environ, "KHANA_HOME": str(home), "KHANA_WORKERS": "1", "OMP_THREAD_LIMIT": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for var in ("KHANA_DATABASE_URL", "KHANA_OBJECT_STORE", "KHANA_STORE_DIR", "KHANA_BROKER_URL",
                "KHANA_API_TOKENS", "KHANA_COOKIE_SECURE"):
        env.pop(var, None)
    env.update(extra_env or {})
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "serve.log"
    proc = launch_serve(env, port, log_path, host=host, cwd=home)
    return LiveServer(f"http://127.0.0.1:{port}", home, env, proc, log_path)


def stop_server(server: LiveServer) -> None:
    stop_process(server.proc)


@pytest.fixture
def live_server(tmp_path):
    """A real `khana serve` (uvicorn, embedded worker) on a free loopback port with a fresh KHANA_HOME."""
    server = start_server(tmp_path / "khana-home")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package) driven by Playwright for Python; skipped when either is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/setup --test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page at 1366x768; console errors (e.g. CSP violations) fail the test."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="fa-IR")
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.console_errors = errors
    yield pg
    ctx.close()
    csp = [e for e in errors if "Content Security Policy" in e or "Refused to" in e]
    assert not csp, f"the page broke its Content-Security-Policy: {csp}"


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot to tests/_screenshots/NAME.png (git-ignored); copy chosen ones to docs/screenshots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def publish_shot(name: str) -> None:
    """Copy tests/_screenshots/NAME.png to docs/screenshots/ (for the README) when KHANA_PUBLISH_SCREENSHOTS=1:
    an ordinary test run (CI) leaves the tracked files alone."""
    if os.environ.get("KHANA_PUBLISH_SCREENSHOTS") != "1":
        return
    dst = ROOT / "docs" / "screenshots"
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHOTS / f"{name}.png", dst / f"{name}.png")


def image_loads(page, locator, min_width: int = 100, timeout_ms: int = 30_000) -> bool:
    """Whether the image at `locator` really loads (a decoded picture wider than `min_width`): it is scrolled
    into view (thumbnails are `loading="lazy"`: a lazy image outside the viewport, or still on its way after
    `networkidle` on a loaded machine, has naturalWidth 0) and waited for, up to `timeout_ms`."""
    handle = locator.element_handle()
    handle.scroll_into_view_if_needed()
    try:
        page.wait_for_function("([img, w]) => img.complete && img.naturalWidth > w", arg=[handle, min_width],
                               timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: the image never loaded
        return False
    return True
