//! One page of a trace: a trace of a million spans is hundreds of
//! megabytes of JSON, so readers answer at most `limit` spans at a time, in
//! a stable order (start time, then span id), with the key of the last one
//! as the cursor for the next page. [`Pager`] picks a page out of spans
//! offered in any order while holding only the page itself, so a store can
//! stream a huge trace through it.

use otelite_model::{Span, SpanId};
use std::collections::BinaryHeap;

/// Where a span sorts in its trace: by start time, then span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanKey {
    pub start_ns: u64,
    pub span_id: SpanId,
}

impl SpanKey {
    pub fn of(span: &Span) -> Self {
        Self {
            start_ns: span.start_time_unix_nano,
            span_id: span.span_id,
        }
    }
}

/// `<start ns>-<span id hex>`: what a client passes back as `cursor`.
impl std::fmt::Display for SpanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start_ns, self.span_id.to_hex())
    }
}

impl std::str::FromStr for SpanKey {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (start, id) = text.split_once('-').ok_or(())?;
        Ok(Self {
            start_ns: start.parse().map_err(|_| ())?,
            span_id: SpanId::from_hex(id).ok_or(())?,
        })
    }
}

/// Which page of a trace to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Only spans sorting after this one; from the first when `None`.
    pub after: Option<SpanKey>,
    /// The most spans to answer (at least one is answered).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of at most `limit` spans.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }
}

/// A page of a trace's spans, with what the client needs to know about
/// the whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePage {
    /// This page's spans, by start time then span id.
    pub spans: Vec<Span>,
    /// Spans in the whole trace.
    pub span_count: u64,
    /// The whole trace's extent: earliest start, latest end (a span ending
    /// before it starts counts as ending at its start).
    pub start_ns: u64,
    pub end_ns: u64,
    /// The key to ask the next page after; `None` on the last page.
    pub next: Option<SpanKey>,
}

impl TracePage {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Cut to its first `limit` spans: the page a request with that limit
    /// gets (the same totals, the next page after its last span).
    pub fn cut_to(&mut self, limit: usize) {
        if self.spans.len() > limit {
            self.spans.truncate(limit);
            self.next = self.spans.last().map(SpanKey::of);
        }
    }
}

/// Picks a page out of a trace's spans offered one by one in any order: it
/// keeps the `limit` smallest keys after the cursor in a max-heap, so its
/// memory is the page's, and counts the whole trace on the way.
pub struct Pager<T> {
    request: PageRequest,
    kept: BinaryHeap<Kept<T>>,
    after_cursor: u64,
    span_count: u64,
    extent: Option<(u64, u64)>,
}

struct Kept<T>(SpanKey, T);

impl<T> PartialEq for Kept<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for Kept<T> {}
impl<T> PartialOrd for Kept<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Kept<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<T> Pager<T> {
    pub fn new(request: PageRequest) -> Self {
        Self {
            request: PageRequest {
                limit: request.limit.max(1),
                ..request
            },
            kept: BinaryHeap::new(),
            after_cursor: 0,
            span_count: 0,
            extent: None,
        }
    }

    /// One span of the trace: its key, its times and what to keep of it.
    pub fn offer(&mut self, key: SpanKey, end_ns: u64, item: T) {
        self.span_count += 1;
        let end = end_ns.max(key.start_ns);
        self.extent = Some(match self.extent {
            Some((start, latest)) => (start.min(key.start_ns), latest.max(end)),
            None => (key.start_ns, end),
        });
        if self.request.after.is_some_and(|after| key <= after) {
            return;
        }
        self.after_cursor += 1;
        if self.kept.len() < self.request.limit {
            self.kept.push(Kept(key, item));
        } else if self.kept.peek().is_some_and(|largest| key < largest.0) {
            self.kept.pop();
            self.kept.push(Kept(key, item));
        }
    }

    /// The page's items by key, and the page without its spans (the caller
    /// turns the items into spans); `None` for a trace with no spans.
    pub fn finish(self) -> Option<(Vec<T>, TracePage)> {
        let (start_ns, end_ns) = self.extent?;
        let kept = self.kept.into_sorted_vec();
        let more = self.after_cursor > kept.len() as u64;
        let next = more.then(|| kept.last().map(|k| k.0)).flatten();
        let page = TracePage {
            spans: Vec::new(),
            span_count: self.span_count,
            start_ns,
            end_ns,
            next,
        };
        Some((kept.into_iter().map(|k| k.1).collect(), page))
    }
}

/// A page of spans already in memory (the remote reader's tests, stores
/// that load a trace whole).
pub fn page_of(spans: Vec<Span>, request: PageRequest) -> Option<TracePage> {
    let mut pager = Pager::new(request);
    for span in spans {
        pager.offer(SpanKey::of(&span), span.end_time_unix_nano, span);
    }
    let (spans, page) = pager.finish()?;
    Some(TracePage { spans, ..page })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(start_ns: u64, id: u8) -> SpanKey {
        SpanKey {
            start_ns,
            span_id: SpanId([id; 8]),
        }
    }

    /// Offered out of order, paged two at a time: every key once, in order,
    /// and the last page names no next one.
    #[test]
    fn pages_visit_every_span_once_in_order() {
        let keys = [key(5, 1), key(1, 9), key(3, 2), key(3, 1), key(9, 4)];
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let mut pager = Pager::new(PageRequest { after, limit: 2 });
            for k in keys {
                pager.offer(k, k.start_ns + 1, k);
            }
            let Some((items, page)) = pager.finish() else {
                panic!("a trace with spans has a page")
            };
            assert_eq!(page.span_count, 5);
            assert_eq!((page.start_ns, page.end_ns), (1, 10));
            seen.extend(items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            seen,
            [key(1, 9), key(3, 1), key(3, 2), key(5, 1), key(9, 4)]
        );
    }

    #[test]
    fn a_page_that_holds_the_rest_is_the_last() {
        let mut pager = Pager::new(PageRequest::first(2));
        pager.offer(key(1, 1), 0, ());
        pager.offer(key(2, 1), 0, ());
        let Some((items, page)) = pager.finish() else {
            panic!("a trace with spans has a page")
        };
        assert_eq!((items.len(), page.next), (2, None));
        // A span ending before it starts counts as ending at its start.
        assert_eq!((page.start_ns, page.end_ns), (1, 2));
    }

    #[test]
    fn no_spans_no_page() {
        assert!(Pager::<()>::new(PageRequest::first(3)).finish().is_none());
    }

    #[test]
    fn cursor_text_round_trips_and_rejects_junk() {
        let k = key(1_700_000_000_000_000_000, 0xab);
        assert_eq!(k.to_string(), "1700000000000000000-abababababababab");
        assert_eq!(k.to_string().parse(), Ok(k));
        for junk in ["", "12", "x-abababababababab", "1-abab", "-1-ab"] {
            assert_eq!(junk.parse::<SpanKey>(), Err(()), "{junk}");
        }
    }
}
