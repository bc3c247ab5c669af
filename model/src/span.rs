//! The trace-info model: one span as otelite understands it, shared by the
//! exporter (which builds it from `SpanData`) and the backend (which builds it
//! from OTLP and stores it). Everything OTLP carries for a span has a place
//! here, so OTLP → model → OTLP is lossless.
//!
//! Resource and scope are behind `Arc`: a batch holds many spans of one
//! resource and scope, and cloning them per span would cost the hot path.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The `service.name` used when a resource has none, as the SDKs do.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// A 16-byte trace id; never all zeros once validated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id; never all zeros once validated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

macro_rules! hex_id {
    ($ty:ident, $len:expr) => {
        impl $ty {
            /// Reads an id from raw bytes; `None` when the length is wrong.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// Reads an id from its hex form (either case).
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(text, &mut out).ok()?;
                Some(Self(out))
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::from_hex(&text)
                    .ok_or_else(|| serde::de::Error::custom(concat!("invalid ", stringify!($ty))))
            }
        }
    };
}

hex_id!(TraceId, 16);
hex_id!(SpanId, 8);

/// A typed attribute value, as OTLP's `AnyValue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnyValue {
    /// An `AnyValue` with no value set (OTLP allows it).
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Vec<KeyValue>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: AnyValue) -> Self {
        Self {
            key: key.into(),
            value,
        }
    }
}

/// The entity that produced the spans; `service_name` is derived from the
/// `service.name` attribute when the resource is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub service_name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

impl Resource {
    pub fn new(
        attributes: Vec<KeyValue>,
        dropped_attributes_count: u32,
        schema_url: String,
    ) -> Self {
        let service_name = attributes
            .iter()
            .find_map(|kv| match (&*kv.key, &kv.value) {
                ("service.name", AnyValue::String(name)) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
        Self {
            service_name,
            attributes,
            dropped_attributes_count,
            schema_url,
        }
    }
}

/// The instrumentation scope (library) that recorded the spans.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
    /// A number OTLP does not define (a newer or a broken sender's), kept
    /// as sent so that the store gives back what it accepted; in JSON, the
    /// number.
    #[serde(untagged)]
    Other(i32),
}

impl SpanKind {
    /// The OTLP enum number.
    pub fn as_i32(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Internal => 1,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
            Self::Other(value) => value,
        }
    }

    /// From the OTLP enum number; a number OTLP does not define is kept.
    pub fn from_i32(value: i32) -> Self {
        match value {
            0 => Self::Unspecified,
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            other => Self::Other(other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
    /// A number OTLP does not define, kept as sent (see `SpanKind::Other`).
    #[serde(untagged)]
    Other(i32),
}

impl StatusCode {
    pub fn as_i32(self) -> i32 {
        match self {
            Self::Unset => 0,
            Self::Ok => 1,
            Self::Error => 2,
            Self::Other(value) => value,
        }
    }

    pub fn from_i32(value: i32) -> Self {
        match value {
            0 => Self::Unset,
            1 => Self::Ok,
            2 => Self::Error,
            other => Self::Other(other),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub flags: u32,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// One span with everything OTLP carries for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    /// W3C trace flags in the low byte, OTLP's is-remote bits above them.
    pub flags: u32,
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub status: Status,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
}

impl Span {
    pub fn service_name(&self) -> &str {
        &self.resource.service_name
    }

    /// Duration in nanoseconds; zero when the end precedes the start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }
}

/// Bytes as hex in JSON, matching how ids are written.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}
