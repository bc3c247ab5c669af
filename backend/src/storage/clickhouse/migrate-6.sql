-- Version 6 of otelite's ClickHouse schema (18.16), over version 5.
--
-- 1. Attribute search from a table ordered for it. 18.16 has no skipping
--    index, so `arrayExists` over `spans` read every span's attributes
--    (837 ms at 1 M spans). Here each attribute (the span's and its
--    resource's) is a row ordered by key, value and start, as the
--    ClickHouse-backed tracers keep them: a key and value (or value
--    prefix) is a primary-key range. The span's other searchable columns
--    ride along, so a search with one attribute reads this table alone.
-- 2. Service edges decided from what the store holds, not a receiver's
--    memory, and read once however many receivers stored a batch:
--    - a call whose parent is in the same request is summed per request
--      (`request_edges`, keyed by a hash of the request's span ids); two
--      copies of one request write the same rows, read once per key;
--    - a call whose parent is not in its request is kept as the child
--      (`edge_children`) and joined with the parent in `spans_by_trace`
--      when read, once per child: the halves of a call may reach
--      different receivers in either order.
--    `service_edges` is no longer written; its rows (version 3's) are
--    still read.
--
-- Rows stored before this version are copied into `span_attributes` at
-- the end (a migration cut short and run again copies them twice: search
-- groups by trace, so answers do not change).
CREATE TABLE IF NOT EXISTS span_attributes (
    day         Date,
    key         String,
    value       String,
    is_string   UInt8,
    start_ns    UInt64,
    trace_id    FixedString(16),
    span_id     FixedString(8),
    service     String,
    name        String,
    kind        UInt8,
    duration_ns UInt64,
    status_code UInt8
) ENGINE = MergeTree PARTITION BY day ORDER BY (key, value, start_ns)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS span_attributes_mv TO span_attributes AS
SELECT day, key, value, is_string, start_ns, trace_id, span_id, service, name, kind,
       duration_ns, status_code
FROM spans_in
ARRAY JOIN arrayConcat(attr_keys, resource_attr_keys) AS key,
           arrayConcat(attr_values, resource_attr_values) AS value,
           arrayConcat(attr_strings, resource_attr_strings) AS is_string
;
CREATE TABLE IF NOT EXISTS request_edges (
    day     Date,
    parent  String,
    child   String,
    minute  Int64,
    request UInt64,
    calls   UInt64,
    errors  UInt64
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, parent, child, request)
;
CREATE TABLE IF NOT EXISTS edge_children (
    day            Date,
    minute         Int64,
    trace_id       FixedString(16),
    span_id        FixedString(8),
    parent_span_id FixedString(8),
    service        String,
    is_error       UInt8
) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (minute, trace_id, span_id)
;
INSERT INTO span_attributes
SELECT day, key, value, is_string, start_ns, trace_id, span_id, service, name, kind,
       duration_ns, status_code
FROM spans
ARRAY JOIN arrayConcat(attr_keys, resource_attr_keys) AS key,
           arrayConcat(attr_values, resource_attr_values) AS value,
           arrayConcat(attr_strings, resource_attr_strings) AS is_string
