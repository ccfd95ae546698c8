#!/usr/bin/env bash
# A private PostgreSQL for the tests: Debian's binaries (installed if
# absent), a fresh cluster in a temporary directory, on a free loopback
# port, trust auth, owned by the postgres user (initdb refuses root).
#
#   scripts/postgres.sh start   prints the URL on stdout, the state dir on fd 3 if open
#   scripts/postgres.sh stop DIR
set -euo pipefail

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

install_pg() {
  if [ -z "$(find_bin)" ]; then
    echo "postgres: installing Debian's postgresql packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  install_pg
  bin=$(find_bin)
  dir=$(mktemp -d /tmp/annexa-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port=$(free_port)
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  # fsync stays on: the tests check durability, not only behaviour.
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c shared_buffers=128MB" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$dir" > "$dir/dir"
  echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  { echo "$dir" >&3; } 2>/dev/null || true
  ;;
stop)
  dir=${2:?usage: postgres.sh stop DIR}
  bin=$(find_bin)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
