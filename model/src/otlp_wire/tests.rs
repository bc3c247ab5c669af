//! The one-pass decoder gives what prost's decoding then `from_otlp` give,
//! on every request the model can express, on requests with invalid spans,
//! and on valid protobuf in an order no SDK writes.

use super::{DecodeError, from_protobuf};
use crate::otlp::{SpansFromOtlp, from_otlp, to_otlp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as pb_common;
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1 as pb;
use proptest::prelude::*;
use prost::Message;

/// What prost and the OTLP conversion make of `bytes` (Debug, so that NaN
/// doubles compare equal).
fn through_prost(bytes: &[u8]) -> Option<String> {
    let request = ExportTraceServiceRequest::decode(bytes).ok()?;
    Some(format!("{:?}", from_otlp(request)))
}

fn one_pass(bytes: &[u8]) -> Option<String> {
    from_protobuf(bytes).ok().map(|out| format!("{out:?}"))
}

proptest! {
    #[test]
    fn decodes_as_prost_then_from_otlp(spans in crate::tests::spans()) {
        let bytes = to_otlp(&spans).encode_to_vec();
        let expected = through_prost(&bytes);
        prop_assert!(expected.is_some());
        prop_assert_eq!(one_pass(&bytes), expected);
    }

    #[test]
    fn any_bytes_are_refused_or_read_as_prost_reads_them(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        // Short random input: what prost refuses is refused, what it reads
        // is read the same (entity_refs aside, which random bytes rarely hit).
        if let Some(expected) = through_prost(&bytes) {
            prop_assert_eq!(one_pass(&bytes), Some(expected));
        }
    }
}

fn kv(key: &str, value: &str) -> pb_common::KeyValue {
    pb_common::KeyValue {
        key: key.to_owned(),
        value: Some(pb_common::AnyValue {
            value: Some(pb_common::any_value::Value::StringValue(value.to_owned())),
        }),
        key_strindex: 0,
    }
}

fn pb_span(trace_id: Vec<u8>, span_id: Vec<u8>, links: Vec<pb::span::Link>) -> pb::Span {
    pb::Span {
        trace_id,
        span_id,
        name: "op".to_owned(),
        links,
        ..Default::default()
    }
}

#[test]
fn invalid_spans_are_listed_against_their_service_and_the_rest_kept() {
    let link = |trace_id: Vec<u8>| pb::span::Link {
        trace_id,
        span_id: vec![2; 8],
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![pb::ResourceSpans {
            resource: Some(PbResource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![pb::ScopeSpans {
                spans: vec![
                    pb_span(vec![1; 16], vec![1; 8], vec![link(vec![1; 16])]),
                    pb_span(vec![0; 16], vec![1; 8], Vec::new()),
                    pb_span(vec![1; 16], vec![1; 7], Vec::new()),
                    pb_span(vec![1; 16], vec![3; 8], vec![link(vec![1; 15])]),
                ],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    let out: SpansFromOtlp = from_protobuf(&request.encode_to_vec()).expect("valid protobuf");
    assert_eq!(out.spans.len(), 1);
    assert_eq!(out.spans[0].service_name(), "checkout");
    assert_eq!(out.spans[0].links.len(), 1);
    assert_eq!(
        out.rejected
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "span 1: trace_id is all zero",
            "span 2: span_id must be 8 bytes, got 7 bytes",
            "span 3: link 0: trace_id must be 16 bytes and span_id 8 bytes",
        ]
    );
    assert_eq!(out.rejected_services, ["checkout"; 3]);
    assert_eq!(
        format!("{out:?}"),
        through_prost(&request.encode_to_vec()).expect("prost reads it")
    );
}

/// Length-delimited field `tag` holding `body`.
fn field(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag << 3 | 2];
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

#[test]
fn the_resource_and_schemas_may_come_after_the_spans() {
    let span = pb_span(vec![5; 16], vec![6; 8], Vec::new());
    let resource = PbResource {
        attributes: vec![kv("service.name", "late")],
        ..Default::default()
    };
    // ScopeSpans: spans (2), then scope (1), then schema_url (3).
    let mut scope_spans = field(2, &span.encode_to_vec());
    let scope = pb_common::InstrumentationScope {
        name: "lib".to_owned(),
        ..Default::default()
    };
    scope_spans.extend(field(1, &scope.encode_to_vec()));
    scope_spans.extend(field(3, b"https://scope"));
    // ResourceSpans: scope_spans (2), schema_url (3), then resource (1).
    let mut resource_spans = field(2, &scope_spans);
    resource_spans.extend(field(3, b"https://resource"));
    resource_spans.extend(field(1, &resource.encode_to_vec()));
    let bytes = field(1, &resource_spans);

    let out = from_protobuf(&bytes).expect("valid protobuf");
    assert_eq!(out.spans.len(), 1);
    let span = &out.spans[0];
    assert_eq!(span.service_name(), "late");
    assert_eq!(span.resource.schema_url, "https://resource");
    assert_eq!(
        (&*span.scope.name, &*span.scope.schema_url),
        ("lib", "https://scope")
    );
    assert_eq!(Some(format!("{out:?}")), through_prost(&bytes));
}

#[test]
fn malformed_bytes_are_refused() {
    // A resource_spans field announcing 5 bytes with 2 left.
    assert!(matches!(
        from_protobuf(b"\x0a\x05ab"),
        Err(DecodeError::Truncated)
    ));
    // resource_spans (field 1) as a varint.
    assert!(matches!(
        from_protobuf(b"\x08\x01"),
        Err(DecodeError::WireType { .. })
    ));
    // A span name that is not UTF-8.
    let span = field(5, &[0xff, 0xfe]);
    let bytes = field(1, &field(2, &field(2, &span)));
    assert!(matches!(from_protobuf(&bytes), Err(DecodeError::NotUtf8)));
    assert!(through_prost(&bytes).is_none(), "prost refuses it too");
}

#[test]
fn attribute_values_nested_past_the_limit_are_refused_without_overflowing_the_stack() {
    // AnyValue { array_value { values: AnyValue { array_value { … } } } }
    let mut value = Vec::new();
    for _ in 0..10_000 {
        value = field(5, &field(1, &value));
    }
    let key_value = field(2, &value);
    let span = [field(1, &[1; 16]), field(2, &[1; 8]), field(9, &key_value)].concat();
    let bytes = field(1, &field(2, &field(2, &span)));
    assert!(matches!(from_protobuf(&bytes), Err(DecodeError::TooDeep)));
}
