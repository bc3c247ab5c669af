-- otelite's ClickHouse schema, version 1, for ClickHouse 18.16 (Debian's).
-- That version has no data-skipping indexes, TTL or column codecs; a
-- current ClickHouse runs the same schema (tested here only on 18.16).
-- Statements are separated by a line holding only ";". Every table is
-- partitioned by day, so retention drops whole partitions.

-- What otelite inserts into: a Null table keeps nothing; the materialized
-- views below copy each inserted block into the tables that answer queries,
-- within the same INSERT (so a 200 means all of them have the rows).
CREATE TABLE IF NOT EXISTS spans_in (
    day                  Date,
    trace_id             FixedString(16),
    span_id              FixedString(8),
    parent_span_id       FixedString(8),   -- all zero: a root span
    service              String,
    name                 String,
    kind                 UInt8,
    start_ns             UInt64,
    end_ns               UInt64,
    duration_ns          UInt64,
    status_code          UInt8,
    is_root              UInt8,
    attr_keys            Array(String),    -- the span's attributes as parallel
    attr_values          Array(String),    -- key/value arrays (searchable text)
    resource_attr_keys   Array(String),
    resource_attr_values Array(String),
    resource             String,           -- OTLP ResourceSpans without spans
    scope                String,           -- OTLP ScopeSpans without spans
    body                 String            -- the OTLP Span, whole
) ENGINE = Null
;
-- Search: ordered for "this service, newest first"; no bodies.
CREATE TABLE IF NOT EXISTS spans (
    day                  Date,
    trace_id             FixedString(16),
    span_id              FixedString(8),
    service              String,
    name                 String,
    kind                 UInt8,
    start_ns             UInt64,
    end_ns               UInt64,
    duration_ns          UInt64,
    status_code          UInt8,
    attr_keys            Array(String),
    attr_values          Array(String),
    resource_attr_keys   Array(String),
    resource_attr_values Array(String)
) ENGINE = MergeTree PARTITION BY day ORDER BY (service, start_ns)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_mv TO spans AS
SELECT day, trace_id, span_id, service, name, kind, start_ns, end_ns, duration_ns, status_code,
       attr_keys, attr_values, resource_attr_keys, resource_attr_values
FROM spans_in
;
-- Trace lookups and summaries: the same spans ordered by trace id, since
-- 18.16 has no skipping index to find a trace in the table above.
CREATE TABLE IF NOT EXISTS spans_by_trace (
    day            Date,
    trace_id       FixedString(16),
    span_id        FixedString(8),
    parent_span_id FixedString(8),
    service        String,
    name           String,
    start_ns       UInt64,
    end_ns         UInt64,
    status_code    UInt8,
    is_root        UInt8,
    resource       String,
    scope          String,
    body           String
) ENGINE = MergeTree PARTITION BY day ORDER BY (trace_id, start_ns)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_by_trace_mv TO spans_by_trace AS
SELECT day, trace_id, span_id, parent_span_id, service, name, start_ns, end_ns, status_code,
       is_root, resource, scope, body
FROM spans_in
;
-- Services and operations: one row per (day, service, name, kind) once merged.
CREATE TABLE IF NOT EXISTS operations (
    day     Date,
    service String,
    name    String,
    kind    UInt8,
    spans   UInt64
) ENGINE = SummingMergeTree(spans) PARTITION BY day ORDER BY (service, name, kind)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS operations_mv TO operations AS
SELECT day, service, name, kind, count() AS spans FROM spans_in GROUP BY day, service, name, kind
;
-- Spans counted at each stage, per service and minute (unix seconds).
CREATE TABLE IF NOT EXISTS stage_counts (
    day     Date,
    service String,
    stage   String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
;
-- Calls between services found by analysis, per minute of the child's start.
CREATE TABLE IF NOT EXISTS service_edges (
    day    Date,
    parent String,
    child  String,
    minute Int64,
    calls  UInt64,
    errors UInt64
) ENGINE = SummingMergeTree((calls, errors)) PARTITION BY day ORDER BY (parent, child, minute)
;
-- Last cumulative value of each exporter counter series; the newest
-- version wins (argMax before merges, ReplacingMergeTree after).
CREATE TABLE IF NOT EXISTS exporter_series (
    service String,
    stage   String,
    series  String,
    value   UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (service, stage, series)
