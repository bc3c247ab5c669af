//! Spans for tests, behind the `test-fixtures` feature (the backend's unit
//! tests and the end-to-end tests turn it on): a builder whose defaults make
//! a valid, unremarkable span, so that a test names only the fields it is
//! about and a new field of [`Span`] is added here once rather than in
//! every test.
//!
//! [`span`]`(trace, id)` starts as trace `[trace; 16]`, span `[id; 8]`, a
//! root named `op{id}`, kind internal, sampled (flags 1), of service
//! [`SERVICE`] with the default scope, from `1000 * id` ns for 500 ns,
//! status unset, with no attributes, events or links.

use crate::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use std::sync::Arc;

/// The service of a span whose test names none.
pub const SERVICE: &str = "test";

/// A resource with `service.name` = `service` and nothing else, written
/// out rather than derived by [`Resource::new`], so that a test expecting
/// it does not share that derivation with the code under test.
pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        service_name: service.into(),
        attributes: vec![KeyValue::new(
            "service.name",
            AnyValue::String(service.into()),
        )],
        dropped_attributes_count: 0,
        schema_url: String::new(),
    })
}

/// An event with these attributes, none dropped.
pub fn event(name: &str, time_unix_nano: u64, attributes: Vec<KeyValue>) -> Event {
    Event {
        name: name.into(),
        time_unix_nano,
        attributes,
        dropped_attributes_count: 0,
    }
}

/// The span `id` of trace `trace`, with the defaults above.
pub fn span(trace: u8, id: u8) -> SpanBuilder {
    let start = 1_000 * u64::from(id);
    SpanBuilder(Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 1,
        resource: resource(SERVICE),
        scope: Arc::new(Scope::default()),
        name: format!("op{id}"),
        kind: SpanKind::Internal,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 500,
        status: Status::default(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
    })
}

/// A [`Span`] being built; [`SpanBuilder::build`] hands it over.
#[derive(Debug, Clone)]
#[must_use]
pub struct SpanBuilder(Span);

impl SpanBuilder {
    pub fn build(self) -> Span {
        self.0
    }

    pub fn trace_id(mut self, trace_id: TraceId) -> Self {
        self.0.trace_id = trace_id;
        self
    }

    pub fn span_id(mut self, span_id: SpanId) -> Self {
        self.0.span_id = span_id;
        self
    }

    /// The parent `[parent; 8]`, if any: `.parent(1)` or `.parent(None)`.
    pub fn parent(self, parent: impl Into<Option<u8>>) -> Self {
        self.parent_span_id(parent.into().map(|p| SpanId([p; 8])))
    }

    /// Any parent: `.parent_span_id(id)` or `.parent_span_id(None)`.
    pub fn parent_span_id(mut self, parent: impl Into<Option<SpanId>>) -> Self {
        self.0.parent_span_id = parent.into();
        self
    }

    pub fn trace_state(mut self, trace_state: &str) -> Self {
        self.0.trace_state = trace_state.into();
        self
    }

    pub fn flags(mut self, flags: u32) -> Self {
        self.0.flags = flags;
        self
    }

    /// A resource of its own naming only `service`; use
    /// [`SpanBuilder::resource`] for one that spans share.
    pub fn service(self, service: &str) -> Self {
        self.resource(&resource(service))
    }

    pub fn resource(mut self, resource: &Arc<Resource>) -> Self {
        self.0.resource = Arc::clone(resource);
        self
    }

    pub fn scope(mut self, scope: &Arc<Scope>) -> Self {
        self.0.scope = Arc::clone(scope);
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = name.into();
        self
    }

    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// Start and end, unix nanoseconds.
    pub fn times(mut self, start: u64, end: u64) -> Self {
        self.0.start_time_unix_nano = start;
        self.0.end_time_unix_nano = end;
        self
    }

    pub fn status(mut self, code: StatusCode, message: &str) -> Self {
        self.0.status = Status {
            code,
            message: message.into(),
        };
        self
    }

    /// Status `Error` when `error`, else unset, with no message.
    pub fn error(self, error: bool) -> Self {
        let code = if error {
            StatusCode::Error
        } else {
            StatusCode::Unset
        };
        self.status(code, "")
    }

    /// Adds one attribute.
    pub fn attribute(mut self, key: &str, value: AnyValue) -> Self {
        self.0.attributes.push(KeyValue::new(key, value));
        self
    }

    /// Replaces the attributes.
    pub fn attributes(mut self, attributes: Vec<KeyValue>) -> Self {
        self.0.attributes = attributes;
        self
    }

    pub fn dropped_attributes(mut self, count: u32) -> Self {
        self.0.dropped_attributes_count = count;
        self
    }

    /// Adds one event; [`event`] makes one from its parts.
    pub fn event(mut self, event: Event) -> Self {
        self.0.events.push(event);
        self
    }

    pub fn dropped_events(mut self, count: u32) -> Self {
        self.0.dropped_events_count = count;
        self
    }

    pub fn link(mut self, link: Link) -> Self {
        self.0.links.push(link);
        self
    }

    pub fn dropped_links(mut self, count: u32) -> Self {
        self.0.dropped_links_count = count;
        self
    }
}
