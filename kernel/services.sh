#!/usr/bin/env bash
# Local services for the course, on loopback with the course's ports:
#   Kafka protocol 127.0.0.1:9092 (noida-db from the venv), Redis 127.0.0.1:6379, MariaDB 127.0.0.1:3306.
# Usage: kernel/services.sh up | down | status
# `up` starts only what does not answer already: services started elsewhere (systemd, docker
# compose, the machine) are reused and never restarted. `down` stops only what `up` started
# (pid files under .run/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
mkdir -p "$RUN"

started_by_us() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

kafka_up() {
  if port_open 127.0.0.1 9092; then say "Kafka    127.0.0.1:9092 answers already (reused)"; return; fi
  local bin="$VENV/lib/python3.11/site-packages/noida_db/noida-db"
  [ -x "$bin" ] || bin="$(ls "$VENV"/lib/python3*/site-packages/noida_db/noida-db 2>/dev/null | head -1)"
  [ -x "$bin" ] || die "the local Kafka broker (noida-db $NOIDA_VERSION) is not installed: run kernel/setup.sh"
  mkdir -p "$RUN/kafka-data"
  # Run the binary itself (not the Python wrapper) so the pid we keep is the broker's.
  setsid nohup "$bin" start --only kafka --host 127.0.0.1 --kafka-port 9092 --data-dir "$RUN/kafka-data" \
    >>"$RUN/kafka.log" 2>&1 < /dev/null &
  echo $! >"$RUN/kafka.pid"
  wait_port 127.0.0.1 9092 20 || die "Kafka did not start on 127.0.0.1:9092; see $RUN/kafka.log"
  say "Kafka    127.0.0.1:9092 started (noida-db, pid $(cat "$RUN/kafka.pid"), data $RUN/kafka-data)"
}

redis_up() {
  if port_open 127.0.0.1 6379; then say "Redis    127.0.0.1:6379 answers already (reused)"; return; fi
  command -v redis-server >/dev/null || die "redis-server is not installed: run kernel/setup.sh"
  mkdir -p "$RUN/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$RUN/redis" --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
  wait_port 127.0.0.1 6379 10 || die "Redis did not start on 127.0.0.1:6379; see $RUN/redis.log"
  say "Redis    127.0.0.1:6379 started (pid $(cat "$RUN/redis.pid"))"
}

mariadb_up() {
  if port_open 127.0.0.1 3306; then say "MariaDB  127.0.0.1:3306 answers already (reused)"; return; fi
  local bin; bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  [ -x "$bin" ] || die "mariadb-server is not installed: run kernel/setup.sh"
  if [ ! -d /var/lib/mysql/mysql ]; then
    say "MariaDB  initialising /var/lib/mysql"
    as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$RUN/mariadb.log" 2>&1
  fi
  as_root mkdir -p /run/mysqld; as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  touch "$RUN/mariadb.log"; chmod 666 "$RUN/mariadb.log"
  as_root setsid nohup "$bin" --user=mysql --bind-address=127.0.0.1 --port=3306 \
    --pid-file=/run/mysqld/bde-mariadb.pid --log-error="$RUN/mariadb.log" >/dev/null 2>&1 < /dev/null &
  wait_port 127.0.0.1 3306 30 || die "MariaDB did not start on 127.0.0.1:3306; see $RUN/mariadb.log"
  as_root cat /run/mysqld/bde-mariadb.pid >"$RUN/mariadb.pid" 2>/dev/null || true
  say "MariaDB  127.0.0.1:3306 started (pid file $RUN/mariadb.pid)"
}

stop_one() {
  if started_by_us "$1"; then
    kill "$(cat "$RUN/$1.pid")" && say "$1 stopped" || warn "could not stop $1"
    rm -f "$RUN/$1.pid"
  else
    say "$1 was not started by kernel/services.sh; left as it is"
  fi
}

status_one() {
  local name=$1 port=$2 how="not started by these scripts"
  started_by_us "$name" && how="started by kernel/services.sh, pid $(cat "$RUN/$name.pid")"
  if port_open 127.0.0.1 "$port"; then say "$(printf '%-8s' "$name") 127.0.0.1:$port up   ($how)"
  else say "$(printf '%-8s' "$name") 127.0.0.1:$port DOWN (start it with kernel/services.sh up)"; return 1; fi
}

case "${1:-status}" in
  up) kafka_up; redis_up; mariadb_up ;;
  down) stop_one kafka; stop_one redis; stop_one mariadb ;;
  status) rc=0; status_one kafka 9092 || rc=1; status_one redis 6379 || rc=1; status_one mariadb 3306 || rc=1; exit $rc ;;
  *) die "usage: kernel/services.sh up | down | status" ;;
esac
