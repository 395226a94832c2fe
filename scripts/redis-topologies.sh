#!/usr/bin/env bash
# Starts a throwaway 3-master Redis Cluster and a Sentinel-managed master from the machine's redis-server, so the
# store contract also runs on those topologies. Prints the env vars the Redis tests read; `stop` shuts them down.
# Usage: eval "$(scripts/redis-topologies.sh start)"; ...; scripts/redis-topologies.sh stop
set -euo pipefail
CLUSTER_PORTS=(17001 17002 17003)
MASTER_PORT=17010
SENTINEL_PORT=27010
STATE=/tmp/gatehouse-redis-topologies

stop() {
  for p in "${CLUSTER_PORTS[@]}" "$MASTER_PORT" "$SENTINEL_PORT"; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$STATE"
}

start() {
  command -v redis-server >/dev/null || { echo "echo 'redis-server not found: Cluster/Sentinel tests will be skipped' >&2"; return 0; }
  stop
  mkdir -p "$STATE"
  for p in "${CLUSTER_PORTS[@]}"; do
    mkdir -p "$STATE/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$STATE/$p/nodes.conf" \
      --dir "$STATE/$p" --save "" --appendonly no --daemonize yes --logfile "$STATE/$p/log" >/dev/null
  done
  redis-server --port "$MASTER_PORT" --bind 127.0.0.1 --dir "$STATE" --save "" --appendonly no --daemonize yes \
    --logfile "$STATE/master.log" >/dev/null
  for p in "${CLUSTER_PORTS[@]}" "$MASTER_PORT"; do
    for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 --cluster-yes >"$STATE/create.log" 2>&1
  for _ in $(seq 100); do
    redis-cli -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  cat >"$STATE/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
daemonize yes
logfile $STATE/sentinel.log
dir $STATE
sentinel monitor mymaster 127.0.0.1 $MASTER_PORT 1
CONF
  redis-server "$STATE/sentinel.conf" --sentinel >/dev/null
  for _ in $(seq 50); do
    redis-cli -p "$SENTINEL_PORT" sentinel get-master-addr-by-name mymaster 2>/dev/null | grep -q "$MASTER_PORT" && break
    sleep 0.1
  done
  echo "export GATEHOUSE_TEST_REDIS_CLUSTER=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')"
  echo "export GATEHOUSE_TEST_REDIS_SENTINEL=127.0.0.1:$SENTINEL_PORT/mymaster"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
