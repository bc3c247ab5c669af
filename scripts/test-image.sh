#!/usr/bin/env bash
# The container test: builds the images (scripts/build-image.sh) and runs
# them with podman. From outside the container it sends spans over OTLP/HTTP
# JSON to the published port, reads them back through the query API, stops
# the container, starts a new one on the same named volume and finds them
# still there. It also checks the image size, that the server runs as a
# non-root user, that the HEALTHCHECK passes (with TLS on too), and that the
# quickstart image sends its spans to the backend. Everything it creates is
# removed on exit.
#
#   scripts/test-image.sh        # needs podman, runc, the musl target (see .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# runc and explicit ulimits: podman's defaults fail on machines like CI's.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/containers.conf}"
export ENGINE=podman
readonly max_image_bytes=30000000
readonly image_uid=65532
run_id="otelite-test-$$"
volume="$run_id-data"
tls_volume="$run_id-tls-data"
tls_dir=$(mktemp -d)
containers=()

cleanup() {
    for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    podman volume rm -f "$volume" "$tls_volume" >/dev/null 2>&1 || true
    rm -rf "$tls_dir"
}
trap cleanup EXIT

fail() {
    echo "test-image: FAIL: $*" >&2
    for c in "${containers[@]}"; do
        echo "--- logs of $c" >&2
        podman logs "$c" >&2 2>&1 || true
    done
    exit 1
}

step() { echo "== test-image: $*"; }

# Runs the image on a volume (the second argument, else $volume) with both
# ports published on 127.0.0.1 at free ports, with any further arguments
# given to `podman run`; sets $otlp, $grpc and $query to the host addresses.
start_backend() {
    local name=$1 data=${2:-$volume}
    shift $(($# < 2 ? $# : 2))
    containers+=("$name")
    # Without systemd podman logs that it cannot schedule the HEALTHCHECK
    # (harmless: the loop below runs it on demand).
    podman run -d --name "$name" -v "$data:/data" "$@" \
        -p 127.0.0.1::4317 -p 127.0.0.1::4318 -p 127.0.0.1::16686 otelite >/dev/null
    otlp=$(podman port "$name" 4318/tcp)
    grpc=$(podman port "$name" 4317/tcp)
    query=$(podman port "$name" 16686/tcp)
    # The image's own HEALTHCHECK (`otelite health`), run on demand until it
    # passes; the bound is on attempts, not time.
    for _ in $(seq 1 100); do
        if podman healthcheck run "$name" >/dev/null 2>&1; then return 0; fi
        [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || fail "$name exited"
        sleep 0.2
    done
    fail "$name: the HEALTHCHECK never passed"
}

# Prints the number of spans the query API returns for trace $1.
spans_of_trace() {
    curl -sf "http://$query/api/otelite/traces/$1" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["spans"]))'
}

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

step "build"
scripts/build-image.sh

step "image size and user"
size=$(podman image inspect -f '{{.Size}}' otelite)
echo "image otelite: $size bytes"
[ "$size" -le "$max_image_bytes" ] || fail "image is $size bytes, more than $max_image_bytes"
user=$(podman image inspect -f '{{.Config.User}}' otelite)
[ "$user" = "$image_uid:$image_uid" ] || fail "image user is '$user'"

step "run on a new volume"
podman volume create "$volume" >/dev/null
start_backend "$run_id-1"
echo "OTLP on $otlp, query API on $query"
pid=$(podman inspect -f '{{.State.Pid}}' "$run_id-1")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" = "$image_uid" ] || fail "the server runs as uid $uid"
healthy=$(podman exec "$run_id-1" /otelite health) || fail "otelite health inside the container"
echo "otelite health: $healthy"

step "send spans from outside over OTLP/HTTP JSON"
trace=$(hex 16)
root=$(hex 8)
child=$(hex 8)
now=$(date +%s%N)
body=$(cat <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"container-test"}}]},
 "scopeSpans":[{"scope":{"name":"test-image"},"spans":[
  {"traceId":"$trace","spanId":"$root","name":"GET /outside","kind":2,
   "startTimeUnixNano":"$((now - 5000000))","endTimeUnixNano":"$now","status":{}},
  {"traceId":"$trace","spanId":"$child","parentSpanId":"$root","name":"SELECT","kind":3,
   "startTimeUnixNano":"$((now - 4000000))","endTimeUnixNano":"$((now - 1000000))","status":{}}]}]}]}
EOF
)
answer=$(curl -sS -w ' %{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$body" "http://$otlp/v1/traces")
[ "${answer##* }" = 200 ] || fail "POST /v1/traces answered: $answer"
case "$answer" in *rejected*) fail "spans rejected: $answer" ;; esac

step "read them back"
found=$(curl -sf "http://$query/api/otelite/search?service=container-test") ||
    fail "search failed"
case "$found" in *"$trace"*) ;; *) fail "trace $trace not found by search: $found" ;; esac
[ "$(spans_of_trace "$trace")" = 2 ] || fail "trace $trace does not have its 2 spans"

step "send spans from outside over OTLP/gRPC (the official Python exporter)"
sent=$(python3 tests/clients/python/client.py "http://$grpc" "$run_id-grpc" grpc) ||
    fail "the Python gRPC exporter failed"
grpc_trace=$(echo "$sent" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["traceId"])')
[ "$(spans_of_trace "$grpc_trace")" = 4 ] || fail "trace $grpc_trace does not have its 4 spans"

step "stop, then start a new container on the same volume"
podman stop -t 30 "$run_id-1" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$run_id-1")
[ "$code" = 0 ] || fail "the server exited with $code on SIGTERM"
db_owner=$(stat -c %u "$(podman volume inspect -f '{{.Mountpoint}}' "$volume")/otelite.db")
[ "$db_owner" = "$image_uid" ] || fail "the database file is owned by uid $db_owner"
podman rm "$run_id-1" >/dev/null
start_backend "$run_id-2"
[ "$(spans_of_trace "$trace")" = 2 ] || fail "trace $trace lost across the restart"

step "the quickstart image sends to the backend"
containers+=("$run_id-app")
podman run --name "$run_id-app" --network "container:$run_id-2" \
    -e OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
    -e OTELITE_QUERY_URL=http://127.0.0.1:16686 \
    otelite-quickstart || fail "the quickstart container failed"
traces=$(curl -sf "http://$query/api/otelite/search?service=shop-frontend" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["traces"]))')
[ "$traces" = 3 ] || fail "found $traces quickstart traces, not 3"

step "with TLS on, the HEALTHCHECK passes and the API speaks https"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null ||
    fail "openssl could not make a test certificate"
# The server runs as $image_uid: let it read the test's key.
chmod 755 "$tls_dir"
chmod 644 "$tls_dir/key.pem" "$tls_dir/cert.pem"
podman volume create "$tls_volume" >/dev/null
start_backend "$run_id-tls" "$tls_volume" -v "$tls_dir:/tls:ro" \
    -e OTELITE_TLS_CERT=/tls/cert.pem -e OTELITE_TLS_KEY=/tls/key.pem
port=${query##*:}
curl -sf --cacert "$tls_dir/cert.pem" --resolve "localhost:$port:127.0.0.1" \
    "https://localhost:$port/readyz" >/dev/null || fail "https /readyz from outside"

step "PASS (image $size bytes)"
