//! The `otelite` command's surface as a process: version, help, exit codes.
//!
//! Being an integration test of this package, it also makes
//! `cargo test --workspace` build `target/<profile>/otelite`, the binary the
//! root package's end-to-end tests start (tests/support/process.rs).

use std::path::Path;
use std::process::{Command, Output};

fn otelite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otelite"))
        .args(args)
        .env_remove("OTELITE_SERVER")
        .output()
        .expect("run otelite")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_names_the_command_and_this_version() {
    let out = otelite(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("otelite {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_every_command() {
    let out = otelite(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for command in [
        "serve",
        "services",
        "operations",
        "traces",
        "trace",
        "rates",
        "deps",
        "health",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "--help lacks {command}:\n{help}"
        );
    }
}

/// Usage errors exit 2 (clap's convention), apart from failures, which exit 1.
#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = otelite(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("frobnicate"), "{out:?}");
}

/// A reading command never creates the database it was pointed at.
#[test]
fn a_missing_database_file_fails_and_is_not_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("missing.db");
    let out = otelite(&["services", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains(path(&db)), "{out:?}");
    assert!(!db.exists(), "otelite services created {}", db.display());
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8 here")
}

/// `otelite serve --db <dir>/new.db` with the OTLP port already taken.
fn serve_on_a_busy_port(dir: &Path) -> (Output, String) {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = busy.local_addr().expect("address").to_string();
    let db = dir.join("new.db");
    let out = otelite(&[
        "serve",
        "--db",
        path(&db),
        "--otlp-listen",
        &addr,
        "--query-listen",
        "127.0.0.1:0",
    ]);
    (out, addr)
}

/// A failure at start-up is told once: the cause is not repeated under a
/// "Caused by:" list.
#[test]
fn a_start_up_failure_is_told_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, addr) = serve_on_a_busy_port(dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "the cause once:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("Caused by"), "{stderr}");
}

/// The ports are bound before the database is touched, so a busy port
/// leaves no new file behind.
#[test]
fn a_busy_port_stops_the_start_before_the_database_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, _) = serve_on_a_busy_port(dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read temp dir")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "files made before the bind failed: {left:?}"
    );
}

/// A server on 127.0.0.1 that answers every request (one per connection)
/// with `body(n)` as 200 JSON, n counting the requests from 1.
fn hostile_server(body: fn(usize) -> Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for (n, socket) in listener.incoming().flatten().enumerate() {
            let Ok(clone) = socket.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) && line != "\r\n" {
                line.clear();
            }
            let body = body(n + 1);
            let mut socket = socket;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes());
            let _ = socket.write_all(&body);
        }
    });
    url
}

/// The CLI does not trust the server it asks: a search whose pages never
/// end, and an answer past its cap, each end the command with exit 1 and a
/// message saying what the server did.
#[test]
fn a_hostile_server_cannot_hold_the_command() {
    let looping =
        hostile_server(|n| format!(r#"{{"traces":[],"nextCursor":"{n}-{n:032x}"}}"#).into_bytes());
    let out = otelite(&[
        "traces",
        "--server",
        &looping,
        "--limit",
        "5",
        "--timeout",
        "5s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&looping) && stderr.contains("empty but named a next page"),
        "{stderr}"
    );

    let huge = hostile_server(|_| {
        let name = format!("\"{}\"", "s".repeat(1000));
        format!(r#"{{"services":[{}]}}"#, vec![name; 9 * 1024].join(",")).into_bytes()
    });
    let out = otelite(&["services", "--server", &huge, "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("longer than 8 MiB"), "{stderr}");
}
