#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: real OTLP/HTTP bodies, as the
official Python exporters send them (protobuf and JSON, plain and gzip),
captured by a local HTTP server. Needs the packages of
tests/clients/python/requirements.txt. Run from fuzz/: python3 seed_corpus.py
"""

import gzip
import http.server
import os
import threading

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

CAPTURED = []  # (content type, content encoding, body)


class Capture(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        CAPTURED.append(
            (self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", ""), body)
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def workload(tracer):
    """A few shapes of trace: nested spans, every attribute type, events,
    links, errors, and an odd span or two."""
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.set_attribute("http.response.status_code", 200)
        root.set_attribute("ratio", 0.25)
        root.set_attribute("ok", True)
        root.set_attribute("tags", ["a", "b", "ü"])
        root.set_attribute("ints", [1, 2, 3])
        root.add_event("cache miss", {"key": "user:7"})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "sqlite")
            child.set_status(Status(StatusCode.ERROR, "timeout"))
            child.record_exception(ValueError("boom"))
        with tracer.start_as_current_span(
            "publish", kind=SpanKind.PRODUCER, links=[Link(root.get_span_context(), {"why": "fan-out"})]
        ):
            pass
    with tracer.start_as_current_span("", kind=SpanKind.INTERNAL) as odd:
        odd.set_attribute("long", "x" * 300)


def capture(exporter_for, service, compression, first):
    provider = TracerProvider(resource=Resource.create({"service.name": service, "k8s.pod.name": "p-1"}))
    # One span per body uncompressed, the whole workload in one body with gzip.
    processor = SimpleSpanProcessor if first else BatchSpanProcessor
    provider.add_span_processor(processor(exporter_for(compression)))
    workload(provider.get_tracer("seed", "1.2.3"))
    provider.shutdown()


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"

    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtoExporter

    for compression in (Compression.NoCompression, Compression.Gzip):
        capture(lambda c: ProtoExporter(endpoint=endpoint, compression=c), "seed-proto", compression, compression == Compression.NoCompression)
    try:
        from opentelemetry.exporter.otlp.json.http import Compression as JsonCompression
    except ImportError:
        JsonCompression = Compression
    for compression in (JsonCompression.NoCompression, JsonCompression.Gzip):
        capture(lambda c: JsonExporter(endpoint=endpoint, compression=c), "seed-json", compression, compression == JsonCompression.NoCompression)
    server.shutdown()

    # Every captured body, in the form each target takes.
    seeds = {"otlp_protobuf": [], "otlp_json": [], "gzip": [], "http_receive": []}
    for content_type, encoding, body in CAPTURED:
        # Trust the bytes over the header: the JSON exporter's gzip option
        # sent plain JSON here.
        plain = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        is_json = "json" in content_type
        seeds["otlp_json" if is_json else "otlp_protobuf"].append(plain)
        seeds["gzip"].append(gzip.compress(plain, mtime=0))
        # http_receive: POST /v1/traces, its content type, gzip or not, in 1 or 3 frames.
        kind = 1 if is_json else 0
        seeds["http_receive"].append(bytes([0, 0, kind, 0, 1]) + plain)
        seeds["http_receive"].append(bytes([0, 0, kind, 1, 3]) + gzip.compress(plain, mtime=0))
    for target, bodies in seeds.items():
        os.makedirs(f"corpus/{target}", exist_ok=True)
        for i, body in enumerate(dict.fromkeys(bodies)):
            with open(f"corpus/{target}/seed-{i:02}", "wb") as f:
                f.write(body)


if __name__ == "__main__":
    main()
