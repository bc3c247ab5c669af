#!/usr/bin/env bash
# Instructions per span of the backend's writer thread, of its request
# threads and of the writer's block compression thread, counted by
# callgrind over a loadgen run against a backend in the same process. Unlike wall time, instruction counts do not move with the
# machine's load, so two builds compare exactly. Usage:
#   scripts/instructions-per-span.sh [SPANS, default 20000] [OUT DIR]
# Needs valgrind and `cargo build --release --example loadgen`
# (BIN=path counts another build's loadgen; WORKLOAD=realistic sends the
# disk and peer benchmarks' workload instead of the default one). Takes
# about a minute per 20 000 spans.
set -euo pipefail
cd "$(dirname "$0")/.."
spans=${1:-20000}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
rm -f "$out"/callgrind.out*
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/callgrind.out" \
    "${BIN:-./target/release/examples/loadgen}" --spawn-backend --gzip --total "$spans" \
    --batch 1000 --concurrency 4 --seed 7 ${WORKLOAD:+--workload "$WORKLOAD"} >"$out/loadgen.out" 2>"$out/valgrind.err"

writer=0
receivers=0
compression=0
for file in "$out"/callgrind.out-*; do
    total=$(sed -n 's/^summary: //p' "$file" | head -1)
    if grep -q "groups::store_rows" "$file"; then
        writer=$((writer + total))
    elif grep -q "otelite_backend::receive::" "$file"; then
        receivers=$((receivers + total))
    elif grep -q "zstd::bulk::compress" "$file"; then
        compression=$((compression + total))
    fi
done
echo "writer thread:   $((writer / spans)) instructions per span"
echo "request threads: $((receivers / spans)) instructions per span"
echo "block compression thread: $((compression / spans)) instructions per span"
echo "all three:       $(((writer + receivers + compression) / spans)) instructions per span"
echo "(callgrind files in $out; callgrind_annotate FILE for the functions)"
