//! The receiver over a real socket, where a test needs to hold the store's
//! writer: a client that hangs up after its body is in.

use super::{Limits, ReceiveState, router};
use crate::metrics::Metrics;
use crate::storage::QueueLimits;
use crate::storage::sqlite::SqliteStore;
use crate::test_fixtures as fixtures;
use otelite_model::otlp::to_otlp;
use prost::Message;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Waits (polling, up to a minute) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

/// Held by the writer until the test lets go, so a request's commit waits.
fn hold_writer(store: &SqliteStore) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let store = store.clone();
    tokio::spawn(async move {
        let _ = store
            .run_job(move |_| {
                let _ = held.recv();
            })
            .await;
    });
    release
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_client_hung_up_is_counted_as_accepted()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = SqliteStore::open(
        &dir.path().join("t.db"),
        QueueLimits {
            requests: 16,
            spans: 10_000,
        },
    )?;
    let metrics = Arc::new(Metrics::default());
    let state = ReceiveState::new(
        store.clone(),
        Limits::with_body_limit(1 << 20),
        metrics.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let release = hold_writer(&store);
    let spans: Vec<_> = (1..=20).map(|i| fixtures::span(9, i).build()).collect();
    let body = to_otlp(&spans).encode_to_vec();
    let mut socket = std::net::TcpStream::connect(addr)?;
    write!(
        socket,
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    socket.write_all(&body)?;
    // Decoded and queued behind the held writer: now the client goes.
    until("the request is decoded", || metrics.received() == 20).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(())?;
    until("the committed spans are counted", || {
        metrics.accepted() == 20
    })
    .await;

    server.abort();
    drop(store);
    writer.join();
    Ok(())
}
