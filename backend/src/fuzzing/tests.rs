//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! targets' code on every `cargo test`: the CI's share of the fuzzing,
//! without cargo-fuzz or a nightly build. Inputs that once crashed a target
//! are kept there (named `crash-*`) and so stay regression tests.

use super::*;
use prost::encoding::{WireType, encode_key, encode_varint};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
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

/// Whether a corpus file is one of the seeds `fuzz/seed_corpus.py` wrote
/// (real requests), not an input kept from a fuzz run.
fn is_seed(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("seed-"))
}

/// Replays a decode target's corpus: `check_decode` holds every stored
/// span to the body's own; the seeds are real requests, all taken whole.
fn replay_decode(target: &str, format: Format) {
    let mut stored = 0;
    for (path, body) in corpus(target) {
        let outcome = check_decode(format, &body);
        if is_seed(&path) {
            let outcome = outcome.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(outcome.rejected, 0, "{}", path.display());
            stored += outcome.stored.len();
        }
    }
    assert!(stored > 0, "{target}: the seeds hold spans");
}

#[test]
fn otlp_protobuf_corpus_is_stored_as_sent() {
    replay_decode("otlp_protobuf", Format::Protobuf);
}

#[test]
fn otlp_json_corpus_is_stored_as_sent() {
    replay_decode("otlp_json", Format::Json);
}

/// Each gzip seed is a plain seed compressed (see `fuzz/seed_corpus.py`):
/// it must inflate to exactly that body and then be stored as it would be
/// sent plain.
#[test]
fn gzip_corpus_inflates_to_the_plain_seeds() {
    let plain: Vec<(PathBuf, Vec<u8>)> = [corpus("otlp_protobuf"), corpus("otlp_json")].concat();
    let mut inflated_seeds = 0;
    for (path, body) in corpus("gzip") {
        let checked = check_gzip(&body);
        if !is_seed(&path) {
            continue;
        }
        let (inflated, outcome) =
            checked.unwrap_or_else(|| panic!("{}: does not inflate", path.display()));
        let (source, _) = (plain.iter())
            .find(|(_, plain)| *plain == inflated)
            .unwrap_or_else(|| panic!("{}: inflates to no plain seed", path.display()));
        let format = if source.starts_with(corpus_dir("otlp_json")) {
            Format::Json
        } else {
            Format::Protobuf
        };
        let stored = outcome.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!stored.stored.is_empty(), "{}", path.display());
        assert_eq!(Ok(stored), check_decode(format, &inflated));
        inflated_seeds += 1;
    }
    assert!(inflated_seeds > 0, "some gzip seeds inflate");
}

#[test]
fn http_corpus_is_stored_as_sent() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixture = HttpFixture::new(dir.path());
    let mut stored = 0;
    for (path, data) in corpus("http_receive") {
        let status = fixture.check(&data);
        assert!(status.is_some(), "{}: a valid head", path.display());
        if is_seed(&path) {
            assert_eq!(status, Some(StatusCode::OK), "{}", path.display());
            stored += 1;
        }
    }
    assert!(stored > 0, "the seeds are real OTLP requests: stored");
}

/// A seed's body behind other heads: refused with the spec's status, and
/// `check` finds nothing stored.
#[test]
fn refused_requests_store_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixture = HttpFixture::new(dir.path());
    let (_, seed) = corpus("http_receive").swap_remove(0);
    let body = &seed[HEAD..];
    let with_head = |head: [u8; HEAD]| [&head[..], body].concat();
    let cases = [
        ([0, 0, 5, 0, 1], StatusCode::UNSUPPORTED_MEDIA_TYPE), // text/plain
        ([0, 0, 8, 0, 1], StatusCode::UNSUPPORTED_MEDIA_TYPE), // no content type
        ([0, 0, 0, 5, 1], StatusCode::UNSUPPORTED_MEDIA_TYPE), // br
        ([0, 0, 0, 6, 1], StatusCode::UNSUPPORTED_MEDIA_TYPE), // gzip, gzip
        ([0, 0, 0, 1, 1], StatusCode::BAD_REQUEST),            // plain body said to be gzip
        ([0, 0, 1, 0, 1], StatusCode::BAD_REQUEST),            // protobuf said to be JSON
        ([1, 0, 0, 0, 1], StatusCode::METHOD_NOT_ALLOWED),     // GET
        ([0, 3, 0, 0, 1], StatusCode::NOT_FOUND),              // /v1/traces/
    ];
    for (head, expected) in cases {
        assert_eq!(fixture.check(&with_head(head)), Some(expected), "{head:?}");
    }
    let too_large = with_head([0, 0, 0, 0, 7])
        .into_iter()
        .chain(std::iter::repeat_n(0, SMALL_LIMIT))
        .collect::<Vec<u8>>();
    assert_eq!(
        fixture.check(&too_large),
        Some(StatusCode::PAYLOAD_TOO_LARGE)
    );
    // And the same body as sent is stored.
    assert_eq!(fixture.check(&seed), Some(StatusCode::OK));
}

/// The query router's seeds are real questions about the seeded trace:
/// each answered 200, and every input kept in the corpus checks out.
#[test]
fn query_router_corpus_answers_sanely() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixture = QueryFixture::new(dir.path());
    for (path, data) in corpus("query_router") {
        let status = fixture.check(&data);
        if is_seed(&path) {
            assert_eq!(status, Some(StatusCode::OK), "{}", path.display());
        }
    }
}

/// The seeds cut, with bytes flipped and spliced (a fixed pseudo-random
/// walk, the fuzzer's moves in miniature): no panic, no 5xx but 503.
#[test]
fn query_router_takes_mangled_seeds() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixture = QueryFixture::new(dir.path());
    let seeds: Vec<Vec<u8>> = corpus("query_router").into_iter().map(|(_, d)| d).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ODD: &[u8] = b"%?&=/\n:\x00\xff0-9aZ~[]{}";
    for _ in 0..400 {
        let mut input = seeds[next() as usize % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = 1 + next() as usize % input.len().max(2).saturating_sub(1);
            match next() % 3 {
                0 => input.truncate(at),
                1 if at < input.len() => input[at] = ODD[next() as usize % ODD.len()],
                _ => {
                    let other = &seeds[next() as usize % seeds.len()];
                    let from = next() as usize % other.len();
                    input.splice(at.min(input.len()).., other[from..].iter().copied());
                }
            }
        }
        fixture.check(&input);
    }
}

/// The CLI's answer seeds are real answers of a server: the pages and
/// the report parse and print; every input kept in the corpus checks out.
#[test]
fn cli_answers_corpus_parses_and_prints() {
    for (path, data) in corpus("cli_answers") {
        let parsed = check_answer(&data);
        assert_eq!(parsed, is_seed(&path), "{}", path.display());
    }
}

/// Hostile numbers a server could send in a page that otherwise parses:
/// times at the ends of u64, an end before its start, a span its own
/// parent, a duration past the start's room. Printed, not a panic.
#[test]
fn cli_answers_print_hostile_pages() {
    let seed = std::fs::read(corpus_dir("cli_answers").join("seed-01-trace-page"))
        .expect("the first trace page seed");
    let page = String::from_utf8(seed[1..].to_vec()).expect("a JSON seed");
    let swaps = [
        ("1700000000000000000", "18446744073709551615"),
        ("1700000000000900000", "0"),
        (
            "\"parentSpanId\":null",
            "\"parentSpanId\":\"0000000000000001\"",
        ),
        (
            "\"durationNanos\":900000",
            "\"durationNanos\":18446744073709551615",
        ),
    ];
    for (from, to) in swaps {
        let hostile = [&[0u8][..], page.replace(from, to).as_bytes()].concat();
        assert!(check_answer(&hostile), "{from} → {to} parses and prints");
    }
}

// ---- how deep a value may be nested -----------------------------------------

/// A length-delimited protobuf field.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    encode_key(number, WireType::LengthDelimited, &mut out);
    encode_varint(bytes.len() as u64, &mut out);
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
            assert_eq!((outcome.stored.len(), outcome.rejected), (1, 0));
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
