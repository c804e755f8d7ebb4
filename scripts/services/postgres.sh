#!/usr/bin/env bash
# PostgreSQL for the real-backend suites: installed from Debian's packages when missing,
# run as the postgres user (it refuses root) on 127.0.0.1:${CASEM_PG_PORT:-55432}.
# Usage: postgres.sh start|stop|env
set -euo pipefail
PORT=${CASEM_PG_PORT:-55432}
DATA=${CASEM_PG_DATA:-/var/tmp/casem-pg}
LOG=$DATA.log

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && echo "$d"
}

install_if_missing() {
  if [ -z "$(pg_bin)" ]; then
    echo "postgres: installing from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
}

case "${1:-start}" in
  start)
    install_if_missing
    BIN=$(pg_bin)
    if [ ! -s "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA" && chown postgres:postgres "$DATA"
      su postgres -s /bin/bash -c "$BIN/initdb -D '$DATA' -U postgres --auth=trust -E UTF8 >/dev/null"
    fi
    touch "$LOG" && chown postgres:postgres "$LOG"
    if ! su postgres -s /bin/bash -c "$BIN/pg_ctl -D '$DATA' status" >/dev/null 2>&1; then
      su postgres -s /bin/bash -c "$BIN/pg_ctl -D '$DATA' -l '$LOG' -w -t 60 -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off' start" >/dev/null
    fi
    echo "postgres: ready on 127.0.0.1:$PORT" >&2
    ;;
  stop)
    BIN=$(pg_bin) || exit 0
    su postgres -s /bin/bash -c "$BIN/pg_ctl -D '$DATA' -m fast stop" >/dev/null 2>&1 || true
    ;;
  env)
    echo "export CASEM_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:$PORT/postgres"
    echo "export CASEM_REQUIRE_POSTGRES=1"
    ;;
esac
