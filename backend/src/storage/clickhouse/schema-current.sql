-- version 9
-- otelite's ClickHouse schema at its current version in one piece: what
-- `schema-18.16.sql` and every `migrate-N.sql` after it make, for a new
-- database with replicated tables (see `migrations.rs`: a replica's
-- tables must be created in the shape ZooKeeper already holds, not
-- altered into it). The end-to-end test
-- `clickhouse::the_current_schema_is_what_the_migrations_make` compares
-- both, table by table; the first line names the version and a unit test
-- holds it to `CURRENT_VERSION`, so a new migration comes here too.
-- Column order and names are the migrations' (ADD COLUMN appends), and so
-- are the objects' names (`spans_mv_2`). Why each part is so: the
-- migration that made it.
CREATE TABLE IF NOT EXISTS spans_in (
    day                   Date,
    trace_id              FixedString(16),
    span_id               FixedString(8),
    parent_span_id        FixedString(8),
    service               String,
    name                  String,
    kind                  UInt8,
    start_ns              UInt64,
    end_ns                UInt64,
    duration_ns           UInt64,
    status_code           UInt8,
    is_root               UInt8,
    attr_keys             Array(String),
    attr_values           Array(String),
    resource_attr_keys    Array(String),
    resource_attr_values  Array(String),
    resource              String,
    scope                 String,
    body                  String,
    received_day          Date,
    received_minute       Int64,
    attr_strings          Array(UInt8),
    resource_attr_strings Array(UInt8),
    parent_in_request     UInt8 DEFAULT 0
) ENGINE = Null
;
CREATE TABLE IF NOT EXISTS spans (
    day                   Date,
    trace_id              FixedString(16),
    span_id               FixedString(8),
    service               String,
    name                  String,
    kind                  UInt8,
    start_ns              UInt64,
    end_ns                UInt64,
    duration_ns           UInt64,
    status_code           UInt8,
    attr_keys             Array(String),
    attr_values           Array(String),
    resource_attr_keys    Array(String),
    resource_attr_values  Array(String),
    attr_strings          Array(UInt8) DEFAULT arrayMap(v -> 1, attr_values),
    resource_attr_strings Array(UInt8) DEFAULT arrayMap(v -> 1, resource_attr_values)
) ENGINE = MergeTree PARTITION BY day ORDER BY (service, start_ns)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_mv_2 TO spans AS
SELECT day, trace_id, span_id, service, name, kind, start_ns, end_ns, duration_ns, status_code,
       attr_keys, attr_values, resource_attr_keys, resource_attr_values,
       attr_strings, resource_attr_strings
FROM spans_in
;
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
SETTINGS index_granularity = 256
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_by_trace_mv TO spans_by_trace AS
SELECT day, trace_id, span_id, parent_span_id, service, name, start_ns, end_ns, status_code,
       is_root, resource, scope, body
FROM spans_in
;
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
CREATE TABLE IF NOT EXISTS stage_counts (
    day     Date,
    service String,
    stage   String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_counts_mv TO stage_counts AS
SELECT received_day AS day, service, stage, received_minute AS minute, count() AS n
FROM spans_in ARRAY JOIN ['process', 'analyze', 'store'] AS stage
GROUP BY day, service, stage, minute
;
CREATE TABLE IF NOT EXISTS service_edges (
    day    Date,
    parent String,
    child  String,
    minute Int64,
    calls  UInt64,
    errors UInt64
) ENGINE = SummingMergeTree((calls, errors)) PARTITION BY day ORDER BY (parent, child, minute)
;
CREATE TABLE IF NOT EXISTS exporter_series (
    service String,
    stage   String,
    series  String,
    value   UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (service, stage, series)
;
CREATE TABLE IF NOT EXISTS stage_losses (
    day     Date,
    service String,
    stage   String,
    reason  String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, reason, minute)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_losses_processed_mv TO stage_counts AS
SELECT day, service, 'process' AS stage, minute, n
FROM stage_losses WHERE startsWith(reason, 'policy:')
;
CREATE TABLE IF NOT EXISTS stage_counts_taken (
    day     Date,
    service String,
    stage   String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
;
CREATE TABLE IF NOT EXISTS span_parents (
    day             Date,
    trace_id        FixedString(16),
    span_id         FixedString(8),
    parent_span_id  FixedString(8),
    service         String,
    received_minute Int64,
    arrived         UInt32
) ENGINE = MergeTree PARTITION BY day ORDER BY (received_minute, service, trace_id)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS span_parents_mv_2 TO span_parents AS
SELECT day, trace_id, span_id, parent_span_id, service, received_minute,
       toUInt32(now()) AS arrived
FROM spans_in WHERE is_root = 0 AND parent_in_request = 0
;
CREATE TABLE IF NOT EXISTS span_attributes (
    day         Date,
    key         String,
    value       String,
    is_string   UInt8,
    start_ns    UInt64,
    trace_id    FixedString(16),
    span_id     FixedString(8),
    service     String,
    name        String,
    kind        UInt8,
    duration_ns UInt64,
    status_code UInt8
) ENGINE = MergeTree PARTITION BY day ORDER BY (key, value, start_ns)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS span_attributes_mv TO span_attributes AS
SELECT day, key, value, is_string, start_ns, trace_id, span_id, service, name, kind,
       duration_ns, status_code
FROM spans_in
ARRAY JOIN arrayConcat(attr_keys, resource_attr_keys) AS key,
           arrayConcat(attr_values, resource_attr_values) AS value,
           arrayConcat(attr_strings, resource_attr_strings) AS is_string
;
CREATE TABLE IF NOT EXISTS request_edges (
    day     Date,
    parent  String,
    child   String,
    minute  Int64,
    request UInt64,
    calls   UInt64,
    errors  UInt64
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, parent, child, request)
;
CREATE TABLE IF NOT EXISTS edge_children (
    day            Date,
    minute         Int64,
    trace_id       FixedString(16),
    span_id        FixedString(8),
    parent_span_id FixedString(8),
    service        String,
    is_error       UInt8
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, trace_id, span_id)
;
CREATE TABLE IF NOT EXISTS span_copies (
    day      Date,
    minute   Int64,
    service  String,
    trace_id FixedString(16),
    span_id  FixedString(8),
    copies   UInt64
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, service, trace_id, span_id)
;
CREATE TABLE IF NOT EXISTS span_minutes (
    day     Date,
    service String,
    name    String,
    minute  Int64,
    spans   UInt64
) ENGINE = SummingMergeTree(spans) PARTITION BY day ORDER BY (service, minute, name)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS span_minutes_mv TO span_minutes AS
SELECT day, service, name, toInt64(intDiv(start_ns, 60000000000)) AS minute, count() AS spans
FROM spans_in GROUP BY day, service, name, minute
