//! A test per precedence rule, through the same clap command `otelite
//! serve` parses, plus the file's format and the checks across settings.

use super::*;
use crate::storage::retention::{Age, ByteSize};
use clap::{Args, Command, FromArgMatches};
use std::ffi::OsStr;
use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Set in `with_env`'s child processes, where the variables are real.
const CHILD: &str = "OTELITE_CONFIG_TEST_CHILD";

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// `otelite serve ARGS`. Outside `with_env` the variables are unbound, so
/// the developer's own `OTELITE_*` cannot change a result.
fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
    let mut command = ServeArgs::augment_args(Command::new("serve"));
    if std::env::var_os(CHILD).is_none() {
        command = command.mut_args(|arg| arg.env(None));
    }
    let matches =
        command.try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))?;
    ServeArgs::from_arg_matches(&matches)
}

fn file(toml: &str) -> Result<Settings, ConfigError> {
    Settings::from_toml(toml, Path::new("otelite.toml"))
}

/// Clap reads the process's variables, and `set_var` is unsafe while other
/// tests run on other threads: so a test that needs variables runs itself
/// again in a child process that has them (and no other `OTELITE_*`), and
/// does its checks there.
fn with_env(test: &str, vars: &[(&str, &str)], checks: impl FnOnce() -> TestResult) -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return checks();
    }
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    let name = format!("{module}::{test}");
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child.args([name.as_str(), "--exact", "--test-threads=1"]);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("OTELITE_") {
            child.env_remove(var);
        }
    }
    let output = child.env(CHILD, "1").envs(vars.iter().copied()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // "1 passed": a filter that matched nothing would pass too.
    if output.status.success() && stdout.contains("1 passed") {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{name} with {vars:?}:\n{stdout}{stderr}").into())
    }
}

#[test]
fn defaults_apply_when_no_source_sets_a_value() -> TestResult {
    let config = serve(&[])?.load()?;
    assert_eq!(config.db_path, PathBuf::from("./otelite.db"));
    assert_eq!(config.otlp_listen, addr("127.0.0.1:4318"));
    assert_eq!(config.otlp_grpc_listen, addr("127.0.0.1:4317"));
    assert_eq!(config.query_listen, addr("127.0.0.1:16686"));
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(config.write_queue_capacity, DEFAULT_WRITE_QUEUE);
    assert_eq!(config.max_queued_spans, DEFAULT_MAX_QUEUED_SPANS);
    assert_eq!(
        config.max_concurrent_requests,
        DEFAULT_MAX_CONCURRENT_REQUESTS
    );
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.store, StoreKind::Sqlite);
    assert_eq!(config.clickhouse_url, DEFAULT_CLICKHOUSE_URL);
    assert!(config.retention.is_off());
    assert!(config.tls.is_none());
    assert!(config.ingest_token.is_none() && config.query_token.is_none());
    Ok(())
}

#[test]
fn the_file_wins_over_defaults() -> TestResult {
    let settings = serve(&[])?.over(file("db = \"file.db\"\n")?)?;
    assert_eq!(settings.db, PathBuf::from("file.db"));
    Ok(())
}

#[test]
fn the_environment_wins_over_the_file() -> TestResult {
    let vars = [("OTELITE_DB", "env.db")];
    with_env("the_environment_wins_over_the_file", &vars, || {
        let settings = serve(&[])?.over(file("db = \"file.db\"\n")?)?;
        assert_eq!(settings.db, PathBuf::from("env.db"));
        Ok(())
    })
}

#[test]
fn flags_win_over_the_environment() -> TestResult {
    let vars = [("OTELITE_DB", "env.db")];
    with_env("flags_win_over_the_environment", &vars, || {
        let settings = serve(&["--db", "flag.db"])?.over(file("db = \"file.db\"\n")?)?;
        assert_eq!(settings.db, PathBuf::from("flag.db"));
        Ok(())
    })
}

#[test]
fn each_setting_comes_from_the_highest_source_that_sets_it() -> TestResult {
    let vars = [("OTELITE_QUERY_LISTEN", "0.0.0.0:3")];
    with_env(
        "each_setting_comes_from_the_highest_source_that_sets_it",
        &vars,
        || {
            let file = file(
                "db = \"file.db\"\notlp_listen = \"0.0.0.0:1\"\nquery_listen = \"0.0.0.0:2\"\n",
            )?;
            let settings = serve(&["--db", "flag.db"])?.over(file)?;
            assert_eq!(settings.db, PathBuf::from("flag.db"));
            assert_eq!(settings.otlp_listen, addr("0.0.0.0:1"));
            assert_eq!(settings.query_listen, addr("0.0.0.0:3"));
            assert_eq!(settings.write_queue, DEFAULT_WRITE_QUEUE);
            Ok(())
        },
    )
}

#[test]
fn an_empty_variable_counts_as_unset() -> TestResult {
    let vars = [
        ("OTELITE_DB", ""),
        ("OTELITE_CONFIG", ""),
        ("OTELITE_INGEST_TOKEN", ""),
    ];
    with_env("an_empty_variable_counts_as_unset", &vars, || {
        let config = serve(&[])?.load()?;
        assert_eq!(config.db_path, PathBuf::from("./otelite.db"));
        assert!(config.ingest_token.is_none());
        Ok(())
    })
}

#[test]
fn a_bad_variable_is_refused_with_the_reason() -> TestResult {
    let vars = [("OTELITE_LOG_FORMAT", "xml")];
    with_env("a_bad_variable_is_refused_with_the_reason", &vars, || {
        let error = serve(&[]).err().ok_or("OTELITE_LOG_FORMAT=xml parsed")?;
        assert!(error.to_string().contains("is not a log format"), "{error}");
        Ok(())
    })
}

#[test]
fn the_config_file_comes_from_the_flag_or_else_the_environment() -> TestResult {
    // Runs in the parent and again in the child: the variable names the
    // parent's file, which lives until the child has read it.
    let dir = tempfile::tempdir()?;
    let (by_flag, by_env) = (dir.path().join("flag.toml"), dir.path().join("env.toml"));
    std::fs::write(&by_flag, "db = \"from-flag-file.db\"\n")?;
    std::fs::write(&by_env, "db = \"from-env-file.db\"\n")?;
    let env_path = by_env.to_string_lossy().into_owned();
    let vars = [("OTELITE_CONFIG", env_path.as_str())];
    with_env(
        "the_config_file_comes_from_the_flag_or_else_the_environment",
        &vars,
        || {
            let flag = by_flag.to_string_lossy();
            let config = serve(&["--config", &flag])?.load()?;
            assert_eq!(config.db_path, PathBuf::from("from-flag-file.db"));
            let config = serve(&[])?.load()?;
            assert_eq!(config.db_path, PathBuf::from("from-env-file.db"));
            Ok(())
        },
    )
}

/// The field's name gives the flag and the file key; this keeps the
/// variable, written beside it, in step.
#[test]
fn each_variable_is_otelite_and_the_flag_name() {
    let command = ServeArgs::augment_args(Command::new("serve"));
    for arg in command.get_arguments() {
        let long = arg.get_long().unwrap_or_default();
        let expected = format!("OTELITE_{}", long.replace('-', "_").to_uppercase());
        assert_eq!(arg.get_env(), Some(OsStr::new(&expected)), "--{long}");
    }
}

#[test]
fn zero_limits_are_refused() -> TestResult {
    let result = serve(&["--write-queue", "0"])?.load();
    assert!(matches!(result, Err(ConfigError::Zero("write_queue"))));
    Ok(())
}

#[test]
fn tls_needs_both_files_from_any_mix_of_sources() -> TestResult {
    let config = serve(&["--tls-cert", "c.pem"])?
        .over(file("tls_key = \"k.pem\"\n")?)?
        .into_config()?;
    let expected = TlsFiles {
        cert: "c.pem".into(),
        key: "k.pem".into(),
    };
    assert_eq!(config.tls, Some(expected));
    let half = serve(&["--tls-cert", "c.pem"])?.load();
    assert!(matches!(half, Err(ConfigError::TlsHalf("tls_key"))));
    let half = serve(&[])?
        .over(file("tls_key = \"k.pem\"\n")?)?
        .into_config();
    assert!(matches!(half, Err(ConfigError::TlsHalf("tls_cert"))));
    Ok(())
}

#[test]
fn tokens_and_log_format_from_the_environment_and_the_file() -> TestResult {
    let vars = [
        ("OTELITE_INGEST_TOKEN", "s3cret-in"),
        ("OTELITE_LOG_FORMAT", "json"),
    ];
    with_env(
        "tokens_and_log_format_from_the_environment_and_the_file",
        &vars,
        || {
            let file = file("ingest_token = \"file\"\nquery_token = \"q\"\n")?;
            let config = serve(&[])?.over(file)?.into_config()?;
            assert_eq!(config.ingest_token, Some(BearerToken::new("s3cret-in")));
            assert_eq!(config.query_token, Some(BearerToken::new("q")));
            assert_eq!(config.log_format, LogFormat::Json);
            assert!(
                !format!("{config:?}").contains("s3cret"),
                "tokens are redacted"
            );
            Ok(())
        },
    )
}

#[test]
fn blank_tokens_are_refused() {
    let empty = file("query_token = \" \"\n");
    assert!(matches!(empty, Err(ConfigError::ParseFile { .. })));
    assert!(serve(&["--ingest-token", " "]).is_err());
}

#[test]
fn the_file_uses_the_same_names_and_refuses_unknown_keys() -> TestResult {
    let file = file("db = \"/data/o.db\"\notlp_listen = \"0.0.0.0:4318\"\nmax_queued_spans = 5\n")?;
    assert_eq!(file.db, PathBuf::from("/data/o.db"));
    assert_eq!(file.otlp_listen, addr("0.0.0.0:4318"));
    let grpc = self::file("otlp_grpc_listen = \"0.0.0.0:4317\"\n")?;
    assert_eq!(grpc.otlp_grpc_listen, addr("0.0.0.0:4317"));
    assert_eq!(file.max_queued_spans, 5);
    assert_eq!(file.query_listen, addr("127.0.0.1:16686"), "the default");
    assert!(matches!(
        self::file("database = \"x\"\n"),
        Err(ConfigError::ParseFile { .. })
    ));
    Ok(())
}

#[test]
fn retention_flags_win_over_the_file() -> TestResult {
    let day = std::time::Duration::from_secs(86_400);
    let week = || file("retention = \"7d\"\nmax_db_size = \"10GB\"\n");
    let config = serve(&[])?.over(week()?)?.into_config()?;
    assert_eq!(config.retention.max_age, Some(7 * day));
    assert_eq!(config.retention.max_bytes, Some(10_000_000_000));
    let flags = ["--retention", "2d", "--max-db-size", "1GB"];
    let config = serve(&flags)?.over(week()?)?.into_config()?;
    assert_eq!(config.retention.max_age, Some(2 * day));
    assert_eq!(config.retention.max_bytes, Some(1_000_000_000));
    // `0` from a higher source turns off what a lower one set.
    let flags = ["--retention", "0", "--max-db-size", "0"];
    let config = serve(&flags)?.over(week()?)?.into_config()?;
    assert!(config.retention.is_off());
    Ok(())
}

#[test]
fn retention_settings_read_from_env_and_file() -> TestResult {
    let vars = [
        ("OTELITE_RETENTION", "36h"),
        ("OTELITE_MAX_DB_SIZE", "512MiB"),
    ];
    with_env("retention_settings_read_from_env_and_file", &vars, || {
        let env = serve(&[])?.over(Settings::default())?;
        let file = file("retention = \"36h\"\nmax_db_size = \"512MiB\"\n")?;
        assert_eq!(
            (env.retention, env.max_db_size),
            (file.retention, file.max_db_size)
        );
        assert_eq!(env.retention, "36h".parse::<Age>()?);
        assert_eq!(
            self::file("max_db_size = 1000\n")?.max_db_size,
            ByteSize(1000)
        );
        assert!(matches!(
            self::file("retention = \"a week\"\n"),
            Err(ConfigError::ParseFile { .. })
        ));
        Ok(())
    })
}

#[test]
fn the_store_and_clickhouse_url_follow_the_same_precedence() -> TestResult {
    let vars = [("OTELITE_CLICKHOUSE_URL", "http://env:8123/traces")];
    with_env(
        "the_store_and_clickhouse_url_follow_the_same_precedence",
        &vars,
        || {
            let file = || file("store = \"clickhouse\"\nclickhouse_url = \"http://file:8123\"\n");
            let config = serve(&[])?.over(file()?)?.into_config()?;
            assert_eq!(config.store, StoreKind::Clickhouse);
            assert_eq!(config.clickhouse_url, "http://env:8123/traces");
            let settings = serve(&["--store", "sqlite"])?.over(file()?)?;
            assert_eq!(settings.store, StoreKind::Sqlite);
            assert!(serve(&["--store", "mysql"]).is_err());
            Ok(())
        },
    )
}

#[test]
fn allowed_hosts_from_the_file_or_a_comma_separated_flag() -> TestResult {
    let listed = || file("allowed_hosts = [\"otelite.internal\", \"other\"]\n");
    let config = serve(&[])?.over(listed()?)?.into_config()?;
    assert_eq!(config.allowed_hosts, ["otelite.internal", "other"]);
    let config = serve(&["--allowed-hosts", "a.example,b.example"])?
        .over(listed()?)?
        .into_config()?;
    assert_eq!(config.allowed_hosts, ["a.example", "b.example"]);
    assert!(
        serve(&[])?.load()?.allowed_hosts.is_empty(),
        "none by default"
    );
    Ok(())
}

fn orphan_grace(
    args: &[&str],
    toml: &str,
) -> Result<std::time::Duration, Box<dyn std::error::Error>> {
    Ok(serve(args)?
        .over(file(toml)?)?
        .into_config()?
        .query_limits
        .orphan_grace)
}

#[test]
fn the_orphan_grace_is_60s_unless_the_file_says_otherwise() -> TestResult {
    let seconds = std::time::Duration::from_secs;
    assert_eq!(orphan_grace(&[], "")?, seconds(60));
    assert_eq!(orphan_grace(&[], "orphan_grace = \"5m\"\n")?, seconds(300));
    Ok(())
}

#[test]
fn the_orphan_grace_from_the_environment_and_flags_wins_over_the_file() -> TestResult {
    let vars = [("OTELITE_ORPHAN_GRACE", "2s")];
    with_env(
        "the_orphan_grace_from_the_environment_and_flags_wins_over_the_file",
        &vars,
        || {
            let five_minutes = "orphan_grace = \"5m\"\n";
            assert_eq!(
                orphan_grace(&[], five_minutes)?,
                std::time::Duration::from_secs(2)
            );
            let flag = ["--orphan-grace", "0"];
            assert_eq!(
                orphan_grace(&flag, five_minutes)?,
                std::time::Duration::ZERO
            );
            Ok(())
        },
    )
}
