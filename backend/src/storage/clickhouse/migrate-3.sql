-- Version 3 of otelite's ClickHouse schema (18.16), over version 2.
--
-- Spans lost at a stage, per reason, beside the stage counts (SQLite's
-- `stage_losses`): invalid spans at process, spans dropped by a keep/drop
-- rule at analyze (reason `policy:<rule>`), failed writes at the store, and
-- the exporters' `error.type` readings. Version 2 kept none of them.
CREATE TABLE IF NOT EXISTS stage_losses (
    day     Date,
    service String,
    stage   String,
    reason  String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, reason, minute)
;
-- A span dropped by a rule (at analyze) got through process: it is counted
-- there within the same INSERT as its drop, so a crash cannot leave one
-- without the other. The filter is on the reason: an alias is global in
-- ClickHouse, so `WHERE stage = …` would read the `'process' AS stage`.
CREATE MATERIALIZED VIEW IF NOT EXISTS stage_losses_processed_mv TO stage_counts AS
SELECT day, service, 'process' AS stage, minute, n
FROM stage_losses WHERE startsWith(reason, 'policy:')
