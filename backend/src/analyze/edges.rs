//! Service-to-service edges: a span whose parent belongs to another service is
//! one call from the parent's service to its own. Parent and child usually
//! come from different processes, in different batches and in either order
//! (a callee's span often ends, and so arrives, before its caller's), so the
//! resolver remembers recent spans and children still waiting for their
//! parent. Both memories are bounded; an edge whose other end arrives after
//! eviction (or after a restart) is not counted. The ClickHouse store uses
//! it; SQLite finds edges from its stored spans instead (see
//! `storage::sqlite::edges`).

use super::SpanFacts;
use foldhash::{HashMap, HashMapExt};
use otelite_model::{SpanId, TraceId};
use std::collections::VecDeque;
use std::sync::Arc;

/// One call between services, as seen from the child span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub parent_service: Arc<str>,
    pub child_service: Arc<str>,
    pub child_start_ns: u64,
    pub is_error: bool,
}

#[derive(Debug, Clone)]
struct Child {
    service: Arc<str>,
    start_ns: u64,
    is_error: bool,
}

type Key = (TraceId, SpanId);

/// Remembers the service of recent spans and the children whose parent has
/// not arrived yet.
#[derive(Debug)]
pub struct EdgeResolver {
    capacity: usize,
    services: HashMap<Key, Arc<str>>,
    order: VecDeque<Key>,
    waiting: HashMap<Key, Vec<Child>>,
    waiting_order: VecDeque<Key>,
    interned: HashMap<String, Arc<str>>,
}

impl EdgeResolver {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            services: HashMap::new(),
            order: VecDeque::new(),
            waiting: HashMap::new(),
            waiting_order: VecDeque::new(),
            interned: HashMap::new(),
        }
    }

    /// Records the spans and returns the edges they complete.
    pub fn resolve<'a>(&mut self, spans: impl IntoIterator<Item = &'a SpanFacts>) -> Vec<Edge> {
        let spans: Vec<&SpanFacts> = spans.into_iter().collect();
        // Remember the whole batch first, so order within a batch does not matter.
        for span in &spans {
            let service = self.intern(span.service());
            self.remember((span.trace_id, span.span_id), service);
        }
        let mut edges = Vec::new();
        for span in &spans {
            let key = (span.trace_id, span.span_id);
            let service = self.intern(span.service());
            if let Some(children) = self.waiting.remove(&key) {
                edges.extend(children.into_iter().filter_map(|c| edge(&service, c)));
            }
            let Some(parent_id) = span.parent_span_id else {
                continue;
            };
            let child = Child {
                service,
                start_ns: span.start_ns,
                is_error: span.is_error,
            };
            let parent_key = (span.trace_id, parent_id);
            match self.services.get(&parent_key) {
                Some(parent_service) => edges.extend(edge(&parent_service.clone(), child)),
                None => self.wait(parent_key, child),
            }
        }
        edges
    }

    fn intern(&mut self, service: &str) -> Arc<str> {
        if let Some(found) = self.interned.get(service) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(service);
        self.interned.insert(service.to_owned(), shared.clone());
        shared
    }

    fn remember(&mut self, key: Key, service: Arc<str>) {
        if self.services.insert(key, service).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.services.remove(&old);
            }
        }
    }

    fn wait(&mut self, parent: Key, child: Child) {
        let children = self.waiting.entry(parent).or_default();
        if children.is_empty() {
            self.waiting_order.push_back(parent);
        }
        children.push(child);
        while self.waiting_order.len() > self.capacity {
            if let Some(old) = self.waiting_order.pop_front() {
                self.waiting.remove(&old);
            }
        }
    }
}

fn edge(parent_service: &Arc<str>, child: Child) -> Option<Edge> {
    (*parent_service != child.service).then(|| Edge {
        parent_service: parent_service.clone(),
        child_service: child.service,
        child_start_ns: child.start_ns,
        is_error: child.is_error,
    })
}
