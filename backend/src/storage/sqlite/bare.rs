//! Span bodies are stored bare: without their trace id, span id and parent
//! span id. Those are 32 random bytes per span (38 with their tags), of
//! which zstd only shrinks the repeats (measured: 16 bytes a span saved;
//! see BENCHMARKS.md), and the group's row already holds each of them (the trace through
//! `trace_ref`, the span and parent ids in `span_ids` and `parent_ids`, in
//! the order of the group's spans), so a read puts them back from there.
//! Bodies written before this still carry their ids; `restore` leaves
//! those as they are.

use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_model::TraceId;
use prost::encoding::{WireType, decode_key, decode_varint};

/// OTLP `Span` fields 1 (trace id), 2 (span id) and 4 (parent span id)
/// are left out of a stored body; field 3, between them, is kept.
const TRACE_STATE: u32 = 3;
const PARENT_SPAN_ID: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("a span group holds {spans} spans but {ids} span ids")]
    IdCount { spans: usize, ids: usize },
}

/// `body`, an OTLP `Span` encoding, without its ids. The model's encoder
/// writes fields in number order, so the ids are among the first fields:
/// only those are read, and the rest is copied whole. A body that does not
/// start as expected is kept as it is (it then reads back unchanged).
pub fn strip_ids(body: &[u8]) -> Vec<u8> {
    let mut bare = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let mut field = rest;
        let Ok((number, WireType::LengthDelimited)) = decode_key(&mut field) else {
            break;
        };
        if number > PARENT_SPAN_ID {
            break;
        }
        let Ok(len) = decode_varint(&mut field) else {
            return body.to_vec();
        };
        let Some(value_len) = usize::try_from(len).ok().filter(|&l| l <= field.len()) else {
            return body.to_vec();
        };
        let after = &field[value_len..];
        if number == TRACE_STATE {
            bare.extend_from_slice(&rest[..rest.len() - after.len()]);
        }
        rest = after;
    }
    bare.extend_from_slice(rest);
    bare
}

/// Puts back the ids `strip_ids` took out of a group's spans: the trace's
/// id, and each span's and parent's from the group's lists (8 bytes per
/// span, zeros for no parent). A span that kept its ids is left alone.
pub fn restore_ids(
    spans: &mut [PbSpan],
    trace_id: &TraceId,
    span_ids: &[u8],
    parent_ids: &[u8],
) -> Result<(), RestoreError> {
    let ids = span_ids.len() / 8;
    if ids != spans.len() || parent_ids.len() != span_ids.len() {
        return Err(RestoreError::IdCount {
            spans: spans.len(),
            ids,
        });
    }
    let pairs = span_ids.chunks_exact(8).zip(parent_ids.chunks_exact(8));
    for (span, (span_id, parent_id)) in spans.iter_mut().zip(pairs) {
        if span.trace_id.is_empty() {
            span.trace_id = trace_id.0.to_vec();
        }
        if span.span_id.is_empty() {
            span.span_id = span_id.to_vec();
            if span.parent_span_id.is_empty() && parent_id != [0; 8] {
                span.parent_span_id = parent_id.to_vec();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use prost::Message;

    fn span(trace_state: &str, parent: Option<[u8; 8]>) -> PbSpan {
        PbSpan {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            trace_state: trace_state.into(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: "GET /cart".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_100_000,
            attributes: vec![KeyValue {
                key: "user.id".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("u-42".into())),
                }),
                key_strindex: 0,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_stripped_body_is_38_bytes_shorter_and_reads_back_whole() {
        for (trace_state, parent) in [("", Some([0x11; 8])), ("vendor=1", Some([0x22; 8]))] {
            let original = span(trace_state, parent);
            let body = original.encode_to_vec();
            let bare = strip_ids(&body);
            // Tag and length of each id: 2 + 16, 2 + 8, 2 + 8.
            assert_eq!(body.len() - bare.len(), 38, "{trace_state:?}");
            let mut read = vec![PbSpan::decode(bare.as_slice()).expect("decodes")];
            assert!(read[0].trace_id.is_empty() && read[0].span_id.is_empty());
            assert_eq!(read[0].trace_state, trace_state);
            restore_ids(
                &mut read,
                &TraceId([0xab; 16]),
                &[0xcd; 8],
                &parent.unwrap_or_default(),
            )
            .expect("restored");
            assert_eq!(read[0], original);
        }
    }

    #[test]
    fn a_root_span_gets_no_parent_back() {
        let original = span("", None);
        let bare = strip_ids(&original.encode_to_vec());
        assert_eq!(original.encoded_len() - bare.len(), 28);
        let mut read = vec![PbSpan::decode(bare.as_slice()).expect("decodes")];
        restore_ids(&mut read, &TraceId([0xab; 16]), &[0xcd; 8], &[0; 8]).expect("restored");
        assert_eq!(read[0], original);
    }

    #[test]
    fn a_body_stored_with_its_ids_reads_back_unchanged() {
        let original = span("", Some([0x11; 8]));
        let mut read = vec![original.clone()];
        // Lists that disagree with the body must not overwrite it.
        restore_ids(&mut read, &TraceId([1; 16]), &[2; 8], &[3; 8]).expect("restored");
        assert_eq!(read[0], original);
        // Stripping twice is stripping once: a stored bare body compares
        // equal to a new one stripped.
        let bare = strip_ids(&original.encode_to_vec());
        assert_eq!(strip_ids(&bare), bare);
    }

    #[test]
    fn a_body_that_is_not_a_span_is_kept_and_counts_are_checked() {
        let junk = vec![0x0a, 0x7f, 1, 2];
        assert_eq!(strip_ids(&junk), junk);
        assert_eq!(strip_ids(&[]), Vec::<u8>::new());
        let mut two = vec![PbSpan::default(), PbSpan::default()];
        assert!(matches!(
            restore_ids(&mut two, &TraceId([1; 16]), &[2; 8], &[0; 8]),
            Err(RestoreError::IdCount { spans: 2, ids: 1 })
        ));
    }
}
