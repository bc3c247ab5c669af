#!/usr/bin/env bash
# Where ingest's time goes between threads: a loadgen run against a backend
# in the same process, and over five seconds of it, each busy thread's share
# of a core on the CPU and waiting in a run queue (/proc/.../schedstat),
# and the machine's idle share over the same five seconds (/proc/stat). Usage:
#   scripts/ingest-threads.sh [SPANS, default 1500000] [CONCURRENCY, default 8]
# Needs `cargo build --release --example loadgen` (BIN=path for another build).
set -euo pipefail
cd "$(dirname "$0")/.."
spans=${1:-1500000}
concurrency=${2:-8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"${BIN:-./target/release/examples/loadgen}" --spawn-backend --gzip --total "$spans" \
    --concurrency "$concurrency" >"$work/loadgen.out" 2>&1 &
pid=$!
until grep -qs otelite-writer /proc/$pid/task/*/comm; do sleep 0.1; done
snapshot() {
    for task in /proc/$pid/task/*; do
        echo "$(basename "$task") $(tr ' ' '_' <"$task/comm") $(cat "$task/schedstat")"
    done | sort
}
sleep 1
before=$(head -1 /proc/stat)
snapshot >"$work/a"
sleep 5
snapshot >"$work/b"
after=$(head -1 /proc/stat)
wait $pid

echo "threads over 5 s (share of one core):"
join "$work/a" "$work/b" | awk '{ cpu = ($7 - $3) / 5e7; wait = ($8 - $4) / 5e7;
    if (cpu > 1) printf "  %-16s on CPU %5.1f %%  waiting to run %5.1f %%\n", $2, cpu, wait }' |
    sort -k4 -nr
grep -E "accepted:|whole process" "$work/loadgen.out"
# Fields of the cpu line: user nice system idle iowait irq softirq steal.
echo "$before" "$after" | awk '{ n = (NF - 2) / 2; total = 0;
    for (i = 2; i <= n + 1; i++) total += $(i + n + 1) - $i;
    printf "machine idle: %.1f %% of both cores over the same 5 s\n", 100 * ($(n + 6) - $5) / total }'
