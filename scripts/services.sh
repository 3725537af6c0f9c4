#!/usr/bin/env bash
# Real Kafka + Redis for leadscore's integration tests and local runs, without Docker.
#
#   scripts/services.sh up            start both (idempotent; reuses anything already answering)
#   scripts/services.sh down [--purge] stop what we started; --purge also deletes their data
#   scripts/services.sh status        does each port answer? (exit 0 only if both do)
#   scripts/services.sh env           print the LEADSCORE_TEST_* exports for `go test`
#
# Ports: LEADSCORE_KAFKA_PORT (default 9092; the KRaft controller uses port+1) and
# LEADSCORE_REDIS_PORT (default 6379). LEADSCORE_SERVICES_TIMEOUT (default 90) bounds
# how long `up` waits for both to answer. LEADSCORE_REDIS_AOF=yes starts Redis with AOF on
# (appendfsync everysec) instead of no persistence: for the fault suite's Redis restarts.
#
# Everything lives under .cache/ in the repo (git-ignored):
#   .cache/kafka/libs   broker jars fetched from Maven Central via scripts/kafka/pom.xml
#   .cache/run/redis    redis pid file + log (no persistence: --save "" --appendonly no)
#   .cache/run/kafka    server.properties, KRaft storage (data/), pid file, server.log
#   (for non-default ports: .cache/run/redis-PORT and .cache/run/kafka-PORT)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
LIBS="$CACHE/kafka/libs"
POM="$ROOT/scripts/kafka/pom.xml"
RUN="$CACHE/run"

HOST=127.0.0.1
KAFKA_PORT="${LEADSCORE_KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((KAFKA_PORT + 1))
REDIS_PORT="${LEADSCORE_REDIS_PORT:-6379}"
TIMEOUT="${LEADSCORE_SERVICES_TIMEOUT:-90}"
REDIS_AOF="${LEADSCORE_REDIS_AOF:-no}"

# Default ports use .cache/run/{redis,kafka}; other ports get their own directories
# (.cache/run/kafka-19092, ...), so a second set on other ports never touches the first's
# data: KRaft storage also records the controller endpoint, so it is tied to its ports.
suffix() { [[ "$1" == "$2" ]] || printf -- '-%s' "$1"; }
REDIS_DIR="$RUN/redis$(suffix "$REDIS_PORT" 6379)"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

KAFKA_DIR="$RUN/kafka$(suffix "$KAFKA_PORT" 9092)"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/server.log"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------- probes

redis_answers() {
  # timeout: redis-cli waits forever if something that is not Redis holds the port.
  [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

port_open() { timeout 2 bash -c ">/dev/tcp/$HOST/$1" 2>/dev/null; }

kafka_answers() {
  # kcat waits out its whole metadata timeout when nothing listens: check the port first.
  port_open "$KAFKA_PORT" || return 1
  # A metadata request that lists a broker means the broker is registered with the
  # controller and serving; an open port alone is not enough (it opens before that).
  timeout 10 kcat -b "$HOST:$KAFKA_PORT" -L -m 5 2>/dev/null | grep -q ' at '
}

# pid_alive PIDFILE NAME: the pid file names a live process whose command line contains
# NAME (guards against acting on a recycled pid after a reboot or crash).
pid_alive() {
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(cat "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# --------------------------------------------------------------------------- install

# Fresh Debian machines have neither redis nor kcat (nor, maybe, Java/Maven): install what
# is missing, with a single `apt-get update`.
ensure_packages() {
  local pkgs=()
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
  command -v kcat >/dev/null || pkgs+=(kcat)
  # Kafka 4 needs Java 17+, which is Debian 12's default JDK.
  command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  ((${#pkgs[@]})) || return 0

  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root or sudo to install: ${pkgs[*]}"
    sudo=(sudo)
  fi
  log "installing ${pkgs[*]} via apt"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
}

# Fetch the broker jars once. The marker holds the pom's hash, so editing the pom (e.g. a
# version bump) triggers a fresh download; a half-finished download never counts as done
# because it goes to a temp dir that is only renamed into place on success.
ensure_kafka_jars() {
  local marker="$LIBS/.complete" want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    return 0
  fi
  log "downloading Kafka jars from Maven Central into .cache/kafka/libs (first run only)..."
  local tmp="$CACHE/kafka/libs.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # sed: Maven 3.8 prints stray ANSI resets even in quiet batch mode (pipefail keeps mvn's status).
  mvn -q -B -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 ||
    die "maven could not fetch the Kafka jars (see output above)"
  echo "$want" >"$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "Kafka jars ready ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
}

# ----------------------------------------------------------------------------- redis

start_redis() {
  if redis_answers; then
    log "redis: something already answers PING on $HOST:$REDIS_PORT, reusing it"
    return 0
  fi
  mkdir -p "$REDIS_DIR"
  # A throwaway cache for tests: no RDB snapshots, no AOF — unless LEADSCORE_REDIS_AOF=yes
  # (the fault suite restarts Redis and needs its data back). --dir keeps any stray files
  # (e.g. a crash dump, the AOF) inside .cache/ instead of the caller's working directory.
  local aof=no
  [[ "$REDIS_AOF" == yes ]] && aof=yes
  log "redis: starting on $HOST:$REDIS_PORT (appendonly $aof)"
  redis-server --bind "$HOST" --port "$REDIS_PORT" \
    --save "" --appendonly "$aof" --appendfsync everysec \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
    --dir "$REDIS_DIR" >/dev/null 9>&- # 9>&-: see take_lock
}

# ----------------------------------------------------------------------------- kafka

write_kafka_props() {
  mkdir -p "$KAFKA_DIR"
  cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/services.sh on every start; edit the script, not this file.
# Single node in KRaft mode: one process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# One broker: every internal topic must live with replication factor 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# The default 50 partitions make the first consumer-group join in a test noticeably slow.
offsets.topic.num.partitions=4

# Our app creates its topics itself; auto-creation would hide a missing CreateTopics.
auto.create.topics.enable=false
num.partitions=4
# Tests join groups constantly: no 3 s wait for more members, and allow short sessions.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=2000
EOF
}

format_kafka_storage() {
  if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
    return 0 # formatted before: restart on the existing data (topics, offsets survive)
  fi
  if [[ -e "$KAFKA_DATA" ]]; then
    log "kafka: storage is incomplete (interrupted format?): wiping it"
    rm -rf "$KAFKA_DATA"
  fi
  local cluster_id
  cluster_id="$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  [[ -n "$cluster_id" ]] || die "kafka: could not generate a cluster id"
  log "kafka: formatting storage (cluster id $cluster_id)"
  # --standalone: make this node the only voter of a dynamic KRaft quorum.
  java -cp "$LIBS/*" kafka.tools.StorageTool format --standalone \
    -t "$cluster_id" -c "$KAFKA_PROPS" >"$KAFKA_DIR/format.log" 2>&1 ||
    { tail -n 20 "$KAFKA_DIR/format.log" >&2; die "kafka: formatting storage failed"; }
}

start_kafka() {
  if kafka_answers; then
    log "kafka: something already answers on $HOST:$KAFKA_PORT, reusing it"
    return 0
  fi
  if pid_alive "$KAFKA_PID" kafka.Kafka; then
    log "kafka: already starting (pid $(cat "$KAFKA_PID")), waiting for it"
    return 0
  fi
  command -v java >/dev/null || die "java is not on PATH (Kafka 4 needs Java 17+)"
  write_kafka_props
  format_kafka_storage
  [[ -f "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1" # keep the previous run's log
  log "kafka: starting on $HOST:$KAFKA_PORT (controller $HOST:$CONTROLLER_PORT)"
  # setsid + nohup: the broker must outlive this script, `make`, and whatever process
  # group the caller (a CI step, an IDE) kills when it finishes. A background job of a
  # non-interactive shell is not a group leader, so setsid execs in place and $! is java.
  # slf4j-simple logs without timestamps by default; they matter when diagnosing a slow start.
  # The G1 settings are the ones Kafka's own kafka-run-class.sh starts a broker with
  # (KAFKA_JVM_PERFORMANCE_OPTS): without them Java's default pause target is 200 ms, not 20,
  # and every produce → consume path crosses the broker's pauses. GC log beside the broker's.
  setsid nohup java -Xmx512m -Xms512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent "-Xlog:gc:file=\"$KAFKA_LOG.gc\":time,uptime:filecount=2,filesize=10M" \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    '-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS' \
    -cp "$LIBS/*" kafka.Kafka "$KAFKA_PROPS" >"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_PID"
}

# ------------------------------------------------------------------------------ wait

wait_until_ready() {
  local deadline=$((SECONDS + TIMEOUT)) redis_ok=0 kafka_ok=0 next_note=$((SECONDS + 10))
  log "waiting up to ${TIMEOUT}s for redis and kafka to answer..."
  while :; do
    ((redis_ok)) || { redis_answers && redis_ok=1 && log "redis: ready"; } || true
    ((kafka_ok)) || { kafka_answers && kafka_ok=1 && log "kafka: ready"; } || true
    ((redis_ok && kafka_ok)) && return 0

    # A broker that has already died will not come up: fail now, not in 90 s.
    if ((!kafka_ok)) && [[ -f "$KAFKA_PID" ]] && ! pid_alive "$KAFKA_PID" kafka.Kafka; then
      log "kafka: the broker process exited; last lines of $KAFKA_LOG:"
      tail -n 40 "$KAFKA_LOG" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      if ((!redis_ok)); then
        log "redis: no PONG on $HOST:$REDIS_PORT after ${TIMEOUT}s; last lines of $REDIS_LOG:"
        tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
      fi
      if ((!kafka_ok)); then
        log "kafka: no metadata from $HOST:$KAFKA_PORT after ${TIMEOUT}s; last lines of $KAFKA_LOG:"
        tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
      fi
      exit 1
    fi
    if ((SECONDS >= next_note)); then
      next_note=$((SECONDS + 10))
      log "  ...still waiting ($((deadline - SECONDS))s left; redis=$( ((redis_ok)) && echo up || echo down), kafka=$( ((kafka_ok)) && echo up || echo down))"
    fi
    sleep 1
  done
}

# -------------------------------------------------------------------------- commands

# Two `up`s at once (two terminals, or make test next to make run) must not start two
# brokers or download twice: serialize up/down on a lock file. The daemons we start must
# not inherit fd 9 (hence `9>&-` on them): a long-lived holder would keep the lock forever.
take_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/services.lock"
  flock -w 600 9 || die "another scripts/services.sh is still running"
}

cmd_up() {
  take_lock
  ensure_packages
  # Both already up: no maven, no java, no apt — the second `up` must be instant.
  if ! kafka_answers; then
    ensure_kafka_jars
  fi
  start_redis
  start_kafka
  wait_until_ready
  echo "kafka: $HOST:$KAFKA_PORT"
  echo "redis: $HOST:$REDIS_PORT"
}

# stop_pid PIDFILE NAME GRACE_SECONDS: SIGTERM (graceful shutdown), SIGKILL after the grace.
stop_pid() {
  local file="$1" name="$2" grace="$3" pid
  if ! pid_alive "$file" "$name"; then
    rm -f "$file"
    return 1
  fi
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop within ${grace}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$file"
}

cmd_down() {
  local purge=0
  case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) die "usage: $0 down [--purge]" ;;
  esac
  take_lock
  # Only processes we started (they have our pid files); a reused Redis/Kafka is left alone.
  # Kafka first: its controlled shutdown takes a few seconds, Redis none.
  if stop_pid "$KAFKA_PID" kafka.Kafka 30; then log "kafka: stopped"; else log "kafka: not running (ours)"; fi
  if stop_pid "$REDIS_PID" redis-server 10; then log "redis: stopped"; else log "redis: not running (ours)"; fi
  if ((purge)); then
    rm -rf "$KAFKA_DIR" "$REDIS_DIR"
    rmdir "$RUN" 2>/dev/null || true # only if no other port set lives there
    log "removed ${KAFKA_DIR#"$ROOT/"} and ${REDIS_DIR#"$ROOT/"} (the Kafka jars stay)"
  fi
}

cmd_status() {
  local rc=0
  owner() { if pid_alive "$1" "$2"; then echo " (started by services.sh, pid $(cat "$1"))"; fi; }
  if kafka_answers; then
    echo "kafka: $HOST:$KAFKA_PORT up$(owner "$KAFKA_PID" kafka.Kafka)"
  else
    echo "kafka: $HOST:$KAFKA_PORT down"
    rc=3
  fi
  if redis_answers; then
    echo "redis: $HOST:$REDIS_PORT up$(owner "$REDIS_PID" redis-server)"
  else
    echo "redis: $HOST:$REDIS_PORT down"
    rc=3
  fi
  return "$rc"
}

cmd_env() {
  echo "export LEADSCORE_TEST_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
  echo "export LEADSCORE_TEST_REDIS_ADDR=$HOST:$REDIS_PORT"
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  *) usage ;;
  esac
}

main "$@"
