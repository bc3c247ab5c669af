-- Version 8 of otelite's ClickHouse schema (18.16), over version 6 (7 is
-- replication's).
--
-- 1. Where a search's newest spans are. A search by service (or
--    operation, duration, kind, status) first looked for its newest 10 ×
--    limit matching spans with a top-N sort over every span of the service
--    in `spans`: all of them read, at every search (50 ms at 1 M spans).
--    `span_minutes` counts spans per service, operation and minute of their
--    start: the newest minutes holding enough spans are read from a few
--    rows, and bound the window searched first.
-- 2. Trace lookups read 256-row granules (Rust, `granules.rs`, after this
--    script): `spans_by_trace` is rebuilt with `index_granularity = 256`.
--
-- The counts of spans stored before this version are taken from `spans`
-- at the end (a migration cut short and run again counts them twice: the
-- counts only bound a first try, which widens when it finds too few).
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
;
INSERT INTO span_minutes
SELECT day, service, name, toInt64(intDiv(start_ns, 60000000000)) AS minute, count() AS spans
FROM spans GROUP BY day, service, name, minute
