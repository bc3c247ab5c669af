// Command go-counters sends a burst of spans through the official Go SDK's
// batch span processor with its self-observability metrics on
// (OTEL_GO_X_OBSERVABILITY=true), and the metrics to otelite over OTLP/HTTP.
//
//	go-counters METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE [delta]
//
// A queue smaller than the burst makes the processor drop spans
// (error.type=queue_full); a TRACES_URL nobody listens on makes every
// export fail (the exporter's own error.type). Prints one JSON line: the
// SDK's own final counts, read through a manual reader on the same
// MeterProvider, as {metric: {error.type or "": value}} (started and live
// only for sampled spans), so the test compares otelite's stages with what
// the SDK itself counted. With `delta`, the metrics go to otelite with delta
// temporality (the manual reader stays cumulative: the one export, at
// shutdown, covers the whole run either way).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var counted = []string{
	"otel.sdk.span.started",
	"otel.sdk.span.live",
	"otel.sdk.processor.span.processed",
	"otel.sdk.exporter.span.exported",
}

func main() {
	if len(os.Args) < 6 || len(os.Args) > 7 || (len(os.Args) == 7 && os.Args[6] != "delta") {
		fail(fmt.Errorf("usage: go-counters METRICS_BASE_URL TRACES_URL SERVICE SPANS QUEUE [delta]"))
	}
	temporality := metric.DefaultTemporalitySelector
	if len(os.Args) == 7 {
		temporality = deltaSums
	}
	metricsBase, tracesURL, service := os.Args[1], os.Args[2], os.Args[3]
	spans, err := strconv.Atoi(os.Args[4])
	check(err)
	queue, err := strconv.Atoi(os.Args[5])
	check(err)
	// The SDK reads the switch when each component is built.
	check(os.Setenv("OTEL_GO_X_OBSERVABILITY", "true"))
	ctx := context.Background()

	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.instance.id", "go-counters-1"),
	)
	manual := metric.NewManualReader()
	metricExporter, err := otlpmetrichttp.New(ctx,
		otlpmetrichttp.WithEndpointURL(metricsBase+"/v1/metrics"),
		otlpmetrichttp.WithTemporalitySelector(temporality))
	check(err)
	// Exported once, at shutdown, after the manual reading: both see the
	// same final cumulative values.
	periodic := metric.NewPeriodicReader(metricExporter, metric.WithInterval(3_600_000_000_000))
	meters := metric.NewMeterProvider(
		metric.WithResource(res),
		metric.WithReader(manual),
		metric.WithReader(periodic),
	)
	// The SDK's instrumentation takes the global MeterProvider, when the
	// tracer provider, processor and exporter are built.
	otel.SetMeterProvider(meters)

	spanExporter, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(tracesURL),
		// A dead endpoint fails at once instead of retrying for a minute.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	check(err)
	processor := sdktrace.NewBatchSpanProcessor(spanExporter,
		sdktrace.WithMaxQueueSize(queue),
		sdktrace.WithMaxExportBatchSize(queue))
	tracers := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(processor))
	tracer := tracers.Tracer("otelite-e2e-go-counters")
	for i := 0; i < spans; i++ {
		_, span := tracer.Start(ctx, fmt.Sprintf("burst-%d", i))
		span.End()
	}
	// Drains the queue: every span is then either exported or dropped. An
	// export that failed is reported by the SDK's counters, not here.
	_ = tracers.Shutdown(ctx)

	var data metricdata.ResourceMetrics
	check(manual.Collect(ctx, &data))
	check(meters.Shutdown(ctx))
	out, err := json.Marshal(ownCounts(&data))
	check(err)
	fmt.Println(string(out))
}

// deltaSums sends every sum as deltas, up-down counters too (the SDK's own
// DeltaTemporalitySelector keeps those cumulative).
func deltaSums(metric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}

// ownCounts sums the SDK's span counters by error.type.
func ownCounts(data *metricdata.ResourceMetrics) map[string]map[string]int64 {
	counts := map[string]map[string]int64{}
	for _, name := range counted {
		counts[name] = map[string]int64{}
	}
	for _, scope := range data.ScopeMetrics {
		for _, m := range scope.Metrics {
			byReason, ok := counts[m.Name]
			if !ok {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				fail(fmt.Errorf("%s is a %T, not an int64 sum", m.Name, m.Data))
			}
			for _, point := range sum.DataPoints {
				sampling, ok := point.Attributes.Value("otel.span.sampling_result")
				if ok && sampling.AsString() != "RECORD_AND_SAMPLE" {
					continue
				}
				reason, _ := point.Attributes.Value("error.type")
				byReason[reason.AsString()] += point.Value
			}
		}
	}
	return counts
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-counters:", err)
	os.Exit(1)
}
