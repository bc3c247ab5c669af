//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! targets' code on every `cargo test`: the CI's share of the fuzzing,
//! without cargo-fuzz or a nightly build. Inputs that once crashed a target
//! are kept there (named `crash-*`) and so stay regression tests.

use super::*;
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no seeds", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect()
}

#[test]
fn otlp_protobuf_corpus_decodes_and_reads_back() {
    let mut accepted = 0;
    for (_, body) in corpus("otlp_protobuf") {
        check_decode(Format::Protobuf, &body);
        accepted += traces(Format::Protobuf, false, &body, DECODE_LIMIT).map_or(0, |o| o.accepted);
    }
    assert!(accepted > 0, "the seeds are real OTLP: some spans decode");
}

#[test]
fn otlp_json_corpus_decodes_and_reads_back() {
    let mut accepted = 0;
    for (_, body) in corpus("otlp_json") {
        check_decode(Format::Json, &body);
        accepted += traces(Format::Json, false, &body, DECODE_LIMIT).map_or(0, |o| o.accepted);
    }
    assert!(accepted > 0, "the seeds are real OTLP: some spans decode");
}

#[test]
fn gzip_corpus_inflates_within_the_limit() {
    for (_, body) in corpus("gzip") {
        check_gzip(&body);
    }
}

#[test]
fn http_corpus_gets_documented_statuses() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixture = HttpFixture::new(dir.path());
    let mut stored = 0;
    for (path, data) in corpus("http_receive") {
        let status = fixture.check(&data);
        assert!(status.is_some(), "{}: a valid head", path.display());
        stored += usize::from(status == Some(StatusCode::OK));
    }
    assert!(
        stored > 0,
        "the seeds are real OTLP requests: some are stored"
    );
}

// ---- how deep a value may be nested -----------------------------------------

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited protobuf field.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    varint(u64::from(number) << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn nested_protobuf(depth: usize, kvlist: bool) -> Vec<u8> {
    let mut value = field(1, b"leaf");
    for _ in 0..depth {
        value = if kvlist {
            field(6, &field(1, &[field(1, b"k"), field(2, &value)].concat()))
        } else {
            field(5, &field(1, &value))
        };
    }
    let span = [
        field(1, &[1; 16]),
        field(2, &[1; 8]),
        field(9, &[field(1, b"deep"), field(2, &value)].concat()),
    ]
    .concat();
    field(1, &field(2, &field(2, &span)))
}

fn nested_json(depth: usize, kvlist: bool) -> Vec<u8> {
    let (open, close) = if kvlist {
        (r#"{"kvlistValue":{"values":[{"key":"k","value":"#, "}]}}")
    } else {
        (r#"{"arrayValue":{"values":["#, "]}}")
    };
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"01010101010101010101010101010101","spanId":"0101010101010101","attributes":[{{"key":"deep","value":{}{{"stringValue":"leaf"}}{}}}]}}]}}]}}]}}"#,
        open.repeat(depth),
        close.repeat(depth)
    )
    .into_bytes()
}

/// The deepest attribute value each decoder accepts. Their recursion limits
/// (prost: 100 nested messages, serde_json: 128 levels) are what bounds
/// every later recursion (conversion, encoding, drop), so the README's
/// "What happens to odd input" quotes these numbers; and what they accept
/// must read back from the store.
#[test]
fn the_decoders_bound_nesting_and_what_they_accept_reads_back() {
    let deepest = |format: Format, kvlist: bool| {
        let body = |depth| match format {
            Format::Protobuf => nested_protobuf(depth, kvlist),
            Format::Json => nested_json(depth, kvlist),
        };
        let mut depth = 0;
        while let Ok(outcome) = traces(format, false, &body(depth + 1), DECODE_LIMIT) {
            assert_eq!(
                outcome,
                Outcome {
                    accepted: 1,
                    ..Outcome::default()
                }
            );
            depth += 1;
        }
        let refused = traces(format, false, &body(10_000), DECODE_LIMIT);
        assert!(
            refused.is_err_and(|e| e.contains("recursion")),
            "{format:?}"
        );
        depth
    };
    assert_eq!(deepest(Format::Protobuf, true), 31);
    assert_eq!(deepest(Format::Protobuf, false), 47);
    assert_eq!(deepest(Format::Json, true), 29);
    assert_eq!(deepest(Format::Json, false), 39);
}
