//! Overload: the real `otelite serve` with a small write queue under a load
//! of several times what it can store. Requests past the queue get 503 (or
//! 429) with `Retry-After`, never another 5xx; acknowledged spans are all
//! stored and refused ones not at all; the process's peak memory stays
//! under a ceiling derived from the queue bounds and the request sizes.
//! Then the official Python client, refused while the store is held busy,
//! backs off and retries, and its spans arrive once the pressure is gone.
//! Every test runs on both stores; a busy SQLite is a held write lock, a
//! busy ClickHouse a frozen server (SIGSTOP).

use crate::support::clickhouse::ClickHouseServer;
use crate::support::foreign::{self, Sent};
use crate::support::ledger::{self, Load, LoadSpec};
use crate::support::process::{ServeProcess, long_tests};
use crate::support::stores::StoreAt;
use crate::support::{Store, WAIT, for_each_store};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const SERVICE: &str = "overload-load";
const QUEUED_REQUESTS: usize = 2;
const QUEUED_SPANS: usize = 4_000;
const SENDERS: usize = 16;
const SPANS_PER_BATCH: usize = 2_000;

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    overload_is_refused_with_retry_after_and_memory_stays_bounded
);
async fn overload_is_refused_with_retry_after_and_memory_stays_bounded(store: Store) {
    // One store's run at a time: the two floods side by side on 2 cores
    // starve each process, which then holds more bodies at once (with
    // mimalloc, about twice the peak of a run alone).
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let at = StoreAt::new(store, dir.path(), "overload").await;
    let (requests, spans) = (QUEUED_REQUESTS.to_string(), QUEUED_SPANS.to_string());
    let backend = at
        .serve(&["--write-queue", &requests, "--max-queued-spans", &spans])
        .await;
    let idle = backend.peak_rss_bytes();
    let load = Load::start(
        &backend.otlp_url(),
        &LoadSpec {
            service: SERVICE.to_owned(),
            senders: SENDERS,
            spans_per_batch: SPANS_PER_BATCH,
            batches_per_sender: Some(if long_tests() { 40 } else { 6 }),
            stop_on_connection_error: false,
        },
    );
    let ledger = load.join().await;
    let peak = backend.peak_rss_bytes();

    ledger.assert_no_problems();
    assert_eq!(
        ledger.count(0),
        0,
        "no broken connection: {:?}",
        ledger.statuses
    );
    let refused = ledger.count(503) + ledger.count(429);
    assert!(
        refused > 0 && ledger.count(200) > 0,
        "some requests stored, some refused: {:?}",
        ledger.statuses
    );
    // What the backend may hold at once: SQLite's page cache (the writer's
    // `cache_size`; on ClickHouse the same allowance covers the writer's
    // INSERT body and "already stored?" reply instead), every in-flight body
    // with its decoded form (a body is read before the queue can refuse it),
    // and the queued spans; each with a generous factor. An unbounded queue
    // under this load grows far past it (hundreds of thousands of spans at
    // more than 1 KiB each).
    let body = ledger::batch(SERVICE, SPANS_PER_BATCH).body.len() as u64;
    let ceiling = idle
        + SQLITE_CACHE
        + SENDERS as u64 * body * 24
        + QUEUED_SPANS as u64 * 8 * 1024
        + 32 * MIB;
    println!(
        "overload on {store:?}: statuses {:?}; peak RSS {} MiB (idle {} MiB, ceiling {} MiB, body {} KiB)",
        ledger.statuses,
        peak / MIB,
        idle / MIB,
        ceiling / MIB,
        body / 1024
    );
    assert!(
        peak < ceiling,
        "peak RSS {peak} B over the ceiling {ceiling} B (idle {idle} B)"
    );
    let (_, stored) = at.check(ledger, SERVICE).await;
    assert!(stored.spans > 0);
    drop(backend);
}

const MIB: u64 = 1024 * 1024;
/// The writer connection's page cache (`PRAGMA cache_size = -65536`).
const SQLITE_CACHE: u64 = 64 * MIB;

/// One gauge or counter sample from `/metrics`, by its full series name.
async fn metric(backend: &ServeProcess, series: &str) -> u64 {
    crate::support::metric_sample(backend.query_url("/metrics"), series)
        .await
        .map(|value| value as u64)
        .unwrap_or_else(|| panic!("/metrics has no sample {series}"))
}

async fn wait_metric(backend: &ServeProcess, series: &str, done: impl Fn(u64) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = metric(backend, series).await;
        if done(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{series} stuck at {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Forwards every connection from `listener` to `upstream`; returns once
/// the first one has arrived, and forwards it only when `open` fires.
async fn hold_first_connection(
    listener: TcpListener,
    upstream: std::net::SocketAddr,
    open: tokio::sync::oneshot::Receiver<()>,
) {
    let (first, _) = tokio::time::timeout(WAIT * 2, listener.accept())
        .await
        .expect("the Python client connects")
        .expect("accept");
    tokio::spawn(async move {
        let _ = open.await;
        forward(first, upstream).await;
        while let Ok((next, _)) = listener.accept().await {
            tokio::spawn(forward(next, upstream));
        }
    });
}

async fn forward(mut inbound: TcpStream, upstream: std::net::SocketAddr) {
    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}

/// A store held busy by the test.
enum Busy {
    /// SQLite's write lock, taken by a connection of the test's own.
    Sqlite(rusqlite::Connection),
    /// The ClickHouse server, frozen by SIGSTOP.
    ClickHouse(Arc<ClickHouseServer>),
}

impl Busy {
    fn hold(at: &StoreAt) -> Self {
        match at {
            StoreAt::Sqlite { db } => {
                let lock = rusqlite::Connection::open(db).expect("open the database");
                lock.execute_batch("BEGIN IMMEDIATE")
                    .expect("take the write lock");
                Self::Sqlite(lock)
            }
            StoreAt::ClickHouse { server, .. } => {
                server.signal("STOP");
                Self::ClickHouse(server.clone())
            }
        }
    }

    fn release(self) {
        match self {
            Self::Sqlite(lock) => lock.execute_batch("ROLLBACK").expect("let the lock go"),
            Self::ClickHouse(server) => server.signal("CONT"),
        }
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    python_client_backs_off_on_503_and_its_spans_arrive
);
/// The store is made busy on purpose: the test holds it (see `Busy`) and a
/// batch fills the whole span budget, so the Python client's first request
/// is refused with 503 for certain; the store is let go as soon as the
/// refusal is counted, and the client's retry must then get through. On
/// ClickHouse the frozen server is one of the test's own.
async fn python_client_backs_off_on_503_and_its_spans_arrive(store: Store) {
    let python = foreign::python();
    let dir = tempfile::tempdir().expect("temp dir");
    let at = busy_store(store, dir.path()).await;
    let backend = at.serve(&["--max-queued-spans", "100"]).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let front = format!("http://{}", listener.local_addr().expect("address"));
    let script = foreign::clients_dir().join("python/client.py");
    // Spawned now (not a lazy future): the client must start while we wait.
    let client = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([front.as_str(), "overload-retry", "proto"])
            .output()
            .expect("run the Python client")
    });
    let (open_tx, open_rx) = tokio::sync::oneshot::channel();
    hold_first_connection(listener, backend.otlp, open_rx).await;

    // The client is connected and waiting: make the store busy.
    let busy = Busy::hold(&at);
    let filler = ledger::batch("overload-filler", 100);
    let url = format!("{}/v1/traces", backend.otlp_url());
    let filler =
        tokio::spawn(async move { ledger::post(&reqwest::Client::new(), &url, filler.body).await });
    wait_metric(&backend, "otelite_write_queue_spans", |n| n == 100).await;
    let _ = open_tx.send(());
    wait_metric(
        &backend,
        "otelite_requests_rejected_total{reason=\"overloaded\"}",
        |n| n >= 1,
    )
    .await;
    busy.release();

    let output = tokio::time::timeout(WAIT * 2, client)
        .await
        .expect("the Python client finishes")
        .expect("client thread");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "Python client failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("retrying"),
        "the client logs its retry after the 503:\n{stderr}"
    );
    let filler = filler.await.expect("filler task");
    assert!(
        matches!(filler, ledger::Outcome::Acked),
        "the batch queued behind the lock is stored once it is let go: {filler:?}\n{}",
        backend.stderr()
    );
    let sent: Sent = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("client result line ({e}): {stdout}"));
    let (status, trace) =
        get_json(&backend, &format!("/api/otelite/traces/{}", sent.trace_id)).await;
    assert_eq!(status, 200, "{trace}");
    let spans: Vec<otelite_model::Span> =
        serde_json::from_value(trace["spans"].clone()).expect("spans in the model's shape");
    let mut stored: Vec<String> = spans.iter().map(|s| s.span_id.to_hex()).collect();
    let mut expected: Vec<String> = sent.spans.values().cloned().collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "the client's four spans, each once");
}

/// A store for the test above: SQLite in `dir`, or ClickHouse on a server
/// of its own (freezing the shared one would stall other tests).
async fn busy_store(store: Store, dir: &Path) -> StoreAt {
    match store {
        Store::Sqlite => StoreAt::new(store, dir, "busy").await,
        Store::ClickHouse => {
            let server = Arc::new(ClickHouseServer::start().await);
            StoreAt::on_server(server, dir, "busy")
        }
    }
}

async fn get_json(backend: &ServeProcess, path: &str) -> (u16, serde_json::Value) {
    let reply = reqwest::get(backend.query_url(path)).await.expect("GET");
    let status = reply.status().as_u16();
    (status, reply.json().await.expect("JSON body"))
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread")]
    requests_past_the_concurrency_limit_get_503_at_once
);
/// Requests past `max_concurrent_requests` get 503 with `Retry-After` before
/// their body is kept, so the bodies held in memory stay bounded; the
/// permit comes back when the request in flight ends.
async fn requests_past_the_concurrency_limit_get_503_at_once(store: Store) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = crate::support::Backend::start_on(store, "overload", |config| {
        config.max_concurrent_requests = 1;
    })
    .await;
    // A request whose chunked body never ends holds the only permit. On a
    // busy machine a probe can overtake its head and take the permit first:
    // the held request is then refused (it has an answer), so hold again.
    let hold = || async {
        let mut held = TcpStream::connect(backend.otlp).await.expect("connect");
        held.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .expect("send a head");
        held
    };
    let mut held = hold().await;
    let post = || backend.post("/v1/traces", "application/x-protobuf", None, Vec::new());
    let deadline = std::time::Instant::now() + WAIT;
    let refused = loop {
        let reply = post().await;
        if reply.status == 503 || std::time::Instant::now() > deadline {
            break reply;
        }
        let mut peek = [0u8; 1];
        if !matches!(held.try_read(&mut peek), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        {
            held = hold().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        refused.status, 503,
        "a second request while one is in flight"
    );
    assert!(refused.retry_after.is_some(), "503 carries Retry-After");

    // Ending the held request (an empty body: a valid, empty export) frees it.
    held.write_all(b"0\r\n\r\n").await.expect("end the body");
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(WAIT, held.read_exact(&mut answer))
        .await
        .expect("the held request is answered")
        .expect("read the answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert_eq!(post().await.status, 200, "the permit came back");
}
