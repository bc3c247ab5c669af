#!/usr/bin/env bash
# The test suite from a fresh Debian machine: installs what the end-to-end
# tests run besides otelite (the official Python, Node, Go and Java clients, an
# OpenTelemetry Collector built from its modules, headless Chromium for the
# web UI, clickhouse-server 18.16 for the ClickHouse
# store), then runs `cargo test --workspace`. What is already there is
# skipped, so it is also the way to run the suite on a machine that has them;
# once they are installed, `cargo test --workspace` is the inner loop.
#
#   scripts/test.sh                  # install what is missing, then the whole suite
#   scripts/test.sh --install-only   # only the installs
#   scripts/test.sh ARGS…            # ARGS go to `cargo test --workspace`, e.g. -- --nocapture
#
# Runs as root (CI) or as a user with sudo for apt-get; pip falls back to a
# user install when it cannot write the system's site-packages.
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=false
if [[ ${1:-} == --install-only ]]; then
    install_only=true
    shift
fi

apt_get() {
    if [[ $(id -u) -eq 0 ]]; then
        apt-get "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get "$@"
    else
        echo "scripts/test.sh: apt-get $* needs root or sudo" >&2
        exit 1
    fi
}

# One `apt-get update` per run, and only when something is missing.
apt_updated=false
apt_install() {
    if ! $apt_updated; then
        apt_get update
        apt_updated=true
    fi
    apt_get install -y "$@"
}

echo "== install: Python OpenTelemetry SDK and OTLP/HTTP exporters (tests/clients/python)"
if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-pip
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
fi
# The pins are a set that resolves together (see requirements.txt).
if ! python3 -m pip install --quiet --disable-pip-version-check -r tests/clients/python/requirements.txt; then
    # Debian's own python3 refuses system-wide installs (PEP 668).
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
        -r tests/clients/python/requirements.txt
fi

echo "== install: Node OpenTelemetry SDK and OTLP/HTTP exporters (tests/clients/node)"
if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
(cd tests/clients/node && npm ci --no-audit --no-fund)

echo "== build: Go clients (tests/clients/go: OTLP/gRPC; tests/clients/go-counters: SDK counters) and the Java SDK counter client (tests/clients/java)"
# Built once into gitignored outputs, so the tests only run the binary or
# `java`; skipped while the output is newer than every source file. Versions
# are pinned in go.mod/go.sum and pom.xml; the Go module proxy and Maven
# Central serve them. Go fetches the toolchain go.mod names when its own is older.
stale() { # OUTPUT DIR: OUTPUT is missing or a file under DIR (but target/) is newer
    [[ ! -e $1 ]] || [[ -n $(find "$2" -path "$2/target" -prune -o -type f ! -path "$1" -newer "$1" -print -quit) ]]
}
if ! command -v go >/dev/null 2>&1; then
    apt_install golang-go
fi
if stale tests/clients/go/client tests/clients/go; then
    (cd tests/clients/go && go build -p 1 -o client .)
fi
if stale tests/clients/go-counters/target/go-counters tests/clients/go-counters; then
    (cd tests/clients/go-counters && go build -p 1 -o target/go-counters .)
fi
if ! command -v mvn >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    apt_install default-jdk-headless maven
fi
# `clean` drops the jars of an earlier pin from target/dependency.
if stale tests/clients/java/target/classes/otelite/Counters.class tests/clients/java; then
    (cd tests/clients/java && mvn -q -B clean compile dependency:copy-dependencies)
fi

echo "== install: headless Chromium and playwright-core for the web UI test (tests/clients/browser)"
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi
# playwright-core is pinned in package-lock.json; it drives /usr/bin/chromium and downloads no browser.
(cd tests/clients/browser && npm ci --no-audit --no-fund)

echo "== install: ClickHouse server 18.16 (Debian's) for the ClickHouse store's tests (tests/clickhouse.rs)"
# The tests start their own clickhouse-server (own ports, config and data in a
# temp dir, as the current user: tests/support/clickhouse.rs); the package's
# service is not used. clickhouse-client is not needed: they talk HTTP.
if ! command -v /usr/sbin/clickhouse-server >/dev/null 2>&1; then
    apt_install --no-install-recommends 'clickhouse-server=18.16*' 'clickhouse-common=18.16*'
fi

echo "== install: ZooKeeper (Debian's) for the replicated ClickHouse test (tests/clickhouse_replication.rs)"
# 18.16 speaks ZooKeeper, not Keeper; the test starts its own (own port and
# data in a temp dir: tests/support/zookeeper.rs); the package's service is not used.
if [[ ! -f /usr/share/java/zookeeper.jar ]]; then
    apt_install --no-install-recommends 'zookeeper=3.8.0-11+deb12u2'
fi

echo "== build: the OpenTelemetry Collector for tests/collector.rs (tests/clients/collector)"
# A Collector of only the components the tests use, from its Go modules
# (pinned in go.mod/go.sum); rebuilt when missing or older than its sources.
collector_dir=tests/clients/collector
collector_bin=$collector_dir/bin/otelcol-otelite-test
if [[ ! -x $collector_bin ]] || [[ -n $(find "$collector_dir" -maxdepth 1 -newer "$collector_bin" \
        \( -name '*.go' -o -name go.mod -o -name go.sum \)) ]]; then
    if ! command -v go >/dev/null 2>&1; then
        echo "scripts/test.sh: building the Collector needs Go 1.26 or newer (go.dev/doc/install)" >&2
        exit 1
    fi
    (cd "$collector_dir" && GOFLAGS=-mod=readonly go build -trimpath -ldflags='-s -w' \
        -o bin/otelcol-otelite-test .)
fi

if $install_only; then
    exit 0
fi

# Fuzzing's short version is a replay, not a run: this replays the committed
# corpus (fuzz/corpus/) through the fuzz targets' code (backend/src/fuzzing/,
# under a second). Running the fuzzers is scripts/fuzz.sh.
echo "== cargo test --workspace $*"
cargo test --workspace "$@"
