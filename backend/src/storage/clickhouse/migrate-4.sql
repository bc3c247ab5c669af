-- Version 4 of otelite's ClickHouse schema (18.16), over version 3.
--
-- Counts taken away from a stage, beside `stage_counts` (whose `n` is
-- unsigned; SQLite keeps them as negative increments in its one table):
-- the SDKs' live spans (`otel.sdk.span.live`), started and not yet ended,
-- are taken from `total`; a stage's count is `stage_counts` less this.
CREATE TABLE IF NOT EXISTS stage_counts_taken (
    day     Date,
    service String,
    stage   String,
    minute  Int64,
    n       UInt64
) ENGINE = SummingMergeTree(n) PARTITION BY day ORDER BY (service, stage, minute)
;
