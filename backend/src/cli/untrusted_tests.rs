//! `--server` against a server that misbehaves on purpose, a raw TCP one on
//! 127.0.0.1 written here: pages that never end, answers too large, a
//! server slow enough to hold a command forever. Each must end the command
//! with an error that says what the server did.

use super::source::{COMMAND_TIMEOUTS, MAX_PAGES, PagingError};
use super::*;
use crate::storage::remote::{MAX_LIST_BYTES, MAX_TRACE_BYTES};
use clap::Parser;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Serves every request with `answer(request number, path)` as a 200 JSON
/// body, one request per connection, from a thread, until the process ends.
fn hostile(
    answer: impl Fn(usize, &str) -> Vec<u8> + Send + Sync + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let answer = Arc::new(answer);
    let served = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let (answer, served) = (answer.clone(), served.clone());
            std::thread::spawn(move || {
                let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = reply(socket, |path| answer(n, path));
            });
        }
    });
    Ok(addr)
}

fn reply(socket: TcpStream, answer: impl Fn(&str) -> Vec<u8>) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let body = answer(&path);
    let mut socket = socket;
    write!(
        socket,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    socket.write_all(&body)
}

/// A search page of `traces` one-span summaries and `next` as its cursor.
fn page(traces: usize, next: Option<String>) -> Vec<u8> {
    let summary = |i: usize| {
        serde_json::json!({
            "traceId": format!("{:032x}", i + 1),
            "rootService": "shop", "rootName": "GET /",
            "startTimeUnixNano": 1, "endTimeUnixNano": 2, "durationNanos": 1,
            "spanCount": 1, "errorCount": 0, "orphanSpanCount": 0, "services": [],
        })
    };
    let traces: Vec<_> = (0..traces).map(summary).collect();
    serde_json::to_vec(&serde_json::json!({"traces": traces, "nextCursor": next}))
        .unwrap_or_default()
}

fn cursor(n: usize) -> String {
    format!("{n}-{:032x}", n + 1)
}

async fn run_against(addr: SocketAddr, args: &[&str]) -> Result<String, CliError> {
    let url = format!("http://{addr}");
    let mut argv = vec!["otelite"];
    argv.extend(args);
    argv.extend(["--server", url.as_str()]);
    let cli = Cli::try_parse_from(argv).map_err(|e| CliError::BadArgument(e.to_string()))?;
    let context = Context {
        colour: false,
        now_ns: 1_714_564_800_000_000_000,
        var: |_| None,
    };
    let mut out = Vec::new();
    run(&cli.command, &mut out, context).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_pages_that_name_a_next_page_end_the_search() -> TestResult {
    let addr = hostile(|n, _| page(0, Some(cursor(n))))?;
    let error = run_against(addr, &["traces", "--limit", "5"])
        .await
        .expect_err("an endless search");
    assert!(
        matches!(
            error,
            CliError::Paging {
                source: PagingError::EmptyWithCursor { page: 1 },
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("http://{addr}")) && message.contains("empty but named a next"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_does_not_move_ends_the_search() -> TestResult {
    // One trace a page, always "continue at 7": the same page forever.
    let addr = hostile(|_, _| page(1, Some(cursor(7))))?;
    let error = run_against(addr, &["traces", "--limit", "5"])
        .await
        .expect_err("a stuck cursor");
    assert!(
        matches!(
            &error,
            CliError::Paging {
                source: PagingError::SameCursor { page: 2, cursor: stuck },
                ..
            } if *stuck == cursor(7)
        ),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_brings_one_trace_a_page_stops_at_the_page_cap() -> TestResult {
    let addr = hostile(|n, _| page(1, Some(cursor(n))))?;
    let error = run_against(addr, &["traces", "--limit", "10000"])
        .await
        .expect_err("too many pages");
    assert!(
        matches!(
            error,
            CliError::Paging {
                source: PagingError::TooManyPages,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&format!("{MAX_PAGES} pages")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_past_its_cap_is_refused_naming_the_cap() -> TestResult {
    let addr = hostile(|_, path| {
        let filler = "s".repeat(1000);
        let count = if path.contains("/traces/") {
            MAX_TRACE_BYTES
        } else {
            MAX_LIST_BYTES
        } / 1000
            + 10;
        let names = vec![filler; count];
        serde_json::to_vec(&serde_json::json!({"services": names, "spans": []})).unwrap_or_default()
    })?;
    let error = run_against(addr, &["services"])
        .await
        .expect_err("too large");
    assert!(
        matches!(error, CliError::Remote(RemoteError::TooLarge { limit, .. }) if limit == MAX_LIST_BYTES),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("{} MiB", MAX_LIST_BYTES >> 20)),
        "{error}"
    );
    let id = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    let error = run_against(addr, &["trace", id])
        .await
        .expect_err("too large");
    assert!(
        matches!(error, CliError::Remote(RemoteError::TooLarge { limit, .. }) if limit == MAX_TRACE_BYTES),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_answering_each_page_in_time_cannot_hold_the_command() -> TestResult {
    // Each page comes well within --timeout, one trace at a time: the
    // page cap would take 100 × 150 ms, the command's bound ends it first.
    let addr = hostile(|n, _| {
        std::thread::sleep(std::time::Duration::from_millis(150));
        page(1, Some(cursor(n)))
    })?;
    let started = std::time::Instant::now();
    let error = run_against(addr, &["traces", "--limit", "10000", "--timeout", "200ms"])
        .await
        .expect_err("held too long");
    assert!(matches!(error, CliError::CommandTimeout { .. }), "{error}");
    assert!(error.to_string().contains("--timeout"), "{error}");
    // The bound, with slack for a loaded machine.
    let bound = std::time::Duration::from_millis(200) * COMMAND_TIMEOUTS;
    assert!(started.elapsed() < bound * 5, "{:?}", started.elapsed());
    Ok(())
}
