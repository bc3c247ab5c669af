#!/usr/bin/env bash
# Builds the container images from static binaries: one release build for
# x86_64-unknown-linux-musl of the backend and of the quickstart example,
# then the images `otelite` and `otelite-quickstart` (see Dockerfile) with
# podman, or docker when podman is not installed.
#
#   scripts/build-image.sh          # ENGINE=docker scripts/build-image.sh to choose
#
# Needs the musl target (`rustup target add x86_64-unknown-linux-musl`) and
# musl-gcc for bundled SQLite (Debian: `apt-get install musl-tools`).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
engine=${ENGINE:-}
if [ -z "$engine" ]; then
    if command -v podman >/dev/null 2>&1; then
        engine=podman
    elif command -v docker >/dev/null 2>&1; then
        engine=docker
    else
        echo "build-image: neither podman nor docker is installed" >&2
        exit 1
    fi
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "build-image: the $target target is missing: rustup target add $target" >&2
    exit 1
fi

# No debug info, symbols stripped: the image is for running, and leaving out
# the line tables of target/release's profile saves compile time. This
# target's builds are kept apart from target/release, so those stay as they are.
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --target "$target" --workspace --bin otelite --example quickstart

# The build context's only files (see .dockerignore): the two binaries, from
# wherever cargo put them (CARGO_TARGET_DIR may move them), and an empty
# directory that becomes /data, owned by the image's user.
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p target/image/data
cp "$target_dir/$target/release/otelite" target/image/otelite
cp "$target_dir/$target/release/examples/quickstart" target/image/quickstart

# OCI images (podman's default format) drop HEALTHCHECK; docker's keep it.
format=()
if [ "$engine" = podman ]; then format=(--format docker); fi
"$engine" build "${format[@]}" --target otelite -t otelite .
"$engine" build "${format[@]}" --target quickstart -t otelite-quickstart .
"$engine" images --filter reference=otelite --filter reference=otelite-quickstart
