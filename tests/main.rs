//! otelite's end-to-end suite: one test binary (so it links once) with a
//! module per area. Every test starts its own backend in-process on port 0
//! with a database in a temporary directory; see `support`. Tests named
//! `…::sqlite` and `…::clickhouse` are one body run on each store (a
//! database of their own on one shared clickhouse-server; `support::stores`).
//!
//! - `rust_sdk`: the Rust SDK with the otelite exporter, field for field, and
//!   loss-free stage rates.
//! - `loss`: loss at a known stage shows at that stage with exact counts.
//! - `funnel`: each lost span counted at the stage it was lost, with its
//!   reason, from the official SDKs' own counters and the backend's stages.
//! - `sdk_counters`: the Go, Java and Node SDKs' own `otel.sdk.*` counters
//!   as otelite's stages, with their loss reasons.
//! - `foreign_clients`: the official Rust, Python and Node OTLP/HTTP clients.
//! - `grpc`: the official OTLP/gRPC exporters (Python, Rust, Node, Go), gzip
//!   on and off; bad input, tokens, partial success and overload over gRPC.
//! - `collector`: apps → a real OpenTelemetry Collector → otelite, and the
//!   Collector as a hop of the loss funnel.
//! - `spool`: the exporter's on-disk spool across outages and restarts.
//! - `bad_input`: malformed, oversized and otherwise hostile requests.
//! - `metrics`: `/metrics` through Prometheus' own text parser.
//! - `security`: bearer tokens, TLS, and limits on request heads.
//! - `ui`: the web UI in headless Chromium against seeded traces.
//! - `zipkin`: py_zipkin sends Zipkin v2 JSON to `/api/v2/spans`.
//! - `crash`, `shutdown`, `overload`, `duplicates`: the real `otelite`
//!   binary killed, signalled and flooded; retried batches stored once.
//! - `hostile`: odd but well-framed OTLP (deep nesting, huge values, bad ids,
//!   odd timestamps, orphans), each with its documented outcome.
//! - `answers`: a trace past `max_spans_per_answer` in pages, capped Jaeger
//!   answers with a warning, and a big trace's cost in server memory.
//! - `file_errors`: errors about the database, lock, config, TLS and CA
//!   files name the file.
//! - `query_limits`: expensive searches held to `query_timeout` and stopped
//!   when abandoned, on both stores.
//! - `retention`: a backend restarted with `--retention` deletes old traces.
//! - `disk_bounds`: the real binary under load keeps its files within
//!   `--max-db-size` (newest traces kept whole) and its WAL bounded, and its
//!   memory within the byte budget.
//! - `disk_full`: a real full file system (a small tmpfs) loses spans at the
//!   store as `write_failed`, once, and the retries store them once there is
//!   room.
//! - `startup`: one server per database file, start-up messages, files the
//!   reading commands leave, `otelite health` over TLS.
//! - `cli_server`: the reading commands with `--server`, equal to `--db`.
//! - `clickhouse`: `--store clickhouse` answers every query as SQLite does.
//! - `clickhouse_failures`: a stopped ClickHouse, and an INSERT whose answer
//!   was lost: 503 and loss at the store with its cause, nothing twice.
//! - `clickhouse_copies`: copies of a batch at two receivers at once, and
//!   one after the other, counted once at every stage.
//! - `clickhouse_replication`: two replicas over ZooKeeper; a killed one
//!   loses no acknowledged span and catches up.
//! - `clickhouse_schema`: the current schema in one step equals what the
//!   migrations make.
//! - `policy`: keep/drop rules from a config file, with the official Python
//!   SDK: drops counted by rule apart from losses, on both stores.
//! - `orphans`: spans whose parent never arrived, counted after the grace
//!   period per service as the upstream loss estimate, on both stores.
//! - `old_databases`: files written by each earlier schema version
//!   (`fixtures/databases`) are upgraded, read back exactly and written to.

mod support;

mod answers;
mod bad_input;
mod clickhouse;
mod clickhouse_copies;
mod clickhouse_failures;
mod clickhouse_replication;
mod clickhouse_schema;
mod collector;
mod counter_shapes;
mod crash;
mod disk_bounds;
mod disk_full;
mod duplicates;
mod file_errors;
mod foreign_clients;
mod funnel;
mod grpc;
mod hostile;
mod loss;
mod metrics;
mod old_databases;
mod orphans;
mod overload;
mod policy;
mod query_limits;
mod retention;
mod rust_sdk;
mod sdk_counters;
mod security;
mod shutdown;
mod spool;
mod startup;
mod ui;
mod zipkin;

mod cli_server;
