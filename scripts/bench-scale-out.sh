#!/usr/bin/env bash
# Two `otelite serve --store clickhouse` receivers in front of a two-shard
# ClickHouse cluster (two clickhouse-server processes, Distributed tables,
# as docs/scale-out.md describes), the same load split over both receivers
# at once: spans/s accepted in all and per receiver, rows per shard, CPU
# seconds per span of each otelite and each clickhouse-server, and bytes on
# disk per shard. The figures to set beside scripts/bench-clickhouse.sh's
# one receiver and one server. Everything runs under `nice` on this one
# machine: four servers and two load generators share its cores, so this
# checks the per-span arithmetic, not scale-out itself.
# Usage: scripts/bench-scale-out.sh [SPANS] [CONCURRENCY PER RECEIVER] [SPANS PER REQUEST]
# Needs /usr/sbin/clickhouse-server (see .ci/run) and a release build:
#   cargo build --release -p otelite-backend --bin otelite && cargo build --release --example loadgen
# TARGET=dir takes the binaries from another target directory (default target).
set -euo pipefail
cd "$(dirname "$0")/.."
spans=${1:-400000}
concurrency=${2:-4}
batch=${3:-1000}
target=${TARGET:-target}
half=$((spans / 2))
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
per_span() { echo $(( $1 * 1000000 / hz / $2 )); } # ticks, spans -> µs/span

http=("$(free_port)" "$(free_port)"); tcp=("$(free_port)" "$(free_port)")
# Each server knows the cluster; otelite's `?cluster=otelite` makes the
# Distributed tables over it (shard tables in bench_shard on each server).
cluster="<otelite>"
for s in 0 1; do
    cluster+="<shard><replica><host>127.0.0.1</host><port>${tcp[$s]}</port></replica></shard>"
done
cluster+="</otelite>"

ch=()
for s in 0 1; do
    dir="$work/ch$s"; mkdir -p "$dir"
    cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$dir/ch.log</log><errorlog>$dir/ch.err</errorlog></logger>
    <listen_host>127.0.0.1</listen_host><http_port>${http[$s]}</http_port><tcp_port>${tcp[$s]}</tcp_port>
    <path>$dir/data/</path><tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/uf/</user_files_path><format_schema_path>$dir/fs/</format_schema_path>
    <users_config>users.xml</users_config><default_profile>default</default_profile>
    <default_database>default</default_database><mark_cache_size>268435456</mark_cache_size>
    <!-- As the stock config.xml of the clickhouse-server package: 18.16 reads through this cache by default (use_uncompressed_cache = 1), and trace lookups depend on it. -->
    <uncompressed_cache_size>8589934592</uncompressed_cache_size>
    <timezone>UTC</timezone>
    <remote_servers>$cluster</remote_servers>
</yandex>
XML
    cat > "$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
XML
    (cd "$dir" && exec nice /usr/sbin/clickhouse-server --config-file="$dir/config.xml" >/dev/null 2>&1) &
    pids+=("$!"); ch+=("$!")
done
for s in 0 1; do
    until curl -sf "http://127.0.0.1:${http[$s]}/ping" >/dev/null; do sleep 0.2; done
    ch[s]=$(pgrep -P "${ch[$s]}" || echo "${ch[$s]}")
done
q() { curl -sf --data-binary "$2" "http://127.0.0.1:${http[$1]}/"; } # shard, SQL
# What each server did over the run (cumulative counters; the difference is taken).
events() { q "$1" "SELECT event, value FROM system.events WHERE event IN
    ('InsertQuery', 'SelectQuery', 'Merge', 'InsertedRows') ORDER BY event FORMAT TSV"; }

# Receiver s talks to shard s (its own zone's node, as in production).
otelite=(); endpoint=()
for s in 0 1; do
    nice "$target/release/otelite" serve --otlp-listen 127.0.0.1:0 --otlp-grpc-listen 127.0.0.1:0 \
        --query-listen 127.0.0.1:0 --store clickhouse \
        --clickhouse-url "http://127.0.0.1:${http[$s]}/bench?cluster=otelite" \
        >"$work/otelite$s.out" 2>"$work/otelite$s.err" &
    pids+=("$!"); otelite+=("$!")
done
for s in 0 1; do
    until grep -q "OTLP/HTTP listening" "$work/otelite$s.out" 2>/dev/null; do
        kill -0 "${otelite[$s]}" || { cat "$work/otelite$s.err"; exit 1; }
        sleep 0.1
    done
    endpoint+=("$(grep -o 'OTLP/HTTP listening on [^ ]*' "$work/otelite$s.out" | awk '{print $4}')")
done

echo "$(nproc) cores for everything: 2 clickhouse-server, 2 otelite and 2 loadgen processes (nice), beside whatever else runs ($(cut -d' ' -f1-3 /proc/loadavg) load before the run)"
o0=(); c0=()
for s in 0 1; do
    o0+=("$(cpu_ticks "${otelite[$s]}")"); c0+=("$(cpu_ticks "${ch[$s]}")"); events "$s" >"$work/events$s.0"
done
start=$(date +%s%N)
loadgens=()
for s in 0 1; do
    # Different seeds: the two halves are different spans.
    nice "$target/release/examples/loadgen" --endpoint "${endpoint[$s]}" --total "$half" \
        --concurrency "$concurrency" --batch "$batch" --seed $((7 + s)) >"$work/loadgen$s" &
    loadgens+=("$!")
done
for s in 0 1; do wait "${loadgens[$s]}"; done
end=$(date +%s%N)
o1=(); for s in 0 1; do o1+=("$(cpu_ticks "${otelite[$s]}")"); done
# The merges an ingest causes run after it too: count them in, on both shards.
quiet=0
for _ in $(seq 1 120); do
    if [ "$(q 0 "SELECT count() FROM system.merges")$(q 1 "SELECT count() FROM system.merges")" = "00" ]; then
        quiet=$((quiet + 1))
    else
        quiet=0
    fi
    [ "$quiet" -ge 5 ] && break
    sleep 1
done
c1=(); for s in 0 1; do c1+=("$(cpu_ticks "${ch[$s]}")"); events "$s" >"$work/events$s.1"; done

accepted=0
for s in 0 1; do
    n=$(awk '/^sent /{print $NF == "spans" ? $(NF-1) : 0}' "$work/loadgen$s")
    accepted=$((accepted + n))
    echo "receiver $s: $(grep '^accepted:' "$work/loadgen$s"), $(grep '^latency:' "$work/loadgen$s"), $(grep '^errors:' "$work/loadgen$s" | paste -sd' ')," \
        "otelite CPU $(per_span $((o1[s] - o0[s])) "$n") µs/span received"
done
wall=$(( (end - start) / 1000000 )) # ms
echo "in all: $accepted spans accepted in $((wall / 1000)).$(printf '%03d' $((wall % 1000))) s = $(( accepted * 1000 / wall )) spans/s" \
    "($spans sent, $batch spans/request, $concurrency in flight per receiver)"
echo "otelite, both: $(per_span $((o1[0] - o0[0] + o1[1] - o0[1])) "$accepted") µs/span"

for s in 0 1; do
    for t in spans spans_by_trace operations stage_counts service_edges; do
        q "$s" "OPTIMIZE TABLE bench_shard.$t FINAL" >/dev/null
    done
done
for s in 0 1; do
    rows=$(q "$s" "SELECT count() FROM bench_shard.spans_by_trace")
    bytes=$(q "$s" "SELECT sum(bytes) FROM system.parts WHERE active AND database = 'bench_shard'")
    echo "shard $s: $rows spans ($(( rows * 100 / accepted )) %)," \
        "clickhouse-server CPU $(per_span $((c1[s] - c0[s])) "$rows") µs/span it holds," \
        "$bytes bytes on disk = $(( bytes / rows )) per span (after OPTIMIZE FINAL)"
    echo "shard $s over the run:" $(awk 'NR == FNR { before[$1] = $2; next } { printf "%s %d, ", $1, $2 - before[$1] }' \
        "$work/events$s.0" "$work/events$s.1")
done
echo "clickhouse-server, both: $(per_span $((c1[0] - c0[0] + c1[1] - c0[1])) "$accepted") µs/span" \
    "(until system.merges stayed empty for 5 s on both)"
echo "spans through the Distributed tables: $(q 0 "SELECT count() FROM bench.spans_by_trace") (shard 0 asked)"
