#!/usr/bin/env bash
# Seeds 1,000,000 runs (with transitions) and measures GET /api/v1/runs with and without filters, p50/p95,
# beside the bare SQL query's own time (pgbench, same SQL, same concurrency) in the same run.
# Run with `make bench-runs` (it builds the release binary first).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v pgbench >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
admin=$(scripts/test-db.sh)
base=${admin%/*}
db=mlops_bench_runs
psql -q "$admin" -c "drop database if exists $db with (force)" -c "create database $db"
url="$base/$db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
token=$(DATABASE_URL="$url" ./target/release/mlops-console tokens create --name bench --role viewer 2>/dev/null | grep '^mlc_')
auth="Authorization: Bearer $token"
RUST_LOG=warn PORT=$port DATABASE_URL="$url" LEPTOS_SITE_ROOT=target/site ./target/release/mlops-console >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"; psql -q "$admin" -c "drop database if exists $db with (force)"' EXIT
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

echo "seeding $N runs with 2 transitions each…" >&2
psql -q "$url" <<SQL
insert into runs (id, kind, target, parameters, requested_by, status, azure_status, created_at, finished_at, next_poll_at)
select gen_random_uuid(),
       (array['training-job','model-register','deployment-create','traffic-update'])[1 + i % 4],
       'mlopsnew-dev-mlw/jobs/train-' || i, '{"seeded": true}'::jsonb,
       (array['alice','bob','carol','anonymous'])[1 + (i / 7) % 4],
       (array['succeeded','failed','succeeded','canceled'])[1 + (i / 3) % 4],
       'Completed', now() - make_interval(secs => i), now() - make_interval(secs => i) + interval '5 minutes',
       now() - make_interval(secs => i)
from generate_series(1, $N) as i;
insert into run_transitions (run_id, status, azure_status, at)
select id, 'submitting', null, created_at from runs
union all
select id, status, azure_status, finished_at from runs;
vacuum analyze runs;
vacuum analyze run_transitions;
SQL

# The same query the API runs (db::runs::list), with the filters as constants; limit 51 = a page of 50 + 1.
sql() { cat <<SQL
select id, kind, target, status, azure_status, requested_by, created_at, finished_at
from runs
where (\$\$${1:-}\$\$ = '' or kind = \$\$${1:-}\$\$)
  and (\$\$${2:-}\$\$ = '' or status = \$\$${2:-}\$\$)
  and (\$\$${3:-}\$\$ = '' or requested_by = \$\$${3:-}\$\$)
order by created_at desc, id desc
limit 51;
SQL
}
cat > "$work/p.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("%.0f %.3f %.3f\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
LUA
api() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/p.lua" -H "$auth" "http://127.0.0.1:$port/api/v1/runs$1" | tail -1; }
bare() {
  sql "$@" > "$work/q.sql"
  (cd "$work" && rm -f pgbench_log.* && pgbench -n -f q.sql -c "$CONNECTIONS" -j 2 -T "$DURATION" -l "$url" >/dev/null 2>&1)
  cat "$work"/pgbench_log.* | python3 -c '
import sys
lat = sorted(int(l.split()[2]) for l in sys.stdin)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000
print(f"{len(lat) / '"$DURATION"':.0f} {p(0.50):.3f} {p(0.95):.3f}")'
}
curl -fs -H "$auth" "http://127.0.0.1:$port/api/v1/runs?limit=50" >/dev/null
echo
echo "GET /api/v1/runs over $N runs, $CONNECTIONS connections, ${DURATION}s each, $(nproc) cores:"
echo
echo "| query | API req/s | API p50 (ms) | API p95 (ms) | SQL p50 (ms) | SQL p95 (ms) | API p95 / SQL p95 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row() {
  read -r a_rps a50 a95 < <(api "$1")
  read -r s_rps s50 s95 < <(bare "${3:-}" "${4:-}" "${5:-}")
  ratio=$(python3 -c "print(f'{$a95 / max($s95, 0.001):.2f}×')")
  echo "| $2 | $a_rps | $a50 | $a95 | $s50 | $s95 | $ratio |"
}
row "?limit=50" "newest 50, no filter"
row "?limit=50&status=failed" "status=failed" "" failed
row "?limit=50&kind=training-job&status=succeeded" "kind + status" training-job succeeded
row "?limit=50&requested_by=alice" "requested_by=alice" "" "" alice
