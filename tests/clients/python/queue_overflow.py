"""A burst of spans into a small batch queue, with the SDK's own
self-observability metrics on (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) and
sent to otelite over OTLP/HTTP. The SDK drops what its queue cannot hold
and counts it (error.type=queue_full).

    queue_overflow.py BASE_URL SERVICE SPANS QUEUE [ELSEWHERE_URL]

Prints one JSON line: the SDK's own final counts, read through an in-memory
reader on the same MeterProvider, as {metric: {error.type or "": value}}
(started and live only for sampled spans), so the test compares otelite's
stages with what the SDK itself counted.

With ELSEWHERE_URL the app has a second pipeline, made first: a batch
processor with twice the queue, exporting to that URL. The processor and
exporter counts printed are then the otelite pipeline's alone, told apart
by what the SDK itself reports: the processor by its queue capacity, the
exporter by its server.port; the other pipeline's go under "elsewhere:"
followed by the metric's name.
"""
import json
import os
import sys
from urllib.parse import urlsplit

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


def points(reader):
    """(metric name, attributes, value) of every point the SDK reports."""
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    yield metric.name, dict(point.attributes or {}), getattr(point, "value", None)


def own_counts(reader, queue, otelite_port):
    """The SDK's span counters as it reports them, by error.type; with
    `otelite_port`, the processor and exporter ones of the pipeline to
    otelite alone, the others under "elsewhere:"."""
    reported = list(points(reader))
    # The otelite processor: the one whose queue holds `queue` spans.
    ours = {
        attributes.get("otel.component.name")
        for name, attributes, value in reported
        if name == "otel.sdk.processor.span.queue.capacity" and value == queue
    }
    counts = {name: {} for name in COUNTED}
    for name, attributes, value in reported:
        if name not in counts:
            continue
        sampling = attributes.get("otel.span.sampling_result")
        if sampling not in (None, "RECORD_AND_SAMPLE"):
            continue
        key = name
        if otelite_port is not None:
            if name == "otel.sdk.processor.span.processed":
                here = attributes.get("otel.component.name") in ours
            elif name == "otel.sdk.exporter.span.exported":
                here = attributes.get("server.port") == otelite_port
            else:
                here = True
            key = name if here else f"elsewhere:{name}"
        reason = attributes.get("error.type", "")
        by_reason = counts.setdefault(key, {})
        by_reason[reason] = by_reason.get(reason, 0) + value
    return counts


def main():
    base, service, spans, queue = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    elsewhere = sys.argv[5] if len(sys.argv) > 5 else None
    resource = Resource.create({"service.name": service, "service.instance.id": "burst-1"})
    in_memory = InMemoryMetricReader()
    # Exported once, at shutdown, after the in-memory reading: both see the
    # same final cumulative values.
    to_otelite = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(resource=resource, metric_readers=[in_memory, to_otelite])
    tracer_provider = TracerProvider(resource=resource, meter_provider=meters)
    if elsewhere:
        # One try per batch, a second at most: the port does not answer.
        other = OTLPSpanExporter(endpoint=elsewhere, timeout=1, meter_provider=meters)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                other,
                max_queue_size=2 * queue,
                max_export_batch_size=queue,
                meter_provider=meters,
            )
        )
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", meter_provider=meters)
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=queue,
        max_export_batch_size=queue,
        meter_provider=meters,
    )
    tracer_provider.add_span_processor(processor)
    tracer = tracer_provider.get_tracer("otelite-e2e-burst")
    for i in range(spans):
        with tracer.start_as_current_span(f"burst-{i}"):
            pass
    # Drains the queue: every span is then either exported or dropped.
    tracer_provider.shutdown()
    counts = own_counts(in_memory, queue, urlsplit(base).port if elsewhere else None)
    meters.shutdown()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
