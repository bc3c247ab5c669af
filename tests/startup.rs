//! `otelite serve` starting, and refusing to: one server per database
//! file, what a new file's start logs, what the reading commands leave
//! beside a stopped server's file, what a damaged file is called, and
//! `otelite health` against a server speaking TLS.

use crate::support::pki;
use crate::support::process::{ServeProcess, blocking, otelite_bin};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `otelite <args>` with none of the machine's OTELITE_* settings.
fn otelite(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(otelite_bin());
    command.args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTELITE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run otelite")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8 here")
}

/// The names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A second `otelite serve` on the file: its exit, or a kill after a
/// minute (a server that started anyway never exits by itself).
fn second_serve(db: &Path) -> Output {
    let mut child = Command::new(otelite_bin())
        .args(["serve", "--db", path(db)])
        .args([
            "--otlp-listen",
            "127.0.0.1:0",
            "--otlp-grpc-listen",
            "127.0.0.1:0",
            "--query-listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start otelite serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("collect output")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_file_refuses_to_start() {
    blocking(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("otelite.db");
        let mut first = ServeProcess::start(&db, &[]);
        let second = second_serve(&db);
        assert_eq!(second.status.code(), Some(1), "{second:?}");
        let stderr = text(&second.stderr);
        assert!(
            stderr.contains(path(&db)) && stderr.contains(&format!("pid {}", first.pid())),
            "names the file and the running server:\n{stderr}"
        );
        assert!(second.stdout.is_empty(), "{}", text(&second.stdout));
        // Reading beside the running server still works.
        let read = otelite(&["services", "--db", path(&db)], &[]);
        assert!(read.status.success(), "{read:?}");
        // Once the first has stopped, the file is free again.
        first.signal("TERM");
        assert!(first.wait_exit(Duration::from_secs(30)).is_some());
        drop(ServeProcess::start(&db, &[]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_database_is_not_vacuumed() {
    blocking(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("new.db");
        let mut child = Command::new(otelite_bin())
            .args(["serve", "--db", path(&db)])
            .args([
                "--otlp-listen",
                "127.0.0.1:0",
                "--otlp-grpc-listen",
                "127.0.0.1:0",
                "--query-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "otelite_backend=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start otelite serve");
        // The addresses are printed once the database is open and migrated.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let started = lines.any(|line| line.is_ok_and(|l| l.contains("query API listening")));
        let _ = child.kill();
        let out = child.wait_with_output().expect("collect output");
        let stderr = text(&out.stderr);
        assert!(started, "otelite serve did not start:\n{stderr}");
        assert!(
            !stderr.contains("VACUUM"),
            "a new file needs no VACUUM:\n{stderr}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_commands_leave_no_files_beside_a_stopped_servers_database() {
    blocking(|| {
        let (dir, db) = database_of_a_stopped_server();
        let before = files_in(dir.path());
        assert_eq!(before, ["otelite.db", "otelite.db.lock"]);
        for args in [&["services"][..], &["traces"], &["rates"], &["deps"]] {
            let out = otelite(&[args, &["--db", path(&db)]].concat(), &[]);
            assert!(out.status.success(), "{args:?}: {out:?}");
        }
        assert_eq!(files_in(dir.path()), before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_database_or_a_directory_is_named_with_the_cause() {
    blocking(|| {
        let (dir, db) = database_of_a_stopped_server();
        let damaged = dir.path().join("cut.db");
        let bytes = std::fs::read(&db).expect("read the database");
        std::fs::write(&damaged, &bytes[..bytes.len() / 4]).expect("write a cut copy");
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).expect("make a directory");
        for (file, cause) in [(&damaged, "malformed"), (&folder, "is a directory")] {
            let listen = [
                "--otlp-listen",
                "127.0.0.1:0",
                "--otlp-grpc-listen",
                "127.0.0.1:0",
                "--query-listen",
                "127.0.0.1:0",
            ];
            let serve = [&["serve", "--db", path(file)][..], &listen].concat();
            for args in [vec!["traces", "--db", path(file)], serve] {
                let out = otelite(&args, &[]);
                let stderr = text(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
                assert!(
                    stderr.contains(path(file)) && stderr.contains(cause),
                    "{args:?}: {stderr}"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_a_server_speaking_tls() {
    blocking(|| {
        let pki = pki::openssl_style();
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = ["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)];
        let server = ServeProcess::start(&dir.path().join("otelite.db"), &tls);
        let listen = server.query.to_string();
        // As the image runs it: the listener and the certificate from the
        // variables `otelite serve` reads, no flags.
        let env = [
            ("OTELITE_QUERY_LISTEN", listen.as_str()),
            ("OTELITE_TLS_CERT", path(&pki.cert)),
        ];
        let out = otelite(&["health"], &env);
        assert!(out.status.success(), "{out:?}");
        assert!(text(&out.stdout).starts_with("https://"), "{out:?}");
        // Any https URL, trusting the certificate as the reading commands do.
        let url = format!("https://localhost:{}/readyz", server.query.port());
        let out = otelite(
            &["health", "--url", &url, "--server-ca", path(&pki.cert)],
            &[],
        );
        assert!(out.status.success(), "{out:?}");
        // Without a certificate to trust, the server is not healthy to it.
        let out = otelite(&["health", "--url", &url], &[]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(text(&out.stderr).contains("certificate"), "{out:?}");
    })
    .await;
}

/// A new database made by a real `otelite serve`, stopped by SIGTERM, in a
/// directory of its own.
fn database_of_a_stopped_server() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("otelite.db");
    let mut server = ServeProcess::start(&db, &[]);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
    (dir, db)
}
