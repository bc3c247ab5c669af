//! Span kinds by their lowercase names.

use otelite_model::SpanKind;

pub(super) const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

/// A span kind by its lowercase name, in any case.
pub fn parse_span_kind(text: &str) -> Result<SpanKind, String> {
    let lower = text.to_ascii_lowercase();
    KINDS
        .into_iter()
        .find(|kind| span_kind_name(*kind) == lower)
        .ok_or_else(|| {
            format!("{text:?} is not a span kind: use server, client, internal, producer, consumer or unspecified")
        })
}

/// A kind's lowercase name; `unknown` for a number OTLP does not define
/// (the number itself is kept, and shown where OTLP is).
pub fn span_kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Other(_) => "unknown",
    }
}
