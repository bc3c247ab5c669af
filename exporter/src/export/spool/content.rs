//! What a spooled body really holds: it is decoded before it is sent, so a
//! truncated, empty or foreign file is set aside and its spans counted as
//! lost in the spool, instead of being sent and counted by its name.

use super::Kind;
use crate::export::config::Compression;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::io::Read;

/// A body past this size after gunzip is not one the exporter wrote (its
/// batches stay far below the backend's 20 MiB limit).
const MAX_DECODED_BYTES: u64 = 64 << 20;

/// Why a spooled body cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("not valid gzip: {0}")]
    Gzip(String),
    #[error("larger than {MAX_DECODED_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("not an OTLP request: {0}")]
    Protobuf(String),
    #[error("holds no spans")]
    Empty,
}

/// The number of spans in a traces body (at least one), or 0 for a report
/// that decodes.
pub(crate) fn spans_in(
    kind: Kind,
    compression: Compression,
    body: &[u8],
) -> Result<u64, Unreadable> {
    let raw = decompress(compression, body)?;
    match kind {
        Kind::Traces => {
            let request = <ExportTraceServiceRequest as prost::Message>::decode(raw.as_slice())
                .map_err(|e| Unreadable::Protobuf(e.to_string()))?;
            let spans: usize = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            match spans {
                0 => Err(Unreadable::Empty),
                n => Ok(n as u64),
            }
        }
        Kind::Metrics => {
            <ExportMetricsServiceRequest as prost::Message>::decode(raw.as_slice())
                .map_err(|e| Unreadable::Protobuf(e.to_string()))?;
            Ok(0)
        }
    }
}

fn decompress(compression: Compression, body: &[u8]) -> Result<Vec<u8>, Unreadable> {
    match compression {
        Compression::None => Ok(body.to_vec()),
        Compression::Gzip => {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_DECODED_BYTES + 1)
                .read_to_end(&mut raw)
                .map_err(|e| Unreadable::Gzip(e.to_string()))?;
            if raw.len() as u64 > MAX_DECODED_BYTES {
                return Err(Unreadable::TooLarge);
            }
            Ok(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::encode_body;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request(spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); spans],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_count_comes_from_the_body() -> Result<(), Box<dyn std::error::Error>> {
        for compression in [Compression::Gzip, Compression::None] {
            let body = encode_body(&request(4), compression)?;
            assert_eq!(spans_in(Kind::Traces, compression, &body), Ok(4));
        }
        let report = encode_body(&ExportMetricsServiceRequest::default(), Compression::Gzip)?;
        assert_eq!(spans_in(Kind::Metrics, Compression::Gzip, &report), Ok(0));
        Ok(())
    }

    #[test]
    fn empty_truncated_and_foreign_bodies_are_unreadable() -> Result<(), Box<dyn std::error::Error>>
    {
        // Zero bytes: no gzip header, or (uncompressed) a request without spans.
        assert!(matches!(
            spans_in(Kind::Traces, Compression::Gzip, b""),
            Err(Unreadable::Gzip(_))
        ));
        assert_eq!(
            spans_in(Kind::Traces, Compression::None, b""),
            Err(Unreadable::Empty)
        );
        let body = encode_body(&request(4), Compression::Gzip)?;
        let cut = &body[..body.len() / 2];
        assert!(matches!(
            spans_in(Kind::Traces, Compression::Gzip, cut),
            Err(Unreadable::Gzip(_))
        ));
        assert!(matches!(
            spans_in(Kind::Traces, Compression::None, b"\xff\xff\xff"),
            Err(Unreadable::Protobuf(_))
        ));
        Ok(())
    }
}
