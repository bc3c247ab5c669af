//! Which of an app's span pipelines feeds this backend, when it has
//! several (a batch processor and OTLP exporter to otelite beside a console
//! exporter, or a second OTLP exporter to another backend): only that
//! pipeline's processor and exporter counters count, or every span would
//! count once per pipeline.
//!
//! - The exporter: the SDKs name its endpoint (`server.address`,
//!   `server.port`). One sends here when its port is one this backend
//!   receives on (either OTLP listener, or the port the metrics came to,
//!   which differs behind a port mapping). Where several exporters use such
//!   a port and their addresses differ, only those whose address names this
//!   backend count: the host the metrics were sent to, a listener's own
//!   address, or any loopback name (`localhost`, `127.0.0.1`, `::1`) for a
//!   backend listening on loopback or on every address. An exporter
//!   without a port (a console one) counts only when no exporter names a
//!   port of this backend; when none does (a proxy between), all count.
//! - The processor: its counters do not say which exporter it feeds. The
//!   SDKs number components of a type in the order they are made
//!   (`batching_span_processor/1`), and an app makes each exporter with
//!   its processor; so when as many processors as exporters report, the
//!   processor of the same rank as the counted exporter counts. Otherwise
//!   (an exporter that reports nothing, such as a console one) the first
//!   processor counts. Either way it is one processor, chosen from names
//!   alone, so a series never switches between two from one export to the
//!   next.

use super::{attr, string_attr};
use otelite_model::{AnyValue, KeyValue};
use std::net::{IpAddr, SocketAddr};

/// Where the metrics were sent and where this backend listens.
#[derive(Debug, Clone, Default)]
pub struct Destination {
    /// The host the metrics request was sent to (its `Host`, or the gRPC
    /// call's `:authority`), as the client wrote it.
    pub host: Option<String>,
    /// That request's port.
    pub port: Option<u16>,
    /// The addresses the OTLP listeners (HTTP and gRPC) are bound to.
    pub listeners: Vec<SocketAddr>,
}

impl Destination {
    fn is_our_port(&self, port: i64) -> bool {
        self.port.map(i64::from) == Some(port)
            || self.listeners.iter().any(|l| i64::from(l.port()) == port)
    }

    /// Whether an exporter's `server.address` names this backend.
    fn names_us(&self, address: &str) -> bool {
        let address = bare(address);
        if self
            .host
            .as_deref()
            .is_some_and(|host| bare(host).eq_ignore_ascii_case(address))
        {
            return true;
        }
        let ip = address.parse::<IpAddr>().ok();
        if is_loopback(address) {
            let host_is_loopback = self.host.as_deref().is_some_and(|h| is_loopback(bare(h)));
            return host_is_loopback
                || self
                    .listeners
                    .iter()
                    .any(|l| l.ip().is_loopback() || l.ip().is_unspecified());
        }
        ip.is_some_and(|ip| self.listeners.iter().any(|l| l.ip() == ip))
    }
}

/// `::1` from `[::1]`, as a `Host` header writes an IPv6 address.
fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The components whose counters count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// `None`: every exporter series counts.
    exporters: Option<Choice>,
    /// `None`: every processor series counts (one processor, or none named).
    processor: Option<String>,
}

/// The exporters that send here: by component name, or for series
/// without one, by endpoint (a series with no port at all counts too).
#[derive(Debug, PartialEq, Eq)]
struct Choice {
    names: Vec<String>,
    endpoints: Vec<(Option<i64>, Option<String>)>,
}

impl Counted {
    pub fn processor(&self, attributes: &[KeyValue]) -> bool {
        match &self.processor {
            None => true,
            Some(name) => component(attributes) == Some(name),
        }
    }

    pub fn exporter(&self, attributes: &[KeyValue]) -> bool {
        let Some(choice) = &self.exporters else {
            return true;
        };
        match component(attributes) {
            Some(name) if !choice.names.is_empty() => choice.names.iter().any(|n| n == name),
            _ => {
                let endpoint = (port_of(attributes), address_of(attributes));
                endpoint.0.is_none() || choice.endpoints.contains(&endpoint)
            }
        }
    }
}

/// Chooses the pipeline that feeds this backend from the attributes of an
/// app's processor and exporter points.
pub fn counted(processors: &[&[KeyValue]], exporters: &[&[KeyValue]], to: &Destination) -> Counted {
    let exporters_here = exporters_sending_here(exporters, to);
    let processor = processor_feeding(processors, exporters, exporters_here.as_ref());
    Counted {
        exporters: exporters_here,
        processor,
    }
}

fn exporters_sending_here(exporters: &[&[KeyValue]], to: &Destination) -> Option<Choice> {
    let ours: Vec<&[KeyValue]> = exporters
        .iter()
        .copied()
        .filter(|a| port_of(a).is_some_and(|p| to.is_our_port(p)))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let addressed = |a: &[KeyValue]| address_of(a).is_some_and(|address| to.names_us(&address));
    let narrowed = ours.iter().any(|a| addressed(a)) && ours.iter().any(|a| !addressed(a));
    let here: Vec<&[KeyValue]> = ours
        .into_iter()
        .filter(|a| !narrowed || addressed(a))
        .collect();
    let mut names: Vec<String> = here
        .iter()
        .filter_map(|a| component(a).map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    let endpoints = here.iter().map(|a| (port_of(a), address_of(a))).collect();
    Some(Choice { names, endpoints })
}

/// The one processor to count, when several named ones report.
fn processor_feeding(
    processors: &[&[KeyValue]],
    exporters: &[&[KeyValue]],
    here: Option<&Choice>,
) -> Option<String> {
    let processors = ranked(processors);
    if processors.len() < 2 {
        return None;
    }
    let exporters = ranked(exporters);
    let rank = match here.map(|c| c.names.as_slice()) {
        Some([sender]) if exporters.len() == processors.len() => {
            exporters.iter().position(|e| e == sender).unwrap_or(0)
        }
        _ => 0,
    };
    processors.into_iter().nth(rank)
}

/// The distinct component names, in the order the SDK made them: by the
/// number after the last `/`, then by name.
fn ranked(points: &[&[KeyValue]]) -> Vec<String> {
    let mut names: Vec<String> = points
        .iter()
        .filter_map(|a| component(a).map(str::to_owned))
        .collect();
    names.sort_by_key(|name| (ordinal(name), name.clone()));
    names.dedup();
    names
}

fn ordinal(name: &str) -> u64 {
    name.rsplit_once('/')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The SDK's name for the component (`batching_span_processor/0`).
fn component(attributes: &[KeyValue]) -> Option<&str> {
    string_attr(attributes, "otel.component.name")
}

fn port_of(attributes: &[KeyValue]) -> Option<i64> {
    match attr(attributes, "server.port") {
        Some(AnyValue::Int(p)) => Some(*p),
        Some(AnyValue::String(p)) => p.parse().ok(),
        _ => None,
    }
}

fn address_of(attributes: &[KeyValue]) -> Option<String> {
    string_attr(attributes, "server.address").map(str::to_owned)
}

#[cfg(test)]
mod tests;
