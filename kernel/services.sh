#!/usr/bin/env bash
# Local services for the course, on loopback with the course's ports:
#   Kafka protocol 127.0.0.1:9092 (noida-db from the venv), Redis 127.0.0.1:6379, MariaDB 127.0.0.1:3306.
# Usage: kernel/services.sh up | down | status
#        kernel/services.sh init-mariadb DATADIR | check-accounts SOCKET DATADIR (what `up` does for
#        MariaDB, on their own: used by tests/local_security.rs on a throwaway server)
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

# A data folder this script initialised is listed in $RUN/mariadb-initialised (one path a line).
INITIALISED="$RUN/mariadb-initialised"

# init_mariadb DATADIR: the system tables without the `test` database and without anonymous
# accounts (--skip-test-db: mariadb-install-db otherwise adds ''@localhost and ''@<hostname>,
# and lets every account use the databases test and test_*). Root logs in by socket only (the
# default of mariadb-install-db since 10.4).
init_mariadb() {
  local dir=$1
  say "MariaDB  initialising $dir (no test database, no anonymous accounts)"
  as_root mariadb-install-db --user=mysql --datadir="$dir" --skip-test-db >>"$RUN/mariadb.log" 2>&1 \
    || die "mariadb-install-db failed for $dir; see $RUN/mariadb.log"
  echo "$dir" >>"$INITIALISED"
}

# initialised_here DATADIR: true when this script initialised DATADIR (also by its versions
# before the list existed: their mariadb-install-db output is in $RUN/mariadb.log).
initialised_here() {
  grep -qxF "$1" "$INITIALISED" 2>/dev/null \
    || grep -qF "Installing MariaDB/MySQL system tables in '$1'" "$RUN/mariadb.log" 2>/dev/null
}

# root_sql SOCKET SQL: runs SQL through root's own socket login (sudo where needed and allowed
# without a password prompt); root's authentication is never changed.
root_sql() {
  local sock=$1 sql=$2
  mariadb --protocol=socket -S "$sock" -uroot -N -B -e "$sql" 2>/dev/null && return 0
  [ "$(id -u)" != 0 ] && command -v sudo >/dev/null \
    && sudo -n mariadb --protocol=socket -S "$sock" -uroot -N -B -e "$sql" 2>/dev/null
}

# check_accounts SOCKET DATADIR: anonymous accounts (user '') let anyone on the machine log in.
# On a server whose data folder this script initialised they are removed (an earlier version of
# it made them); on any other server they are reported and left as they are.
check_accounts() {
  local sock=$1 dir=$2 anon
  if ! anon="$(root_sql "$sock" "SELECT CONCAT(QUOTE(user), '@', QUOTE(host)) FROM mysql.user WHERE user = ''")"; then
    warn "MariaDB: could not read mysql.user through root's socket login ($sock): anonymous accounts not checked"
    return 0
  fi
  [ -n "$anon" ] || { say "MariaDB  no anonymous accounts"; return 0; }
  local list; list="$(echo "$anon" | paste -sd, -)"
  if initialised_here "$dir"; then
    root_sql "$sock" "DROP USER $list" || die "MariaDB: could not remove the anonymous accounts $list"
    say "MariaDB  removed the anonymous accounts $list (made when this set-up initialised $dir)"
  else
    warn "MariaDB has anonymous accounts ($list) that this set-up did not create: left as they are (an administrator removes them with DROP USER)"
  fi
}

mariadb_up() {
  if port_open 127.0.0.1 3306; then
    say "MariaDB  127.0.0.1:3306 answers already (reused)"
    check_accounts /run/mysqld/mysqld.sock /var/lib/mysql
    return
  fi
  local bin; bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  [ -x "$bin" ] || die "mariadb-server is not installed: run kernel/setup.sh"
  if [ ! -d /var/lib/mysql/mysql ]; then
    init_mariadb /var/lib/mysql
  fi
  as_root mkdir -p /run/mysqld; as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  touch "$RUN/mariadb.log"; chmod 666 "$RUN/mariadb.log"
  as_root setsid nohup "$bin" --user=mysql --bind-address=127.0.0.1 --port=3306 \
    --pid-file=/run/mysqld/bde-mariadb.pid --log-error="$RUN/mariadb.log" >/dev/null 2>&1 < /dev/null &
  wait_port 127.0.0.1 3306 30 || die "MariaDB did not start on 127.0.0.1:3306; see $RUN/mariadb.log"
  as_root cat /run/mysqld/bde-mariadb.pid >"$RUN/mariadb.pid" 2>/dev/null || true
  say "MariaDB  127.0.0.1:3306 started (pid file $RUN/mariadb.pid)"
  check_accounts /run/mysqld/mysqld.sock /var/lib/mysql
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
  init-mariadb) [ -n "${2:-}" ] || die "usage: kernel/services.sh init-mariadb DATADIR"; init_mariadb "$2" ;;
  check-accounts) [ -n "${3:-}" ] || die "usage: kernel/services.sh check-accounts SOCKET DATADIR"; check_accounts "$2" "$3" ;;
  status) rc=0; status_one kafka 9092 || rc=1; status_one redis 6379 || rc=1; status_one mariadb 3306 || rc=1; exit $rc ;;
  *) die "usage: kernel/services.sh up | down | status | init-mariadb DATADIR | check-accounts SOCKET DATADIR" ;;
esac
