"""Sends traces with chosen trace ids through the official Python SDK, for
the keep/drop rules test.

Usage: policy_client.py ENDPOINT SERVICE TRACES_JSON

TRACES_JSON is a list of {"traceId": 32 hex digits, "spans": [names]}: each
trace is a root span named by the first name with the others as its
children. The SDK's id generator is given the trace ids, so the rules see
the ids the test chose. One batch, protobuf with gzip. Prints one JSON line,
{"exports": N}; exits non-zero if any export failed.
"""

import json
import random
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator


class ChosenTraceIds(IdGenerator):
    """Hands out the given trace ids in order; span ids at random."""

    def __init__(self, trace_ids):
        self.trace_ids = list(trace_ids)

    def generate_span_id(self):
        return random.getrandbits(64) or 1

    def generate_trace_id(self):
        return self.trace_ids.pop(0)


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


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    endpoint, service, traces_json = sys.argv[1:]
    traces = json.loads(traces_json)
    exporter = Recording(
        OTLPSpanExporter(
            endpoint=endpoint.rstrip("/") + "/v1/traces",
            compression=Compression.Gzip,
        )
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        id_generator=ChosenTraceIds(int(t["traceId"], 16) for t in traces),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("otelite-e2e-policy", "1.0.0")
    for t in traces:
        first, *rest = t["spans"]
        with tracer.start_as_current_span(first):
            for name in rest:
                with tracer.start_as_current_span(name):
                    pass
    provider.shutdown()
    failed = [r for r in exporter.results if r != SpanExportResult.SUCCESS]
    if not exporter.results or failed:
        print(f"export failed: results={exporter.results}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"exports": len(exporter.results)}))


if __name__ == "__main__":
    main()
