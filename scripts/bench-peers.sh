#!/usr/bin/env bash
# otelite beside its peers, one after the other in one run, under the same
# load generator and the same spans (examples/loadgen --workload realistic:
# 10 services, unique user ids, paths and statements; OTLP/HTTP protobuf +
# gzip, one seed): otelite, Jaeger v2 (v1.75.0) with Badger, Jaeger v2 with
# memory storage (a ceiling), and an OpenTelemetry Collector v0.165.0 of an
# OTLP receiver and the no-op exporter (the pass-through ceiling). The peers
# are built from their published Go modules (scripts/peers/*/go.mod) into
# gitignored bin/ folders; no peer source is in the project.
#
#   scripts/bench-peers.sh [SPANS, default 1000000] [QUERY ROUNDS, default 100]
#
# Per target: spans/s acknowledged (loadgen's figure) and settled (until the
# process's CPU falls idle after the load: Jaeger acknowledges before its
# batch processor has written), CPU seconds per 100 000 spans (utime + stime
# from /proc/PID/stat, start of load to settled), peak memory (VmHWM), bytes
# on disk per span at peak (sampled every 0.2 s during the load) and at rest
# (after a clean stop), allocated blocks (du), and trace by id, search by
# service and search by service + user id (enduser.id) p50/p99 through the Jaeger v1
# HTTP API (examples/peer_queries; `services` is its same-run baseline).
# Prints one Markdown table, every figure beside its ratio to otelite's.
#
# Environment: CONCURRENCY (8), BATCH (500 spans per request),
# OTELITE_BIN (default: a release build of this tree), PROFILE (release;
# dev only to check the script on a debug build), KEEP=1 keeps the
# work directory (logs, configs). Needs Go 1.26+, cargo, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
spans=${1:-1000000}
rounds=${2:-100}
concurrency=${CONCURRENCY:-8}
batch=${BATCH:-500}
seed=7

for tool in go cargo python3 curl du; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench-peers.sh: needs $tool on PATH (Go 1.26+ builds Jaeger and the Collector from their modules)" >&2
        exit 1
    fi
done

work=$(mktemp -d -t bench-peers.XXXXXX)
pid= sampler=
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- builds ----------------------------------------------------------------
build_go() { # DIR OUTPUT PACKAGE: rebuilt when missing or older than go.mod/go.sum/*.go
    local dir=$1 out=$2 package=$3
    if [[ ! -x $dir/bin/$out ]] || [[ -n $(find "$dir" -maxdepth 1 -newer "$dir/bin/$out" \
            \( -name '*.go' -o -name go.mod -o -name go.sum \)) ]]; then
        echo "== go build $package ($dir)" >&2
        (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -ldflags='-s -w' -o "bin/$out" "$package")
    fi
}
build_go scripts/peers/jaeger jaeger github.com/jaegertracing/jaeger/cmd/jaeger
build_go scripts/peers/collector otelcol-passthrough .
jaeger_bin=$root/scripts/peers/jaeger/bin/jaeger
collector_bin=$root/scripts/peers/collector/bin/otelcol-passthrough

# PROFILE=dev checks the script itself on a debug build: its figures mean nothing.
profile=${PROFILE:-release}
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
target_dir=${CARGO_TARGET_DIR:-$root/target}
if [[ -z ${OTELITE_BIN:-} ]]; then
    echo "== cargo build --profile $profile (otelite, loadgen, peer_queries)" >&2
    cargo build --profile "$profile" -p otelite-backend --bin otelite >&2
fi
cargo build --profile "$profile" --example loadgen --example peer_queries >&2
otelite_bin=${OTELITE_BIN:-$target_dir/$profile_dir/otelite}
loadgen=$target_dir/$profile_dir/examples/loadgen
queries=$target_dir/$profile_dir/examples/peer_queries

# --- measuring one process ---------------------------------------------------
clk_tck=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime; no spaces in these names
disk_bytes() { du -s --block-size=1 "$1" 2>/dev/null | awk '{print $1}'; }
now() { date +%s.%N; }

wait_http() { # URL: until it answers at all (any status), up to 60 s
    for _ in $(seq 600); do
        if curl -s -o /dev/null --max-time 1 "$1"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "bench-peers.sh: $1 never answered; the log:" >&2
    tail -20 "$log" >&2
    exit 1
}

# Until the process's CPU over one second falls under 5 % of a core (at most
# 120 s); idle_at is when that quiet second began, so the second spent
# finding it out is not counted as work.
wait_idle() {
    local before after
    before=$(cpu_ticks "$pid")
    idle_at=$(now)
    for _ in $(seq 120); do
        sleep 1
        after=$(cpu_ticks "$pid")
        if (( (after - before) * 20 < clk_tck )); then return 0; fi
        before=$after
        idle_at=$(now)
    done
    echo "bench-peers.sh: $name still busy 120 s after the load; measured as is" >&2
}

# run NAME DATA_DIR OTLP_PORT QUERY_URL COMMAND...: starts it, loads it,
# measures, queries, stops; appends `NAME KEY VALUE` lines to results.
run() {
    name=$1 data=$2 otlp=$3 query_url=$4
    shift 4
    log=$work/$name.log
    echo "== $name" >&2
    "$@" >"$log" 2>&1 &
    pid=$!
    wait_http "http://127.0.0.1:$otlp/v1/traces"
    [ -n "$query_url" ] && wait_http "$query_url/api/services"

    if [ -n "$data" ]; then
        (peak=0; while true; do
            s=$(disk_bytes "$data" || true); s=${s:-0}
            if (( s > peak )); then peak=$s; echo "$peak" >"$work/$name.peak"; fi
            sleep 0.2
        done) &
        sampler=$!
    fi
    local ticks0 ticks1 load_end settled_end
    ticks0=$(cpu_ticks "$pid")
    "$loadgen" --endpoint "http://127.0.0.1:$otlp" --workload realistic --gzip --total "$spans" \
        --concurrency "$concurrency" --batch "$batch" --seed "$seed" | tee "$work/$name.loadgen" >&2
    load_end=$(now)
    wait_idle
    settled_end=$idle_at
    ticks1=$(cpu_ticks "$pid")
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sampler=
    fi

    local accepted errors load_wall
    accepted=$(awk '/^accepted:/ {print $2}' "$work/$name.loadgen")
    errors=$(awk '/^errors:/ {sub(/^errors: /, ""); gsub(/ /, "_"); printf "%s%s", sep, $0; sep = ";"}' "$work/$name.loadgen")
    # The load's own wall time (its bodies are prepared before it starts).
    load_wall=$(awk '/^sent / {print $(NF - 6)}' "$work/$name.loadgen")
    {
        echo "$name accepted $accepted"
        echo "$name errors ${errors:-none}"
        awk -v s="$spans" -v w="$load_wall" -v a="$load_end" -v b="$settled_end" \
            'BEGIN {printf "%s settled %.0f\n", "'"$name"'", s / (w + b - a)}'
        awk -v s="$spans" -v d="$((ticks1 - ticks0))" -v hz="$clk_tck" \
            'BEGIN {printf "%s cpu %.2f\n", "'"$name"'", d / hz / s * 100000}'
        awk '/VmHWM/ {printf "%s rss %.0f\n", "'"$name"'", $2 / 1024}' "/proc/$pid/status"
    } >>"$work/results"

    if [ -n "$query_url" ]; then
        "$queries" --endpoint "$query_url" --rounds "$rounds" | tee "$work/$name.queries" >&2
        awk -v n="$name" '/^query / {print n, $2 "_p50", $4; print n, $2 "_p99", $6}' \
            "$work/$name.queries" >>"$work/results"
    fi

    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=

    if [ -n "$data" ]; then
        local peak rest
        peak=$(cat "$work/$name.peak" 2>/dev/null || echo 0)
        rest=$(disk_bytes "$data")
        (( rest > peak )) && peak=$rest
        awk -v n="$name" -v s="$spans" -v p="$peak" -v r="$rest" \
            'BEGIN {printf "%s disk_peak %.1f\n%s disk_rest %.1f\n", n, p / s, n, r / s}' >>"$work/results"
    fi
}

# --- the four targets ----------------------------------------------------------
# otelite: its defaults, a fresh database.
mkdir -p "$work/otelite"
otlp=$(free_port) query=$(free_port)
run otelite "$work/otelite" "$otlp" "http://127.0.0.1:$query" \
    "$otelite_bin" serve --db "$work/otelite/otelite.db" --otlp-listen "127.0.0.1:$otlp" \
    --otlp-grpc-listen 127.0.0.1:0 --query-listen "127.0.0.1:$query"

# Jaeger v2: the shape of its own config-badger.yaml (OTLP receiver, batch
# processor, jaeger_storage exporter, jaeger_query), on loopback ports, its
# self-tracing and metrics off so they cost nothing and add no spans.
jaeger_config() { # STORAGE_YAML OTLP_PORT QUERY_PORT
    cat <<EOF
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: store
    http:
      endpoint: 127.0.0.1:$3
    grpc:
      endpoint: 127.0.0.1:$(free_port)
  jaeger_storage:
    backends:
      store:
$1
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$(free_port)
      http:
        endpoint: 127.0.0.1:$2
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: store
EOF
}

mkdir -p "$work/jaeger-badger"
otlp=$(free_port) query=$(free_port)
jaeger_config "        badger:
          directories:
            keys: $work/jaeger-badger
            values: $work/jaeger-badger
          ephemeral: false
          ttl:
            spans: 720h" "$otlp" "$query" >"$work/jaeger-badger.yaml"
run jaeger-badger "$work/jaeger-badger" "$otlp" "http://127.0.0.1:$query" \
    "$jaeger_bin" --config "$work/jaeger-badger.yaml"

otlp=$(free_port) query=$(free_port)
# Room for every trace of the run, so that none is evicted.
jaeger_config "        memory:
          max_traces: $((spans + 1000))" "$otlp" "$query" >"$work/jaeger-memory.yaml"
run jaeger-memory "" "$otlp" "http://127.0.0.1:$query" \
    "$jaeger_bin" --config "$work/jaeger-memory.yaml"

otlp=$(free_port)
cat >"$work/collector.yaml" <<EOF
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$otlp
exporters:
  nop:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [nop]
EOF
run collector "" "$otlp" "" "$collector_bin" --config "$work/collector.yaml"

# --- the table -------------------------------------------------------------------
python3 - "$work/results" "$spans" "$concurrency" "$batch" <<'EOF'
import sys
path, spans, concurrency, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
results = {}
for line in open(path):
    name, key, value = line.split(maxsplit=2)
    results.setdefault(name, {})[key] = value.strip()
targets = [("otelite", "otelite"), ("jaeger-badger", "Jaeger v2 + Badger"),
           ("jaeger-memory", "Jaeger v2 + memory"), ("collector", "Collector pass-through")]
# (key, label, unit, higher is better)
rows = [
    ("accepted", "spans/s acknowledged", "", True),
    ("settled", "spans/s settled (load start to CPU idle)", "", True),
    ("cpu", "CPU seconds per 100 000 spans", " s", False),
    ("rss", "peak memory (VmHWM)", " MB", False),
    ("disk_peak", "bytes on disk per span, peak", " B", False),
    ("disk_rest", "bytes on disk per span, at rest", " B", False),
]
queries = [("trace_by_id", "trace by id"), ("search_service", "search by service"),
           ("search_attribute", "search by service + attribute (enduser.id)"),
           ("services", "list services (the queries' own baseline)")]
for query, label in queries:
    for p in ("p50", "p99"):
        rows.append((f"{query}_{p}", f"{label}, {p}", " ms", False))
def number(name, key):
    try:
        return float(results.get(name, {})[key])
    except (KeyError, ValueError):
        return None
print(f"{spans} spans, {concurrency} requests in flight of {batch} spans (loadgen --workload realistic, OTLP/HTTP protobuf + gzip)\n")
print("| measure | " + " | ".join(label for _, label in targets) + " | otelite ahead of Jaeger + Badger |")
print("|---" * (len(targets) + 2) + "|")
for key, label, unit, higher in rows:
    base = number("otelite", key)
    cells = []
    for name, _ in targets:
        value = number(name, key)
        if value is None:
            cells.append("—")
        elif name == "otelite" or not base:
            cells.append(f"{value:g}{unit}")
        else:
            cells.append(f"{value:g}{unit} ({value / base:.2f}×)")
    badger = number("jaeger-badger", key)
    if base is None or badger is None:
        ahead = "—"
    else:
        ahead = "yes" if (base > badger if higher else base < badger) else "**no**"
    print(f"| {label} | " + " | ".join(cells) + f" | {ahead} |")
errors = {name: results.get(name, {}).get("errors", "—") for name, _ in targets}
print("\nloadgen errors: " + ", ".join(f"{n} {e.replace('_', ' ')}" for n, e in errors.items()))
EOF
