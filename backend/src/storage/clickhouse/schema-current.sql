-- otelite's ClickHouse schema for a CURRENT ClickHouse (23.x and later):
-- documentation only. otelite applies schema-18.16.sql (what Debian ships
-- and what CI tests); this file shows what the same tables should be where
-- the newer features exist, and is what a migration for such servers would
-- apply. Columns, names and the Null-table + materialized-view flow are the
-- same, so the Rust code does not change. Differences, each marked below:
--   * LowCardinality(String) for service, name, stage (no setting needed);
--   * ZSTD codecs on the bodies, Delta+ZSTD on times;
--   * data-skipping indexes: a bloom filter on trace_id (search results and
--     "already stored?" without the trace-ordered copy for small lookups),
--     and on the attribute keys/values;
--   * TTL: retention by the server, whole parts dropped (ttl_only_drop_parts);
--   * DateTime64(9) is available but start_ns stays UInt64 (exact, simple).
-- On a cluster, each table below is created ON CLUSTER with a Replicated*
-- engine (ReplicatedMergeTree('/clickhouse/tables/{shard}/otelite/spans',
-- '{replica}') etc.) and a Distributed table over it (see docs/scale-out.md).

CREATE TABLE IF NOT EXISTS spans_in (
    day                  Date,
    trace_id             FixedString(16),
    span_id              FixedString(8),
    parent_span_id       FixedString(8),
    service              LowCardinality(String),
    name                 LowCardinality(String),
    kind                 UInt8,
    start_ns             UInt64,
    end_ns               UInt64,
    duration_ns          UInt64,
    status_code          UInt8,
    is_root              UInt8,
    attr_keys            Array(LowCardinality(String)),
    attr_values          Array(String),
    resource_attr_keys   Array(LowCardinality(String)),
    resource_attr_values Array(String),
    resource             String,
    scope                String,
    body                 String,
    received_day         Date,             -- when the batch arrived: where
    received_minute      Int64,            -- its stage counts go
    attr_strings         Array(UInt8),     -- 1 where the value is a string
    resource_attr_strings Array(UInt8)
) ENGINE = Null
;
CREATE TABLE IF NOT EXISTS spans (
    day                  Date,
    trace_id             FixedString(16)               CODEC(ZSTD(1)),
    span_id              FixedString(8)                CODEC(ZSTD(1)),
    service              LowCardinality(String),
    name                 LowCardinality(String),
    kind                 UInt8,
    start_ns             UInt64                        CODEC(Delta, ZSTD(1)),
    end_ns               UInt64                        CODEC(Delta, ZSTD(1)),
    duration_ns          UInt64                        CODEC(T64, ZSTD(1)),
    status_code          UInt8,
    attr_keys            Array(LowCardinality(String)) CODEC(ZSTD(1)),
    attr_values          Array(String)                 CODEC(ZSTD(1)),
    resource_attr_keys   Array(LowCardinality(String)) CODEC(ZSTD(1)),
    resource_attr_values Array(String)                 CODEC(ZSTD(1)),
    attr_strings         Array(UInt8)                  CODEC(ZSTD(1)),
    resource_attr_strings Array(UInt8)                 CODEC(ZSTD(1)),
    INDEX by_trace trace_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX by_attr_key attr_keys TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX by_attr_value attr_values TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX by_duration duration_ns TYPE minmax GRANULARITY 1
) ENGINE = MergeTree PARTITION BY day ORDER BY (service, name, start_ns)
  TTL day + INTERVAL 7 DAY
  SETTINGS ttl_only_drop_parts = 1
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_mv_2 TO spans AS
SELECT day, trace_id, span_id, service, name, kind, start_ns, end_ns, duration_ns, status_code,
       attr_keys, attr_values, resource_attr_keys, resource_attr_values,
       attr_strings, resource_attr_strings
FROM spans_in
;
-- Still worth having with the bloom filter: a trace read touches one
-- granule per part instead of every granule the filter lets through.
CREATE TABLE IF NOT EXISTS spans_by_trace (
    day            Date,
    trace_id       FixedString(16),
    span_id        FixedString(8),
    parent_span_id FixedString(8),
    service        LowCardinality(String),
    name           LowCardinality(String),
    start_ns       UInt64 CODEC(Delta, ZSTD(1)),
    end_ns         UInt64 CODEC(Delta, ZSTD(1)),
    status_code    UInt8,
    is_root        UInt8,
    resource       String CODEC(ZSTD(3)),
    scope          String CODEC(ZSTD(3)),
    body           String CODEC(ZSTD(3))
) ENGINE = MergeTree PARTITION BY day ORDER BY (trace_id, start_ns)
  TTL day + INTERVAL 7 DAY
  SETTINGS ttl_only_drop_parts = 1
;
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_by_trace_mv TO spans_by_trace AS
SELECT day, trace_id, span_id, parent_span_id, service, name, start_ns, end_ns, status_code,
       is_root, resource, scope, body
FROM spans_in
;
CREATE TABLE IF NOT EXISTS operations (
    day     Date,
    service LowCardinality(String),
    name    LowCardinality(String),
    kind    UInt8,
    spans   UInt64
) ENGINE = SummingMergeTree(spans) PARTITION BY day ORDER BY (service, name, kind)
  TTL day + INTERVAL 7 DAY
;
CREATE MATERIALIZED VIEW IF NOT EXISTS operations_mv TO operations AS
SELECT day, service, name, kind, count() AS spans FROM spans_in GROUP BY day, service, name, kind
;
CREATE TABLE IF NOT EXISTS stage_counts (
    day     Date,
    service LowCardinality(String),
    stage   LowCardinality(String),
    minute  Int64 CODEC(Delta, ZSTD(1)),
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
  TTL day + INTERVAL 30 DAY
;
-- Each stored span counted at process, analyze and store, within its INSERT.
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_counts_mv TO stage_counts AS
SELECT received_day AS day, service, stage, received_minute AS minute, count() AS n
FROM spans_in ARRAY JOIN ['process', 'analyze', 'store'] AS stage
GROUP BY day, service, stage, minute
;
-- Spans lost at a stage, per reason (policy drops: `policy:<rule>`).
CREATE TABLE IF NOT EXISTS stage_losses (
    day     Date,
    service LowCardinality(String),
    stage   LowCardinality(String),
    reason  LowCardinality(String),
    minute  Int64 CODEC(Delta, ZSTD(1)),
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, reason, minute)
  TTL day + INTERVAL 30 DAY
;
-- A span dropped by a rule got through process: counted there in its INSERT.
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_losses_processed_mv TO stage_counts AS
SELECT day, service, 'process' AS stage, minute, n FROM stage_losses WHERE startsWith(reason, 'policy:')
;
-- Counts taken away from a stage: the SDKs' live spans, from total.
CREATE TABLE IF NOT EXISTS stage_counts_taken (
    day     Date,
    service LowCardinality(String),
    stage   LowCardinality(String),
    minute  Int64 CODEC(Delta, ZSTD(1)),
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
  TTL day + INTERVAL 30 DAY
;
CREATE TABLE IF NOT EXISTS service_edges (
    day    Date,
    parent LowCardinality(String),
    child  LowCardinality(String),
    minute Int64 CODEC(Delta, ZSTD(1)),
    calls  UInt64,
    errors UInt64
) ENGINE = SummingMergeTree((calls, errors)) PARTITION BY day ORDER BY (parent, child, minute)
  TTL day + INTERVAL 30 DAY
;
CREATE TABLE IF NOT EXISTS exporter_series (
    service LowCardinality(String),
    stage   LowCardinality(String),
    series  String,
    value   UInt64,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (service, stage, series)
