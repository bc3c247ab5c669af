package otelite;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.exporter.otlp.http.metrics.OtlpHttpMetricExporter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.common.InternalTelemetryVersion;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.LongPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.export.PeriodicMetricReader;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Sends a burst of spans through the official Java SDK's batch span processor with its
 * self-observability metrics on (a MeterProvider and {@link InternalTelemetryVersion#LATEST} on
 * the processor and the exporter, a MeterProvider on the tracer provider), and the metrics to
 * otelite over OTLP/HTTP.
 *
 * <pre>java otelite.Counters METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE</pre>
 *
 * <p>A queue smaller than the burst makes the processor drop spans (error.type=queue_full); a
 * TRACES_URL nobody listens on makes every export fail (the exporter's own error.type). Prints one
 * JSON line: the SDK's own final counts, read through an in-memory reader on the same
 * MeterProvider, as {metric: {error.type or "": value}} (started and live only for sampled spans),
 * so the test compares otelite's stages with what the SDK itself counted.
 */
public final class Counters {
  private static final List<String> COUNTED =
      List.of(
          "otel.sdk.span.started",
          "otel.sdk.span.live",
          "otel.sdk.processor.span.processed",
          "otel.sdk.exporter.span.exported");
  private static final AttributeKey<String> ERROR_TYPE = AttributeKey.stringKey("error.type");
  private static final AttributeKey<String> SAMPLING =
      AttributeKey.stringKey("otel.span.sampling_result");

  public static void main(String[] args) {
    if (args.length != 5) {
      System.err.println("usage: Counters METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE");
      System.exit(2);
    }
    String metricsBase = args[0];
    String tracesUrl = args[1];
    String service = args[2];
    int spans = Integer.parseInt(args[3]);
    int queue = Integer.parseInt(args[4]);

    Resource resource =
        Resource.create(
            Attributes.of(
                AttributeKey.stringKey("service.name"), service,
                AttributeKey.stringKey("service.instance.id"), "java-counters-1"));
    InMemoryMetricReader inMemory = InMemoryMetricReader.create();
    // Exported at the end, after the in-memory reading: both see the same
    // final cumulative values.
    PeriodicMetricReader toOtelite =
        PeriodicMetricReader.builder(
                OtlpHttpMetricExporter.builder().setEndpoint(metricsBase + "/v1/metrics").build())
            .setInterval(Duration.ofHours(1))
            .build();
    SdkMeterProvider meters =
        SdkMeterProvider.builder()
            .setResource(resource)
            .registerMetricReader(inMemory)
            .registerMetricReader(toOtelite)
            .build();

    OtlpHttpSpanExporter exporter =
        OtlpHttpSpanExporter.builder()
            .setEndpoint(tracesUrl)
            .setMeterProvider(meters)
            .setInternalTelemetryVersion(InternalTelemetryVersion.LATEST)
            // A dead endpoint fails at once instead of being retried.
            .setRetryPolicy(null)
            .build();
    BatchSpanProcessor processor =
        BatchSpanProcessor.builder(exporter)
            .setMaxQueueSize(queue)
            .setMaxExportBatchSize(queue)
            .setMeterProvider(meters)
            .setInternalTelemetryVersion(InternalTelemetryVersion.LATEST)
            .build();
    SdkTracerProvider tracers =
        SdkTracerProvider.builder()
            .setResource(resource)
            .addSpanProcessor(processor)
            .setMeterProvider(() -> meters)
            .build();
    Tracer tracer = tracers.get("otelite-e2e-java-counters");
    for (int i = 0; i < spans; i++) {
      tracer.spanBuilder("burst-" + i).startSpan().end();
    }
    // Drains the queue: every span is then either exported or dropped. A
    // failed export is reported by the SDK's counters, not here.
    tracers.shutdown().join(60, TimeUnit.SECONDS);

    Map<String, Map<String, Long>> counts = ownCounts(inMemory);
    if (!meters.forceFlush().join(60, TimeUnit.SECONDS).isSuccess()) {
      System.err.println("Counters: the metrics did not reach " + metricsBase);
      System.exit(1);
    }
    meters.shutdown().join(60, TimeUnit.SECONDS);
    System.out.println(json(counts));
  }

  /** The SDK's span counters as it reports them, by error.type. */
  private static Map<String, Map<String, Long>> ownCounts(InMemoryMetricReader reader) {
    Map<String, Map<String, Long>> counts = new TreeMap<>();
    COUNTED.forEach(name -> counts.put(name, new TreeMap<>()));
    for (MetricData metric : reader.collectAllMetrics()) {
      Map<String, Long> byReason = counts.get(metric.getName());
      if (byReason == null) {
        continue;
      }
      for (LongPointData point : metric.getLongSumData().getPoints()) {
        String sampling = point.getAttributes().get(SAMPLING);
        if (sampling != null && !sampling.equals("RECORD_AND_SAMPLE")) {
          continue;
        }
        String reason = point.getAttributes().get(ERROR_TYPE);
        byReason.merge(reason == null ? "" : reason, point.getValue(), Long::sum);
      }
    }
    return counts;
  }

  private static String json(Map<String, Map<String, Long>> counts) {
    StringBuilder out = new StringBuilder("{");
    counts.forEach(
        (metric, byReason) -> {
          if (out.length() > 1) {
            out.append(',');
          }
          out.append(quote(metric)).append(":{");
          int before = out.length();
          byReason.forEach(
              (reason, value) -> {
                if (out.length() > before) {
                  out.append(',');
                }
                out.append(quote(reason)).append(':').append(value);
              });
          out.append('}');
        });
    return out.append('}').toString();
  }

  private static String quote(String text) {
    return '"' + text.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
  }
}
