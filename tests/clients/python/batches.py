"""Sends spans in batches to an OTLP/HTTP endpoint with the official Python
SDK, one export per batch (force_flush after each), and reports what the
exporter said about each.

    batches.py BASE_URL SERVICE BATCHES SPANS_PER_BATCH

Prints one JSON line: {"exported": spans the endpoint acknowledged,
"failed": spans whose export failed}. It exits 0 either way: the caller
decides what the outcome means (a Collector acknowledges spans it may
still lose later).
"""
import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


class Counting(SpanExporter):
    """Wraps the real exporter and counts the spans of each outcome."""

    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failed = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    base, service, batches, per_batch = sys.argv[1:]
    exporter = Counting(OTLPSpanExporter(endpoint=base.rstrip("/") + "/v1/traces"))
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # The batch fits the SDK's queue, so the SDK itself drops nothing.
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=4096, max_export_batch_size=512)
    )
    tracer = provider.get_tracer("otelite-e2e-batches", "1.0.0")
    for batch in range(int(batches)):
        for i in range(int(per_batch)):
            with tracer.start_as_current_span(f"work-{batch}") as span:
                span.set_attribute("item", i)
        provider.force_flush()
    provider.shutdown()
    print(json.dumps({"exported": exporter.exported, "failed": exporter.failed}))


if __name__ == "__main__":
    main()
