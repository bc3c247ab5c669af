//! The receiver's hot path, stage by stage, on a 1000-span request of the
//! shared workload (`examples/support/workload.rs`: traces of 10 spans over
//! 3 services, 10 attributes and an event per span).
//!
//! `cargo bench -p otelite-backend --bench pipeline`
//!
//! Each bench handles one 1000-span request, so its time / 1000 is the cost
//! per span: gunzip, protobuf or JSON decode, OTLP → model (`process`),
//! analysis with the row encoding (`analyze` + `SpanRow::new`), and a
//! committed insert through the store's writer thread (temporary database).

#[path = "../../examples/support/workload.rs"]
mod workload;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelite_backend::stage::Stage;
use otelite_backend::storage::QueueLimits;
use otelite_backend::storage::sqlite::{SpanBatch, SpanRow, SqliteStore};
use otelite_backend::{analyze, process};
use prost::Message;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

const SPANS: u64 = 1000;

fn rows(request: ExportTraceServiceRequest) -> Vec<SpanRow> {
    analyze::analyze(process::process(request).spans)
        .into_iter()
        .map(SpanRow::new)
        .collect()
}

fn batch(spans: Vec<SpanRow>) -> SpanBatch {
    let counted = ["frontend", "checkout", "payments"]
        .iter()
        .flat_map(|s| [Stage::Process, Stage::Analyze].map(|stage| (s.to_string(), stage, 333)))
        .collect();
    SpanBatch::new(spans, counted, Vec::new(), 1_700_000_000_000_000_000)
}

fn decode(c: &mut Criterion) {
    let request = workload::request(0, SPANS);
    let protobuf = request.encode_to_vec();
    let json = serde_json::to_vec(&request).expect("OTLP requests serialize");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&protobuf).expect("writing to a Vec");
    let gzipped = encoder.finish().expect("writing to a Vec");

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(SPANS));
    group.bench_function("gunzip_protobuf", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(protobuf.len());
            flate2::read::MultiGzDecoder::new(black_box(&gzipped[..]))
                .read_to_end(&mut out)
                .expect("valid gzip");
            out
        })
    });
    group.bench_function("protobuf", |b| {
        b.iter(|| {
            ExportTraceServiceRequest::decode(black_box(&protobuf[..])).expect("valid protobuf")
        })
    });
    group.bench_function("json", |b| {
        b.iter(|| {
            serde_json::from_slice::<ExportTraceServiceRequest>(black_box(&json))
                .expect("valid JSON")
        })
    });
    group.finish();
}

fn stages(c: &mut Criterion) {
    let request = workload::request(0, SPANS);
    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Elements(SPANS));
    group.bench_function("process", |b| {
        b.iter_batched(|| request.clone(), process::process, BatchSize::LargeInput)
    });
    group.bench_function("analyze_and_encode", |b| {
        b.iter_batched(
            || process::process(request.clone()).spans,
            |spans| {
                analyze::analyze(spans)
                    .into_iter()
                    .map(SpanRow::new)
                    .collect::<Vec<_>>()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let limits = QueueLimits {
        requests: 64,
        spans: 1_000_000,
    };
    let (store, writer) =
        SqliteStore::open(&dir.path().join("bench.db"), limits).expect("a new store");
    let mut next_batch = 0;
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(SPANS));
    group.bench_function("try_write_spans_committed", |b| {
        b.iter_batched(
            || {
                // New ids every time: a repeated span would be a duplicate.
                next_batch += 1;
                batch(rows(workload::request(next_batch, SPANS)))
            },
            |batch| {
                let stored = store
                    .try_write_batch(batch)
                    .expect("room in the queue")
                    .blocking_recv()
                    .expect("the writer answers")
                    .expect("the commit succeeds");
                assert_eq!(stored.inserted, SPANS);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(store);
    writer.join();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode, stages, store
}
criterion_main!(benches);
