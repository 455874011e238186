#!/usr/bin/env bash
# Prints the URL of a Postgres server for the tests to create their databases on, starting one if needed:
# TEST_DATABASE_URL if set; else the machine's server on 127.0.0.1:5432 (started if installed but down);
# else a private throwaway cluster in .data/test-postgres on port 55432.
set -euo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${TEST_DATABASE_URL:-}" ]; then echo "$TEST_DATABASE_URL"; exit 0; fi
if up 5432; then echo "postgres://postgres@127.0.0.1:5432/postgres"; exit 0; fi
if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
  v=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
  for _ in $(seq 50); do up 5432 && { echo "postgres://postgres@127.0.0.1:5432/postgres"; exit 0; }; sleep 0.2; done
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || bin=$(dirname "$(readlink -f "$(command -v initdb)")")
dir="$PWD/.data/test-postgres"
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
if ! up 55432; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  [ -f "$dir/PG_VERSION" ] || "${as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --no-sync >&2
  "${as[@]}" "$bin/pg_ctl" -D "$dir" -o "-p 55432 -h 127.0.0.1 -k $dir" -l "$dir/server.log" -w start >&2
fi
echo "postgres://postgres@127.0.0.1:55432/postgres"
