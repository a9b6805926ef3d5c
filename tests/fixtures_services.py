"""Real services for the integration tests: Redis, PostgreSQL, an S3 server, Celery workers.

Imported by tests/conftest.py (``from fixtures_services import *``).

* ``redis_url``   KHANA_TEST_REDIS_URL, else 127.0.0.1:6379 when it answers, else a
                  private ``redis-server`` on a free port; skipped when none is possible.
                  Under pytest-xdist, worker gwN uses the database number + N (`redis_db_for_worker`).
* ``postgres_url`` a fresh, uniquely named database (dropped afterwards) on
                  KHANA_TEST_POSTGRES_URL's server, else 127.0.0.1:5432; skipped otherwise.
* ``s3_server``   moto's ThreadedMotoServer on a free port: real S3 over HTTP.
* ``RedisServer`` / ``PostgresCluster``: private servers the fault tests may stop and restart.
* ``CeleryWorker``: a real ``celery -A workers.celery_app worker`` subprocess.

A service that cannot be had is a skip on a developer's machine (conftest.py prints one line saying what
was skipped), but a FAILURE when ``CI=true``: CI never goes green on skipped services (`service_missing`).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

__all__ = [
    "in_ci", "service_missing", "redis_url", "postgres_url", "postgres_server_url", "s3_server", "free_port", "port_open", "RedisServer", "PostgresCluster",
    "CeleryWorker", "S3Server", "service_env", "KhanaStack", "settings_from_env", "wait_for", "descendants", "make_postgres_db", "drop_postgres_db",
]


# --- small helpers --------------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def service_missing(reason: str):
    """Skip the test for want of a service, or fail it under CI (CI=true must not pass on skipped services)."""
    if in_ci():
        pytest.fail(f"service unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"service unavailable: {reason}")



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(cond, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """All live descendant process ids of `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def proc_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# --- Redis --------------------------------------------------------------------------
class RedisServer:
    """A private redis-server on a fixed free port that a test may stop and start again."""

    def __init__(self, port: int | None = None, persist: bool = True):
        self.persist = persist  # False: a restart loses every queued message, like a Redis without AOF/RDB
        self.binary = shutil.which("redis-server")
        if not self.binary:
            service_missing("redis-server is not installed (scripts/services.sh installs it)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="khana-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always", "--dir", self.dir,
             "--daemonize", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open("127.0.0.1", self.port), 15, what=f"redis on {self.port}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def xdist_worker_index() -> int:
    """0 in a plain pytest run; N in pytest-xdist's worker gwN (scripts/test runs two)."""
    wid = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0


def redis_db_for_worker(url: str) -> str:
    """`url` with a Redis database number of this xdist worker's own: gw0 keeps the number, gwN adds N
    (modulo Redis's 16 databases). Every KhanaStack also has its own key prefix; this keeps the workers'
    Celery queues and keys apart even for code that scans or purges a whole database."""
    n = xdist_worker_index()
    if n == 0:
        return url
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    base = int(path) if path.isdigit() else 0
    return urlunsplit((parts.scheme, parts.netloc, f"/{(base + n) % 16}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("KHANA_TEST_REDIS_URL")
    if url:
        yield redis_db_for_worker(url)
        return
    if port_open("127.0.0.1", 6379):
        # a database number of its own, so tests never see another user's queues
        yield redis_db_for_worker("redis://127.0.0.1:6379/13")
        return
    try:
        server = RedisServer().start()
    except TimeoutError as exc:
        service_missing(f"a private redis-server cannot be started: {exc}")
    try:
        yield server.url
    finally:
        server.close()


# --- PostgreSQL ----------------------------------------------------------------------
def _pg_server_url() -> str | None:
    url = os.environ.get("KHANA_TEST_POSTGRES_URL")
    if url:
        return url
    if port_open("127.0.0.1", 5432):
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    return None


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def make_postgres_db(server_url: str, prefix: str = "khana_test") -> str:
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    eng = create_engine(_with_db(server_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        eng.dispose()
    return _with_db(server_url, name)


def drop_postgres_db(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    name = urlsplit(db_url).path.lstrip("/")
    eng = create_engine(_with_db(db_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001 - best effort clean-up
        pass
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def postgres_server_url():
    url = _pg_server_url()
    if not url:
        service_missing("no PostgreSQL: set KHANA_TEST_POSTGRES_URL or run scripts/services.sh")
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text

        eng = create_engine(_with_db(url, "postgres"))
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL at {url} is not usable: {exc}")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url):
    """A fresh database for this test session, dropped at the end."""
    url = make_postgres_db(postgres_server_url)
    try:
        yield url
    finally:
        drop_postgres_db(url)


class PostgresCluster:
    """A private PostgreSQL cluster (initdb in a temp folder) that a test may restart.

    As root, the server runs as the `postgres` user (PostgreSQL refuses root).
    """

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not bins:
            service_missing("PostgreSQL server binaries are not installed")
        self.bindir = bins[-1].parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="khana-pg-"))
        self.data = self.dir / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync"])

    def _cmd(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_root else argv

    def _run(self, argv: list[str]) -> None:
        subprocess.run(self._cmd(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def server_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> "PostgresCluster":
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "30",
                   "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._cmd([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- S3 (moto) --------------------------------------------------------------------------
class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        self.server.start()
        wait_for(lambda: port_open("127.0.0.1", self.port), 15, what="moto server")
        return self

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def s3_server():
    try:
        import moto.server  # noqa: F401
    except ImportError:
        service_missing("the S3 server (moto[server]) is not installed")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "khana-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "khana-test-secret")
    try:
        server = S3Server().start()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"the S3 server cannot be started: {exc}")
    try:
        yield server
    finally:
        server.stop()


# --- Celery worker processes ---------------------------------------------------------------
def service_env(*, broker_url: str | None = None, database_url: str | None = None, s3_endpoint: str | None = None,
                home: str | os.PathLike | None = None, bucket_prefix: str | None = None, key_prefix: str | None = None,
                **extra: str) -> dict[str, str]:
    """Environment for a Khana process (worker, sweeper, CLI) pointing at the test services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env["OMP_THREAD_LIMIT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if home is not None:
        env["KHANA_HOME"] = str(home)
    if broker_url:
        env["KHANA_BROKER_URL"] = broker_url
    if database_url:
        env["KHANA_DATABASE_URL"] = database_url
    if s3_endpoint:
        env.update(KHANA_OBJECT_STORE="minio", KHANA_MINIO_ENDPOINT=s3_endpoint,
                   KHANA_MINIO_ACCESS_KEY="khana-test", KHANA_MINIO_SECRET_KEY="khana-test-secret")
    if bucket_prefix:
        env["KHANA_BUCKET_PREFIX"] = bucket_prefix
    if key_prefix:
        env["KHANA_BROKER_KEY_PREFIX"] = key_prefix
    env.update({k: str(v) for k, v in extra.items()})
    return env


class CeleryWorker:
    """``celery -A workers.celery_app worker`` as a real subprocess (prefork pool)."""

    def __init__(self, env: dict[str, str], queues: str = "quality,ocr,assemble", concurrency: int = 1,
                 name: str | None = None, log_dir: str | os.PathLike | None = None):
        self.env = env
        self.queues = queues
        self.concurrency = concurrency
        self.name = name or f"w{uuid.uuid4().hex[:6]}"
        self.log_path = Path(log_dir or tempfile.gettempdir()) / f"celery-{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait_ready: bool = True, timeout: float = 60) -> "CeleryWorker":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", self.queues, "-c", str(self.concurrency),
             "--pool", "prefork", "-n", f"{self.name}@%h", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait_ready:
            wait_for(self._ready, timeout, interval=0.25, what=f"celery worker {self.name} ({self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"celery worker {self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        return b" ready." in self.log_path.read_bytes()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def children(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []

    def pool_processes(self) -> list[int]:
        return [p for p in self.children() if proc_name(p) != "tesseract" and self.proc and _ppid(p) == self.proc.pid]

    def tesseracts(self) -> list[tuple[int, int]]:
        """(tesseract pid, pool process pid) of the OCR calls running in this worker now."""
        return [(p, _ppid(p)) for p in self.children() if proc_name(p) == "tesseract"]

    def kill(self) -> None:
        """SIGKILL the whole worker: the main process and every pool process (and their Tesseracts)."""
        if self.proc is None:
            return
        victims = [self.proc.pid, *self.children()]  # Tesseract runs in a session of its own
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc = None
        self._log.close()

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None
        self._log.close()

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


# --- a whole Khana deployment for a test -------------------------------------------------------
def settings_from_env(env: dict[str, str]):
    """`Settings` exactly as a process started with `env` would see them."""
    from khana.settings import Settings

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


class KhanaStack:
    """Settings, runtime, service and Celery dispatcher of the test process, plus its worker processes.

    Every stack has its own Redis key prefix and bucket prefix, so concurrent test
    sessions sharing one Redis or S3 server never see each other's work.
    """

    def __init__(self, tmp_path: Path, *, redis_url: str, database_url: str | None = None,
                 s3_endpoint: str | None = None, **extra: str):
        tag = uuid.uuid4().hex[:8]
        self.tmp_path = Path(tmp_path)
        self.env = service_env(broker_url=redis_url, database_url=database_url, s3_endpoint=s3_endpoint,
                               home=self.tmp_path / "home", bucket_prefix=f"k{tag}-", key_prefix=f"khana-test-{tag}:",
                               **extra)
        self.settings = settings_from_env(self.env)
        from khana.bootstrap import build_runtime
        from pipeline.service import KhanaService
        from workers.celery_app import make_celery
        from workers.dispatch import CeleryDispatcher

        self.rt = build_runtime(self.settings, migrate=True)
        self.celery = make_celery(self.settings)
        self.dispatcher = CeleryDispatcher(self.celery)
        self.service = KhanaService(self.rt, self.dispatcher)
        self.workers: list[CeleryWorker] = []

    def worker(self, queues: str = "quality,ocr,assemble", concurrency: int = 1, start: bool = True,
               **kw) -> CeleryWorker:
        w = CeleryWorker(self.env, queues, concurrency, log_dir=self.tmp_path, **kw)
        self.workers.append(w)
        return w.start() if start else w

    def submit(self, n_pages: int = 2, *, court: str = "court-7", deadline=None, seed: int = 0, key: str | None = None,
               n_words: int = 60):
        import io

        from PIL import Image

        from pipeline.service import BatchMeta, Upload
        from testpages import render_page

        uploads = []
        for i in range(n_pages):
            page = render_page(n_words=n_words, seed=seed + i)
            buf = io.BytesIO()
            Image.fromarray(page.image).save(buf, format="PNG", dpi=(300, 300))
            uploads.append(Upload(f"page{i + 1}.png", buf.getvalue()))
        meta = BatchMeta(office="office-12", court=court, case_number=None, document_type="petition", deadline=deadline)
        return self.service.submit_batch(uploads, meta, idempotency_key=key)

    def batch_status(self, batch_id: str) -> str:
        return self.service.batch_status(batch_id)

    def wait_final(self, batch_id: str, timeout: float = 180) -> str:
        final = ("held", "passed", "forwarded", "failed")

        def done():
            try:
                st = self.batch_status(batch_id)
            except Exception:  # noqa: BLE001 - database briefly down in fault tests
                return None
            return st if st in final else None

        try:
            return wait_for(done, timeout, interval=0.5, what=f"batch {batch_id} to finish")
        except TimeoutError:
            logs = "\n".join(f"--- {w.name}\n{w.log()[-4000:]}" for w in self.workers)
            raise TimeoutError(f"batch {batch_id} not finished (status {self._safe_status(batch_id)}); worker logs:\n{logs}")

    def _safe_status(self, batch_id):
        try:
            return self.batch_status(batch_id)
        except Exception as exc:  # noqa: BLE001
            return repr(exc)

    def decided_counts(self, batch_id: str) -> dict[str, int]:
        """page id -> number of `page_decided` audit events (exactly-once means 1 each)."""
        from sqlalchemy import func, select

        from storage.models import AuditEvent, Page

        with self.rt.db.session() as s:
            ids = list(s.scalars(select(Page.id).where(Page.batch_id == batch_id)))
            rows = dict(s.execute(select(AuditEvent.page_id, func.count()).where(
                AuditEvent.batch_id == batch_id, AuditEvent.action == "page_decided").group_by(AuditEvent.page_id)).all())
        return {pid: rows.get(pid, 0) for pid in ids}

    def purge_queues(self) -> None:
        try:
            with self.celery.connection_for_write() as conn:
                for q in ("quality", "ocr", "assemble"):
                    try:
                        conn.default_channel.queue_purge(q)
                    except Exception:  # noqa: BLE001
                        pass
        except Exception:  # noqa: BLE001
            pass

    def close(self) -> None:
        for w in self.workers:
            try:
                w.stop(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        self.purge_queues()
        self._delete_broker_keys()
        self.rt.close()

    def _delete_broker_keys(self) -> None:
        """Leave nothing of this stack in a shared Redis (its keys all carry its prefix)."""
        prefix = self.settings.broker_key_prefix
        if not prefix:
            return
        try:
            import redis as redis_lib

            r = redis_lib.Redis.from_url(self.env["KHANA_BROKER_URL"], socket_connect_timeout=2, socket_timeout=5)
            keys = list(r.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                r.delete(*keys)
            r.close()
        except Exception:  # noqa: BLE001 - best effort
            pass
