//! The one thread that writes to SQLite. SQLite allows one writer at a time,
//! so instead of contending for a lock every request hands its batch to this
//! thread over a bounded channel and waits on a oneshot. The thread takes
//! whatever has queued up, commits it in one transaction (group commit: one
//! fsync for many requests) and only then answers each request, which is
//! what lets the receiver promise "2xx means committed".

use super::StoreError;
use super::block::PendingBlocks;
use super::documents::Documents;
use super::edges;
use super::encode::{self, SpanRow};
use super::failed::FailedSpans;
use super::files::{self, Files};
use super::groups::{self, Edges};
use super::unwritten::{CountKey, Unwritten};
use crate::stage::{Stage, minute_of};
use crate::storage::{CounterPoint, Lost, Stored};
use otelite_model::{Resource, Scope};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
// foldhash: the ingest path hashes trace and span ids per span (see Cargo.toml).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

/// Requests taken into one transaction at most.
const MAX_GROUP: usize = 64;
/// Spans taken into one transaction at most (a batch is never split): one
/// transaction's WAL is what the files may pass their bounds by (see
/// `files`), so it must stay a few megabytes.
pub const MAX_GROUP_SPANS: usize = 10_000;

/// Spans that went through process and analyze, to be stored.
#[derive(Debug)]
pub struct SpanBatch {
    /// Read-only once built: `documents` refers to the spans by position.
    spans: Vec<SpanRow>,
    /// The search documents of the spans' groups.
    documents: Documents,
    /// Spans counted at process and analyze, per service.
    pub counted: Vec<(String, Stage, u64)>,
    /// Spans of the request lost before the store (invalid ones), by reason.
    pub lost: Vec<Lost>,
    /// When the batch arrived, unix nanoseconds (the minute its counts go to).
    pub received_ns: u64,
}

impl SpanBatch {
    /// Builds the spans' search documents too: this runs on the request's
    /// thread, so the writer has less to do.
    pub fn new(
        spans: Vec<SpanRow>,
        counted: Vec<(String, Stage, u64)>,
        lost: Vec<Lost>,
        received_ns: u64,
    ) -> Self {
        Self {
            documents: Documents::new(&spans),
            spans,
            counted,
            lost,
            received_ns,
        }
    }

    pub fn spans(&self) -> &[SpanRow] {
        &self.spans
    }
}

pub enum WriteOp {
    /// The permit holds the batch's share of the queued-span budget until
    /// the batch is written. The batch is shared with the request, which
    /// frees it once answered (see `reply`).
    Spans(
        Arc<SpanBatch>,
        OwnedSemaphorePermit,
        oneshot::Sender<Result<Stored, StoreError>>,
    ),
    Counters(Vec<CounterPoint>, oneshot::Sender<Result<(), StoreError>>),
}

/// Work that needs the write connection to itself, such as a retention
/// batch: it runs between groups, in its own transactions, so a failure
/// there never fails an ingest batch. It must not delete interned rows
/// (services, resources, scopes): the writer caches their ids. It may
/// delete operations: the writer forgets which it has seen after each job.
pub type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What waits in the writer's queue.
pub enum Queued {
    Write(WriteOp),
    Job(Job),
}

/// What the writer shares with the rest of the store.
pub struct Shared<'a> {
    /// The database file's path, whose files the writer keeps bounded.
    pub db: &'a Path,
    pub files: &'a Files,
    /// Tells readiness whether the latest transaction failed.
    pub last_failed: &'a AtomicBool,
    /// Counts a full disk kept from the file, which the reader adds.
    pub unwritten: &'a Arc<Unwritten>,
}

pub fn run(mut conn: Connection, mut ops: mpsc::Receiver<Queued>, shared: &Shared) {
    let mut state = WriterState::new();
    state.unwritten = shared.unwritten.clone();
    while let Some(first) = ops.blocking_recv() {
        let (group, job) = take_group(first, &mut ops);
        if !group.is_empty() {
            if shared.files.refusing() {
                refuse_spans(&mut conn, &mut state, group, shared.last_failed);
            } else {
                commit_group(&mut conn, &mut state, group, shared.last_failed);
            }
            files::after_commit(&conn, shared.db, shared.files);
        }
        if let Some(job) = job {
            job(&mut conn);
            // A job may forget operations (retention): the cache must not
            // keep one from being recorded again.
            state.operations.clear();
            files::after_commit(&conn, shared.db, shared.files);
        }
    }
    free_pages_at_stop(&conn);
}

/// Free pages are file bytes that hold nothing: at a clean stop, with no
/// write left to reuse them, they go back to the file system (the file
/// shrinks at the final checkpoint, which follows). Bounded, so that a
/// file left with many (a retention run cut short) still stops promptly.
fn free_pages_at_stop(conn: &Connection) {
    /// Steps of `VACUUM_PAGES`: 256 MiB of 4 KiB pages.
    const MAX_STEPS: usize = 64;
    for _ in 0..MAX_STEPS {
        match super::retention::vacuum_step(conn) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot free the file's empty pages at stop");
                return;
            }
        }
    }
}

/// The database is at its size cap (see `files`): the group's spans are
/// refused, booked as lost at the store (`size_cap`) as a failed commit's
/// are, and its counter readings are written as usual.
fn refuse_spans(
    conn: &mut Connection,
    state: &mut WriterState,
    group: Vec<WriteOp>,
    last_failed: &AtomicBool,
) {
    let (spans, counters): (Vec<WriteOp>, Vec<WriteOp>) = group
        .into_iter()
        .partition(|op| matches!(op, WriteOp::Spans(..)));
    keep_stage_counts(conn, state, &spans, SIZE_CAP);
    for op in spans {
        if let WriteOp::Spans(_, _, tx) = op {
            drop(tx.send(Err(StoreError::SizeCap)));
        }
    }
    if !counters.is_empty() {
        commit_group(conn, state, counters, last_failed);
    }
}

/// The writes queued behind `first`, up to the first job, which runs
/// after they are committed.
fn take_group(first: Queued, ops: &mut mpsc::Receiver<Queued>) -> (Vec<WriteOp>, Option<Job>) {
    let mut group = Vec::new();
    let mut spans = 0;
    let mut next = Some(first);
    while let Some(queued) = next.take() {
        match queued {
            Queued::Job(job) => return (group, Some(job)),
            Queued::Write(op) => {
                if let WriteOp::Spans(batch, _, _) = &op {
                    spans += batch.spans.len();
                }
                group.push(op)
            }
        }
        if group.len() < MAX_GROUP && spans < MAX_GROUP_SPANS {
            next = ops.try_recv().ok();
        }
    }
    (group, None)
}

fn commit_group(
    conn: &mut Connection,
    state: &mut WriterState,
    group: Vec<WriteOp>,
    last_failed: &AtomicBool,
) {
    let written = write_group(conn, state, &group);
    last_failed.store(written.is_err(), Ordering::Relaxed);
    match written {
        Ok(results) => {
            state.failed.committed();
            reply(group, results)
        }
        Err(error) => {
            tracing::error!(%error, "write transaction failed");
            // Ids cached during the failed transaction may not exist.
            state.forget_ids();
            state.failed.rolled_back();
            keep_stage_counts(conn, state, &group, WRITE_FAILED);
            fail(group, &error);
        }
    }
}

enum Written {
    Spans(Stored),
    Counters,
}

fn reply(group: Vec<WriteOp>, results: Vec<Written>) {
    for (op, outcome) in group.into_iter().zip(results) {
        // A requester that gave up (timeout, disconnect) no longer listens.
        match (op, outcome) {
            (WriteOp::Spans(batch, permit, tx), Written::Spans(stored)) => {
                // Let go of the batch before answering, so that the
                // request, still holding it, frees its spans on its own
                // thread: work the writer, which sets ingest's pace, need not do.
                drop((batch, permit));
                drop(tx.send(Ok(stored)));
            }
            (WriteOp::Counters(_, tx), Written::Counters) => drop(tx.send(Ok(()))),
            _ => unreachable!("outcomes are produced in op order"),
        }
    }
}

fn fail(group: Vec<WriteOp>, error: &StoreError) {
    for op in group {
        let error = StoreError::WriteFailed(error.to_string());
        match op {
            WriteOp::Spans(_, _, tx) => drop(tx.send(Err(error))),
            WriteOp::Counters(_, tx) => drop(tx.send(Err(error))),
        }
    }
}

/// After a failed commit the spans are lost, but that they were processed
/// and analyzed is still true: keep those counts, and the loss at the
/// store with its cause, so the store stage shows the loss instead of the
/// earlier stages hiding it. They are written at once when the file takes
/// them, else by the next commit (see `unwritten`).
fn keep_stage_counts(
    conn: &mut Connection,
    state: &mut WriterState,
    group: &[WriteOp],
    reason: &'static str,
) {
    for op in group {
        if let WriteOp::Spans(batch, _, _) = op {
            let minute = minute_of(batch.received_ns);
            let key = |service: &str, stage, reason: Option<&str>| CountKey {
                service: service.to_owned(),
                stage,
                reason: reason.map(str::to_owned),
                minute,
            };
            // Spans dropped by a rule are counted when their batch is
            // retried and stored, as the kept ones are (see `failed`),
            // not twice.
            for lost in &batch.lost {
                if crate::analyze::policy::rule_of(&lost.reason).is_none() {
                    let at = key(&lost.service, lost.stage, Some(&lost.reason));
                    state.unwritten.add(at, lost.n);
                }
            }
            // A span that failed before is booked already (see `failed`).
            let new_per_service = state
                .failed
                .remember(&batch.spans, batch.received_ns, reason);
            for (service, n) in new_per_service {
                for stage in [Stage::Process, Stage::Analyze] {
                    state.unwritten.add(key(service, stage, None), n);
                }
                state
                    .unwritten
                    .add(key(service, Stage::Store, Some(reason)), n);
            }
        }
    }
    let result = (|| -> Result<(), StoreError> {
        let tx = begin(conn)?;
        let pending = write_unwritten(&tx, state)?;
        state.unwritten.clone().commit(&pending, || tx.commit())?;
        Ok(())
    })();
    if let Err(error) = result {
        state.forget_ids();
        tracing::error!(%error, "stage counts of a failed write wait for the next commit");
    }
}

/// Writes the counts no commit has taken yet (see `unwritten`) in `tx`;
/// returns them, for [`Unwritten::commit`].
fn write_unwritten(
    tx: &Transaction,
    state: &mut WriterState,
) -> Result<Vec<(CountKey, u64)>, StoreError> {
    let pending = state.unwritten.pending();
    for (key, n) in &pending {
        let service_id = state.service_id(tx, &key.service)?;
        match &key.reason {
            None => add_count(tx, service_id, key.stage, key.minute, clamp(*n))?,
            Some(reason) => add_loss(tx, service_id, key.stage, reason, key.minute, clamp(*n))?,
        }
    }
    Ok(pending)
}

/// Takes back the failures of spans now stored (see `failed`): they count
/// at process and analyze once, from their first try, and are no loss.
fn take_back_failures(
    tx: &Transaction,
    state: &mut WriterState,
    stored: &[&crate::analyze::SpanFacts],
) -> Result<(), StoreError> {
    for (booked, n) in state.failed.forgive(stored.iter().copied()) {
        let service_id = state.service_id(tx, &booked.service)?;
        let n = clamp(n);
        for stage in [Stage::Process, Stage::Analyze] {
            tx.prepare_cached(
                "UPDATE stage_counts SET n = max(n - ?4, 0)
                 WHERE service_id = ?1 AND stage = ?2 AND minute = ?3",
            )?
            .execute(params![service_id, stage.as_str(), booked.minute, n])?;
        }
        tx.prepare_cached(
            "UPDATE stage_losses SET n = max(n - ?5, 0)
             WHERE service_id = ?1 AND stage = ?2 AND reason = ?3 AND minute = ?4",
        )?
        .execute(params![
            service_id,
            Stage::Store.as_str(),
            booked.reason,
            booked.minute,
            n
        ])?;
    }
    Ok(())
}

fn write_group(
    conn: &mut Connection,
    state: &mut WriterState,
    group: &[WriteOp],
) -> Result<Vec<Written>, StoreError> {
    let tx = begin(conn)?;
    // Before any span takes its failure back from them.
    let unwritten = write_unwritten(&tx, state)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for op in group {
        outcomes.push(match op {
            WriteOp::Spans(batch, _, _) => Written::Spans(write_spans(&tx, state, batch)?),
            WriteOp::Counters(points, _) => {
                write_counters(&tx, state, points)?;
                Written::Counters
            }
        });
    }
    groups::insert_pending(&tx, state)?;
    state.unwritten.clone().commit(&unwritten, || tx.commit())?;
    Ok(outcomes)
}

/// `BEGIN IMMEDIATE`: the write lock is taken first, so another writer
/// (a RESTART checkpoint, a maintenance tool) makes this wait out the busy
/// timeout. A deferred transaction would read first and then fail at once
/// with "database is locked" when it tries to upgrade, since SQLite does not
/// wait for a lock upgrade inside a read transaction.
fn begin(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

fn write_spans(
    tx: &Transaction,
    state: &mut WriterState,
    batch: &SpanBatch,
) -> Result<Stored, StoreError> {
    let find_edges = Edges::Find {
        received_ns: batch.received_ns,
    };
    let stored = groups::store_rows(tx, state, &batch.spans, &batch.documents, find_edges)?;
    edges::add(tx, &stored.edges)?;
    take_back_failures(tx, state, &stored.inserted)?;
    // A span already stored (a retried batch) was counted at process and
    // analyze when it first came: counting it again would show rates above
    // 1 and a loss at the store stage that did not happen.
    let counted: Vec<(String, Stage, u64)> = batch
        .counted
        .iter()
        .map(|(service, stage, n)| {
            let seen = stored.duplicates_per_service.get(service.as_str()).copied();
            (service.clone(), *stage, n.saturating_sub(seen.unwrap_or(0)))
        })
        .collect();
    add_counts(tx, state, &counted, batch.received_ns)?;
    add_losses(tx, state, &batch.lost, batch.received_ns)?;
    let conflicts: Vec<Lost> = stored
        .conflicts_per_service
        .iter()
        .map(|(service, n)| Lost {
            service: (*service).to_owned(),
            stage: Stage::Store,
            reason: CONFLICT.to_owned(),
            n: *n,
        })
        .collect();
    add_losses(tx, state, &conflicts, batch.received_ns)?;
    let minute = minute_of(batch.received_ns);
    let mut stored_per_service: HashMap<&str, u64> = HashMap::new();
    for span in &stored.inserted {
        *stored_per_service.entry(span.service()).or_default() += 1;
    }
    for (service, n) in &stored_per_service {
        let service_id = state.service_id(tx, service)?;
        add_count(tx, service_id, Stage::Store, minute, clamp(*n))?;
    }
    let inserted = stored.inserted.len() as u64;
    Ok(Stored {
        inserted,
        duplicates: batch.spans.len() as u64 - inserted - stored.conflicts,
        conflicts: stored.conflicts,
    })
}

fn add_counts(
    tx: &Transaction,
    state: &mut WriterState,
    counted: &[(String, Stage, u64)],
    received_ns: u64,
) -> Result<(), StoreError> {
    let minute = minute_of(received_ns);
    for (service, stage, n) in counted {
        let service_id = state.service_id(tx, service)?;
        add_count(tx, service_id, *stage, minute, clamp(*n))?;
    }
    Ok(())
}

/// Why spans were lost at the store: another span already holds their ids.
pub const CONFLICT: &str = "conflict";
/// Why spans were lost at the store: their transaction failed.
pub const WRITE_FAILED: &str = "write_failed";
/// Why spans were lost at the store: the database was at `--max-db-size`.
pub const SIZE_CAP: &str = "size_cap";

fn add_losses(
    tx: &Transaction,
    state: &mut WriterState,
    lost: &[Lost],
    received_ns: u64,
) -> Result<(), StoreError> {
    let minute = minute_of(received_ns);
    for loss in lost {
        let service_id = state.service_id(tx, &loss.service)?;
        add_loss(
            tx,
            service_id,
            loss.stage,
            &loss.reason,
            minute,
            clamp(loss.n),
        )?;
    }
    Ok(())
}

fn add_loss(
    tx: &Transaction,
    service_id: i64,
    stage: Stage,
    reason: &str,
    minute: i64,
    n: i64,
) -> rusqlite::Result<()> {
    if n == 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO stage_losses (service_id, stage, reason, minute, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![service_id, stage.as_str(), reason, minute, n])?;
    Ok(())
}

fn add_count(
    tx: &Transaction,
    service_id: i64,
    stage: Stage,
    minute: i64,
    n: i64,
) -> rusqlite::Result<()> {
    if n == 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO stage_counts (service_id, stage, minute, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![service_id, stage.as_str(), minute, n])?;
    Ok(())
}

/// Turns exporter counter readings into per-minute increments (see
/// `CounterPoint::increment`): a point with a reason adds to that stage's
/// losses, the others to its count.
fn write_counters(
    tx: &Transaction,
    state: &mut WriterState,
    points: &[CounterPoint],
) -> Result<(), StoreError> {
    for point in points {
        let service_id = state.service_id(tx, &point.service)?;
        let last = if point.cumulative {
            let last: Option<i64> = tx
                .prepare_cached("SELECT last_value FROM exporter_series WHERE service_id = ?1 AND stage = ?2 AND series = ?3")?
                .query_row(params![service_id, point.stage.as_str(), point.series], |r| r.get(0))
                .optional()?;
            tx.prepare_cached(
                "INSERT INTO exporter_series (service_id, stage, series, last_value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET last_value = excluded.last_value",
            )?
            .execute(params![service_id, point.stage.as_str(), point.series, clamp(point.value)])?;
            last.map(|v| v.max(0) as u64)
        } else {
            None
        };
        let increment = point.increment(last);
        let minute = minute_of(point.time_ns);
        match &point.reason {
            Some(reason) => add_loss(tx, service_id, point.stage, reason, minute, increment)?,
            None => add_count(tx, service_id, point.stage, minute, increment)?,
        }
    }
    Ok(())
}

/// SQLite integers are signed; nanosecond times fit until 2262.
pub(super) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Ids the writer has already looked up, so a batch costs no query for
/// names, resources and scopes seen before.
pub(super) struct WriterState {
    services: HashMap<String, i64>,
    resources: HashMap<i64, i64>,
    scopes: HashMap<i64, i64>,
    /// A resource's search tokens by its id: every span group of the
    /// resource carries them, so that one index answers span and resource
    /// attributes alike.
    pub(super) resource_tokens: HashMap<i64, encode::SearchTokens>,
    /// (service id, operation, kind) known to be in `operations`.
    pub(super) operations: HashSet<(i64, String, i32)>,
    /// The id the next block gets; read from the file when unknown.
    next_block_id: Option<i64>,
    /// Blocks of the open transaction, being compressed.
    pub(super) blocks: PendingBlocks,
    /// Search documents (group id, tokens) of the open transaction, added
    /// to FTS5 just before it commits (see `groups::insert_pending`).
    pub(super) documents: Vec<(i64, Arc<str>)>,
    /// Spans of failed commits, whose failure a later commit takes back.
    failed: FailedSpans,
    /// Counts of failed commits not written yet, shared with the reader.
    pub(super) unwritten: Arc<Unwritten>,
}

impl WriterState {
    pub(super) fn new() -> Self {
        Self {
            services: HashMap::new(),
            resources: HashMap::new(),
            scopes: HashMap::new(),
            resource_tokens: HashMap::new(),
            operations: HashSet::new(),
            next_block_id: None,
            blocks: PendingBlocks::default(),
            documents: Vec::new(),
            failed: FailedSpans::default(),
            unwritten: Arc::default(),
        }
    }

    fn forget_ids(&mut self) {
        self.services.clear();
        self.resources.clear();
        self.scopes.clear();
        self.resource_tokens.clear();
        self.operations.clear();
        self.next_block_id = None;
        // The failed transaction's blocks are not stored.
        let _ = self.blocks.take();
        self.documents.clear();
    }

    /// An id for a new block. Blocks are only ever added by this writer,
    /// so ids are handed out here instead of by the insert, which waits for
    /// the block's compression (see `PendingBlocks`).
    pub(super) fn block_id(&mut self, tx: &Transaction) -> rusqlite::Result<i64> {
        let id = match self.next_block_id {
            Some(id) => id,
            None => tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM blocks", [], |r| {
                r.get(0)
            })?,
        };
        self.next_block_id = Some(id + 1);
        Ok(id)
    }

    pub(super) fn service_id(&mut self, tx: &Transaction, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.services.get(name) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO services (name) VALUES (?1)")?
            .execute([name])?;
        let id = tx
            .prepare_cached("SELECT id FROM services WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        self.services.insert(name.to_owned(), id);
        Ok(id)
    }
}

/// Per batch, resources and scopes by `Arc` identity: the spans of one
/// request share them, so each is encoded and hashed once per batch.
#[derive(Default)]
pub(super) struct BatchIds {
    resources: HashMap<*const Resource, i64>,
    scopes: HashMap<*const Scope, i64>,
}

impl BatchIds {
    pub(super) fn resource(
        &mut self,
        tx: &Transaction,
        state: &mut WriterState,
        resource: &Arc<Resource>,
    ) -> rusqlite::Result<i64> {
        if let Some(id) = self.resources.get(&Arc::as_ptr(resource)) {
            return Ok(*id);
        }
        let body = encode::resource_body(resource);
        let hash = encode::stable_hash(&[&body]);
        let id = match state.resources.get(&hash) {
            Some(id) => *id,
            None => {
                let id = match find_body(tx, "resources", hash)? {
                    Some(id) => id,
                    None => insert_resource(tx, state, resource, hash, &body)?,
                };
                state.resources.insert(hash, id);
                state
                    .resource_tokens
                    .insert(id, encode::attribute_tokens(&resource.attributes));
                id
            }
        };
        self.resources.insert(Arc::as_ptr(resource), id);
        Ok(id)
    }

    pub(super) fn scope(
        &mut self,
        tx: &Transaction,
        state: &mut WriterState,
        scope: &Arc<Scope>,
    ) -> rusqlite::Result<i64> {
        if let Some(id) = self.scopes.get(&Arc::as_ptr(scope)) {
            return Ok(*id);
        }
        let body = encode::scope_body(scope);
        let hash = encode::stable_hash(&[&body]);
        let id = match state.scopes.get(&hash) {
            Some(id) => *id,
            None => {
                let id = match find_body(tx, "scopes", hash)? {
                    Some(id) => id,
                    None => {
                        tx.prepare_cached("INSERT INTO scopes (hash, body) VALUES (?1, ?2)")?
                            .execute(params![hash, body])?;
                        tx.last_insert_rowid()
                    }
                };
                state.scopes.insert(hash, id);
                id
            }
        };
        self.scopes.insert(Arc::as_ptr(scope), id);
        Ok(id)
    }
}

/// The id of a stored resource or scope with this body hash, if any.
fn find_body(tx: &Transaction, table: &str, hash: i64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(&format!("SELECT id FROM {table} WHERE hash = ?1"))?
        .query_row([hash], |r| r.get(0))
        .optional()
}

/// Stores a new resource.
fn insert_resource(
    tx: &Transaction,
    state: &mut WriterState,
    resource: &Resource,
    hash: i64,
    body: &[u8],
) -> rusqlite::Result<i64> {
    let service_id = state.service_id(tx, &resource.service_name)?;
    tx.prepare_cached("INSERT INTO resources (hash, service_id, body) VALUES (?1, ?2, ?3)")?
        .execute(params![hash, service_id, body])?;
    Ok(tx.last_insert_rowid())
}
