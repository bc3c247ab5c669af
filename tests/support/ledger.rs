//! The acknowledged-span ledger: concurrent senders post OTLP protobuf
//! batches with ids unique to the run and record, span by span, what the
//! backend acknowledged (a 2xx with no `rejected_spans`), refused (429/503)
//! or left unknown (no answer: the connection broke). `check_database`
//! then holds a database file to it: every acknowledged span stored exactly
//! once, nothing stored that was never sent, `N_store` equal to the rows,
//! and `PRAGMA integrity_check` ok. `check_clickhouse` holds a ClickHouse
//! database to the same (both of its span tables), and `check_api` the
//! query API of a running otelite.

use super::WAIT;
use super::clickhouse::ClickHouseServer;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelite_model::TraceId;
use prost::Message;
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// A span's identity in the store: trace id and span id.
pub type SpanKey = ([u8; 16], [u8; 8]);

/// One request body and the spans in it.
#[derive(Debug, Clone)]
pub struct Batch {
    pub keys: Vec<SpanKey>,
    pub body: Vec<u8>,
}

/// Builds a batch: one trace of `spans` spans (a root and its children)
/// from `service`, with ids no other batch of this test run has.
pub fn batch(service: &str, spans: usize) -> Batch {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let run = run_nonce();
    let first = NEXT.fetch_add(spans as u64 + 1, Ordering::Relaxed);
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&run.to_be_bytes());
    trace_id[8..].copy_from_slice(&first.to_be_bytes());
    let span_id = |i: usize| ((run << 40) | (first + i as u64)).to_be_bytes();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let otlp_spans: Vec<Span> = (0..spans)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id(i).to_vec(),
            parent_span_id: if i == 0 { vec![] } else { span_id(0).to_vec() },
            name: if i == 0 { "request" } else { "step" }.to_owned(),
            kind: if i == 0 { 2 } else { 1 },
            start_time_unix_nano: now + i as u64,
            end_time_unix_nano: now + 1_000_000 + i as u64,
            attributes: vec![string("load.index", &i.to_string())],
            ..Span::default()
        })
        .collect();
    let keys = otlp_spans.iter().map(|_| trace_id).zip(0..spans);
    let keys = keys.map(|(t, i)| (t, span_id(i))).collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: otlp_spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    Batch {
        keys,
        body: request.encode_to_vec(),
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// Differs between test runs, so ids never meet those of an earlier run.
fn run_nonce() -> u64 {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NONCE.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (nanos ^ u64::from(std::process::id()) << 32) & 0x00ff_ffff | 0x0040_0000
    })
}

/// What one POST came to.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx and no span rejected: the spans are committed.
    Acked,
    /// 429 or 503 (with the `Retry-After` value, if any): nothing stored.
    Refused {
        status: u16,
        retry_after: Option<String>,
    },
    /// No complete answer: the spans may or may not be stored.
    Unknown(String),
    /// Anything else, which these tests never expect.
    Unexpected(String),
}

/// Posts one protobuf body to `url` (`…/v1/traces`).
pub async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Outcome {
    send(client.post(url).body(body)).await
}

/// Posts one protobuf body gzip'd, as SDKs send big batches.
pub async fn post_gzip(client: &reqwest::Client, url: &str, body: &[u8]) -> Outcome {
    use std::io::Write as _;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(body).expect("gzip into memory");
    let body = gzip.finish().expect("gzip into memory");
    send(
        client
            .post(url)
            .header("content-encoding", "gzip")
            .body(body),
    )
    .await
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let sent = request
        .header("content-type", "application/x-protobuf")
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Outcome::Unknown(format!("{e:?}")),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return Outcome::Unknown(format!("{status} with an unreadable body: {e:?}")),
    };
    match status {
        200..=299 => match ExportTraceServiceResponse::decode(&body[..]) {
            Ok(reply) => match reply.partial_success {
                Some(p) if p.rejected_spans > 0 => Outcome::Unexpected(format!(
                    "{status} rejecting {} valid spans: {}",
                    p.rejected_spans, p.error_message
                )),
                _ => Outcome::Acked,
            },
            Err(e) => Outcome::Unexpected(format!("{status} with an undecodable body: {e}")),
        },
        429 | 503 => Outcome::Refused {
            status,
            retry_after,
        },
        _ => Outcome::Unexpected(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// What the senders saw, span by span.
#[derive(Debug, Default)]
pub struct Ledger {
    pub acked: HashSet<SpanKey>,
    /// Sent without a complete answer; kept whole so a test can retry them.
    pub unknown: Vec<Batch>,
    pub refused: HashSet<SpanKey>,
    /// Answers by status code; 0 counts broken connections.
    pub statuses: BTreeMap<u16, u64>,
    /// 503s or 429s without a `Retry-After` of whole seconds.
    pub missing_retry_after: u64,
    /// Answers no test expects (an unexpected status, rejected spans).
    pub problems: Vec<String>,
}

impl Ledger {
    pub fn record(&mut self, batch: Batch, outcome: Outcome) {
        match outcome {
            Outcome::Acked => {
                *self.statuses.entry(200).or_default() += 1;
                self.acked.extend(batch.keys);
            }
            Outcome::Refused {
                status,
                retry_after,
            } => {
                *self.statuses.entry(status).or_default() += 1;
                if retry_after.is_none_or(|v| v.trim().parse::<u64>().is_err()) {
                    self.missing_retry_after += 1;
                }
                self.refused.extend(batch.keys);
            }
            Outcome::Unknown(_) => {
                *self.statuses.entry(0).or_default() += 1;
                self.unknown.push(batch);
            }
            Outcome::Unexpected(problem) => {
                self.problems.push(problem);
                self.unknown.push(batch);
            }
        }
    }

    pub fn merge(&mut self, other: Ledger) {
        self.acked.extend(other.acked);
        self.unknown.extend(other.unknown);
        self.refused.extend(other.refused);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.missing_retry_after += other.missing_retry_after;
        self.problems.extend(other.problems);
    }

    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or_default()
    }

    fn unknown_keys(&self) -> HashSet<SpanKey> {
        self.unknown
            .iter()
            .flat_map(|b| b.keys.iter().copied())
            .collect()
    }

    /// Panics unless every answer was one the tests expect.
    pub fn assert_no_problems(&self) {
        assert!(
            self.problems.is_empty(),
            "unexpected answers: {:#?}",
            self.problems
        );
        assert_eq!(
            self.missing_retry_after, 0,
            "429/503 without Retry-After; statuses {:?}",
            self.statuses
        );
    }
}

/// How a load is shaped.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub service: String,
    pub senders: usize,
    pub spans_per_batch: usize,
    /// Requests per sender; `None` sends until stopped.
    pub batches_per_sender: Option<usize>,
    /// A sender stops at its first broken connection (the backend is gone).
    pub stop_on_connection_error: bool,
}

/// Senders running against one OTLP endpoint.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked_batches: Arc<AtomicU64>,
    senders: Vec<JoinHandle<Ledger>>,
}

impl Load {
    pub fn start(otlp_url: &str, spec: &LoadSpec) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked_batches = Arc::new(AtomicU64::new(0));
        let url = format!("{otlp_url}/v1/traces");
        let senders = (0..spec.senders)
            .map(|_| {
                let sender = Sender {
                    url: url.clone(),
                    spec: spec.clone(),
                    stop: stop.clone(),
                    acked_batches: acked_batches.clone(),
                };
                tokio::spawn(sender.run())
            })
            .collect();
        Self {
            stop,
            acked_batches,
            senders,
        }
    }

    /// Waits until at least `n` batches were acknowledged.
    pub async fn wait_acked(&self, n: u64) {
        let deadline = Instant::now() + WAIT;
        while self.acked_batches.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "the load got fewer than {n} batches acknowledged within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Tells the senders to stop after their current request, and collects
    /// their ledgers.
    pub async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    /// Waits for the senders to end on their own (their batch count, or a
    /// broken connection), and collects their ledgers.
    pub async fn join(self) -> Ledger {
        let mut ledger = Ledger::default();
        for sender in self.senders {
            let part = tokio::time::timeout(WAIT * 4, sender)
                .await
                .expect("a sender ends within the wait")
                .expect("a sender did not panic");
            ledger.merge(part);
        }
        ledger
    }
}

struct Sender {
    url: String,
    spec: LoadSpec,
    stop: Arc<AtomicBool>,
    acked_batches: Arc<AtomicU64>,
}

impl Sender {
    async fn run(self) -> Ledger {
        let client = reqwest::Client::builder()
            .timeout(WAIT * 2)
            .build()
            .expect("HTTP client");
        let mut ledger = Ledger::default();
        let mut sent = 0;
        while !self.stop.load(Ordering::Relaxed)
            && self.spec.batches_per_sender.is_none_or(|n| sent < n)
        {
            let batch = batch(&self.spec.service, self.spec.spans_per_batch);
            let outcome = post(&client, &self.url, batch.body.clone()).await;
            sent += 1;
            let broken = matches!(outcome, Outcome::Unknown(_));
            if matches!(outcome, Outcome::Acked) {
                self.acked_batches.fetch_add(1, Ordering::Relaxed);
            }
            ledger.record(batch, outcome);
            if broken && self.spec.stop_on_connection_error {
                break;
            }
        }
        ledger
    }
}

/// What the database holds for the ledger's spans.
#[derive(Debug)]
pub struct Stored {
    pub spans: u64,
    pub n_store: u64,
}

/// Holds the database file to the ledger (see the module doc); `service`
/// must be the only service whose spans are in the file. Blocking.
pub fn check_database(db: &Path, ledger: &Ledger, service: &str) -> Stored {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let integrity: Vec<String> = query_column(&conn, "PRAGMA integrity_check");
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");

    // Every span as the store reads it back: from its compressed block.
    let mut stored: HashMap<SpanKey, u32> = HashMap::new();
    let trace_ids: Vec<Vec<u8>> = conn
        .prepare("SELECT trace_id FROM traces")
        .expect("prepare trace listing")
        .query_map([], |row| row.get(0))
        .expect("list traces")
        .collect::<Result<_, _>>()
        .expect("read trace ids");
    for trace_id in trace_ids {
        let trace_id = TraceId::from_slice(&trace_id).expect("16-byte trace id");
        let spans = otelite_backend::storage::sqlite::trace(&conn, &trace_id)
            .expect("read a trace")
            .unwrap_or_default();
        for span in spans {
            *stored.entry((trace_id.0, span.span_id.0)).or_default() += 1;
        }
    }
    assert_ledger(&stored, ledger, "the database");

    let spans = stored.len() as u64;
    let n_store: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(c.n), 0) FROM stage_counts c JOIN services s ON s.id = c.service_id
             WHERE s.name = ?1 AND c.stage = 'store'",
            [service],
            |r| r.get(0),
        )
        .expect("read N_store");
    assert_eq!(
        n_store as u64, spans,
        "N_store of {service} equals its stored rows"
    );
    let off: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM traces t WHERE t.span_count !=
                 (SELECT COALESCE(SUM(g.span_count), 0) FROM span_groups g WHERE g.trace_ref = t.id)",
            [],
            |r| r.get(0),
        )
        .expect("compare trace summaries with spans");
    assert_eq!(off, 0, "traces whose span_count disagrees with their spans");
    Stored {
        spans,
        n_store: n_store as u64,
    }
}

/// Every acknowledged span stored, none twice, none refused or never sent.
fn assert_ledger(stored: &HashMap<SpanKey, u32>, ledger: &Ledger, place: &str) {
    let unknown = ledger.unknown_keys();
    let missing: Vec<_> = ledger
        .acked
        .iter()
        .filter(|k| !stored.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{place}: {} of {} acknowledged spans are missing, e.g. {:02x?}",
        missing.len(),
        ledger.acked.len(),
        missing.first()
    );
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{place}: spans stored more than once: {twice:02x?}"
    );
    let foreign: Vec<_> = stored
        .keys()
        .filter(|k| !ledger.acked.contains(k) && !unknown.contains(k))
        .collect();
    assert!(
        foreign.is_empty(),
        "{place}: {} stored spans were refused or never sent, e.g. {:02x?}",
        foreign.len(),
        foreign.first()
    );
}

fn query_column(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn.prepare(sql).expect("prepare");
    statement
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Parses `hex(trace_id) TAB hex(span_id) TAB count` lines.
fn span_counts(tsv: &str) -> HashMap<SpanKey, u32> {
    tsv.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let id = |i: usize| hex::decode(cells.get(i).copied().unwrap_or_default());
            let parsed = (|| {
                let trace: [u8; 16] = id(0).ok()?.try_into().ok()?;
                let span: [u8; 8] = id(1).ok()?.try_into().ok()?;
                Some(((trace, span), cells.get(2)?.parse().ok()?))
            })();
            parsed.unwrap_or_else(|| panic!("not a span count line: {line:?}"))
        })
        .collect()
}

/// Holds a ClickHouse database to the ledger, as `check_database` does a
/// file: each span table (the search copy `spans` and the trace-ordered
/// `spans_by_trace`) holds every acknowledged span once and nothing else,
/// and `N_store` equals the spans stored. ClickHouse has no stored trace
/// summaries (they are computed from `spans_by_trace` when asked).
pub async fn check_clickhouse(
    server: &ClickHouseServer,
    database: &str,
    ledger: &Ledger,
    service: &str,
) -> Stored {
    // A killed otelite's last INSERT may still be running in ClickHouse (it
    // had sent the whole body): let the server finish what it was given.
    // The server is shared, so this waits for any test's span INSERT, at
    // most `WAIT`; they take milliseconds.
    super::eventually(
        || {
            server.sql(
                "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO spans_in%'",
            )
        },
        |running| running.trim() == "0",
    )
    .await;
    let mut tables = Vec::new();
    for table in ["spans_by_trace", "spans"] {
        let tsv = server
            .sql(&format!(
                "SELECT hex(trace_id), hex(span_id), count() FROM {database}.{table} \
                 GROUP BY trace_id, span_id"
            ))
            .await;
        let stored = span_counts(&tsv);
        assert_ledger(&stored, ledger, &format!("ClickHouse {database}.{table}"));
        tables.push(stored);
    }
    let only_one: Vec<_> = tables[0]
        .keys()
        .filter(|k| !tables[1].contains_key(k))
        .chain(tables[1].keys().filter(|k| !tables[0].contains_key(k)))
        .collect();
    assert!(
        only_one.is_empty(),
        "{} spans are in only one of spans_by_trace ({}) and spans ({}), e.g. {:02x?}",
        only_one.len(),
        tables[0].len(),
        tables[1].len(),
        only_one.first()
    );
    let spans = tables[0].len() as u64;
    let n_store = server
        .sql(&format!(
            "SELECT sum(n) FROM {database}.stage_counts WHERE service = '{service}' AND stage = 'store'"
        ))
        .await;
    let n_store: u64 = n_store
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("N_store {n_store:?}: {e}"));
    assert_eq!(
        n_store, spans,
        "N_store of {service} equals its stored spans"
    );
    Stored { spans, n_store }
}

/// Asks a running otelite (`query` is its query listener's base URL) for
/// every trace with an acknowledged span: each answers with all of its
/// acknowledged spans, once each, and nothing that was refused or never sent.
pub async fn check_api(query: &str, ledger: &Ledger) {
    let unknown = ledger.unknown_keys();
    let mut traces: HashMap<[u8; 16], HashSet<[u8; 8]>> = HashMap::new();
    for (trace, span) in &ledger.acked {
        traces.entry(*trace).or_default().insert(*span);
    }
    let client = reqwest::Client::new();
    for (trace, acked) in traces {
        let url = format!("{query}/api/otelite/traces/{}", hex::encode(trace));
        let reply = client.get(&url).send().await.expect("GET a trace");
        let status = reply.status().as_u16();
        let body: serde_json::Value = reply.json().await.expect("trace JSON");
        assert_eq!(status, 200, "{url}: {body}");
        let spans = body["spans"].as_array().cloned().unwrap_or_default();
        let ids: Vec<[u8; 8]> = spans
            .iter()
            .filter_map(|s| s["spanId"].as_str())
            .filter_map(|id| hex::decode(id).ok()?.try_into().ok())
            .collect();
        assert_eq!(ids.len(), spans.len(), "{url}: span ids: {body}");
        let unique: HashSet<[u8; 8]> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{url}: a span twice");
        assert!(
            acked.is_subset(&unique),
            "{url}: acknowledged spans missing"
        );
        assert!(
            unique
                .iter()
                .all(|s| acked.contains(s) || unknown.contains(&(trace, *s))),
            "{url}: a span that was refused or never sent"
        );
    }
}
