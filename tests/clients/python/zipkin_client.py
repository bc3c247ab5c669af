"""Sends one trace with py_zipkin (Zipkin's Python tracer) through its own
SimpleHTTPTransport, which POSTs Zipkin v2 JSON to /api/v2/spans.

Usage: zipkin_client.py HOST PORT RUN_ID
Prints {"traceId": …, "spans": {name: span id}} as the OTLP clients do.

The trace: a root server span `POST /checkout` (service `checkout`, local
endpoint 10.0.0.1:8080) with an annotation and
a tag, and under it a client span `charge` to the remote service `payments`
at 10.0.0.2:5432 that failed (`error` tag).
"""

import json
import sys

from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.zipkin import zipkin_span


class RecordingTransport(SimpleHTTPTransport):
    """py_zipkin's HTTP transport, remembering that it sent: py_zipkin
    would otherwise lose a failed send without a word."""

    def __init__(self, host, port):
        super().__init__(host, port)
        self.sent = 0

    def send(self, payload):
        super().send(payload)  # urlopen raises on a 4xx/5xx answer
        self.sent += 1


def main():
    host, port, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    transport = RecordingTransport(host, port)
    ids = {}
    with zipkin_span(
        service_name="checkout",
        span_name="POST /checkout",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=Encoding.V2_JSON,
        use_128bit_trace_id=True,
        kind=Kind.SERVER,
        host="10.0.0.1",
        port=8080,
    ) as root:
        root.update_binary_annotations({"http.method": "POST", "run.id": run_id})
        root.add_annotation("cart loaded")
        with zipkin_span(
            service_name="checkout", span_name="charge", kind=Kind.CLIENT
        ) as charge:
            charge.add_sa_binary_annotation(port=5432, service_name="payments", host="10.0.0.2")
            charge.update_binary_annotations({"error": "card declined"})
            ids["charge"] = charge.zipkin_attrs.span_id
        ids["POST /checkout"] = root.zipkin_attrs.span_id
        trace_id = root.zipkin_attrs.trace_id
    if transport.sent == 0:
        print("py_zipkin sent nothing", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"traceId": trace_id, "spans": ids}))


if __name__ == "__main__":
    main()
