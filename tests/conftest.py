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


# --- running in parallel (pytest-xdist; scripts/test runs `-n 2 --dist loadfile`) --------------------------------
# Each test file is one unit of work kept on one worker (its module-scoped fixtures: servers, rendered pages, are
# made once), except the files of TIMING_FILES, which are one unit together: they assert that killed workers'
# pages come back, that leases run out, that CPU budgets fire, within bounds of real time, and each starts and
# kills processes of its own. They run one after the other on one worker, so that two of them never load the
# machine at once; as the longest unit (about 10 of the 23 minutes of the serial run) it is sent first, and the
# other worker takes the other files in the meantime. The workers share nothing else: the fixtures give each its
# own Redis database (fixtures_services.redis_db_for_worker), PostgreSQL databases, S3 server, ports and
# temporary folders. (xdist's own `--dist loadgroup` cannot be used: with pytest 9 its group markers are lost.)
TIMING_GROUP = "timing"
TIMING_FILES = {"test_faults.py", "test_faults_stages.py", "test_faults_embedded.py", "test_leases.py"}


def _unit_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return TIMING_GROUP if path.rsplit("/", 1)[-1] in TIMING_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with the timing files as one unit, in the order of the collection (see below)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class KhanaFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit_of(nodeid)

    config.option.loadscopereorder = False  # not by number of tests: the timing unit first
    return KhanaFileScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist worker: the timing unit first (a stable sort, same on each worker)
        items.sort(key=lambda it: 0 if _unit_of(it.nodeid) == TIMING_GROUP else 1)


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


# The review pages (tests/test_review.py, test_review_api.py, test_browser_qa.py): rendered once per session.
# A module may define its own fixture of the same name (tests/test_api.py does): it takes precedence there.
@pytest.fixture(scope="session")
def text_png() -> bytes:
    """A page of Persian text that passes."""
    from testpages import render_page

    return png_bytes(render_page(n_words=50, seed=11, size_pt=14).image)


@pytest.fixture(scope="session")
def cut_png() -> bytes:
    """A page with text, cut off at the right edge: held by the early gate, before OCR."""
    from testpages import degrade, render_page

    return png_bytes(degrade.cut_off(render_page(n_words=50, seed=12, size_pt=14).image, 0.3))


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    """A blank page: held as blank."""
    from testpages import degrade

    return png_bytes(degrade.blank(seed=2))


def run_khana(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `khana` console script of this environment."""
    exe = Path(sys.executable).with_name("khana")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "khana.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=timeout)


_PYTHON_DEFAULT_WARNING_FILTERS = [  # what a fresh `python` process starts with (no -W, no PYTHONWARNINGS)
    ("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""), ("ignore", ResourceWarning, ""),
]


def _show_warning_on_stderr(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    sys.stderr.write(__import__("warnings").formatwarning(message, category, filename, lineno, line))


def run_khana_here(*args: str, env: dict | None = None, cwd: Path | None = None, input: str | None = None,
                   replace_env: bool = False) -> subprocess.CompletedProcess:
    """`khana ARGS` run in THIS process, as the console script would run it, without the ~2 CPU-seconds a new
    process spends importing the stack (the bad-input corpus runs ~50 of them).

    What a new process would give is reproduced: the same typer app and arguments, the environment (`env`
    added) and working folder, a fresh settings cache, stdout and stderr captured at the file-descriptor level
    (a C library's warning written to fd 2 is caught, as in a subprocess), Python's default warning filters
    printing to stderr (not pytest's recorder) and no logging handler of pytest's (a stray log record reaches
    stderr through logging's last-resort handler, as in a fresh process). An exception escaping the CLI is
    printed as a traceback with exit status 1, as Python would; signal handlers it sets are put back. `input` is its stdin; `replace_env` makes `env`
    the whole environment (as `subprocess.run(env=...)` does) instead of additions to this one. Tests that are
    about the process itself (its exit status seen by a shell, no traceback on a real stderr) keep
    `run_khana`."""
    import logging
    import signal
    import tempfile
    import traceback
    import warnings

    from khana.cli import app
    from khana.settings import get_settings

    saved_env, saved_cwd = os.environ.copy(), os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}  # `station send` sets them
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f, warnings.catch_warnings():
        code: int = 0
        try:
            if replace_env:
                os.environ.clear()
            os.environ.update(env or {})
            if cwd is not None:
                os.chdir(cwd)
            get_settings.cache_clear()
            warnings.resetwarnings()
            for action, category, module in reversed(_PYTHON_DEFAULT_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _show_warning_on_stderr  # not pytest's recorder
            root.handlers[:] = []
            root.setLevel(logging.WARNING)
            sys.stdin = io.StringIO(input or "")
            os.dup2(out_f.fileno(), 1)
            os.dup2(err_f.fileno(), 2)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", write_through=True)
            try:
                app(list(args), prog_name="khana")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - what Python does with an uncaught exception
                traceback.print_exc()
                code = 1
        finally:
            for s in (sys.stdout, sys.stderr):
                try:
                    s.flush()
                except (OSError, ValueError):
                    pass
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
            for sig, handler in saved_signals.items():
                signal.signal(sig, handler)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            get_settings.cache_clear()
        out_f.seek(0)
        err_f.seek(0)
        stdout = out_f.read().decode("utf-8", errors="replace")
        stderr = err_f.read().decode("utf-8", errors="replace")
    return subprocess.CompletedProcess(["khana", *args], code, stdout, stderr)


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
