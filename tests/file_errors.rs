//! Every file error names its path: the real `otelite` binary given a
//! `--db` symlink to a file that is not a database, a directory as `--db`,
//! a database whose directory does not exist (its `<db>.lock`), a config
//! file that does not exist, a TLS key that is missing or not PEM, and a
//! `--server-ca` that does not exist; each exits non-zero with the path in
//! its message.

use crate::support::pki;
use crate::support::process::{blocking, otelite_bin};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `otelite <args>` in `dir`; its status must be a failure, and its
/// stderr is returned.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(otelite_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("OTELITE_SERVER")
        .env_remove("OTELITE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run otelite {args:?}: {e}"));
    assert!(!out.status.success(), "otelite {args:?} must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const LISTEN: [&str; 4] = [
    "--otlp-listen",
    "127.0.0.1:0",
    "--query-listen",
    "127.0.0.1:0",
];

#[tokio::test(flavor = "multi_thread")]
async fn file_errors_name_their_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_owned();
    let pki = pki::pki();
    blocking(move || {
        std::fs::write(root.join("notes.txt"), "not a database\n").expect("write notes");
        std::os::unix::fs::symlink("notes.txt", root.join("link.db")).expect("symlink");
        std::fs::create_dir(root.join("adir")).expect("mkdir");
        std::fs::write(root.join("bad-key.pem"), "junk\n").expect("write a bad key");
        let cert = pki.cert.display().to_string();
        let serve = |extra: &[&str]| {
            let mut args = vec!["serve"];
            args.extend(LISTEN);
            args.extend(extra);
            fails(&root, &args)
        };
        let cases: Vec<(String, &str)> = vec![
            (serve(&["--db", "link.db"]), "link.db"),
            (fails(&root, &["services", "--db", "link.db"]), "link.db"),
            (fails(&root, &["services", "--db", "adir"]), "adir"),
            (serve(&["--db", "nodir/x.db"]), "nodir/x.db.lock"),
            (serve(&["--config", "absent.toml"]), "absent.toml"),
            (
                serve(&[
                    "--db",
                    "a.db",
                    "--tls-cert",
                    &cert,
                    "--tls-key",
                    "absent-key.pem",
                ]),
                "absent-key.pem",
            ),
            (
                serve(&[
                    "--db",
                    "b.db",
                    "--tls-cert",
                    &cert,
                    "--tls-key",
                    "bad-key.pem",
                ]),
                "bad-key.pem",
            ),
            (
                fails(
                    &root,
                    &[
                        "services",
                        "--server",
                        "https://127.0.0.1:1",
                        "--server-ca",
                        "absent-ca.pem",
                    ],
                ),
                "absent-ca.pem",
            ),
        ];
        for (stderr, path) in cases {
            assert!(stderr.contains(path), "{path} not named in: {stderr}");
        }
    })
    .await;
}
