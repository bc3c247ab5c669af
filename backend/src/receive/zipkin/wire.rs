//! Zipkin's v2 JSON span (`ListOfSpans` in zipkin-api's `zipkin2-api.yaml`),
//! as sent: ids stay hex text and times microseconds until `translate`.
//! Unknown fields are ignored, as Zipkin's own decoder does.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Epoch microseconds; absent on a span whose start was not recorded.
    #[serde(default)]
    pub timestamp: Option<u64>,
    /// Microseconds.
    #[serde(default)]
    pub duration: Option<u64>,
    /// The server half of an RPC whose span id the client chose.
    #[serde(default)]
    pub shared: Option<bool>,
    #[serde(default)]
    pub local_endpoint: Option<Endpoint>,
    #[serde(default)]
    pub remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    /// Zipkin tags are strings only; ordered so conversion is deterministic.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Client,
    Server,
    Producer,
    Consumer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Deserialize)]
pub struct Annotation {
    /// Epoch microseconds.
    pub timestamp: u64,
    pub value: String,
}
