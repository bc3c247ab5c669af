"""Parses Prometheus text exposition from stdin with prometheus_client's own
parser (the Prometheus project's Python client) and prints the families as
JSON, so the e2e suite can check otelite's /metrics against a real parser.
A parse error exits non-zero with the parser's message."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value}
            for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
