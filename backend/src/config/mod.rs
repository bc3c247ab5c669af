//! The backend's settings: raw values from flags, environment and a TOML
//! file ([`RawConfig`]), layered by one function ([`RawConfig::resolve`])
//! into a validated [`Config`] with the defaults `otelite serve` documents.

use crate::net::{BearerToken, ConnectionLimits, TlsFiles};
use crate::store::retention::{Age, ByteSize, Policy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod values;
pub use values::{LogFormat, Secret, StoreKind};

/// Largest request body accepted, after decompression.
pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
/// Write requests that may wait for the writer before new ones get 503.
pub const DEFAULT_WRITE_QUEUE: usize = 256;
/// Spans that may wait for the writer before new requests get 503.
pub const DEFAULT_MAX_QUEUED_SPANS: usize = 100_000;
/// OTLP requests read and decoded at once; more get 503 at once, so memory
/// stays bounded by this times the body limit (and its decoded size).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;
/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "OTELITE_CONFIG";
/// Where `--store clickhouse` finds ClickHouse's HTTP interface; the path
/// names the database (default `otelite`).
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

#[derive(Debug, Clone)]
pub struct Config {
    pub db_path: PathBuf,
    /// OTLP/HTTP receiver; port 0 picks a free port.
    pub otlp_listen: SocketAddr,
    /// Query API; port 0 picks a free port.
    pub query_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub write_queue_capacity: usize,
    pub max_queued_spans: usize,
    pub max_concurrent_requests: usize,
    /// Required on `/v1/*` when set.
    pub ingest_token: Option<BearerToken>,
    /// Required on `/api/*` and `/metrics` when set.
    pub query_token: Option<BearerToken>,
    /// Both listeners speak TLS when set.
    pub tls: Option<TlsFiles>,
    pub log_format: LogFormat,
    /// Timeouts and size caps per connection; not a flag (the defaults
    /// suit every deployment seen so far), settable for tests.
    pub connection_limits: ConnectionLimits,
    /// Off by default: deleting spans is for the operator to choose.
    pub retention: Policy,
    pub store: StoreKind,
    /// Used when `store` is ClickHouse.
    pub clickhouse_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db_path: PathBuf::from("./otelite.db"),
            otlp_listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            query_listen: SocketAddr::from(([127, 0, 0, 1], 16686)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            write_queue_capacity: DEFAULT_WRITE_QUEUE,
            max_queued_spans: DEFAULT_MAX_QUEUED_SPANS,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            ingest_token: None,
            query_token: None,
            tls: None,
            log_format: LogFormat::Text,
            connection_limits: ConnectionLimits::default(),
            retention: Policy::default(),
            store: StoreKind::Sqlite,
            clickhouse_url: DEFAULT_CLICKHOUSE_URL.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} is not valid: {reason}")]
    Env {
        var: String,
        value: String,
        reason: String,
    },
    #[error("cannot read the config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {source}", path.display())]
    ParseFile {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("tls_cert and tls_key go together: {0} is missing")]
    TlsHalf(&'static str),
}

/// Settings from one source; `None` where that source is silent. The same
/// names serve as flags (`--otlp-listen`), environment variables
/// (`OTELITE_OTLP_LISTEN`) and config file keys (`otlp_listen`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub db: Option<PathBuf>,
    pub otlp_listen: Option<SocketAddr>,
    pub query_listen: Option<SocketAddr>,
    pub max_body_bytes: Option<usize>,
    pub write_queue: Option<usize>,
    pub max_queued_spans: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    pub ingest_token: Option<Secret>,
    pub query_token: Option<Secret>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// `7d`; `0` keeps spans forever.
    pub retention: Option<Age>,
    /// `10GB`; `0` sets no limit.
    pub max_db_size: Option<ByteSize>,
    /// `sqlite` or `clickhouse`.
    pub store: Option<StoreKind>,
    pub clickhouse_url: Option<String>,
}

impl RawConfig {
    /// Reads `OTELITE_<NAME>` through `var` (`std::env::var` in `main`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn parse<T: FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            let Some(value) = var(name).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            value
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::Env {
                    var: name.to_owned(),
                    reason: e.to_string(),
                    value,
                })
        }
        Ok(Self {
            db: parse(&var, "OTELITE_DB")?,
            otlp_listen: parse(&var, "OTELITE_OTLP_LISTEN")?,
            query_listen: parse(&var, "OTELITE_QUERY_LISTEN")?,
            max_body_bytes: parse(&var, "OTELITE_MAX_BODY_BYTES")?,
            write_queue: parse(&var, "OTELITE_WRITE_QUEUE")?,
            max_queued_spans: parse(&var, "OTELITE_MAX_QUEUED_SPANS")?,
            max_concurrent_requests: parse(&var, "OTELITE_MAX_CONCURRENT_REQUESTS")?,
            ingest_token: parse(&var, "OTELITE_INGEST_TOKEN")?,
            query_token: parse(&var, "OTELITE_QUERY_TOKEN")?,
            tls_cert: parse(&var, "OTELITE_TLS_CERT")?,
            tls_key: parse(&var, "OTELITE_TLS_KEY")?,
            log_format: parse(&var, "OTELITE_LOG_FORMAT")?,
            retention: parse(&var, "OTELITE_RETENTION")?,
            max_db_size: parse(&var, "OTELITE_MAX_DB_SIZE")?,
            store: parse(&var, "OTELITE_STORE")?,
            clickhouse_url: parse(&var, "OTELITE_CLICKHOUSE_URL")?,
        })
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The one place precedence lives: flags, then environment, then the
    /// file, then the defaults; then validation.
    pub fn resolve(flags: Self, env: Self, file: Self) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let raw = flags.or(env).or(file);
        let config = Config {
            db_path: raw.db.unwrap_or(defaults.db_path),
            otlp_listen: raw.otlp_listen.unwrap_or(defaults.otlp_listen),
            query_listen: raw.query_listen.unwrap_or(defaults.query_listen),
            max_body_bytes: raw.max_body_bytes.unwrap_or(defaults.max_body_bytes),
            write_queue_capacity: raw.write_queue.unwrap_or(defaults.write_queue_capacity),
            max_queued_spans: raw.max_queued_spans.unwrap_or(defaults.max_queued_spans),
            max_concurrent_requests: raw
                .max_concurrent_requests
                .unwrap_or(defaults.max_concurrent_requests),
            ingest_token: raw.ingest_token.map(|s| BearerToken::new(&s.0)),
            query_token: raw.query_token.map(|s| BearerToken::new(&s.0)),
            tls: match (raw.tls_cert, raw.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                (Some(_), None) => return Err(ConfigError::TlsHalf("tls_key")),
                (None, Some(_)) => return Err(ConfigError::TlsHalf("tls_cert")),
            },
            log_format: raw.log_format.unwrap_or(defaults.log_format),
            connection_limits: defaults.connection_limits,
            retention: Policy::new(raw.retention, raw.max_db_size),
            store: raw.store.unwrap_or(defaults.store),
            clickhouse_url: raw.clickhouse_url.unwrap_or(defaults.clickhouse_url),
        };
        for (name, value) in [
            ("max_body_bytes", config.max_body_bytes),
            ("write_queue", config.write_queue_capacity),
            ("max_queued_spans", config.max_queued_spans),
            ("max_concurrent_requests", config.max_concurrent_requests),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(config)
    }

    /// Each setting from `self` where set, else from `lower`.
    fn or(self, lower: Self) -> Self {
        Self {
            db: self.db.or(lower.db),
            otlp_listen: self.otlp_listen.or(lower.otlp_listen),
            query_listen: self.query_listen.or(lower.query_listen),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            write_queue: self.write_queue.or(lower.write_queue),
            max_queued_spans: self.max_queued_spans.or(lower.max_queued_spans),
            max_concurrent_requests: self
                .max_concurrent_requests
                .or(lower.max_concurrent_requests),
            ingest_token: self.ingest_token.or(lower.ingest_token),
            query_token: self.query_token.or(lower.query_token),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            log_format: self.log_format.or(lower.log_format),
            retention: self.retention.or(lower.retention),
            max_db_size: self.max_db_size.or(lower.max_db_size),
            store: self.store.or(lower.store),
            clickhouse_url: self.clickhouse_url.or(lower.clickhouse_url),
        }
    }
}

/// `otelite serve`'s whole configuration: `config_file` (the `--config`
/// flag) or else `OTELITE_CONFIG` names the optional file.
pub fn load_config(
    flags: RawConfig,
    config_file: Option<PathBuf>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let path = config_file.or_else(|| var(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
    let file = match path {
        Some(path) => RawConfig::from_file(&path)?,
        None => RawConfig::default(),
    };
    RawConfig::resolve(flags, RawConfig::from_env(var)?, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn db(path: &str) -> RawConfig {
        RawConfig {
            db: Some(path.into()),
            ..RawConfig::default()
        }
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_apply_when_no_source_sets_a_value() -> Result<(), ConfigError> {
        let config = RawConfig::resolve(
            RawConfig::default(),
            RawConfig::default(),
            RawConfig::default(),
        )?;
        assert_eq!(config.db_path, PathBuf::from("./otelite.db"));
        assert_eq!(config.otlp_listen, addr("127.0.0.1:4318"));
        assert_eq!(config.query_listen, addr("127.0.0.1:16686"));
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.write_queue_capacity, DEFAULT_WRITE_QUEUE);
        Ok(())
    }

    #[test]
    fn the_file_wins_over_defaults() -> Result<(), ConfigError> {
        let config = RawConfig::resolve(RawConfig::default(), RawConfig::default(), db("file.db"))?;
        assert_eq!(config.db_path, PathBuf::from("file.db"));
        Ok(())
    }

    #[test]
    fn the_environment_wins_over_the_file() -> Result<(), ConfigError> {
        let config = RawConfig::resolve(RawConfig::default(), db("env.db"), db("file.db"))?;
        assert_eq!(config.db_path, PathBuf::from("env.db"));
        Ok(())
    }

    #[test]
    fn flags_win_over_the_environment() -> Result<(), ConfigError> {
        let config = RawConfig::resolve(db("flag.db"), db("env.db"), db("file.db"))?;
        assert_eq!(config.db_path, PathBuf::from("flag.db"));
        Ok(())
    }

    #[test]
    fn each_setting_comes_from_the_highest_source_that_sets_it() -> Result<(), ConfigError> {
        let file = RawConfig {
            otlp_listen: Some(addr("0.0.0.0:1")),
            query_listen: Some(addr("0.0.0.0:2")),
            ..db("file.db")
        };
        let env = RawConfig {
            query_listen: Some(addr("0.0.0.0:3")),
            ..RawConfig::default()
        };
        let config = RawConfig::resolve(db("flag.db"), env, file)?;
        assert_eq!(config.db_path, PathBuf::from("flag.db"));
        assert_eq!(config.otlp_listen, addr("0.0.0.0:1"));
        assert_eq!(config.query_listen, addr("0.0.0.0:3"));
        Ok(())
    }

    #[test]
    fn zero_limits_are_refused() {
        let flags = RawConfig {
            write_queue: Some(0),
            ..RawConfig::default()
        };
        let result = RawConfig::resolve(flags, RawConfig::default(), RawConfig::default());
        assert!(matches!(result, Err(ConfigError::Zero("write_queue"))));
    }

    #[test]
    fn tls_needs_both_files_from_any_mix_of_sources() -> Result<(), ConfigError> {
        let cert = RawConfig {
            tls_cert: Some("c.pem".into()),
            ..RawConfig::default()
        };
        let key = RawConfig {
            tls_key: Some("k.pem".into()),
            ..RawConfig::default()
        };
        let config = RawConfig::resolve(cert.clone(), RawConfig::default(), key.clone())?;
        let expected = TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        };
        assert_eq!(config.tls, Some(expected));
        let half = RawConfig::resolve(cert, RawConfig::default(), RawConfig::default());
        assert!(matches!(half, Err(ConfigError::TlsHalf("tls_key"))));
        let half = RawConfig::resolve(RawConfig::default(), key, RawConfig::default());
        assert!(matches!(half, Err(ConfigError::TlsHalf("tls_cert"))));
        Ok(())
    }

    #[test]
    fn tokens_and_log_format_from_the_environment_and_the_file() -> Result<(), ConfigError> {
        let env = RawConfig::from_env(|name| match name {
            "OTELITE_INGEST_TOKEN" => Some("s3cret-in".into()),
            "OTELITE_LOG_FORMAT" => Some("json".into()),
            _ => None,
        })?;
        let file = RawConfig::from_toml(
            "ingest_token = \"file\"\nquery_token = \"q\"\n",
            Path::new("o.toml"),
        )?;
        let config = RawConfig::resolve(RawConfig::default(), env, file)?;
        assert_eq!(config.ingest_token, Some(BearerToken::new("s3cret-in")));
        assert_eq!(config.query_token, Some(BearerToken::new("q")));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "tokens are redacted"
        );
        let empty = RawConfig::from_toml("query_token = \" \"\n", Path::new("o.toml"));
        assert!(matches!(empty, Err(ConfigError::ParseFile { .. })));
        let bad = RawConfig::from_env(|name| (name == "OTELITE_LOG_FORMAT").then(|| "xml".into()));
        assert!(matches!(bad, Err(ConfigError::Env { var, .. }) if var == "OTELITE_LOG_FORMAT"));
        Ok(())
    }

    #[test]
    fn environment_variables_are_parsed_and_named_in_errors() -> Result<(), ConfigError> {
        let env = RawConfig::from_env(|name| match name {
            "OTELITE_DB" => Some("/var/otelite.db".into()),
            "OTELITE_OTLP_LISTEN" => Some("0.0.0.0:4318".into()),
            "OTELITE_MAX_BODY_BYTES" => Some("1024".into()),
            _ => None,
        })?;
        assert_eq!(env.db, Some(PathBuf::from("/var/otelite.db")));
        assert_eq!(env.otlp_listen, Some(addr("0.0.0.0:4318")));
        assert_eq!(env.max_body_bytes, Some(1024));
        assert_eq!(env.query_listen, None);
        let bad =
            RawConfig::from_env(|name| (name == "OTELITE_QUERY_LISTEN").then(|| "nowhere".into()));
        assert!(matches!(bad, Err(ConfigError::Env { var, .. }) if var == "OTELITE_QUERY_LISTEN"));
        Ok(())
    }

    #[test]
    fn the_file_uses_the_same_names_and_refuses_unknown_keys() -> Result<(), ConfigError> {
        let path = Path::new("otelite.toml");
        let file = RawConfig::from_toml(
            "db = \"/data/o.db\"\notlp_listen = \"0.0.0.0:4318\"\nmax_queued_spans = 5\n",
            path,
        )?;
        assert_eq!(file.db, Some(PathBuf::from("/data/o.db")));
        assert_eq!(file.otlp_listen, Some(addr("0.0.0.0:4318")));
        assert_eq!(file.max_queued_spans, Some(5));
        assert!(matches!(
            RawConfig::from_toml("database = \"x\"\n", path),
            Err(ConfigError::ParseFile { .. })
        ));
        Ok(())
    }

    fn retention(age: &str, size: &str) -> Result<RawConfig, String> {
        Ok(RawConfig {
            retention: Some(age.parse()?),
            max_db_size: Some(size.parse()?),
            ..RawConfig::default()
        })
    }

    #[test]
    fn retention_is_off_by_default() -> Result<(), ConfigError> {
        let none = RawConfig::default;
        assert!(
            RawConfig::resolve(none(), none(), none())?
                .retention
                .is_off()
        );
        Ok(())
    }

    #[test]
    fn retention_flags_win_over_env_over_file() -> Result<(), Box<dyn std::error::Error>> {
        let none = RawConfig::default;
        let day = std::time::Duration::from_secs(86_400);
        let config = RawConfig::resolve(none(), none(), retention("7d", "10GB")?)?;
        assert_eq!(config.retention.max_age, Some(7 * day));
        assert_eq!(config.retention.max_bytes, Some(10_000_000_000));
        let config = RawConfig::resolve(none(), retention("2d", "1GB")?, retention("7d", "10GB")?)?;
        assert_eq!(config.retention.max_age, Some(2 * day));
        assert_eq!(config.retention.max_bytes, Some(1_000_000_000));
        // `0` from a higher source turns off what a lower one set.
        let config = RawConfig::resolve(
            retention("0", "0")?,
            retention("2d", "1GB")?,
            retention("7d", "10GB")?,
        )?;
        assert!(config.retention.is_off());
        Ok(())
    }

    #[test]
    fn retention_settings_read_from_env_and_file() -> Result<(), Box<dyn std::error::Error>> {
        let env = RawConfig::from_env(|name| match name {
            "OTELITE_RETENTION" => Some("36h".into()),
            "OTELITE_MAX_DB_SIZE" => Some("512MiB".into()),
            _ => None,
        })?;
        assert_eq!(env, retention("36h", "512MiB")?);
        let bad = RawConfig::from_env(|name| (name == "OTELITE_MAX_DB_SIZE").then(|| "big".into()));
        assert!(matches!(bad, Err(ConfigError::Env { var, .. }) if var == "OTELITE_MAX_DB_SIZE"));
        let path = Path::new("otelite.toml");
        let file = RawConfig::from_toml("retention = \"36h\"\nmax_db_size = \"512MiB\"\n", path)?;
        assert_eq!(file, env);
        let file = RawConfig::from_toml("max_db_size = 1000\n", path)?;
        assert_eq!(file.max_db_size, Some(ByteSize(1000)));
        assert!(matches!(
            RawConfig::from_toml("retention = \"a week\"\n", path),
            Err(ConfigError::ParseFile { .. })
        ));
        Ok(())
    }

    #[test]
    fn the_store_and_clickhouse_url_follow_the_same_precedence() -> Result<(), ConfigError> {
        let none = RawConfig::default;
        let config = RawConfig::resolve(none(), none(), none())?;
        assert_eq!(config.store, StoreKind::Sqlite);
        assert_eq!(config.clickhouse_url, DEFAULT_CLICKHOUSE_URL);
        let file = RawConfig::from_toml(
            "store = \"clickhouse\"\nclickhouse_url = \"http://file:8123\"\n",
            Path::new("o.toml"),
        )?;
        let env = RawConfig::from_env(|name| {
            (name == "OTELITE_CLICKHOUSE_URL").then(|| "http://env:8123/traces".into())
        })?;
        let config = RawConfig::resolve(none(), env.clone(), file.clone())?;
        assert_eq!(config.store, StoreKind::Clickhouse);
        assert_eq!(config.clickhouse_url, "http://env:8123/traces");
        let flags = RawConfig {
            store: Some(StoreKind::Sqlite),
            ..none()
        };
        assert_eq!(
            RawConfig::resolve(flags, env, file)?.store,
            StoreKind::Sqlite
        );
        let bad = RawConfig::from_env(|name| (name == "OTELITE_STORE").then(|| "mysql".into()));
        assert!(matches!(bad, Err(ConfigError::Env { var, .. }) if var == "OTELITE_STORE"));
        Ok(())
    }

    #[test]
    fn the_config_file_comes_from_the_flag_or_else_the_environment()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (by_flag, by_env) = (dir.path().join("flag.toml"), dir.path().join("env.toml"));
        std::fs::write(&by_flag, "db = \"from-flag-file.db\"\n")?;
        std::fs::write(&by_env, "db = \"from-env-file.db\"\n")?;
        let env_path = by_env.to_string_lossy().into_owned();
        let var = |name: &str| (name == CONFIG_ENV).then(|| env_path.clone());
        let config = load_config(RawConfig::default(), Some(by_flag), var)?;
        assert_eq!(config.db_path, PathBuf::from("from-flag-file.db"));
        let config = load_config(RawConfig::default(), None, var)?;
        assert_eq!(config.db_path, PathBuf::from("from-env-file.db"));
        assert!(
            load_config(RawConfig::default(), None, none)?
                .db_path
                .ends_with("otelite.db")
        );
        Ok(())
    }
}
