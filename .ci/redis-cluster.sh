#!/usr/bin/env bash
# Starts a three-master Redis Cluster on loopback for the tests
# (ADSHARE_TEST_REDIS_CLUSTER_ADDRS), or reuses one that is running and
# healthy. Nothing is persisted: no RDB, no AOF, node files under
# $REDIS_CLUSTER_DIR (default /tmp/adshare-redis-cluster).
#
#   .ci/redis-cluster.sh          start (or reuse); prints the addresses
#   .ci/redis-cluster.sh addrs    print the addresses (comma-separated)
#   .ci/redis-cluster.sh stop     stop the nodes this script started, by PID
#
# Ports default to 7001-7003 (REDIS_CLUSTER_PORTS="7001 7002 7003").
set -euo pipefail

PORTS=(${REDIS_CLUSTER_PORTS:-7001 7002 7003})
DIR=${REDIS_CLUSTER_DIR:-/tmp/adshare-redis-cluster}
HOST=127.0.0.1

addrs() {
  local out="" p
  for p in "${PORTS[@]}"; do out+="${out:+,}$HOST:$p"; done
  echo "$out"
}

cli() { redis-cli -h "$HOST" -p "$1" "${@:2}"; }

# healthy: every node answers, the cluster state is ok, all 16384 slots are
# assigned, and it has exactly our nodes as masters.
healthy() {
  local p info
  for p in "${PORTS[@]}"; do
    cli "$p" ping 2>/dev/null | grep -q PONG || return 1
  done
  info=$(cli "${PORTS[0]}" cluster info 2>/dev/null | tr -d '\r') || return 1
  grep -qx 'cluster_state:ok' <<<"$info" || return 1
  grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
  grep -qx "cluster_known_nodes:${#PORTS[@]}" <<<"$info" || return 1
  grep -qx "cluster_size:${#PORTS[@]}" <<<"$info" || return 1
}

stop() {
  local p pid
  for p in "${PORTS[@]}"; do
    if [ -f "$DIR/$p.pid" ]; then
      pid=$(cat "$DIR/$p.pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -f "$DIR/$p.pid"
    fi
    rm -f "$DIR/nodes-$p.conf"
  done
}

start() {
  if healthy; then
    echo "reusing the Redis Cluster at $(addrs)" >&2
    addrs
    return
  fi
  # A half-started or broken cluster of ours is replaced. A port held by a
  # process this script did not start is an error, not something to kill.
  stop
  mkdir -p "$DIR"
  local p
  for p in "${PORTS[@]}"; do
    if cli "$p" ping >/dev/null 2>&1; then
      echo "port $p answers but is not a node this script started; free it or set REDIS_CLUSTER_PORTS" >&2
      exit 1
    fi
    redis-server --cluster-enabled yes --bind "$HOST" --port "$p" --daemonize yes \
      --save "" --appendonly no \
      --cluster-config-file "$DIR/nodes-$p.conf" --cluster-node-timeout 5000 \
      --pidfile "$DIR/$p.pid" --logfile "$DIR/$p.log" --dir "$DIR"
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do cli "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    cli "$p" ping | grep -q PONG
  done
  local nodes=() 
  for p in "${PORTS[@]}"; do nodes+=("$HOST:$p"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 || {
    cat "$DIR/create.log" >&2
    exit 1
  }
  for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
  if ! healthy; then
    echo "the Redis Cluster did not become healthy:" >&2
    cli "${PORTS[0]}" cluster info >&2 || true
    exit 1
  fi
  echo "started a Redis Cluster at $(addrs)" >&2
  addrs
}

case "${1:-start}" in
  start) start ;;
  addrs) addrs ;;
  stop) stop ;;
  *) echo "usage: $0 [start|addrs|stop]" >&2; exit 2 ;;
esac
