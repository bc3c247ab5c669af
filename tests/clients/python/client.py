"""Sends one small trace to an OTLP/HTTP endpoint with the official Python SDK.

Usage: client.py ENDPOINT RUN_ID PROTOCOL   (PROTOCOL: proto | json | grpc)

ENDPOINT is the base URL (http://host:port); over HTTP the script appends
/v1/traces; grpc is OTLP/gRPC without TLS.
The trace is the scenario shared by every foreign client in tests/clients:
checkout (server) -> load-cart -> db.select (client), and checkout -> charge
(client, error). On success it prints one JSON line with the trace id and
the span ids by name; if the exporter reports a failure it exits non-zero.
"""

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode


class Recording(SpanExporter):
    """Wraps the real exporter and remembers every result it returned."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def make_exporter(endpoint, protocol):
    url = endpoint.rstrip("/") + "/v1/traces"
    if protocol == "proto":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=url, compression=Compression.Gzip)
    if protocol == "json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=url)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    raise SystemExit(f"unknown protocol {protocol!r} (expected proto, json or grpc)")


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    endpoint, run_id, protocol = sys.argv[1:]
    exporter = Recording(make_exporter(endpoint, protocol))
    resource = Resource.create(
        {"service.name": f"python-{protocol}-client", "run.id": run_id}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("otelite-e2e-python", "1.0.0")

    ids = {}
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("run.id", run_id)
        root.set_attribute("http.response.status_code", 500)
        root.set_attribute("retry.enabled", True)
        root.set_attribute("sample.ratio", 0.25)
        root.set_attribute("tags", ["a", "b"])
        root.add_event("order.received", {"items": 3})
        with tracer.start_as_current_span("load-cart") as cart:
            cart.set_attribute("cart.items", 3)
            with tracer.start_as_current_span("db.select", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system", "sqlite")
                ids["db.select"] = db.get_span_context().span_id
            ids["load-cart"] = cart.get_span_context().span_id
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as charge:
            charge.add_event("exception", {"exception.message": "card declined"})
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
            ids["charge"] = charge.get_span_context().span_id
        root.set_status(Status(StatusCode.ERROR, "payment failed"))
        ids["checkout"] = root.get_span_context().span_id
        trace_id = root.get_span_context().trace_id

    provider.shutdown()
    failed = [r for r in exporter.results if r != SpanExportResult.SUCCESS]
    if not exporter.results or failed:
        print(f"export failed: results={exporter.results}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "traceId": format(trace_id, "032x"),
                "spans": {name: format(sid, "016x") for name, sid in ids.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
