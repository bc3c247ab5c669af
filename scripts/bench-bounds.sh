#!/usr/bin/env bash
# The backend's bounds under load, for one build: the database files' peak
# during ingest (database + WAL + shared memory, sampled every 20 ms) against
# their size at rest after a clean stop, ingest spans/s, and peak memory
# (VmHWM). Usage:
#   scripts/bench-bounds.sh SPANS CONCURRENCY SPANS_PER_REQUEST [otelite serve flags...]
# e.g. `scripts/bench-bounds.sh 200000 8 1000` (WAL), `… 200000 8 1000
# --max-db-size 10MB` (size cap), `… 320000 64 5000` (memory flood).
# Needs a release build (see bench-ingest.sh); OTELITE_BIN=path runs another
# build, LOADGEN=path another load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
spans=$1 concurrency=$2 batch=$3
shift 3
work=$(mktemp -d)
pid= sampler=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$sampler" ] && kill "$sampler" 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
files() { { stat -c %s "$work"/otelite.db "$work"/otelite.db-wal "$work"/otelite.db-shm 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'; }
otlp=$(free_port)
query=$(free_port)
"${OTELITE_BIN:-./target/release/otelite}" serve --db "$work/otelite.db" \
    --otlp-listen "127.0.0.1:$otlp" --query-listen "127.0.0.1:$query" "$@" \
    >"$work/otelite.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$query/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
(peak=0; while true; do s=$(files); [ "$s" -gt "$peak" ] && peak=$s && echo "$peak" >"$work/peak"; sleep 0.02; done) &
sampler=$!
"${LOADGEN:-./target/release/examples/loadgen}" --endpoint "http://127.0.0.1:$otlp" --gzip \
    --total "$spans" --concurrency "$concurrency" --batch "$batch" --seed 7 | tee "$work/loadgen.out"
kill "$sampler"; wait "$sampler" 2>/dev/null || true
sampler=
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
pid=
rest=$(files)
peak=$(cat "$work/peak" 2>/dev/null || echo 0)
awk -v p="$peak" -v r="$rest" -v kb="$peak_kb" 'BEGIN {
    printf "files: peak %.1f MB during ingest, %.1f MB at rest: %.2fx; peak memory (VmHWM) %.0f MB\n",
        p / 1e6, r / 1e6, p / r, kb / 1024
}'
