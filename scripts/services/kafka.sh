#!/usr/bin/env bash
# Apache Kafka (KRaft, one combined broker+controller) for the real-backend bus suites.
# Fetched from Maven Central with mvn (scripts/kafka/pom.xml) into a cache outside the repo,
# run with java 17 on 127.0.0.1:${CASEM_KAFKA_PORT:-59092} (controller on port+1).
# Topic auto-creation is off: the bus adapter creates the topics it needs.
# Usage: kafka.sh start|stop|env|status
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
POM=$HERE/kafka/pom.xml
PORT=${CASEM_KAFKA_PORT:-59092}
CONTROLLER_PORT=${CASEM_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
CACHE=${CASEM_CACHE_DIR:-$HOME/.cache/casem}/kafka
DATA=${CASEM_KAFKA_DATA:-/var/tmp/casem-kafka}
LOG=$DATA/server.log
PIDFILE=$DATA/kafka.pid
START_TIMEOUT=${CASEM_KAFKA_START_TIMEOUT:-120}

log() { echo "kafka: $*" >&2; }

install_if_missing() {
  local pkgs=()
  command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    log "installing ${pkgs[*]} from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
}

# The classpath directory is keyed by the pom's hash, so a version bump fetches afresh and a
# half-finished fetch (no .complete marker) is redone rather than trusted.
lib_dir() { echo "$CACHE/lib-$(sha256sum "$POM" | cut -c1-16)"; }

fetch() {
  local libs
  libs=$(lib_dir)
  if [ -f "$libs/.complete" ]; then return; fi
  local t0=$SECONDS
  log "fetching Kafka and its runtime dependencies from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$CACHE"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >"$CACHE/fetch.log" 2>&1; then
    log "mvn failed; last lines of $CACHE/fetch.log:"
    tail -40 "$CACHE/fetch.log" >&2
    exit 1
  fi
  touch "$libs/.complete"
  log "fetched $(ls "$libs" | wc -l) jars in $((SECONDS - t0))s"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  cat >"$DATA/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/logs
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
# Fewer internal partitions: the group coordinator loads faster on a 2-core machine.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join and leave groups constantly; don't wait for stragglers on the first join.
group.initial.rebalance.delay.ms=0
log.retention.hours=24
CONF
}

# An array, not a string: the "lib/*" classpath wildcard is for java, not for the shell's glob.
java_cmd() {
  JAVA=(java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.yaml" -cp "$(lib_dir)/*")
}

start() {
  install_if_missing
  fetch
  mkdir -p "$DATA"
  if running && port_open "$PORT"; then
    log "already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
    return
  fi
  write_config
  java_cmd
  # A fresh log per run: readiness is read from it, and an old run's lines must not count.
  [ -f "$LOG" ] && mv "$LOG" "$LOG.prev"
  if [ ! -f "$DATA/logs/meta.properties" ]; then
    local cluster_id
    cluster_id=$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    log "formatting KRaft storage in $DATA/logs (cluster $cluster_id)"
    "${JAVA[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$DATA/server.properties" >>"$LOG" 2>&1
  fi
  local t0=$SECONDS
  # setsid + closed stdin: the broker outlives this script and the CI runner's subshell.
  setsid "${JAVA[@]}" kafka.Kafka "$DATA/server.properties" </dev/null >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  while ! { port_open "$PORT" && grep -q "Kafka Server started" "$LOG"; }; do
    if ! running; then
      log "broker exited during startup; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    if [ $((SECONDS - t0)) -ge "$START_TIMEOUT" ]; then
      log "not ready after ${START_TIMEOUT}s; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "ready on 127.0.0.1:$PORT in $((SECONDS - t0))s (pid $(cat "$PIDFILE"), log $LOG)"
}

stop() {
  running || { rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "did not stop in 30s; killing pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running && port_open "$PORT"; then echo "running"; else echo "stopped"; exit 1; fi ;;
  env)
    echo "export CASEM_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$PORT"
    echo "export CASEM_REQUIRE_KAFKA=1"
    ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
