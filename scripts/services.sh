# Test services for Khana's integration tests: Redis and PostgreSQL.
# Sourced by scripts/test (`source scripts/services.sh`); safe under `set -euo pipefail`.
#
# - installs redis-server and postgresql with apt-get when they are missing (Debian/Ubuntu);
# - uses a server already running on 127.0.0.1 (Redis :6379, PostgreSQL :5432 trusting `postgres`);
# - otherwise starts private ones for the tests (Redis on :56379, a trust-auth PostgreSQL
#   cluster in ${KHANA_TEST_SERVICES_DIR:-/tmp/khana-test-services} on :55432, run as the
#   `postgres` user since PostgreSQL refuses root) and leaves them running for the next run;
# - exports KHANA_TEST_REDIS_URL and KHANA_TEST_POSTGRES_URL for tests/fixtures_services.py.
# The S3 server (moto) and the Celery workers are started by the tests themselves.
# Nothing here fails the test command: a service that cannot be had is left unset, and the
# tests that need it are skipped with a message.

_khana_services() {
  local sudo="" dir="${KHANA_TEST_SERVICES_DIR:-/tmp/khana-test-services}"
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  mkdir -p "$dir"

  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing ${need[*]}"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
      || echo "services: could not install ${need[*]}" >&2
  fi

  # --- Redis --------------------------------------------------------------------------
  if [ -z "${KHANA_TEST_REDIS_URL:-}" ]; then
    if command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; then
      export KHANA_TEST_REDIS_URL="redis://127.0.0.1:6379/13"
    elif command -v redis-server >/dev/null 2>&1; then
      if [ "$(redis-cli -h 127.0.0.1 -p 56379 ping 2>/dev/null)" != "PONG" ]; then
        redis-server --port 56379 --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
          --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null 2>&1 || true
        for _ in $(seq 50); do [ "$(redis-cli -h 127.0.0.1 -p 56379 ping 2>/dev/null)" = "PONG" ] && break; sleep 0.1; done
      fi
      [ "$(redis-cli -h 127.0.0.1 -p 56379 ping 2>/dev/null)" = "PONG" ] && export KHANA_TEST_REDIS_URL="redis://127.0.0.1:56379/0"
    fi
  fi
  [ -n "${KHANA_TEST_REDIS_URL:-}" ] && echo "services: Redis at ${KHANA_TEST_REDIS_URL}" || echo "services: no Redis (those tests will be skipped)" >&2

  # --- PostgreSQL ---------------------------------------------------------------------
  if [ -z "${KHANA_TEST_POSTGRES_URL:-}" ]; then
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 \
       && psql -h 127.0.0.1 -p 5432 -U postgres -w -Atc "select 1" postgres >/dev/null 2>&1; then
      export KHANA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    else
      local bindir
      bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
      if [ -n "$bindir" ] && [ -x "$bindir/postgres" ]; then
        local pgdir="$dir/pg" run=()
        if [ "$(id -u)" -eq 0 ]; then
          id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres 2>/dev/null || true
          run=(runuser -u postgres --)
          mkdir -p "$pgdir" && chown postgres: "$pgdir"
        else
          mkdir -p "$pgdir"
        fi
        if [ ! -f "$pgdir/data/PG_VERSION" ]; then
          "${run[@]}" "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null 2>&1 || true
        fi
        if ! pg_isready -q -h 127.0.0.1 -p 55432 2>/dev/null; then
          "${run[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -t 30 \
            -o "-p 55432 -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1 || true
        fi
        pg_isready -q -h 127.0.0.1 -p 55432 2>/dev/null \
          && export KHANA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:55432/postgres"
      fi
    fi
  fi
  [ -n "${KHANA_TEST_POSTGRES_URL:-}" ] && echo "services: PostgreSQL at ${KHANA_TEST_POSTGRES_URL}" || echo "services: no PostgreSQL (those tests will be skipped)" >&2
  return 0
}
_khana_services || true
unset -f _khana_services
