#!/usr/bin/env bash
# Runs otelite's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) for SECONDS
# each (default 600), one after the other, starting from the committed seed
# corpus. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly flags; the stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1. No sanitizer (-s none): the workspace forbids unsafe
# code, so ASan would only slow the targets down.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(otlp_protobuf otlp_json gzip http_receive query_router cli_answers)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.1 --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O

for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "corpus/$target"
    # The run's own finds go to a scratch directory so that the committed
    # corpus stays the seeds; -rss_limit_mb bounds what a request may cost.
    scratch="$(mktemp -d)"
    cargo fuzz run -s none -O "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1
    rm -rf "$scratch"
done
