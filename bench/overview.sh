#!/usr/bin/env bash
# Serves the overview under load with wrk (64 connections) and, for comparison, the very same HTML as a
# static file from the same server. Prints p50/p99 latency and requests/s for both, and their ratio.
# Run with `make bench` (it builds the release binary and the release site first).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
data=$(mktemp -d)
chmod 755 "$data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export RUST_LOG=warn
# A viewer's API token: pages need a signed-in user, and a bearer token is one.
token=$(MLOPS_DATA_DIR="$data" ./target/release/mlops-console tokens create --name bench --role viewer 2>/dev/null | grep '^mlc_')
auth="Authorization: Bearer $token"
PORT=$port MLOPS_DATA_DIR="$data" LEPTOS_SITE_ROOT=target/site ./target/release/mlops-console >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" target/site/bench-static.html' EXIT
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -fs -H "$auth" "http://127.0.0.1:$port/" -o target/site/bench-static.html
size=$(wc -c < target/site/bench-static.html)

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$auth" "$1"; }
parse() { # rps p50 p99 (ms)
  awk '/Requests\/sec/ {rps=$2}
       /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
       END {print rps, p50, p99}' | awk '
       function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
       {printf "%.0f %.2f %.2f\n", $1, ms($2), ms($3)}'
}
echo "warming up…" >&2
wrk -t1 -c8 -d3s -H "$auth" "http://127.0.0.1:$port/" >/dev/null
read -r d_rps d_p50 d_p99 < <(run "http://127.0.0.1:$port/" | parse)
read -r s_rps s_p50 s_p99 < <(run "http://127.0.0.1:$port/bench-static.html" | parse)
ratio=$(awk -v a="$d_rps" -v b="$s_rps" 'BEGIN {printf "%.0f%%", 100*a/b}')
echo
echo "Overview ($size bytes of HTML), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores:"
echo
echo "| what | requests/s | p50 (ms) | p99 (ms) |"
echo "|---|---:|---:|---:|"
echo "| overview, server-rendered (\`GET /\`) | $d_rps | $d_p50 | $d_p99 |"
echo "| same HTML as a static file | $s_rps | $s_p50 | $s_p99 |"
echo "| overview / static | $ratio | | |"
