-- otelite schema, version 4: spans in compressed blocks, indexed by group.

-- The spans of one write, grouped by (trace, resource, scope), each group a
-- run of length-delimited OTLP spans, all compressed as one zstd frame.
CREATE TABLE blocks (
    id   INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);

-- One row per group: what search filters on before decompressing anything,
-- and where the group's spans are in its block.
CREATE TABLE span_groups (
    id              INTEGER PRIMARY KEY,
    trace_ref       INTEGER NOT NULL, -- traces.id
    service_id      INTEGER NOT NULL,
    resource_id     INTEGER NOT NULL,
    scope_id        INTEGER NOT NULL,
    block_id        INTEGER NOT NULL,
    byte_offset     INTEGER NOT NULL, -- in the decompressed block
    byte_length     INTEGER NOT NULL,
    start_ns        INTEGER NOT NULL, -- earliest span start
    end_ns          INTEGER NOT NULL, -- latest span end
    max_duration_ns INTEGER NOT NULL,
    span_count      INTEGER NOT NULL,
    error_count     INTEGER NOT NULL,
    span_ids        BLOB NOT NULL, -- 8 bytes per span
    parent_ids      BLOB NOT NULL  -- 8 bytes per span, zeros for a root
);
CREATE INDEX span_groups_by_trace ON span_groups(trace_ref);
CREATE INDEX span_groups_by_service_time ON span_groups(service_id, start_ns);
-- Retention deletes a block once its last group is gone.
CREATE INDEX span_groups_by_block ON span_groups(block_id);

-- Search tokens of each group (rowid = span_groups.id): the service, span
-- names and kinds, span and resource attributes (hashed key=value pairs,
-- and key + value prefix for strings). See encode.rs.
CREATE VIRTUAL TABLE group_terms USING fts5(
    tokens, content = '', contentless_delete = 1, detail = none
);

-- Span names and kinds per service, for the operations lists.
CREATE TABLE operations (
    service_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    kind       INTEGER NOT NULL,
    PRIMARY KEY (service_id, name, kind)
) WITHOUT ROWID;

-- Trace summaries get an integer id for the groups to refer to.
ALTER TABLE traces RENAME TO traces_v3;
DROP INDEX traces_by_start;
CREATE TABLE traces (
    id           INTEGER PRIMARY KEY,
    trace_id     BLOB NOT NULL UNIQUE,
    root_service TEXT,
    root_name    TEXT,
    start_ns     INTEGER NOT NULL,
    end_ns       INTEGER NOT NULL,
    span_count   INTEGER NOT NULL,
    error_count  INTEGER NOT NULL
);
CREATE INDEX traces_by_start ON traces(start_ns);
