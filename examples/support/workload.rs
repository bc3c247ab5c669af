//! The synthetic workload the benchmarks share: traces of 10 spans over 3
//! services (`request`), or of 5–50 spans over 5 services (`varied_request`,
//! for the load generator); ~10 attributes and an event per span, random
//! trace ids, one error in 50 spans. Only `opentelemetry-proto` types, so the
//! backend's criterion benches include this file too.
// Each example and bench that includes this file uses part of it.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

pub fn string(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// Request `batch` of `spans` spans.
pub fn request(batch: u64, spans: u64) -> ExportTraceServiceRequest {
    let services = ["frontend", "checkout", "payments"];
    let resource_spans = services
        .iter()
        .enumerate()
        .map(|(s, service)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service.to_string()),
                    string("host.name", "bench-1".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans: (0..spans)
                    .filter(|i| i % 3 == s as u64)
                    .map(|i| span(batch, i))
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn span(batch: u64, i: u64) -> Span {
    // Random-looking ids, as real ones are: the trace index sees no order.
    let trace = batch * 1_000_000 + i / 10;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&mix(trace).to_be_bytes());
    trace_id[8..].copy_from_slice(&mix(!trace).to_be_bytes());
    let span_id = (batch << 32 | i) + 1;
    let parent =
        (!i.is_multiple_of(10)).then(|| ((batch << 32 | (i - i % 10)) + 1).to_be_bytes().to_vec());
    let start = 1_700_000_000_000_000_000 + batch * 1_000_000_000 + i * 1000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: parent.unwrap_or_default(),
        name: format!("GET /api/item/{}", i % 20),
        kind: if i.is_multiple_of(10) { 2 } else { 3 },
        // One span in 50 failed.
        status: (i % 50 == 7).then(|| Status {
            message: "upstream timeout".into(),
            code: 2,
        }),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000 + i * 10,
        attributes: (0..10)
            .map(|a| {
                string(
                    &format!("attr.{a}"),
                    format!("value-{}-{}", a, (i + a) % 50),
                )
            })
            .collect(),
        events: vec![span::Event {
            time_unix_nano: start + 10,
            name: "cache.miss".into(),
            attributes: vec![string("key", format!("k{i}"))],
            dropped_attributes_count: 0,
        }],
        ..Default::default()
    }
}

/// splitmix64's finaliser: a cheap bijection that scatters sequential input.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const SERVICES: [&str; 5] = ["frontend", "checkout", "payments", "inventory", "shipping"];

/// Request `batch` of exactly `spans` spans in whole traces of 5–50 spans
/// (the sizes drawn from the batch number; the last trace is cut to fit):
/// the root in `frontend`, each other span a child of an earlier one in one
/// of the other services. Span ids are random-looking too, so a load
/// generator can find every id in the encoded body and rewrite it.
pub fn varied_request(batch: u64, spans: u64) -> ExportTraceServiceRequest {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    let (mut first, mut trace) = (0, 0);
    // Mixed twice, so that no span id equals half of a trace id.
    let span_id = |i: u64| (mix(mix(batch << 32 | i)) | 1).to_be_bytes().to_vec();
    while first < spans {
        let size = (5 + mix(batch << 20 | trace) % 46).min(spans - first);
        let trace_no = batch * 1_000_000 + trace;
        for j in 0..size {
            let mut span = span(batch, first + j);
            span.trace_id[..8].copy_from_slice(&mix(trace_no).to_be_bytes());
            span.trace_id[8..].copy_from_slice(&mix(!trace_no).to_be_bytes());
            span.span_id = span_id(first + j);
            span.parent_span_id = if j == 0 {
                Vec::new()
            } else {
                span_id(first + (j - 1) / 2)
            };
            span.kind = if j % 2 == 0 { 2 } else { 3 };
            let service = if j == 0 {
                0
            } else {
                1 + (mix(trace_no << 6 | j) % 4) as usize
            };
            by_service[service].push(span);
        }
        first += size;
        trace += 1;
    }
    let resource_spans = SERVICES
        .iter()
        .zip(by_service)
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service.to_string()),
                    string("host.name", "loadgen-1".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "loadgen".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}
