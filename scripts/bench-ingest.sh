#!/usr/bin/env bash
# Sustained ingest into the real `otelite serve` (its own process, SQLite in a
# temporary directory) from the load generator on the same machine: spans/s
# accepted, the backend's CPU per span and its peak memory (VmHWM), and the
# database's bytes per span. Usage:
#   scripts/bench-ingest.sh [SECONDS] [CONCURRENCY] [SPANS PER REQUEST] [extra loadgen flags...]
# Needs a release build:
#   cargo build --release -p otelite-backend --bin otelite && cargo build --release --example loadgen
# OTELITE_BIN=path runs another build of the backend (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
concurrency=${2:-8}
batch=${3:-1000}
shift $(($# < 3 ? $# : 3))
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
otlp=$(free_port)
query=$(free_port)

"${OTELITE_BIN:-./target/release/otelite}" serve --db "$work/otelite.db" \
    --otlp-listen "127.0.0.1:$otlp" --otlp-grpc-listen 127.0.0.1:0 --query-listen "127.0.0.1:$query" \
    >"$work/otelite.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$query/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

before=$(cpu_ticks "$pid")
# Enough distinct gzip bodies that none is sent twice at 200 000 spans/s.
pool=$(( seconds * 200000 / batch + 1 ))
./target/release/examples/loadgen --endpoint "http://127.0.0.1:$otlp" --gzip \
    --duration "$seconds" --concurrency "$concurrency" --batch "$batch" --pool "$pool" "$@" \
    | tee "$work/loadgen.out"
after=$(cpu_ticks "$pid")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "backend memory once the load stopped: $(grep -E 'VmRSS|RssAnon|RssFile' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd' ')"
kill -TERM "$pid"
wait "$pid" || true
pid=

spans=$(sed -n 's/.* accepted = \([0-9]*\) spans/\1/p' "$work/loadgen.out")
bytes=$(du -cb "$work"/otelite.db* | tail -1 | cut -f1)
awk -v s="$spans" -v t=$((after - before)) -v hz="$hz" -v kb="$peak_kb" -v b="$bytes" 'BEGIN {
    printf "backend: %.1f µs CPU per span; peak memory (VmHWM) %.0f MB; %.0f bytes per span on disk\n",
        1e6 * t / hz / s, kb / 1024, b / s
}'
