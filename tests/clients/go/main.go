// Command client sends one small trace to an OTLP/gRPC endpoint with the
// official Go SDK and its otlptracegrpc exporter.
//
// Usage: client ENDPOINT RUN_ID PROTOCOL   (PROTOCOL: grpc | grpc-gzip)
//
// ENDPOINT is host:port, spoken to in plain text. Same scenario as
// tests/clients/python/client.py. On success it prints one JSON line with
// the trace id and the span ids by name; if the exporter reports a failure
// it exits non-zero.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// recording wraps the real exporter and remembers every error it returned.
type recording struct {
	sdktrace.SpanExporter
	mu      sync.Mutex
	exports int
	errs    []error
}

func (r *recording) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := r.SpanExporter.ExportSpans(ctx, spans)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 4 {
		return errors.New("usage: client ENDPOINT RUN_ID PROTOCOL")
	}
	endpoint, runID, protocol := os.Args[1], os.Args[2], os.Args[3]
	ctx := context.Background()
	options := []otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(endpoint),
		otlptracegrpc.WithInsecure(),
	}
	switch protocol {
	case "grpc":
	case "grpc-gzip":
		options = append(options, otlptracegrpc.WithCompressor("gzip"))
	default:
		return fmt.Errorf("unknown protocol %q (expected grpc or grpc-gzip)", protocol)
	}
	inner, err := otlptracegrpc.New(ctx, options...)
	if err != nil {
		return err
	}
	exporter := &recording{SpanExporter: inner}
	res := resource.NewSchemaless(
		attribute.String("service.name", "go-"+protocol+"-client"),
		attribute.String("run.id", runID),
	)
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
	)
	tracer := provider.Tracer("otelite-e2e-go", trace.WithInstrumentationVersion("1.0.0"))

	ids := map[string]string{}
	rootCtx, root := tracer.Start(ctx, "checkout", trace.WithSpanKind(trace.SpanKindServer))
	root.SetAttributes(
		attribute.String("run.id", runID),
		attribute.Int("http.response.status_code", 500),
		attribute.Bool("retry.enabled", true),
		attribute.Float64("sample.ratio", 0.25),
		attribute.StringSlice("tags", []string{"a", "b"}),
	)
	root.AddEvent("order.received", trace.WithAttributes(attribute.Int("items", 3)))
	cartCtx, cart := tracer.Start(rootCtx, "load-cart")
	cart.SetAttributes(attribute.Int("cart.items", 3))
	_, db := tracer.Start(cartCtx, "db.select", trace.WithSpanKind(trace.SpanKindClient))
	db.SetAttributes(attribute.String("db.system", "sqlite"))
	ids["db.select"] = db.SpanContext().SpanID().String()
	db.End()
	ids["load-cart"] = cart.SpanContext().SpanID().String()
	cart.End()
	_, charge := tracer.Start(rootCtx, "charge", trace.WithSpanKind(trace.SpanKindClient))
	charge.AddEvent("exception", trace.WithAttributes(attribute.String("exception.message", "card declined")))
	charge.SetStatus(codes.Error, "card declined")
	ids["charge"] = charge.SpanContext().SpanID().String()
	charge.End()
	root.SetStatus(codes.Error, "payment failed")
	ids["checkout"] = root.SpanContext().SpanID().String()
	traceID := root.SpanContext().TraceID().String()
	root.End()

	if err := provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if exporter.exports == 0 || len(exporter.errs) > 0 {
		return fmt.Errorf("export failed: %d exports, errors %v", exporter.exports, exporter.errs)
	}
	line, err := json.Marshal(map[string]any{"traceId": traceID, "spans": ids})
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}
