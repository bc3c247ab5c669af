use super::*;
use crate::test_fixtures as fixtures;
use otelite_model::{SpanKind, TraceId};

fn span(
    service: &str,
    trace: u8,
    id: u8,
    parent: Option<u8>,
    start: u64,
    end: u64,
    error: bool,
) -> Span {
    fixtures::span(trace, id)
        .service(service)
        .parent(parent)
        .kind(SpanKind::Server)
        .times(start, end)
        .error(error)
        .build()
}

#[test]
fn analyze_marks_duration_root_and_error() {
    let analyzed = analyze(vec![
        span("a", 1, 1, None, 10, 30, false),
        span("a", 1, 2, Some(1), 40, 35, true),
    ]);
    assert_eq!(
        (
            analyzed[0].facts.duration_ns,
            analyzed[0].facts.is_root,
            analyzed[0].facts.is_error
        ),
        (20, true, false)
    );
    // An end before the start is a zero duration, not an underflow.
    assert_eq!(
        (
            analyzed[1].facts.duration_ns,
            analyzed[1].facts.is_root,
            analyzed[1].facts.is_error
        ),
        (0, false, true)
    );
}

#[test]
fn summarize_folds_spans_per_trace() {
    let analyzed = analyze(vec![
        span("a", 1, 1, None, 10, 100, false),
        span("b", 1, 2, Some(1), 20, 120, true),
        span("c", 2, 3, Some(9), 5, 6, false),
    ]);
    let traces = summarize(analyzed.iter().map(|a| &a.facts));
    let first = &traces[&TraceId([1; 16])];
    assert_eq!(
        (
            first.start_ns,
            first.end_ns,
            first.span_count,
            first.error_count
        ),
        (10, 120, 2, 1)
    );
    assert_eq!(first.root, Some(("a".to_owned(), "op1".to_owned())));
    let second = &traces[&TraceId([2; 16])];
    assert_eq!((second.span_count, second.root.clone()), (1, None));
}

#[test]
fn edges_resolve_in_either_arrival_order_and_skip_same_service() {
    let mut resolver = EdgeResolver::new(100);
    // The callee's span arrives first, its caller's later.
    let child = analyze(vec![span("db", 1, 2, Some(1), 20, 30, true)]);
    assert!(resolver.resolve(facts(&child)).is_empty());
    let parent = analyze(vec![
        span("api", 1, 1, None, 10, 40, false),
        span("api", 1, 3, Some(1), 11, 12, false),
    ]);
    let edges = resolver.resolve(facts(&parent));
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert_eq!(
        (
            &*edges[0].parent_service,
            &*edges[0].child_service,
            edges[0].is_error
        ),
        ("api", "db", true)
    );
    // A child arriving after its parent resolves at once.
    let late_child = analyze(vec![span("cache", 1, 4, Some(1), 13, 14, false)]);
    let edges = resolver.resolve(facts(&late_child));
    assert_eq!(edges.len(), 1);
    assert_eq!(&*edges[0].child_service, "cache");
}

#[test]
fn edge_memory_is_bounded() {
    let mut resolver = EdgeResolver::new(2);
    let waiting: Vec<_> = (1..=5)
        .map(|i| span("b", i, 2, Some(1), 0, 1, false))
        .collect();
    resolver.resolve(facts(&analyze(waiting)));
    // Only the two most recent waiting children can still be matched.
    let parents: Vec<_> = (1..=5)
        .map(|i| span("a", i, 1, None, 0, 1, false))
        .collect();
    assert_eq!(resolver.resolve(facts(&analyze(parents))).len(), 2);
}

fn facts(analyzed: &[AnalyzedSpan]) -> impl Iterator<Item = &SpanFacts> {
    analyzed.iter().map(|a| &a.facts)
}
