//! The synthetic workload the benchmarks share: traces of 10 spans over 3
//! services, ~10 attributes and an event per span, random trace ids, one
//! error in 50 spans; and a loader that POSTs encoded requests.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// POSTs every body, `concurrency` at a time, retrying a refused one after
/// a pause, until all are acknowledged (a 200 means committed).
pub async fn post_all(
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> Result<(), reqwest::Error> {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, bodies, next) =
                (client.clone(), url.to_owned(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return Ok::<_, reqwest::Error>(());
                    };
                    while !client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await?
                        .status()
                        .is_success()
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        match worker.await {
            Ok(result) => result?,
            Err(join) => panic!("loader task failed: {join}"),
        }
    }
    Ok(())
}
