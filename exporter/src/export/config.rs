//! Configuration in two steps: `RawConfig` (what the builder was told) plus the
//! `OTEL_EXPORTER_OTLP_*` variables → a validated `ExporterConfig`.
//! `ExporterConfig::resolve` is the one place that owns precedence:
//! builder > `OTEL_EXPORTER_OTLP_TRACES_*` > `OTEL_EXPORTER_OTLP_*` > default.

use super::spool::{DEFAULT_SPOOL_BYTES, SpoolConfig};
use crate::error::ConfigError;
use http::Uri;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use std::path::PathBuf;
use std::time::Duration;

/// The base URL used when nothing else is configured.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// One export (all retries included) must finish within this.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the counters are pushed to `/v1/metrics`.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(10);

const TRACES_PATH: &str = "/v1/traces";
const METRICS_PATH: &str = "/v1/metrics";

/// Body compression of the POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `Content-Encoding: gzip` (the default).
    #[default]
    Gzip,
    /// Plain protobuf.
    None,
}

/// What the builder was told; `None` means "not set, ask the environment".
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// Base URL (`/v1/traces` and `/v1/metrics` are appended).
    pub endpoint: Option<String>,
    /// Extra request headers, replacing any from the environment.
    pub headers: Option<Vec<(String, String)>>,
    pub timeout: Option<Duration>,
    pub compression: Option<Compression>,
    /// `Duration::ZERO` turns periodic reports off (the shutdown report stays).
    pub metrics_interval: Option<Duration>,
    /// PEM file of certificates to trust for https, besides the public roots.
    pub certificate: Option<PathBuf>,
    /// An on-disk queue for requests the endpoint could not take.
    pub spool: Option<SpoolConfig>,
}

/// The validated configuration the exporter runs with.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// Where spans are POSTed.
    pub traces_url: Uri,
    /// Where the counters are POSTed.
    pub metrics_url: Uri,
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub compression: Compression,
    /// `None`: no periodic report.
    pub metrics_interval: Option<Duration>,
    /// Extra trusted certificates (PEM) and where that setting came from.
    pub certificate: Option<(String, PathBuf)>,
    /// `None`: no spool; a failed export loses its spans (counted).
    pub spool: Option<SpoolConfig>,
}

/// Where a value came from, for error messages.
const BUILDER: &str = "builder";

impl ExporterConfig {
    /// Resolves `raw` against the variables `env` returns (the process
    /// environment in production, a map in tests). Empty variables count as unset.
    pub fn resolve(
        raw: &RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name.to_owned(), v))
        };
        let pick = |specific: &str, generic: &str| var(specific).or_else(|| var(generic));

        let (traces_url, metrics_url) = match &raw.endpoint {
            Some(base) => {
                let base = (BUILDER.to_owned(), base.clone());
                (join(&base, TRACES_PATH)?, join(&base, METRICS_PATH)?)
            }
            None => endpoints(
                var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
                var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            )?,
        };
        let headers = match &raw.headers {
            Some(pairs) => header_map(BUILDER, pairs.iter().cloned())?,
            None => match pick(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ) {
                Some((name, value)) => header_map(&name, parse_header_list(&name, &value)?)?,
                None => HeaderMap::new(),
            },
        };
        let timeout = match raw.timeout {
            Some(t) if t.is_zero() => {
                return Err(ConfigError::InvalidTimeout {
                    source_name: BUILDER.into(),
                    value: "0".into(),
                });
            }
            Some(t) => t,
            None => match pick(
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ) {
                Some((name, value)) => parse_timeout(&name, &value)?,
                None => DEFAULT_TIMEOUT,
            },
        };
        let compression = match raw.compression {
            Some(c) => c,
            None => match pick(
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ) {
                Some((name, value)) => parse_compression(&name, &value)?,
                None => Compression::default(),
            },
        };
        let certificate = match &raw.certificate {
            Some(path) => Some((BUILDER.to_owned(), path.clone())),
            None => pick(
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            )
            .map(|(name, value)| (name, PathBuf::from(value.trim()))),
        };
        let spool = match &raw.spool {
            Some(spool) => Some(spool.clone()),
            None => spool_from_env(var("OTELITE_EXPORTER_SPOOL_DIR"), var(SPOOL_BYTES_VAR))?,
        };
        let interval = raw.metrics_interval.unwrap_or(DEFAULT_METRICS_INTERVAL);
        Ok(Self {
            traces_url,
            metrics_url,
            headers,
            timeout,
            compression,
            metrics_interval: (!interval.is_zero()).then_some(interval),
            certificate,
            spool,
        })
    }

    /// Resolves `raw` against the process environment.
    pub fn from_env(raw: &RawConfig) -> Result<Self, ConfigError> {
        Self::resolve(raw, |name| std::env::var(name).ok())
    }
}

type Setting = (String, String);

const SPOOL_BYTES_VAR: &str = "OTELITE_EXPORTER_SPOOL_MAX_BYTES";

/// The spool from `OTELITE_EXPORTER_SPOOL_DIR` and `…_MAX_BYTES`; no
/// directory, no spool.
fn spool_from_env(
    dir: Option<Setting>,
    max_bytes: Option<Setting>,
) -> Result<Option<SpoolConfig>, ConfigError> {
    let Some((_, dir)) = dir else {
        return Ok(None);
    };
    let max_bytes = match max_bytes {
        None => DEFAULT_SPOOL_BYTES,
        Some((name, value)) => match value.trim().parse::<u64>() {
            Ok(bytes) if bytes > 0 => bytes,
            _ => {
                return Err(ConfigError::InvalidSpoolSize {
                    source_name: name,
                    value,
                });
            }
        },
    };
    Ok(Some(SpoolConfig {
        dir: PathBuf::from(dir.trim()),
        max_bytes,
    }))
}

/// Env endpoints: the traces one is used as-is; the metrics base is the generic
/// endpoint, else the traces endpoint without its `/v1/traces`.
fn endpoints(
    traces: Option<Setting>,
    metrics: Option<Setting>,
    generic: Option<Setting>,
) -> Result<(Uri, Uri), ConfigError> {
    let default = || ("default".to_owned(), DEFAULT_ENDPOINT.to_owned());
    let traces_url = match (&traces, &generic) {
        (Some(t), _) => parse_url(t)?,
        (None, Some(g)) => join(g, TRACES_PATH)?,
        (None, None) => join(&default(), TRACES_PATH)?,
    };
    let metrics_url = match (metrics, generic, traces) {
        (Some(m), _, _) => parse_url(&m)?,
        (None, Some(g), _) => join(&g, METRICS_PATH)?,
        (None, None, Some((name, url))) => {
            let trimmed = url.trim_end_matches('/');
            let base = trimmed.strip_suffix(TRACES_PATH).unwrap_or(trimmed);
            join(&(name, base.to_owned()), METRICS_PATH)?
        }
        (None, None, None) => join(&default(), METRICS_PATH)?,
    };
    Ok((traces_url, metrics_url))
}

fn join((name, base): &Setting, path: &str) -> Result<Uri, ConfigError> {
    let url = format!("{}{path}", base.trim().trim_end_matches('/'));
    parse_url(&(name.clone(), url))
}

fn parse_url((name, value): &Setting) -> Result<Uri, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidEndpoint {
        source_name: name.clone(),
        value: value.clone(),
        reason: reason.to_owned(),
    };
    let uri: Uri = value
        .trim()
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("expected an http:// or https:// URL")),
    }
    if uri.authority().is_none() {
        return Err(invalid("missing host"));
    }
    Ok(uri)
}

fn parse_timeout(name: &str, value: &str) -> Result<Duration, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(ConfigError::InvalidTimeout {
            source_name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn parse_compression(name: &str, value: &str) -> Result<Compression, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err(ConfigError::InvalidCompression {
            source_name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// `k=v,k2=v2` with percent-encoded values (W3C baggage style); empty items skipped.
pub fn parse_header_list(name: &str, list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let invalid = |entry: &str, reason: &str| ConfigError::InvalidHeader {
        source_name: name.to_owned(),
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| invalid(entry, "expected key=value"))?;
            let value = percent_decode(value.trim())
                .ok_or_else(|| invalid(entry, "bad percent-encoding"))?;
            Ok((key.trim().to_owned(), value))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn header_map(
    name: &str,
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (key, value) in pairs {
        let invalid = |reason: String| ConfigError::InvalidHeader {
            source_name: name.to_owned(),
            entry: format!("{key}={value}"),
            reason,
        };
        let header = HeaderName::from_bytes(key.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let value_ = HeaderValue::from_str(&value).map_err(|e| invalid(e.to_string()))?;
        map.append(header, value_);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(raw: &RawConfig, vars: &[(&str, &str)]) -> Result<ExporterConfig, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ExporterConfig::resolve(raw, |name| env.get(name).cloned())
    }

    fn ok(raw: &RawConfig, vars: &[(&str, &str)]) -> ExporterConfig {
        match resolve(raw, vars) {
            Ok(config) => config,
            Err(e) => panic!("unexpected config error: {e}"),
        }
    }

    fn builder_endpoint(url: &str) -> RawConfig {
        RawConfig {
            endpoint: Some(url.into()),
            ..RawConfig::default()
        }
    }

    const ALL_ENDPOINTS: [(&str, &str); 2] = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:1"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://traces:2/custom/path",
        ),
    ];

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = ok(&RawConfig::default(), &[]);
        assert_eq!(c.traces_url, "http://localhost:4318/v1/traces");
        assert_eq!(c.metrics_url, "http://localhost:4318/v1/metrics");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.compression, Compression::Gzip);
        assert!(c.headers.is_empty());
        assert_eq!(c.metrics_interval, Some(DEFAULT_METRICS_INTERVAL));
    }

    #[test]
    fn builder_endpoint_beats_every_variable() {
        let c = ok(&builder_endpoint("http://127.0.0.1:9/"), &ALL_ENDPOINTS);
        assert_eq!(c.traces_url, "http://127.0.0.1:9/v1/traces");
        assert_eq!(c.metrics_url, "http://127.0.0.1:9/v1/metrics");
    }

    #[test]
    fn traces_endpoint_is_used_as_is_and_beats_generic() {
        let c = ok(&RawConfig::default(), &ALL_ENDPOINTS);
        assert_eq!(c.traces_url, "http://traces:2/custom/path");
        // Metrics follow the generic base when there is one.
        assert_eq!(c.metrics_url, "http://generic:1/v1/metrics");
    }

    #[test]
    fn generic_endpoint_gets_the_signal_path_appended() {
        let c = ok(
            &RawConfig::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/base/")],
        );
        assert_eq!(c.traces_url, "http://h:1/base/v1/traces");
        assert_eq!(c.metrics_url, "http://h:1/base/v1/metrics");
    }

    #[test]
    fn metrics_base_is_derived_from_the_traces_endpoint() {
        let vars = [(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://h:1/otlp/v1/traces",
        )];
        let c = ok(&RawConfig::default(), &vars);
        assert_eq!(c.traces_url, "http://h:1/otlp/v1/traces");
        assert_eq!(c.metrics_url, "http://h:1/otlp/v1/metrics");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " "),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:1"),
        ];
        assert_eq!(
            ok(&RawConfig::default(), &vars).traces_url,
            "http://g:1/v1/traces"
        );
    }

    #[test]
    fn endpoints_must_be_plain_http() {
        for bad in ["ftp://h:1", "localhost:4318", "not a url", "/relative"] {
            let err = resolve(&builder_endpoint(bad), &[]);
            assert!(
                matches!(err, Err(ConfigError::InvalidEndpoint { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn certificate_precedence_builder_then_traces_then_generic() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/g.pem"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/t.pem"),
        ];
        let path = |c: &ExporterConfig| c.certificate.as_ref().map(|(_, p)| p.clone());
        assert_eq!(
            path(&ok(&RawConfig::default(), &vars)),
            Some("/t.pem".into())
        );
        assert_eq!(
            path(&ok(&RawConfig::default(), &vars[..1])),
            Some("/g.pem".into())
        );
        let builder = RawConfig {
            certificate: Some("/b.pem".into()),
            ..RawConfig::default()
        };
        assert_eq!(path(&ok(&builder, &vars)), Some("/b.pem".into()));
        assert_eq!(path(&ok(&RawConfig::default(), &[])), None);
    }

    #[test]
    fn the_spool_comes_from_the_builder_else_the_environment() {
        let vars = [
            ("OTELITE_EXPORTER_SPOOL_DIR", "/var/spool/app"),
            ("OTELITE_EXPORTER_SPOOL_MAX_BYTES", "1000"),
        ];
        let from_env = ok(&RawConfig::default(), &vars).spool;
        assert_eq!(
            from_env,
            Some(SpoolConfig {
                dir: "/var/spool/app".into(),
                max_bytes: 1000
            })
        );
        let dir_only = ok(&RawConfig::default(), &vars[..1]).spool;
        assert_eq!(dir_only.map(|s| s.max_bytes), Some(DEFAULT_SPOOL_BYTES));
        assert_eq!(ok(&RawConfig::default(), &vars[1..]).spool, None);
        let builder = RawConfig {
            spool: Some(SpoolConfig {
                dir: "/b".into(),
                max_bytes: 5,
            }),
            ..RawConfig::default()
        };
        assert_eq!(ok(&builder, &vars).spool.map(|s| s.max_bytes), Some(5));
        let bad = [vars[0], ("OTELITE_EXPORTER_SPOOL_MAX_BYTES", "lots")];
        assert!(matches!(
            resolve(&RawConfig::default(), &bad),
            Err(ConfigError::InvalidSpoolSize { .. })
        ));
    }

    #[test]
    fn https_endpoints_are_accepted() {
        let c = ok(&builder_endpoint("https://collector:4318"), &[]);
        assert_eq!(c.traces_url, "https://collector:4318/v1/traces");
    }

    #[test]
    fn headers_precedence_builder_then_traces_then_generic() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_HEADERS", "g=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "t=2"),
        ];
        let c = ok(&RawConfig::default(), &vars);
        assert_eq!(c.headers.get("t").map(|v| v.as_bytes()), Some(&b"2"[..]));
        assert!(c.headers.get("g").is_none());

        let generic_only = ok(&RawConfig::default(), &vars[..1]);
        assert_eq!(
            generic_only.headers.get("g").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );

        let raw = RawConfig {
            headers: Some(vec![("b".into(), "3".into())]),
            ..RawConfig::default()
        };
        let c = ok(&raw, &vars);
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers.get("b").map(|v| v.as_bytes()), Some(&b"3"[..]));
    }

    #[test]
    fn header_values_are_url_decoded_and_trimmed() {
        let vars = [("OTEL_EXPORTER_OTLP_HEADERS", " api-key = a%20b%3Dc , x=1,")];
        let c = ok(&RawConfig::default(), &vars);
        assert_eq!(
            c.headers.get("api-key").map(|v| v.as_bytes()),
            Some(&b"a b=c"[..])
        );
        assert_eq!(c.headers.get("x").map(|v| v.as_bytes()), Some(&b"1"[..]));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in ["novalue", "k=%zz", "bad key=1"] {
            let err = resolve(
                &RawConfig::default(),
                &[("OTEL_EXPORTER_OTLP_HEADERS", bad)],
            );
            assert!(
                matches!(err, Err(ConfigError::InvalidHeader { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn timeout_precedence_and_milliseconds() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
        ];
        assert_eq!(
            ok(&RawConfig::default(), &vars).timeout,
            Duration::from_millis(2500)
        );
        assert_eq!(
            ok(&RawConfig::default(), &vars[..1]).timeout,
            Duration::from_secs(1)
        );
        let raw = RawConfig {
            timeout: Some(Duration::from_millis(7)),
            ..RawConfig::default()
        };
        assert_eq!(ok(&raw, &vars).timeout, Duration::from_millis(7));
    }

    #[test]
    fn bad_timeouts_are_refused() {
        for bad in ["0", "-1", "1.5", "10s"] {
            let err = resolve(
                &RawConfig::default(),
                &[("OTEL_EXPORTER_OTLP_TIMEOUT", bad)],
            );
            assert!(
                matches!(err, Err(ConfigError::InvalidTimeout { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn compression_precedence_and_values() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "NONE"),
        ];
        assert_eq!(
            ok(&RawConfig::default(), &vars).compression,
            Compression::None
        );
        assert_eq!(
            ok(&RawConfig::default(), &vars[..1]).compression,
            Compression::Gzip
        );
        let raw = RawConfig {
            compression: Some(Compression::Gzip),
            ..RawConfig::default()
        };
        assert_eq!(ok(&raw, &vars).compression, Compression::Gzip);
        let err = resolve(
            &RawConfig::default(),
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
        );
        assert!(matches!(err, Err(ConfigError::InvalidCompression { .. })));
    }

    #[test]
    fn zero_metrics_interval_turns_periodic_reports_off() {
        let raw = RawConfig {
            metrics_interval: Some(Duration::ZERO),
            ..RawConfig::default()
        };
        assert_eq!(ok(&raw, &[]).metrics_interval, None);
    }
}
