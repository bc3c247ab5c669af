"""A burst of spans into a small batch queue, with the SDK's own
self-observability metrics on (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) and
sent to otelite over OTLP/HTTP. The SDK drops what its queue cannot hold
and counts it (error.type=queue_full).

    queue_overflow.py BASE_URL SERVICE SPANS QUEUE

Prints one JSON line: the SDK's own final counts, read through an in-memory
reader on the same MeterProvider, as {metric: {error.type or "": value}}
(started and live only for sampled spans), so the test compares otelite's
stages with what the SDK itself counted.
"""
import json
import os
import sys

os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

COUNTED = (
    "otel.sdk.span.started",
    "otel.sdk.span.live",
    "otel.sdk.processor.span.processed",
    "otel.sdk.exporter.span.exported",
)


def own_counts(reader):
    """The SDK's span counters as it reports them, by error.type."""
    counts = {name: {} for name in COUNTED}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in counts:
                    continue
                for point in metric.data.data_points:
                    attributes = point.attributes or {}
                    sampling = attributes.get("otel.span.sampling_result")
                    if sampling not in (None, "RECORD_AND_SAMPLE"):
                        continue
                    reason = attributes.get("error.type", "")
                    by_reason = counts[metric.name]
                    by_reason[reason] = by_reason.get(reason, 0) + point.value
    return counts


def main():
    base, service, spans, queue = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    resource = Resource.create({"service.name": service, "service.instance.id": "burst-1"})
    in_memory = InMemoryMetricReader()
    # Exported once, at shutdown, after the in-memory reading: both see the
    # same final cumulative values.
    to_otelite = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(resource=resource, metric_readers=[in_memory, to_otelite])
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", meter_provider=meters)
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=queue,
        max_export_batch_size=queue,
        meter_provider=meters,
    )
    tracer_provider = TracerProvider(resource=resource, meter_provider=meters)
    tracer_provider.add_span_processor(processor)
    tracer = tracer_provider.get_tracer("otelite-e2e-burst")
    for i in range(spans):
        with tracer.start_as_current_span(f"burst-{i}"):
            pass
    # Drains the queue: every span is then either exported or dropped.
    tracer_provider.shutdown()
    counts = own_counts(in_memory)
    meters.shutdown()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
