-- Version 2 of otelite's ClickHouse schema (18.16), over version 1.
--
-- 1. Stage counts within the span INSERT. Version 1 wrote the process,
--    analyze and store counts of stored spans in a second INSERT: an
--    otelite killed between the two left spans that were never counted, and
--    their retry, found already stored, was not counted either. Now every
--    row carries the minute its batch arrived and a materialized view counts
--    it at all three stages in the same INSERT as the spans themselves.
-- 2. Which attribute values are strings: `attributePrefix` matches string
--    attributes only, as on SQLite. Rows of version 1 read as all strings
--    (the DEFAULT), which is what version 1 matched.
--
-- ADD COLUMN has no IF NOT EXISTS in 18.16: the migration runner takes
-- "already exists" as done, so this script can run again whole.
ALTER TABLE spans_in ADD COLUMN received_day Date
;
ALTER TABLE spans_in ADD COLUMN received_minute Int64
;
ALTER TABLE spans_in ADD COLUMN attr_strings Array(UInt8)
;
ALTER TABLE spans_in ADD COLUMN resource_attr_strings Array(UInt8)
;
ALTER TABLE spans ADD COLUMN attr_strings Array(UInt8) DEFAULT arrayMap(v -> 1, attr_values)
;
ALTER TABLE spans ADD COLUMN resource_attr_strings Array(UInt8) DEFAULT arrayMap(v -> 1, resource_attr_values)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_counts_mv TO stage_counts AS
SELECT received_day AS day, service, stage, received_minute AS minute, count() AS n
FROM spans_in ARRAY JOIN ['process', 'analyze', 'store'] AS stage
GROUP BY day, service, stage, minute
;
-- A view's SELECT cannot be altered: the new one first, then the old one
-- goes (while both exist, a span lands in `spans` twice; search groups by
-- trace and summaries come from spans_by_trace, so answers do not change).
CREATE MATERIALIZED VIEW IF NOT EXISTS spans_mv_2 TO spans AS
SELECT day, trace_id, span_id, service, name, kind, start_ns, end_ns, duration_ns, status_code,
       attr_keys, attr_values, resource_attr_keys, resource_attr_values,
       attr_strings, resource_attr_strings
FROM spans_in
;
DROP TABLE IF EXISTS spans_mv
