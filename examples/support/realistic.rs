//! A high-cardinality workload shaped like a real web shop's traces, for
//! the disk and peer benchmarks: traces of 5–50 spans over 10 services,
//! ~10 attributes per span of which several never repeat (user ids, request
//! ids, URL paths and database statements carrying ids), an event per span,
//! one error in 50. Every request of a run is different: values come from
//! `(seed, request)`, so no two spans share their ids and a gzip'd body
//! compresses as real traffic does, not as a repeated template.
// The including example uses only part of it.
#![allow(dead_code)]

use crate::workload::{mix, string};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

/// Each service with the operations its spans are named after.
const SERVICES: [(&str, &[Operation]); 10] = [
    (
        "frontend",
        &[
            Operation::Http("GET", "/shop/product/{id}"),
            Operation::Http("POST", "/shop/cart"),
        ],
    ),
    (
        "api-gateway",
        &[
            Operation::Http("GET", "/api/v2/products/{id}"),
            Operation::Http("POST", "/api/v2/orders"),
        ],
    ),
    (
        "auth",
        &[
            Operation::Http("POST", "/oauth/token"),
            Operation::Sql("SELECT", "sessions"),
        ],
    ),
    (
        "users",
        &[
            Operation::Http("GET", "/users/{id}"),
            Operation::Sql("SELECT", "users"),
        ],
    ),
    (
        "catalog",
        &[
            Operation::Http("GET", "/catalog/items/{id}"),
            Operation::Sql("SELECT", "items"),
        ],
    ),
    (
        "search",
        &[
            Operation::Http("GET", "/search"),
            Operation::Sql("SELECT", "item_terms"),
        ],
    ),
    (
        "cart",
        &[
            Operation::Http("PUT", "/carts/{id}/lines"),
            Operation::Sql("UPDATE", "cart_lines"),
        ],
    ),
    (
        "checkout",
        &[
            Operation::Http("POST", "/checkout/{id}"),
            Operation::Sql("INSERT", "orders"),
        ],
    ),
    (
        "payments",
        &[
            Operation::Http("POST", "/payments/charge"),
            Operation::Sql("INSERT", "charges"),
        ],
    ),
    (
        "shipping",
        &[
            Operation::Http("POST", "/shipments/quote"),
            Operation::Sql("SELECT", "rates"),
        ],
    ),
];

#[derive(Clone, Copy)]
enum Operation {
    /// Method and route template: the span name is templated, the path is not.
    Http(&'static str, &'static str),
    /// Statement kind and table.
    Sql(&'static str, &'static str),
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        key_strindex: 0,
    }
}

/// Request `request` of a run salted with `seed`: exactly `spans` spans in
/// whole traces of 5–50 (the last one cut to fit), starting near `base_ns`.
pub fn realistic_request(
    seed: u64,
    request: u64,
    spans: u64,
    base_ns: u64,
) -> ExportTraceServiceRequest {
    let salt = mix(seed ^ mix(request + 1));
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    let (mut first, mut trace) = (0, 0);
    while first < spans {
        let trace_key = mix(salt ^ mix(trace + 1));
        let size = (5 + trace_key % 46).min(spans - first);
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&trace_key.to_be_bytes());
        trace_id[8..].copy_from_slice(&mix(!trace_key).to_be_bytes());
        let span_id = |j: u64| (mix(trace_key ^ mix(j + 1)) | 1).to_be_bytes().to_vec();
        let user = mix(trace_key ^ 0x75) % 5_000_000;
        let start = base_ns + (request * 1000 + trace) * 1_000_000;
        for j in 0..size {
            let service = if j == 0 {
                0
            } else {
                1 + (mix(trace_key ^ j) % 9) as usize
            };
            let draw = mix(trace_key ^ (j << 8 | 0x5a));
            let mut span = span_of(service, draw, user, start + j * 200_000);
            span.trace_id = trace_id.to_vec();
            span.span_id = span_id(j);
            span.parent_span_id = if j == 0 {
                Vec::new()
            } else {
                span_id((j - 1) / 2)
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
        .map(|((service, _), spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service.to_string()),
                    string("service.version", "2.14.1".into()),
                    string("host.name", format!("{service}-{}", seed % 3)),
                    string("telemetry.sdk.language", "rust".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "shop-instrumentation".into(),
                    version: "0.9.0".into(),
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

/// One span of `service`, its values drawn from `draw`.
fn span_of(service: usize, draw: u64, user: u64, start: u64) -> Span {
    let (_, operations) = SERVICES[service];
    let operation = operations[(draw % operations.len() as u64) as usize];
    let failed = draw % 50 == 7;
    let item = draw >> 20 & 0xf_ffff;
    let duration = 200_000 + (draw >> 40) % 80_000_000;
    let request_id = format!("{:016x}", mix(draw));
    let (name, kind, mut attributes) = match operation {
        Operation::Http(method, route) => {
            let path = route.replace("{id}", &item.to_string());
            let status = if failed { 503 } else { 200 };
            let attributes = vec![
                string("http.request.method", method.into()),
                string("http.route", route.into()),
                string("url.path", path),
                int("http.response.status_code", status),
                string(
                    "server.address",
                    format!("{}.shop.internal", SERVICES[service].0),
                ),
                int("server.port", 8080),
                string(
                    "user_agent.original",
                    format!("shop-app/4.{} (Android {})", draw % 7, 10 + draw % 5),
                ),
            ];
            (format!("{method} {route}"), 2, attributes)
        }
        Operation::Sql(verb, table) => {
            let statement = match verb {
                "SELECT" => format!("SELECT * FROM {table} WHERE id = {item} AND owner = {user}"),
                "UPDATE" => format!("UPDATE {table} SET qty = {} WHERE id = {item}", draw % 9),
                _ => format!(
                    "INSERT INTO {table} (id, owner, amount) VALUES ({item}, {user}, {})",
                    draw % 10_000
                ),
            };
            let attributes = vec![
                string("db.system", "postgresql".into()),
                string("db.namespace", "shop".into()),
                string("db.operation.name", verb.into()),
                string("db.collection.name", table.into()),
                string("db.query.text", statement),
                string("server.address", "pg-primary.shop.internal".into()),
                int("server.port", 5432),
            ];
            (format!("{verb} shop.{table}"), 3, attributes)
        }
    };
    attributes.push(string("enduser.id", format!("user-{user}")));
    attributes.push(string("request.id", request_id));
    attributes.push(int("thread.id", (draw >> 8 & 63) as i64));
    let event = if failed {
        span::Event {
            time_unix_nano: start + duration / 2,
            name: "exception".into(),
            attributes: vec![
                string("exception.type", "UpstreamTimeout".into()),
                string(
                    "exception.message",
                    format!(
                        "deadline exceeded after {} ms calling item {item}",
                        duration / 1_000_000
                    ),
                ),
            ],
            dropped_attributes_count: 0,
        }
    } else {
        span::Event {
            time_unix_nano: start + duration / 3,
            name: "log".into(),
            attributes: vec![string(
                "message",
                format!(
                    "cache lookup for item {item}: {}",
                    if draw & 1 == 0 { "hit" } else { "miss" }
                ),
            )],
            dropped_attributes_count: 0,
        }
    };
    Span {
        name,
        kind,
        status: failed.then(|| Status {
            message: "upstream timeout".into(),
            code: 2,
        }),
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        attributes,
        events: vec![event],
        ..Default::default()
    }
}
