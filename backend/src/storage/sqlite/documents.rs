//! The search documents of a batch's span groups, built where the batch is
//! encoded (on the request's thread) so that the single writer thread
//! only inserts them: it is the one part of ingest that cannot use the other core.
//!
//! The batch is grouped here as the writer groups it (see `groups`), by
//! trace, resource, scope and time slice, except that resources and scopes
//! are told apart by identity instead of by stored id. The writer uses a
//! document only for a group made of exactly its rows; a group that lost a
//! span already stored (a retry) or that joins two groups made here gets
//! its document built by the writer (`document`), from the same tokens.

use super::encode::{self, SearchTokens, SpanRow};
use super::groups::GROUP_SLICE_NS;
use otelite_model::{Resource, Scope, TraceId};
use std::sync::Arc;
// foldhash: the ingest path hashes trace and span ids per span (see Cargo.toml).
use foldhash::{HashMap, HashMapExt};

/// One group's document and how many rows it was built from. Shared, so
/// that the writer keeps it for its commit without copying it.
#[derive(Debug)]
struct GroupDocument {
    rows: usize,
    document: Arc<str>,
}

/// The documents of a batch's groups, and the group of each row.
#[derive(Debug, Default)]
pub struct Documents {
    group_of_row: Vec<u32>,
    groups: Vec<GroupDocument>,
}

impl Documents {
    pub fn new(rows: &[SpanRow]) -> Self {
        type Key = (TraceId, *const Resource, *const Scope, u64);
        let mut index: HashMap<Key, u32> = HashMap::new();
        let mut members: Vec<Vec<&SpanRow>> = Vec::new();
        let mut group_of_row = Vec::with_capacity(rows.len());
        for row in rows {
            let facts = &row.facts;
            let key = (
                facts.trace_id,
                Arc::as_ptr(&facts.resource),
                Arc::as_ptr(&row.scope),
                facts.start_ns / GROUP_SLICE_NS,
            );
            let group = *index.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                (members.len() - 1) as u32
            });
            members[group as usize].push(row);
            group_of_row.push(group);
        }
        let mut resource_tokens: HashMap<*const Resource, SearchTokens> = HashMap::new();
        let groups = members
            .iter()
            .map(|rows| {
                let resource = &rows[0].facts.resource;
                let tokens = resource_tokens
                    .entry(Arc::as_ptr(resource))
                    .or_insert_with(|| encode::attribute_tokens(&resource.attributes));
                GroupDocument {
                    rows: rows.len(),
                    document: document(&resource.service_name, Some(tokens), rows).into(),
                }
            })
            .collect();
        Self {
            group_of_row,
            groups,
        }
    }

    /// The group that row `row` of the batch is in.
    pub fn group_of(&self, row: usize) -> Option<u32> {
        self.group_of_row.get(row).copied()
    }

    /// The document of group `group` if it was built from `rows` rows.
    pub fn document(&self, group: u32, rows: usize) -> Option<Arc<str>> {
        self.groups
            .get(group as usize)
            .filter(|prepared| prepared.rows == rows)
            .map(|prepared| Arc::clone(&prepared.document))
    }
}

/// A group's search document: each distinct token of its spans, of its
/// resource and of its service, once (see `document_of_tokens`).
pub fn document(
    service: &str,
    resource_tokens: Option<&SearchTokens>,
    rows: &[&SpanRow],
) -> String {
    document_of_tokens(service, resource_tokens, rows.iter().map(|row| &row.tokens))
}

/// The search document of a service, a resource's tokens and its spans'.
/// Tokens are merged by their hashes: sorting integers is what keeps this
/// cheap. Two different tokens with one hash are both kept (only equal
/// neighbours are dropped), so no token is ever lost.
pub fn document_of_tokens<'a>(
    service: &str,
    resource_tokens: Option<&'a SearchTokens>,
    spans: impl Iterator<Item = &'a SearchTokens> + Clone,
) -> String {
    let mut tokens: Vec<(u64, &[u8])> = Vec::with_capacity(
        resource_tokens.map_or(0, SearchTokens::len)
            + spans.clone().map(SearchTokens::len).sum::<usize>(),
    );
    tokens.extend(resource_tokens.into_iter().flat_map(SearchTokens::iter));
    for span in spans {
        tokens.extend(span.iter());
    }
    tokens.sort_unstable_by_key(|(hash, _)| *hash);
    tokens.dedup();
    let mut document = Vec::with_capacity(
        encode::HASHED_TOKEN_BYTES + tokens.iter().map(|(_, t)| t.len() + 1).sum::<usize>(),
    );
    encode::push_service_token(&mut document, service);
    for (_, token) in tokens {
        document.push(b' ');
        document.extend_from_slice(token);
    }
    encode::ascii_text(document)
}
