"""Shared fixtures: an isolated embedded-default home, generated test pages, the CLI."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # Redis / PostgreSQL / S3 fixtures (real servers)
    from fixtures_services import *  # noqa: F401,F403
except ImportError:  # pragma: no cover - only while the services module is being written
    pass

try:  # live server, browser and screenshot fixtures of the web service
    from web_fixtures import browser, live_server, page  # noqa: F401
except ImportError:  # pragma: no cover
    pass

os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@pytest.fixture
def khana_home(tmp_path, monkeypatch):
    """A fresh embedded-default data folder (SQLite + local object store) for one test."""
    home = tmp_path / "khana-home"
    monkeypatch.setenv("KHANA_HOME", str(home))
    for var in ("KHANA_DATABASE_URL", "KHANA_OBJECT_STORE", "KHANA_STORE_DIR", "KHANA_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    from khana.settings import get_settings

    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def rt(khana_home):
    """A Runtime on the fresh embedded-default home."""
    from khana.bootstrap import build_runtime

    r = build_runtime()
    yield r
    r.close()


def png_bytes(img, dpi: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def save_png(img, path: Path, dpi: int = 300) -> Path:
    Image.fromarray(img).save(path, dpi=(dpi, dpi))
    return path


@pytest.fixture(scope="session")
def pages_dir(tmp_path_factory):
    """Rendered Persian test pages with ground truth, shared by the CLI tests."""
    from testpages import degrade, render_page

    d = tmp_path_factory.mktemp("pages")
    clean = render_page(font="naskh", size_pt=13, seed=3, n_words=120)
    save_png(clean.image, d / "clean.png")
    (d / "clean.txt").write_text(clean.text, encoding="utf-8")
    save_png(degrade.blank(seed=1), d / "blank.png")
    save_png(degrade.blur(clean.image, 9.0), d / "blurred.png")
    return d


def run_khana(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `khana` console script of this environment."""
    exe = Path(sys.executable).with_name("khana")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "khana.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=timeout)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """One line saying what was skipped and why (services missing on this machine, ...), grouped by reason."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for rep in skipped:
        lr = rep.longrepr
        reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    terminalreporter.write_line(f"khana: {len(skipped)} test(s) skipped: {parts}")
