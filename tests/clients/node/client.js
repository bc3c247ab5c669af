// Sends one small trace to an OTLP/HTTP endpoint with the official JS SDK.
//
// Usage: node client.js ENDPOINT RUN_ID PROTOCOL
//        (PROTOCOL: json | proto | grpc | grpc-gzip)
//
// ENDPOINT is the base URL (http://host:port); the script appends /v1/traces
// for OTLP/HTTP and sends to it unchanged over OTLP/gRPC (plain text).
// Same scenario as tests/clients/python/client.py. On success it prints one
// JSON line with the trace id and span ids by name; if the exporter reports a
// failure it exits non-zero.
'use strict';

const { SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

function makeExporter(endpoint, protocol) {
  const url = endpoint.replace(/\/$/, '') + '/v1/traces';
  if (protocol === 'json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url });
  }
  if (protocol === 'proto') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url });
  }
  if (protocol === 'grpc' || protocol === 'grpc-gzip') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    const compression = protocol === 'grpc-gzip' ? 'gzip' : 'none';
    return new OTLPTraceExporter({ url: endpoint, compression });
  }
  throw new Error(`unknown protocol ${protocol} (expected json, proto, grpc or grpc-gzip)`);
}

// Wraps the real exporter and remembers every result it returned.
function recording(inner) {
  const results = [];
  return {
    results,
    export(spans, done) {
      inner.export(spans, (result) => {
        results.push(result);
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };
}

async function main() {
  const [endpoint, runId, protocol] = process.argv.slice(2);
  if (!endpoint || !runId || !protocol) {
    throw new Error('usage: node client.js ENDPOINT RUN_ID PROTOCOL');
  }
  const exporter = recording(makeExporter(endpoint, protocol));
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `node-${protocol}-client`, 'run.id': runId }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // Installs the async-hooks context manager that startActiveSpan relies on.
  provider.register();
  const tracer = provider.getTracer('otelite-e2e-node', '1.0.0');

  const ids = {};
  let traceId;
  tracer.startActiveSpan('checkout', { kind: SpanKind.SERVER }, (root) => {
    root.setAttribute('run.id', runId);
    root.setAttribute('http.response.status_code', 500);
    root.setAttribute('retry.enabled', true);
    root.setAttribute('sample.ratio', 0.25);
    root.setAttribute('tags', ['a', 'b']);
    root.addEvent('order.received', { items: 3 });
    tracer.startActiveSpan('load-cart', (cart) => {
      cart.setAttribute('cart.items', 3);
      tracer.startActiveSpan('db.select', { kind: SpanKind.CLIENT }, (db) => {
        db.setAttribute('db.system', 'sqlite');
        ids['db.select'] = db.spanContext().spanId;
        db.end();
      });
      ids['load-cart'] = cart.spanContext().spanId;
      cart.end();
    });
    tracer.startActiveSpan('charge', { kind: SpanKind.CLIENT }, (charge) => {
      charge.addEvent('exception', { 'exception.message': 'card declined' });
      charge.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
      ids['charge'] = charge.spanContext().spanId;
      charge.end();
    });
    root.setStatus({ code: SpanStatusCode.ERROR, message: 'payment failed' });
    ids['checkout'] = root.spanContext().spanId;
    traceId = root.spanContext().traceId;
    root.end();
  });

  await provider.shutdown();
  const failed = exporter.results.filter((r) => r.code !== 0);
  if (exporter.results.length === 0 || failed.length > 0) {
    console.error('export failed:', JSON.stringify(exporter.results, (k, v) => (v instanceof Error ? v.message : v)));
    process.exit(1);
  }
  console.log(JSON.stringify({ traceId, spans: ids }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
