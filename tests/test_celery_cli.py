"""`khana worker`, `khana sweeper`, `khana db-upgrade`: argument checks that need no services."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _khana(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    return subprocess.run([sys.executable, "-m", "khana.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, cwd=REPO, timeout=120)


def test_worker_needs_a_broker(tmp_path):
    r = _khana("worker", KHANA_HOME=str(tmp_path))
    assert r.returncode == 2 and "KHANA_BROKER_URL" in r.stderr


def test_worker_rejects_unknown_queues(tmp_path):
    r = _khana("worker", "-Q", "quality,bogus", KHANA_HOME=str(tmp_path), KHANA_BROKER_URL="redis://127.0.0.1:1/0")
    assert r.returncode == 2 and "bogus" in r.stderr


def test_sweeper_needs_a_broker(tmp_path):
    r = _khana("sweeper", "--once", KHANA_HOME=str(tmp_path))
    assert r.returncode == 2 and "KHANA_BROKER_URL" in r.stderr


def test_db_upgrade_show(tmp_path):
    r = _khana("db-upgrade", "--show", KHANA_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 0 and "database revision: None" in r.stdout
