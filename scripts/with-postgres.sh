#!/bin/sh
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with LLMSPELL_TEST_PG_URL pointing at a PostgreSQL server.
# When LLMSPELL_TEST_PG_URL is already set, CMD simply runs against it.
# Otherwise a throwaway server is created in a fresh temporary directory
# (data and unix socket, no TCP listener), used, then stopped and removed
# whatever happens; the exit status is CMD's.
#
# Exports for CMD: LLMSPELL_TEST_PG_URL (a libpq URL, superuser "postgres"),
# and LLMSPELL_TEST_PG_HOST / LLMSPELL_TEST_PG_PORT (the socket directory and
# port, for psql -h/-p), LLMSPELL_TEST_PG_DATA (the data directory) and
# LLMSPELL_TEST_PG_CTL (a script running this server's pg_ctl as its owner:
# `"$LLMSPELL_TEST_PG_CTL" restart -m immediate`, for the fault specs).
#
# Needs Debian's `postgresql` package (server binaries under
# /usr/lib/postgresql/<version>/bin). It never touches a cluster that the
# package may have created and started on port 5432.
set -eu

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

if [ -n "${LLMSPELL_TEST_PG_URL:-}" ]; then
  exec "$@"
fi

say() { echo "with-postgres.sh: $*" >&2; }

# A preloaded sanitizer runtime (make asan) is meant for CMD only: in ls,
# initdb or the server its leak checker would abort them at exit.
cmd_preload=${LD_PRELOAD-}
unset LD_PRELOAD

# The newest installed server version.
bindir=$(for d in /usr/lib/postgresql/*/bin; do echo "$d"; done | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
  say "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
  exit 1
fi
libdir="$(dirname "$bindir")/lib"

# initdb and the server refuse to run as root: then they run as the
# `postgres` system user, which owns the temporary directory.
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    say "running as root but there is no 'postgres' system user"
    exit 1
  fi
  if command -v runuser >/dev/null 2>&1; then
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() {
      # su needs one command string; quote each word for the shell.
      cmd=""
      for a in "$@"; do
        cmd="$cmd '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"
      done
      su -s /bin/sh postgres -c "$cmd"
    }
  fi
fi

# As root, the postgres user must reach the directory: use /tmp, not a
# $TMPDIR that may sit under /root.
base=${TMPDIR:-/tmp}
[ "$(id -u)" -ne 0 ] || base=/tmp
tmp=$(mktemp -d "$base/llmspell-pg.XXXXXX")
data="$tmp/data"
sock="$tmp/sock"
log="$tmp/server.log"
started=0

# shellcheck disable=SC2317  # trap handlers: reached through trap only
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [ "$started" -eq 1 ]; then
    as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
child=""
# A signal also stops CMD (with TERM: a background job may ignore INT).
# shellcheck disable=SC2317
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

mkdir "$sock"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$tmp"
fi
chmod 700 "$tmp"

# The port only names the socket file inside our private directory, so it
# cannot collide with another server's socket; still pick one that no TCP
# listener uses, in case anyone turns TCP on.
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    return 1
  fi
}
port=$(( 20000 + ($$ % 20000) ))
while port_busy "$port"; do
  port=$(( port + 1 ))
  [ "$port" -lt 65000 ] || port=20000
done

if ! as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale \
     --no-sync >"$tmp/initdb.log" 2>&1; then
  cat "$tmp/initdb.log" >&2
  say "initdb failed"
  exit 1
fi

preload=""
[ -f "$libdir/pg_stat_statements.so" ] && preload="pg_stat_statements"
# Speed over durability: the cluster is deleted afterwards.
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 32MB
shared_preload_libraries = '$preload'
log_min_messages = warning
EOF

if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
  cat "$log" >&2 2>/dev/null || true
  say "the server did not start"
  exit 1
fi
started=1

i=0
until "$bindir/pg_isready" -q -h "$sock" -p "$port"; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then
    cat "$log" >&2
    say "the server is not accepting connections"
    exit 1
  fi
  sleep 0.1
done

# pg_ctl for fault specs (restart -m immediate ...), as the server's owner.
# -l: a restarted server must not inherit (and hold open) the caller's
# stdout, or a caller reading pg_ctl's output would wait for ever.
runas=""
[ "$(id -u)" -ne 0 ] || runas="runuser -u postgres --"
squote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo '#!/bin/sh'
  echo "exec $runas $(squote "$bindir/pg_ctl") -D $(squote "$data") -l $(squote "$log") \\"
  echo '  -w -t 60 "$@"'
} >"$tmp/pg_ctl"
chmod 755 "$tmp/pg_ctl"

LLMSPELL_TEST_PG_URL="postgresql:///postgres?host=$sock&port=$port&user=postgres"
LLMSPELL_TEST_PG_HOST=$sock
LLMSPELL_TEST_PG_PORT=$port
LLMSPELL_TEST_PG_DATA=$data
LLMSPELL_TEST_PG_CTL=$tmp/pg_ctl
export LLMSPELL_TEST_PG_URL LLMSPELL_TEST_PG_HOST LLMSPELL_TEST_PG_PORT
export LLMSPELL_TEST_PG_DATA LLMSPELL_TEST_PG_CTL

# Not exec: the server must be stopped afterwards. In the background, so
# that a signal interrupts `wait` at once (a foreground command would delay
# the trap until it ends); fd 3 keeps CMD's stdin, which the shell would
# otherwise replace with /dev/null for a background job.
exec 3<&0
if [ -n "$cmd_preload" ]; then
  LD_PRELOAD=$cmd_preload "$@" <&3 3<&- &
else
  "$@" <&3 3<&- &
fi
child=$!
set +e
wait "$child"
status=$?
set -e
child=""
exit "$status"
