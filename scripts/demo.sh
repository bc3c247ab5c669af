#!/usr/bin/env bash
# The main job in one command: build otelite, start the backend on its
# default SQLite file (./otelite.db, OTLP on 127.0.0.1:4318, query API on
# 127.0.0.1:16686), run the quickstart app against it, print the stage rates,
# then keep the backend running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bin otelite --example quickstart
./target/release/otelite serve "$@" &
backend=$!
trap 'kill "$backend" 2>/dev/null; wait "$backend" 2>/dev/null' EXIT INT TERM

# Wait until the OTLP port answers (the backend prints its addresses first).
for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/4318) 2>/dev/null; then break; fi
    sleep 0.1
done

./target/release/examples/quickstart
echo
echo "otelite keeps running (database ./otelite.db); Ctrl-C stops it."
wait "$backend"
