-- Version 5 of otelite's ClickHouse schema (18.16), over version 4.
--
-- Every stored span that has a parent, with when it arrived: the spans
-- whose parent is still not stored a grace period later are the orphans
-- (SQLite's `edge_waiting`). `arrived` is ClickHouse's own clock at the
-- INSERT (seconds), so the grace period is measured with one clock;
-- `received_minute` is otelite's, the minute the stage counts go to. The
-- same day partitions as `spans_by_trace`, dropped with them by retention.
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
CREATE MATERIALIZED VIEW IF NOT EXISTS span_parents_mv TO span_parents AS
SELECT day, trace_id, span_id, parent_span_id, service, received_minute,
       toUInt32(now()) AS arrived
FROM spans_in WHERE is_root = 0
