"""CI never goes green on skipped services: under CI=true a missing Redis, PostgreSQL or S3 server fails the
test; elsewhere it is skipped, and one summary line says what was skipped (tests/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

PROBE = '''
from fixtures_services import RedisServer, service_missing


def test_redis_server_missing(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # as on a machine without redis-server
    RedisServer()


def test_postgres_missing():
    service_missing("no PostgreSQL: set KHANA_TEST_POSTGRES_URL or run scripts/services.sh")
'''


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_outside_ci_missing_services_skip_with_one_summary_line(tmp_path):
    r = _run(tmp_path, None)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("khana: ")]
    assert len(lines) == 1, r.stdout
    assert "2 test(s) skipped" in lines[0] and "redis-server is not installed" in lines[0] and "PostgreSQL" in lines[0]


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_service_fails_the_run(tmp_path, ci):
    r = _run(tmp_path, ci)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 failed" in r.stdout and "service unavailable under CI=true" in r.stdout
