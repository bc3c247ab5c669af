//! Zipkin v2 spans → an OTLP request, mapped as the OpenTelemetry
//! Collector's Zipkin receiver maps them (`pkg/translator/zipkin/zipkinv2`,
//! `parse_string_tags` off), so a span reads the same whichever way it came
//! in; from there it takes the OTLP path (process → analyze → store).
//!
//! - `localEndpoint.serviceName` → resource `service.name` (one resource
//!   per service); `otel.library.name`/`.version` tags → the scope.
//! - ids: hex, 64- or 128-bit trace ids (shorter ones are left-padded, as
//!   Zipkin does); times: microseconds → nanoseconds.
//! - `kind` → span kind; without one, a `span.kind=internal` tag → internal.
//! - tags → string attributes, except those read into the span:
//!   `otel.status_code` (+ `otel.status_description`) and `error` → status,
//!   `w3c.tracestate` → trace state.
//! - `localEndpoint` ip/port → `net.host.ip`/`net.host.port`;
//!   `remoteEndpoint` → `peer.service`, `net.peer.ip`, `net.peer.port`.
//! - annotations → events (the value is the event's name).
//! - a span without `timestamp` starts at 0 with
//!   `otel.zipkin.absentField.startTime=true`.
//!
//! Two choices of otelite's own: an `error` tag with a message (not
//! `true`) also marks the span an error, with that message as the status's
//! (the tag stays); and a `shared` server span, which reuses its client's
//! span id, gets an id of its own derived from it, with the client span as
//! parent, so that it is stored beside the client span rather than refused
//! as a conflicting duplicate (its children in the same request follow it;
//! a shared span without a parent keeps its id).

use super::wire::{self, Kind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeMap;

/// A span Zipkin itself would refuse: the whole request is (400), as
/// Zipkin and the Collector both do.
#[derive(Debug, thiserror::Error)]
pub enum ZipkinError {
    #[error("span {index}: {field} {value:?} is not {digits} hex digits or fewer")]
    BadId {
        index: usize,
        field: &'static str,
        value: String,
        digits: usize,
    },
}

/// The Collector's name for the attribute that marks a missing start.
const START_ABSENT: &str = "otel.zipkin.absentField.startTime";

/// One service's spans by scope (name, version), in first-seen order.
type ServiceSpans = (String, Vec<((String, String), Vec<Span>)>);

pub fn to_otlp(spans: Vec<wire::Span>) -> Result<ExportTraceServiceRequest, ZipkinError> {
    let shared = shared_ids(&spans);
    // service → (scope name, version) → spans, in first-seen order.
    let mut resources: Vec<ServiceSpans> = Vec::new();
    for (index, span) in spans.into_iter().enumerate() {
        let service = local_service(&span).to_owned();
        let mut tags = span.tags.clone();
        let scope = (
            tags.remove("otel.library.name").unwrap_or_default(),
            tags.remove("otel.library.version").unwrap_or_default(),
        );
        let converted = convert(index, span, tags, &shared)?;
        let at = match resources.iter().position(|(s, _)| *s == service) {
            Some(at) => at,
            None => {
                resources.push((service, Vec::new()));
                resources.len() - 1
            }
        };
        let scopes = &mut resources[at].1;
        match scopes.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, spans)) => spans.push(converted),
            None => scopes.push((scope, vec![converted])),
        }
    }
    Ok(ExportTraceServiceRequest {
        resource_spans: resources.into_iter().map(resource_spans).collect(),
    })
}

fn resource_spans((service, scopes): ServiceSpans) -> ResourceSpans {
    // Like the Collector: no service name, no `service.name` (otelite then
    // files the spans under its own name for an unnamed service).
    let attributes = if service.is_empty() {
        Vec::new()
    } else {
        vec![string("service.name", service)]
    };
    ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_spans: scopes
            .into_iter()
            .map(|((name, version), spans)| ScopeSpans {
                scope: Some(InstrumentationScope {
                    name,
                    version,
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            })
            .collect(),
        schema_url: String::new(),
    }
}

fn local_service(span: &wire::Span) -> &str {
    span.local_endpoint
        .as_ref()
        .and_then(|e| e.service_name.as_deref())
        .unwrap_or_default()
}

/// (trace id, span id, service) of each shared server span, whose children
/// in this request are re-parented onto its new id.
type SharedIds = Vec<(String, String, String)>;

fn shared_ids(spans: &[wire::Span]) -> SharedIds {
    spans
        .iter()
        .filter(|s| is_shared_server(s))
        .map(|s| {
            (
                s.trace_id.to_ascii_lowercase(),
                s.id.to_ascii_lowercase(),
                local_service(s).to_owned(),
            )
        })
        .collect()
}

/// A server span sharing its client's id. Only one with a parent is given
/// an id of its own: a shared span without one (py_zipkin marks every root
/// server span shared) mostly has no instrumented client, and would
/// otherwise hang under a parent that never arrives.
fn is_shared_server(span: &wire::Span) -> bool {
    span.shared == Some(true)
        && span.kind == Some(Kind::Server)
        && span
            .parent_id
            .as_deref()
            .is_some_and(|p| !p.is_empty() && !p.eq_ignore_ascii_case(&span.id))
}

fn convert(
    index: usize,
    span: wire::Span,
    mut tags: BTreeMap<String, String>,
    shared: &SharedIds,
) -> Result<Span, ZipkinError> {
    let trace_id = id(index, "traceId", &span.trace_id, 16)?;
    let mut span_id = id(index, "id", &span.id, 8)?;
    let mut parent_span_id = match span.parent_id.as_deref() {
        None | Some("") => Vec::new(),
        Some(parent) => id(index, "parentId", parent, 8)?,
    };
    if parent_span_id == span_id {
        parent_span_id.clear();
    }
    if is_shared_server(&span) {
        parent_span_id = span_id.clone();
        span_id = own_id(&span_id);
    } else if let Some(parent) = span.parent_id.as_deref() {
        let key = (
            span.trace_id.to_ascii_lowercase(),
            parent.to_ascii_lowercase(),
        );
        let service = local_service(&span);
        if shared
            .iter()
            .any(|(t, s, svc)| (t, s) == (&key.0, &key.1) && svc == service)
        {
            parent_span_id = own_id(&parent_span_id);
        }
    }
    let trace_state = tags.remove("w3c.tracestate").unwrap_or_default();
    let kind = kind(span.kind, &mut tags);
    let status = status(&mut tags);
    let start = span.timestamp.unwrap_or(0).saturating_mul(1000);
    let end = start.saturating_add(span.duration.unwrap_or(0).saturating_mul(1000));
    let mut attributes: Vec<KeyValue> = tags.into_iter().map(|(k, v)| string(&k, v)).collect();
    endpoint_attributes(&span, &mut attributes);
    if span.timestamp.is_none() {
        attributes.push(kv(START_ABSENT, Value::BoolValue(true)));
    }
    Ok(Span {
        trace_id,
        span_id,
        trace_state,
        parent_span_id,
        name: span.name.unwrap_or_default(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        events: span
            .annotations
            .into_iter()
            .map(|a| Event {
                time_unix_nano: a.timestamp.saturating_mul(1000),
                name: a.value,
                ..Default::default()
            })
            .collect(),
        status: Some(status),
        ..Default::default()
    })
}

/// Hex of up to `bytes` bytes, left-padded with zeros to exactly that.
fn id(index: usize, field: &'static str, text: &str, bytes: usize) -> Result<Vec<u8>, ZipkinError> {
    let digits = bytes * 2;
    let bad = || ZipkinError::BadId {
        index,
        field,
        value: text.chars().take(40).collect(),
        digits,
    };
    if text.is_empty() || text.len() > digits {
        return Err(bad());
    }
    hex::decode(format!("{text:0>digits$}")).map_err(|_| bad())
}

/// A span id of the shared server span's own: FNV-1a of the client's, so a
/// resent span gets the same one, never zero and never the client's.
fn own_id(client: &[u8]) -> Vec<u8> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in client.iter().chain(b"shared") {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let own = hash.to_be_bytes();
    if own == [0; 8] || own.as_slice() == client {
        return own.map(|b| !b).to_vec();
    }
    own.to_vec()
}

fn kind(kind: Option<Kind>, tags: &mut BTreeMap<String, String>) -> SpanKind {
    match kind {
        Some(Kind::Client) => SpanKind::Client,
        Some(Kind::Server) => SpanKind::Server,
        Some(Kind::Producer) => SpanKind::Producer,
        Some(Kind::Consumer) => SpanKind::Consumer,
        None => match tags.remove("span.kind").as_deref() {
            Some("internal") => SpanKind::Internal,
            _ => SpanKind::Unspecified,
        },
    }
}

fn status(tags: &mut BTreeMap<String, String>) -> Status {
    let mut status = Status::default();
    if let Some(code) = tags.remove("otel.status_code") {
        // The Collector's names, and the OpenTelemetry Zipkin exporters'.
        status.code = match code.as_str() {
            "STATUS_CODE_OK" | "OK" => StatusCode::Ok,
            "STATUS_CODE_ERROR" | "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        } as i32;
        status.message = tags.remove("otel.status_description").unwrap_or_default();
    }
    match tags.get("error").map(String::as_str) {
        Some("true") => {
            tags.remove("error");
            status.code = StatusCode::Error as i32;
        }
        // Zipkin's convention: any `error` tag marks a failed span, its
        // value the message (empty when the tracer had none).
        Some(message) => {
            if status.message.is_empty() {
                status.message = message.to_owned();
            }
            status.code = StatusCode::Error as i32;
        }
        None => {}
    }
    status
}

fn endpoint_attributes(span: &wire::Span, attributes: &mut Vec<KeyValue>) {
    if let Some(local) = &span.local_endpoint {
        // IPv6 wins when both are given, as in the Collector.
        if let Some(ip) = local.ipv6.as_ref().or(local.ipv4.as_ref()) {
            upsert(attributes, string("net.host.ip", ip.clone()));
        }
        if let Some(port) = local.port.filter(|p| *p > 0) {
            upsert(attributes, int("net.host.port", port.into()));
        }
    }
    if let Some(remote) = &span.remote_endpoint {
        if let Some(service) = remote.service_name.as_ref().filter(|s| !s.is_empty()) {
            upsert(attributes, string("peer.service", service.clone()));
        }
        if let Some(ip) = remote.ipv6.as_ref().or(remote.ipv4.as_ref()) {
            upsert(attributes, string("net.peer.ip", ip.clone()));
        }
        if let Some(port) = remote.port.filter(|p| *p > 0) {
            upsert(attributes, int("net.peer.port", port.into()));
        }
    }
}

/// Sets `kv`, replacing a tag of the same key: the endpoint is the truth.
fn upsert(attributes: &mut Vec<KeyValue>, kv: KeyValue) {
    attributes.retain(|a| a.key != kv.key);
    attributes.push(kv);
}

fn string(key: &str, value: String) -> KeyValue {
    kv(key, Value::StringValue(value))
}

fn int(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
