-- Version 7 of otelite's ClickHouse schema (18.16), over version 6.
--
-- Spans stored more than once, so the stage counts count each span once.
-- Two receivers given copies of a batch at the same moment both find it
-- not yet stored and both insert it; `stage_counts_mv` counted both. After
-- its INSERT a writer looks again at the spans it inserted (`copies.rs`):
-- the last of the copies' INSERTs to answer sees them all, so a span
-- stored `copies` times is recorded here at least once, with that number.
-- Several writers may record it: reads take each span's largest `copies`
-- once and subtract `copies - 1` at process, analyze and store, at the
-- latest minute recorded for it. Kept as long as the stage counts are.
CREATE TABLE IF NOT EXISTS span_copies (
    day      Date,
    minute   Int64,
    service  String,
    trace_id FixedString(16),
    span_id  FixedString(8),
    copies   UInt64
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, service, trace_id, span_id)
