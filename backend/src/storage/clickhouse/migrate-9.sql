-- Version 9 of otelite's ClickHouse schema (18.16), over version 8.
--
-- Orphan candidates only where a parent can be missing. A span whose
-- parent came in the same request is stored by the same INSERT, so it is
-- never an orphan; yet `span_parents` held every span with a parent, and
-- the orphan count looked each one's parent up in `spans_by_trace` (the
-- `NOT IN` over 900 000 pairs took about 1.1 s at 1 M spans). The writer
-- now says whether the parent is in the request, and only the other
-- spans become candidates. An older writer's rows have the column's
-- default, 0: they stay candidates, as before. Of the rows stored before
-- this version, only those whose parent is not stored are kept
-- (`waiting.rs`, after this script).
ALTER TABLE spans_in ADD COLUMN parent_in_request UInt8 DEFAULT 0
;
CREATE MATERIALIZED VIEW IF NOT EXISTS span_parents_mv_2 TO span_parents AS
SELECT day, trace_id, span_id, parent_span_id, service, received_minute,
       toUInt32(now()) AS arrived
FROM spans_in WHERE is_root = 0 AND parent_in_request = 0
;
-- Between the two statements a span may reach `span_parents` twice: the
-- count takes span ids once.
DROP TABLE IF EXISTS span_parents_mv
