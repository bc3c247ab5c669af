#!/usr/bin/env bash
# Ingest into `otelite serve --store clickhouse` and, for comparison, into
# `otelite serve` on SQLite, with the same load generator on the same machine:
# spans/s accepted, CPU seconds per span of otelite and of clickhouse-server,
# and bytes per span on disk. Usage: scripts/bench-clickhouse.sh [SPANS] [CONCURRENCY] [SPANS PER REQUEST]
# Needs /usr/sbin/clickhouse-server (see .ci/run) and a release build:
#   cargo build --release -p otelite-backend --bin otelite && cargo build --release --example loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
spans=${1:-200000}
concurrency=${2:-4}
batch=${3:-1000}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

http=$(free_port); tcp=$(free_port)
cat > "$work/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$work/ch.log</log><errorlog>$work/ch.err</errorlog></logger>
    <listen_host>127.0.0.1</listen_host><http_port>$http</http_port><tcp_port>$tcp</tcp_port>
    <path>$work/data/</path><tmp_path>$work/tmp/</tmp_path>
    <user_files_path>$work/uf/</user_files_path><format_schema_path>$work/fs/</format_schema_path>
    <users_config>users.xml</users_config><default_profile>default</default_profile>
    <default_database>default</default_database><mark_cache_size>268435456</mark_cache_size>
    <!-- As the stock config.xml of the clickhouse-server package: 18.16 reads through this cache by default (use_uncompressed_cache = 1), and trace lookups depend on it. -->
    <uncompressed_cache_size>8589934592</uncompressed_cache_size>
</yandex>
XML
cat > "$work/users.xml" <<XML
<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
XML
(cd "$work" && exec /usr/sbin/clickhouse-server --config-file="$work/config.xml" >/dev/null 2>&1) &
ch=$!; pids+=("$ch")
until curl -sf "http://127.0.0.1:$http/ping" >/dev/null; do sleep 0.2; done
ch_pid=$(pgrep -P "$ch" || echo "$ch")
q() { curl -sf --data-binary "$1" "http://127.0.0.1:$http/"; }
# What the server did over a run (cumulative counters; the difference is taken).
events() { q "SELECT event, value FROM system.events WHERE event IN
    ('InsertQuery', 'SelectQuery', 'Merge', 'InsertedRows') ORDER BY event FORMAT TSV"; }

run() { # name, otelite flags...
    local name=$1; shift
    ./target/release/otelite serve --otlp-listen 127.0.0.1:0 --otlp-grpc-listen 127.0.0.1:0 --query-listen 127.0.0.1:0 "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    local otelite=$!; pids+=("$otelite")
    until grep -q "OTLP/HTTP listening" "$work/$name.out" 2>/dev/null; do sleep 0.1; done
    local endpoint
    endpoint=$(grep -o 'OTLP/HTTP listening on [^ ]*' "$work/$name.out" | awk '{print $4}')
    local o0 c0 o1 c1
    o0=$(cpu_ticks "$otelite"); c0=$(cpu_ticks "$ch_pid"); events >"$work/events.0"
    ./target/release/examples/loadgen --endpoint "$endpoint" --total "$spans" \
        --concurrency "$concurrency" --batch "$batch" --seed 7 | tee "$work/$name.loadgen"
    o1=$(cpu_ticks "$otelite")
    # The merges an ingest causes run after it too: count them in.
    local quiet=0
    for _ in $(seq 1 120); do
        if [ "$(q "SELECT count() FROM system.merges")" = "0" ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ "$quiet" -ge 5 ] && break
        sleep 1
    done
    c1=$(cpu_ticks "$ch_pid"); events >"$work/events.1"
    echo "$name: otelite CPU $(( (o1 - o0) * 1000000 / hz / spans )) µs/span," \
        "clickhouse-server CPU $(( (c1 - c0) * 1000000 / hz / spans )) µs/span"
    echo "clickhouse-server over the run:" $(awk 'NR == FNR { before[$1] = $2; next } { printf "%s %d, ", $1, $2 - before[$1] }' \
        "$work/events.0" "$work/events.1")
    kill "$otelite"; wait "$otelite" 2>/dev/null || true
}

run clickhouse --store clickhouse --clickhouse-url "http://127.0.0.1:$http/bench"
# Every MergeTree table, the attribute rows (more than half the bytes) too.
for t in $(q "SELECT name FROM system.tables WHERE database = 'bench' AND engine LIKE '%MergeTree'"); do
    q "OPTIMIZE TABLE bench.$t FINAL" >/dev/null
done
echo "ClickHouse bytes on disk per span, by table (after OPTIMIZE FINAL):"
q "SELECT table, sum(bytes), round(sum(bytes) / $spans, 1) FROM system.parts
   WHERE active AND database = 'bench' GROUP BY table ORDER BY table FORMAT PrettyCompactNoEscapes"
q "SELECT 'total', sum(bytes), round(sum(bytes) / $spans, 1) FROM system.parts
   WHERE active AND database = 'bench' FORMAT TSV"

run sqlite --db "$work/otelite.db"
echo "SQLite bytes per span: $(( $(stat -c %s "$work/otelite.db") / spans ))" \
    "(file; WAL $(stat -c %s "$work/otelite.db-wal" 2>/dev/null || echo 0) bytes)"
