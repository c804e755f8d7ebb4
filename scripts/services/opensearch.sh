#!/usr/bin/env bash
# OpenSearch for the real-backend search suites: one node on 127.0.0.1:${CASEM_OPENSEARCH_PORT:-59200},
# run from the jars Maven fetches (scripts/opensearch/pom.xml) by a small launcher
# (scripts/opensearch/CasemOpenSearchNode.java) compiled here: no distribution tarball needed.
# Jars, classes and node home live under ${CASEM_CACHE_DIR:-$HOME/.cache/casem}/opensearch and are
# reused by later starts; the node's data is wiped at each start (it only serves tests) unless
# CASEM_OPENSEARCH_DATA names a directory of its own: then the node (home, data, pid file, log) lives
# there and keeps its data across stop/start (a second, private node: use other ports too).
# Usage: opensearch.sh start|stop|env
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/../opensearch
HTTP_PORT=${CASEM_OPENSEARCH_PORT:-59200}
TRANSPORT_PORT=${CASEM_OPENSEARCH_TRANSPORT_PORT:-59300}
CACHE=${CASEM_CACHE_DIR:-$HOME/.cache/casem}/opensearch
# The version is part of the jar dir's name so a pom change fetches afresh.
VERSION=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$SRC/pom.xml")
LIB=$CACHE/lib-$VERSION
CLASSES=$CACHE/classes-$VERSION
if [ -n "${CASEM_OPENSEARCH_DATA:-}" ]; then
  NODE_HOME=$CASEM_OPENSEARCH_DATA/node
  PIDFILE=$CASEM_OPENSEARCH_DATA/node.pid
  LOG=$CASEM_OPENSEARCH_DATA/node.log
  KEEP_DATA=1
else
  NODE_HOME=$CACHE/node
  PIDFILE=$CACHE/node.pid
  LOG=$CACHE/node.log
  KEEP_DATA=0
fi
URL=http://127.0.0.1:$HTTP_PORT

# OpenSearch 2.x supports Java 11-21: prefer the machine's 17 over a newer default JDK.
java_home() {
  if [ -n "${CASEM_OPENSEARCH_JAVA_HOME:-}" ]; then echo "$CASEM_OPENSEARCH_JAVA_HOME"; return; fi
  local d
  for d in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-*; do
    [ -x "$d/bin/javac" ] && { echo "$d"; return; }
  done
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME"; return; fi
  dirname "$(dirname "$(readlink -f "$(command -v javac)")")"
}

install_if_missing() {
  local pkgs=()
  command -v mvn >/dev/null || pkgs+=(maven)
  command -v curl >/dev/null || pkgs+=(curl)
  ls /usr/lib/jvm/java-17-openjdk-*/bin/javac >/dev/null 2>&1 || command -v javac >/dev/null \
    || pkgs+=(openjdk-17-jdk-headless)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    echo "opensearch: installing ${pkgs[*]} from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
}

# Jars into $LIB, once. A private local repository keeps this independent of ~/.m2 and of
# other services fetching with Maven at the same time; it is filled into a temp dir then moved,
# so an interrupted fetch is never mistaken for a complete one.
fetch_jars() {
  [ -f "$LIB/.complete" ] && return
  echo "opensearch: fetching OpenSearch $VERSION jars with Maven" >&2
  local tmp=$LIB.tmp.$$
  rm -rf "$tmp"
  if ! JAVA_HOME=$JH mvn -B -Dstyle.color=never -f "$SRC/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime >"$CACHE/fetch.log" 2>&1; then
    echo "opensearch: the Maven fetch failed; last lines of $CACHE/fetch.log:" >&2
    tail -40 "$CACHE/fetch.log" >&2
    exit 1
  fi
  touch "$tmp/.complete"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
}

compile_launcher() {
  local cls=$CLASSES/CasemOpenSearchNode.class
  [ -f "$cls" ] && [ "$cls" -nt "$SRC/CasemOpenSearchNode.java" ] && return
  mkdir -p "$CLASSES"
  "$JH/bin/javac" -cp "$LIB/*" -d "$CLASSES" "$SRC/CasemOpenSearchNode.java"
}

healthy() {
  curl -fsS --max-time 5 "$URL/_cluster/health" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

case "${1:-start}" in
  start)
    if running_pid >/dev/null && healthy; then
      echo "opensearch: already running on $URL" >&2
      exit 0
    fi
    t0=$(date +%s)
    install_if_missing
    JH=$(java_home)
    mkdir -p "$CACHE"
    fetch_jars
    compile_launcher
    [ "$KEEP_DATA" = 1 ] || rm -rf "$NODE_HOME"
    mkdir -p "$NODE_HOME/config"
    cp "$SRC/log4j2.properties" "$NODE_HOME/config/"
    t1=$(date +%s)
    # setsid: the node must outlive this script and its caller's process group.
    setsid "$JH/bin/java" -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.formatMsgNoLookups=true -Dio.netty.noUnsafe=true -Dio.netty.recycler.maxCapacityPerThread=0 \
      -cp "$CLASSES:$LIB/*" CasemOpenSearchNode "$NODE_HOME" "$HTTP_PORT" "$TRANSPORT_PORT" \
      </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 180); do
      if healthy; then
        echo "opensearch: ready on $URL (jars+compile $((t1 - t0))s, node $(($(date +%s) - t1))s)" >&2
        exit 0
      fi
      if ! running_pid >/dev/null; then
        echo "opensearch: the node exited during start; last lines of $LOG:" >&2
        tail -40 "$LOG" >&2
        exit 1
      fi
      sleep 1
    done
    echo "opensearch: not healthy after 180s; last lines of $LOG:" >&2
    tail -40 "$LOG" >&2
    exit 1
    ;;
  stop)
    pid=$(running_pid) || { rm -f "$PIDFILE"; exit 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    ;;
  env)
    echo "export CASEM_TEST_OPENSEARCH_URL=$URL"
    echo "export CASEM_REQUIRE_OPENSEARCH=1"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
