"""docker-compose.yml cannot run here (no Docker engine): check it by reading it.

PyYAML parses it; the checks cover what breaks a deployment silently: services and
their dependencies, health checks, volumes, restart policies, secrets that must come
from .env (never defaults), settings that Khana really reads, and every `khana`
command line parsed by the real CLI.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
VAR = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")  # $${X} is the container's own
LONG_RUNNING = ("api", "worker-quality", "worker-ocr", "sweeper", "redis", "minio", "postgres")
ONE_SHOT = ("migrate", "minio-init")
SECRET_WORDS = ("PASSWORD", "SECRET")


def _compose_text() -> str:
    """The file without its comment lines."""
    return "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _resolve(value: str) -> str:
    """Interpolate like compose with an empty environment: defaults used, required ones -> placeholder."""
    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg
        return f"<{name}>"
    return VAR.sub(sub, value).replace("$$", "$")


def test_all_services_present(services):
    assert set(LONG_RUNNING + ONE_SHOT) <= set(services)


def test_images_and_build(services):
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio-init"]["image"].startswith("minio/mc")
    for name in ("api", "worker-quality", "worker-ocr", "sweeper", "migrate"):
        assert services[name]["build"] == "." and services[name]["image"] == "khana:latest", name
    assert (REPO / "Dockerfile").is_file()


def test_restart_policies_and_health_checks(services):
    for name in LONG_RUNNING:
        svc = services[name]
        assert svc.get("restart") in ("unless-stopped", "always"), name
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and hc["test"][0] in ("CMD", "CMD-SHELL"), name
        assert "container_name" not in svc, f"{name}: a fixed container name prevents scaling"
    for name in ONE_SHOT:
        assert services[name].get("restart") in ("no", "on-failure"), name


def test_dependencies_wait_for_health_and_migrations(services):
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: use the long depends_on form with conditions"
        for dep, cond in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            c = cond["condition"]
            if c == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}'s health, which has no check"
            elif c == "service_completed_successfully":
                assert dep in ONE_SHOT
            else:
                pytest.fail(f"{name} -> {dep}: unexpected condition {c}")
    for name in ("api", "worker-quality", "worker-ocr", "sweeper"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert {"redis", "postgres", "minio"} <= set(deps)


def test_persistent_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    mounts = {"postgres": "/var/lib/postgresql/data", "redis": "/data", "minio": "/data"}
    for name, path in mounts.items():
        vols = services[name]["volumes"]
        named = [v.split(":")[0] for v in vols if v.split(":")[1] == path]
        assert named and named[0] in declared, f"{name} keeps {path} in a named volume"
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd  # queued tasks survive a Redis restart


def test_no_default_secrets_committed(services):
    for m in VAR.finditer(_compose_text()):
        name, op = m.group(1), m.group(2)
        if any(w in name for w in SECRET_WORDS) or name in ("MINIO_ROOT_USER",):
            assert op == ":?", f"${{{name}}} must be required (:?), not defaulted"
    for name, svc in services.items():
        env = svc.get("environment") or {}
        for key, val in (env.items() if isinstance(env, dict) else []):
            if any(w in key for w in SECRET_WORDS):
                assert "${" in str(val), f"{name}.{key} has a literal secret"
    example = (REPO / ".env.example").read_text()
    for line in example.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            if any(w in k for w in SECRET_WORDS):
                assert v.strip() == "", f".env.example must not carry a value for {k}"
    assert not (REPO / ".env").exists() or ".env" in (REPO / ".gitignore").read_text()


def test_every_variable_is_documented_in_env_example(compose):
    used = {m.group(1) for m in VAR.finditer(_compose_text())}
    example = {line.split("=", 1)[0].strip() for line in (REPO / ".env.example").read_text().splitlines()
               if "=" in line and not line.lstrip().startswith("#")}
    assert used <= example, f"not in .env.example: {sorted(used - example)}"


def test_khana_environment_names_are_real_settings(compose):
    from khana.settings import Settings

    known = {f"KHANA_{n.upper()}" for n in Settings.model_fields}
    env = compose["x-khana-env"]
    unknown = {k for k in env if k.startswith("KHANA_")} - known
    assert not unknown, f"settings Khana does not read: {sorted(unknown)}"
    assert env["KHANA_OBJECT_STORE"] == "minio"
    assert env["KHANA_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["KHANA_DATABASE_URL"]
    assert env["KHANA_BROKER_URL"].startswith("redis://") and "@redis:6379/" in env["KHANA_BROKER_URL"]
    assert env["KHANA_MINIO_ENDPOINT"] == "minio:9000"


def _khana_commands(services):
    for name, svc in services.items():
        cmd = svc.get("command")
        if svc.get("image") == "khana:latest" and cmd:
            assert isinstance(cmd, list) and cmd[0] == "khana", f"{name}: exec-form `khana ...` command"
            yield name, [_resolve(str(a)) for a in cmd[1:]]


def test_khana_commands_parse_with_the_real_cli(services):
    import typer.main

    from khana.cli import app

    cli = typer.main.get_command(app)
    seen = {}
    for name, argv in _khana_commands(services):
        sub = argv[0]
        assert sub in cli.commands, f"{name}: `khana {sub}` does not exist"
        ctx = cli.commands[sub].make_context(sub, list(argv[1:]), resilient_parsing=False)
        seen[name] = ctx.params
    queues = set()
    for name in ("worker-quality", "worker-ocr"):
        queues |= set(seen[name]["queues"].split(","))
        assert int(seen[name]["concurrency"]) >= 1
    assert queues == {"quality", "ocr", "assemble"}
    assert seen["worker-ocr"]["queues"] == "ocr"  # OCR scales apart from the light stages
    assert seen["sweeper"]["heartbeat"], "the sweeper must be given a heartbeat file for its health check"
    hc = " ".join(services["sweeper"]["healthcheck"]["test"])
    assert seen["sweeper"]["heartbeat"] in hc, "the health check must look at the file the sweeper touches"


def test_api_runs_khana_serve_on_all_interfaces_with_tokens(services):
    import typer.main

    from khana.cli import app

    cli = typer.main.get_command(app)
    argv = dict(_khana_commands(services))["api"]
    params = cli.commands["serve"].make_context("serve", list(argv[1:])).params
    assert params["host"] == "0.0.0.0" and params["port"] == 8000
    # khana serve refuses a public address without station tokens: compose must pass them
    env = services["api"].get("environment") or {}
    assert "KHANA_API_TOKENS" in env or any("KHANA_API_TOKENS" in str(e) for e in env), "api needs KHANA_API_TOKENS"


def test_worker_health_checks_ping_their_own_node(services):
    for name, node in (("worker-quality", "quality"), ("worker-ocr", "ocr")):
        test = " ".join(services[name]["healthcheck"]["test"])
        cmd = " ".join(services[name]["command"])
        assert f"{node}@%h" in cmd and f"{node}@$$(hostname)" in test and "inspect ping" in test


def test_dockerfile_installs_tesseract_persian_and_every_package():
    text = (REPO / "Dockerfile").read_text()
    assert "tesseract-ocr-fas" in text and "OMP_THREAD_LIMIT=1" in text
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for pkg in include:
        name = pkg.rstrip("*")
        assert re.search(rf"^COPY {name} \./{name}$", text, re.M), f"Dockerfile does not copy {name}/"
    assert re.search(r"^USER (?!root)", text, re.M), "the image runs as a non-root user"
