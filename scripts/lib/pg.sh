# Starting and stopping a private PostgreSQL server. Sourced by scripts/cluster and
# tests/pg-harness; never touches a system PostgreSQL.
#
# PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres`
# OS user that Debian's postgresql-common package creates.

pg_bindir() {
  if [[ -x /usr/lib/postgresql/15/bin/postgres ]]; then
    echo /usr/lib/postgresql/15/bin
  elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/postgres" ]]; then
    pg_config --bindir
  else
    echo "pg: no PostgreSQL server binaries found; run scripts/deps" >&2
    return 1
  fi
}

# Runs "$@" as the OS user that owns the server's files.
pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_init DATA_DIR: creates a cluster with superuser `conclave` and trust authentication on
# loopback (a private development or test server; never expose it).
pg_init() {
  local data=$1 bin
  bin=$(pg_bindir) || return 1
  mkdir -p "$data"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$data"
    if ! runuser -u postgres -- test -w "$data"; then
      echo "pg: the postgres OS user cannot write $data; every directory above it must be" \
           "searchable by others (chmod o+x)" >&2
      return 1
    fi
  fi
  chmod 700 "$data"
  pg_as_owner "$bin/initdb" -D "$data" -U conclave --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; return 1; }
  rm -f "$data.initdb.log"
}

# pg_start DATA_DIR PORT LOG_FILE [EXTRA_POSTGRES_OPTIONS]: starts the server on
# 127.0.0.1:PORT with its unix socket inside DATA_DIR, and waits until it accepts connections.
pg_start() {
  local data port=$2 log=$3 extra=${4:-} bin
  data=$(cd "$1" && pwd) || return 1
  bin=$(pg_bindir) || return 1
  touch "$log"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$log"
  pg_as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data $extra" start >/dev/null
}

# pg_pid DATA_DIR: the postmaster's pid, or nothing when it is not running.
pg_pid() {
  local pidfile="$1/postmaster.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(head -n 1 "$pidfile" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  return 0
}

# pg_stop DATA_DIR: fast shutdown, then SIGKILL by pid if the server does not go away.
pg_stop() {
  local data=$1 pid bin
  pid=$(pg_pid "$data")
  [[ -n $pid ]] || return 0
  bin=$(pg_bindir) || return 1
  pg_as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# pg_port_free PORT: succeeds when nothing listens on 127.0.0.1:PORT.
pg_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
