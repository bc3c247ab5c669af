// Sends a burst of spans through the official JS SDK's batch span processor
// with its self-observability metrics on (the experimental `meterProvider`
// of the tracer provider, `selfObsMeterProvider` of the processor and the
// exporter), and the metrics to otelite over OTLP/HTTP.
//
//   node counters.js METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE
//
// A queue smaller than the burst makes the processor drop spans
// (error.type=queue_full); a TRACES_URL nobody listens on makes every export
// fail (the exporter's own error.type, which this SDK also puts on the
// processor's count). Prints one JSON line: the SDK's own final counts, read
// through a pull reader on the same MeterProvider, as
// {metric: {error.type or "": value}} (started and live only for sampled
// spans), so the test compares otelite's stages with what the SDK counted.
'use strict';

const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const {
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
} = require('@opentelemetry/sdk-metrics');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const COUNTED = [
  'otel.sdk.span.started',
  'otel.sdk.span.live',
  'otel.sdk.processor.span.processed',
  'otel.sdk.exporter.span.exported',
];

/** A reader the client collects from itself (the SDK's pull reader). */
class OwnReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** The SDK's span counters as it reports them, by error.type. */
async function ownCounts(reader) {
  const counts = Object.fromEntries(COUNTED.map((name) => [name, {}]));
  const { resourceMetrics, errors } = await reader.collect();
  if (errors.length > 0) {
    throw new Error(`collect: ${errors.join('; ')}`);
  }
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const byReason = counts[metric.descriptor.name];
      if (!byReason) continue;
      for (const point of metric.dataPoints) {
        const sampling = point.attributes['otel.span.sampling_result'];
        if (sampling !== undefined && sampling !== 'RECORD_AND_SAMPLE') continue;
        const reason = point.attributes['error.type'] ?? '';
        byReason[reason] = (byReason[reason] ?? 0) + point.value;
      }
    }
  }
  return counts;
}

async function main() {
  const [metricsBase, tracesUrl, service, spansArg, queueArg] = process.argv.slice(2);
  if (queueArg === undefined) {
    throw new Error('usage: counters.js METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE');
  }
  const spans = Number(spansArg);
  const queue = Number(queueArg);
  const resource = resourceFromAttributes({
    'service.name': service,
    'service.instance.id': 'node-counters-1',
  });
  const own = new OwnReader();
  // Exported at the end, after the own reading: both see the same final
  // cumulative values.
  const toOtelite = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `${metricsBase}/v1/metrics` }),
    exportIntervalMillis: 3_600_000,
  });
  const meters = new MeterProvider({ resource, readers: [own, toOtelite] });

  const exporter = new OTLPTraceExporter({ url: tracesUrl, selfObsMeterProvider: meters });
  const processor = new BatchSpanProcessor(exporter, {
    maxQueueSize: queue,
    maxExportBatchSize: queue,
    selfObsMeterProvider: meters,
  });
  const tracers = new BasicTracerProvider({
    resource,
    spanProcessors: [processor],
    meterProvider: meters,
  });
  const tracer = tracers.getTracer('otelite-e2e-node-counters');
  for (let i = 0; i < spans; i++) {
    tracer.startSpan(`burst-${i}`).end();
  }
  // Drains the queue: every span is then either exported or dropped. A
  // failed export is reported by the SDK's counters, not here.
  await tracers.shutdown().catch(() => {});

  const counts = await ownCounts(own);
  await meters.forceFlush();
  await meters.shutdown();
  console.log(JSON.stringify(counts));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
