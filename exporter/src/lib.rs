//! # otelite-exporter
//!
//! An OpenTelemetry span exporter for otelite (and any OTLP/HTTP endpoint):
//! spans are converted through otelite's trace-info model, sent as OTLP
//! protobuf (gzip by default) to `{endpoint}/v1/traces` with retries under one
//! deadline, and every loss along the pipeline is counted: spans ended, spans
//! that reached the exporter (the batch queue drops silently when full), spans
//! acknowledged, spans failed by error type. The counters are pushed as OTLP
//! metrics to `{endpoint}/v1/metrics` every 10 s and once at shutdown.
//!
//! ## Quick start
//!
//! ```no_run
//! use opentelemetry::trace::{Tracer, TracerProvider};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = opentelemetry_sdk::Resource::builder().with_service_name("shop").build();
//! let provider = otelite_exporter::OteliteExporter::builder()
//!     .with_endpoint("http://127.0.0.1:4318") // base URL
//!     .build_provider(resource)?;
//! provider.tracer("checkout").in_span("pay", |_cx| { /* work */ });
//! provider.shutdown()?; // flushes the spans, then sends the final counters
//! # Ok(()) }
//! ```
//!
//! To read the counters (tests, diagnostics), take them from the builder
//! before `build_provider`: `let counters = builder.counters();` then
//! `counters.snapshot()`.
//!
//! ## Wiring the processors yourself
//!
//! ```no_run
//! use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
//! use otelite_exporter::{CountingProcessor, OteliteExporter};
//! # fn main() -> Result<(), otelite_exporter::ConfigError> {
//! let exporter = OteliteExporter::builder().build()?; // endpoint from OTEL_* or localhost:4318
//! let counters = exporter.counters();
//! // Optional: count ended spans and send the final report after the flush.
//! let reporter = exporter.metrics_reporter();
//! let processor = CountingProcessor::new(BatchSpanProcessor::builder(exporter).build(), reporter);
//! let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
//! # let _ = (provider, counters); Ok(()) }
//! ```
//!
//! Without a `CountingProcessor` the exporter sends the final report from its
//! own `shutdown`, with `otel.sdk.span.ended` at 0 and no queue-drop point.
//!
//! ## Metrics report
//!
//! Cumulative monotonic int sums, scope `otelite-exporter`, the SDK's
//! resource, `start_time_unix_nano` = exporter start:
//! `otel.sdk.span.ended` (N_total), `otel.sdk.processor.span.processed`
//! (N_collect; plus `error.type=queue_full` = N_total − N_collect in the
//! report sent after shutdown, when the queue has been drained and the count
//! is exact), `otel.sdk.exporter.span.exported` (acknowledged spans; failures
//! as extra points with `error.type` = `rejected`, `timeout`, `http_4xx`,
//! `http_5xx`, `transport`, `internal`, and for the spool `spool_full`,
//! `spool_unreadable` (a spooled file that did not decode) or
//! `spool_refused` (the spool directory was not safe to use)). `force_flush` on the
//! `CountingProcessor` also sends a report (waiting up to the timeout).
//!
//! The exporter owns a small tokio runtime on its own thread: the SDK's
//! `BatchSpanProcessor` calls `export` from a plain thread without a reactor,
//! so requests run there. It works with or without a runtime in the app.
//!
//! ## Environment variables
//!
//! Read at `build`; a builder setting wins over the variables, a
//! `TRACES_` variable over the generic one. Empty variables count as unset.
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces`, `/v1/metrics` appended | `http://localhost:4318` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full traces URL, used as-is | |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | full metrics URL, used as-is | generic base, else traces URL minus `/v1/traces` |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `…_TRACES_HEADERS` | `k=v,k2=v2`, values percent-decoded | none |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT`, `…_TRACES_TIMEOUT` | milliseconds for one export, retries included | `10000` |
//! | `OTEL_EXPORTER_OTLP_COMPRESSION`, `…_TRACES_COMPRESSION` | `gzip` or `none` | `gzip` |
//! | `OTEL_EXPORTER_OTLP_CERTIFICATE`, `…_TRACES_CERTIFICATE` | PEM file of certificates to trust for `https://` endpoints, besides Mozilla's roots | none |
//! | `OTELITE_EXPORTER_SPOOL_DIR` | directory of the on-disk spool for batches the endpoint cannot take (see `with_spool`) | no spool |
//! | `OTELITE_EXPORTER_SPOOL_MAX_BYTES` | the spool's bound; a batch past it is dropped, counted as `spool_full` | `67108864` |
//!
//! Only `http://` is supported. Invalid values are a `ConfigError`, not ignored.
//!
//! ## Shutdown
//!
//! `provider.shutdown()` waits at most 5 s (the SDK's default), less than the
//! 10 s export timeout. With the `CountingProcessor` (`build_provider`), an
//! export in flight gets 40 % of the shutdown timeout (one the SDK starts
//! later gets 10 %); then its batch is spooled, or without a spool counted
//! as `timeout`, so nothing is left running unseen when the app exits. The
//! rest (at least 0.5 s, at most the export timeout) goes to a last pass
//! over the spool (the first half: a short-lived app empties it when the
//! endpoint is up) and then to the final metrics report. Use
//! `provider.shutdown_with_timeout(..)` to wait longer.
//!
//! ## Spool
//!
//! The directory is created 0700; an existing one must belong to the app's
//! user and be writable by nobody else, or it is not used (an error is
//! logged, the app still starts, and batches it would have held are counted
//! as `spool_refused`). Files are 0600, created new (never through a
//! symlink, never replacing a file) and named per spool instance, so several
//! providers and processes can share a directory. A file is sent by whoever
//! holds its lock, and only by a run of the service that spooled it, so the
//! spans it delivers count for that service (a service that never runs
//! again leaves its files behind). The bound holds per provider: it counts
//! what was there when the provider started plus what it wrote, so
//! providers sharing a directory may use more together. Counter reports
//! have 256 KiB of room beside it, so the report of a full spool's loss is
//! kept. A body is
//! decoded before it is sent: one that does not decode is renamed
//! `….unreadable` and its spans counted as `spool_unreadable`. A request
//! cut short at shutdown stays spooled and is sent again by the next run:
//! if the backend had in fact stored it, it stores it once, but the
//! transmit stage may count it twice.
//!
//! ## Retries
//!
//! 429, 502, 503, 504 and connection errors are retried with exponential
//! backoff and jitter, honouring `Retry-After` (seconds or HTTP date) when the
//! deadline leaves room for it; other statuses fail at once. The body is
//! encoded and compressed once. A 2xx answer's `partial_success.rejected_spans`
//! are counted as failed with `error.type = rejected`.
//!
//! ## Layout
//!
//! `model` (trace info, the `otelite-model` crate, with its OTLP conversions
//! and direct protobuf encoding) · `convert` (SpanData → model: the
//! resource, scopes, and the reference the wire encoding is checked
//! against) · `encode` (SpanData → the OTLP protobuf the exporter sends,
//! with no model spans in between) ·
//! `export` (exporter, `config`, one HTTP attempt, `body` encoding with
//! buffers kept across exports, `retry`, runtime thread) ·
//! `processor` (`CountingProcessor`) · `counters` · `metrics` (OTLP report) · `error`.

pub mod convert;
pub mod counters;
pub mod encode;
pub mod error;
pub mod export;
pub mod metrics;
pub mod processor;

/// The trace-info model, from the `otelite-model` crate the backend shares.
pub use otelite_model as model;

pub use counters::{Counters, CountersSnapshot, FailureKind};
pub use error::{ConfigError, ExportError};
pub use export::{Compression, ExporterConfig, OteliteExporter, OteliteExporterBuilder};
pub use metrics::MetricsReporter;
pub use processor::CountingProcessor;
