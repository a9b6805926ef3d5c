"""Helpers for the station tests: a real `khana serve` process on a loopback port, the station CLI, test pages."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
TOKEN = "station-test-token-5f2c9a"
OFFICE = "11-2301"


def khana_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("khana")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from khana.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHANA_", "XDG_"))}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), OMP_THREAD_LIMIT="1")
    return env


class Server:
    """`khana serve` with the embedded default in its own KHANA_HOME; stop/start keep the data."""

    def __init__(self, home: Path, port: int | None = None, **extra_env: str):
        self.home, self.port = home, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env
        self.proc: subprocess.Popen | None = None
        self.log = home.parent / f"{home.name}-server.log"

    def start(self, timeout: float = 90.0) -> "Server":
        from web_fixtures import launch_serve

        env = {**base_env(), "KHANA_HOME": str(self.home), "KHANA_API_TOKENS": f"{TOKEN}={OFFICE}",
               "KHANA_WORKERS": "1", **self.extra_env}
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = launch_serve(env, self.port, self.log, timeout=timeout, append=True)
        return self

    def stop(self) -> None:
        from web_fixtures import stop_process

        stop_process(self.proc)
        self.proc = None

    def batches(self) -> list[dict]:
        """The server's batches, read from its SQLite database (a station token can only look up by id)."""
        db = self.home / "khana.db"
        with sqlite3.connect(db) as c:
            c.row_factory = sqlite3.Row
            return [dict(r) for r in c.execute("SELECT id, idempotency_key, case_number, court, deadline, office,"
                                                " status, created_at FROM batches ORDER BY created_at")]

    def storage_down(self) -> None:
        """The local object store made unusable: a file where its folder was."""
        objects = self.home / "objects"
        objects.rename(self.home / "objects.off")
        objects.write_bytes(b"")

    def storage_up(self) -> None:
        objects = self.home / "objects"
        objects.unlink()
        (self.home / "objects.off").rename(objects)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Station:
    """The station CLI against an outbox folder of its own (and no user config file)."""

    def __init__(self, tmp: Path, url: str, token: str | None = TOKEN, **settings: str):
        self.home = tmp / "outbox"
        self.env = {**base_env(), "KHANA_STATION_HOME": str(self.home), "KHANA_STATION_URL": url,
                    "KHANA_STATION_CONFIG": str(tmp / "station.toml"), "KHANA_STATION_OFFICE": OFFICE,
                    "KHANA_STATION_BACKOFF_BASE_S": "0.2", "KHANA_STATION_BACKOFF_MAX_S": "1",
                    "KHANA_STATION_POLL_S": "0.3", **{f"KHANA_STATION_{k.upper()}": v for k, v in settings.items()}}
        if token is not None:
            self.env["KHANA_STATION_TOKEN"] = token

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`khana station ARGS` to its end, in this process (conftest.run_khana_here: the same command and
        environment, fd-level output), sparing ~2 CPU-seconds of imports per command. What needs a process
        (killed mid-upload, SIGTERM) uses `popen`; `timeout` is left to pytest-timeout."""
        from conftest import run_khana_here

        return run_khana_here("station", *args, env=self.env, replace_env=True)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(khana_cmd() + ["station", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def push(self, *files: Path, case: str, deadline: str | None = None, court: str = "tehran-civil-12",
             check: bool = False) -> str:
        args = ["push", *map(str, files), "--court", court, "--case", case, "--type", "petition"]
        if deadline:
            args += ["--deadline", deadline]
        if not check:
            args.append("--no-check")
        r = self.run(*args)
        assert r.returncode in (0, 3), r.stderr
        return r.stdout.strip().splitlines()[0]

    def status(self, *extra: str) -> dict:
        r = self.run("status", "--json", *extra)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def states(self) -> dict[str, str]:
        with sqlite3.connect(self.home / "outbox.db") as c:
            return dict(c.execute("SELECT id, state FROM filings"))


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
