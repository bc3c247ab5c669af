-- otelite schema, version 1. Upgrades live in migrations.rs, one per version.

-- Names are interned: a span row carries small integers, not repeated text.
CREATE TABLE services (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Resources and scopes repeat across millions of spans; each distinct one is
-- stored once, as its OTLP encoding, keyed by a hash of that encoding.
CREATE TABLE resources (
    id         INTEGER PRIMARY KEY,
    hash       INTEGER NOT NULL UNIQUE,
    service_id INTEGER NOT NULL REFERENCES services(id),
    body       BLOB NOT NULL
);

CREATE TABLE scopes (
    id   INTEGER PRIMARY KEY,
    hash INTEGER NOT NULL UNIQUE,
    body BLOB NOT NULL
);

-- One row per span: the columns that queries filter on, and the whole span as
-- its OTLP protobuf encoding (lossless, compact, decoded only when read).
CREATE TABLE spans (
    id             INTEGER PRIMARY KEY,
    trace_id       BLOB NOT NULL,
    span_id        BLOB NOT NULL,
    parent_span_id BLOB,
    service_id     INTEGER NOT NULL,
    resource_id    INTEGER NOT NULL,
    scope_id       INTEGER NOT NULL,
    name           TEXT NOT NULL,
    kind           INTEGER NOT NULL,
    start_ns       INTEGER NOT NULL,
    duration_ns    INTEGER NOT NULL,
    status_code    INTEGER NOT NULL,
    body           BLOB NOT NULL
);
-- Also what makes a retried batch idempotent (INSERT OR IGNORE).
CREATE UNIQUE INDEX spans_by_trace ON spans(trace_id, span_id);
CREATE INDEX spans_by_service_time ON spans(service_id, start_ns);
CREATE INDEX spans_by_operation ON spans(service_id, name, start_ns);

-- Attribute search: each span's key=value pairs, hashed into one token each,
-- in a contentless FTS5 index whose rowid is the span's id. FTS5 buffers and
-- merges its postings, so ingest pays far less than one B-tree row per
-- attribute would cost.
CREATE VIRTUAL TABLE span_attributes USING fts5(
    tokens, content = '', contentless_delete = 1, detail = none
);

-- One row per trace, maintained at ingest by the analysis results.
CREATE TABLE traces (
    trace_id     BLOB PRIMARY KEY,
    root_service TEXT,
    root_name    TEXT,
    start_ns     INTEGER NOT NULL,
    end_ns       INTEGER NOT NULL,
    span_count   INTEGER NOT NULL,
    error_count  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_by_start ON traces(start_ns);

-- Spans counted at each pipeline stage, per service and per minute.
CREATE TABLE stage_counts (
    service_id INTEGER NOT NULL,
    stage      TEXT NOT NULL,
    minute     INTEGER NOT NULL, -- unix seconds, a multiple of 60
    n          INTEGER NOT NULL,
    PRIMARY KEY (service_id, stage, minute)
) WITHOUT ROWID;

-- Last cumulative value of each exporter counter series, to turn the
-- cumulative OTLP sums into per-minute increments.
CREATE TABLE exporter_series (
    service_id INTEGER NOT NULL,
    stage      TEXT NOT NULL,
    series     TEXT NOT NULL, -- the data point's attributes and start time
    last_value INTEGER NOT NULL,
    PRIMARY KEY (service_id, stage, series)
) WITHOUT ROWID;

-- Calls between services found by analysis, per minute of the child's start.
CREATE TABLE service_edges (
    parent_service_id INTEGER NOT NULL,
    child_service_id  INTEGER NOT NULL,
    minute            INTEGER NOT NULL,
    calls             INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    PRIMARY KEY (parent_service_id, child_service_id, minute)
) WITHOUT ROWID;
