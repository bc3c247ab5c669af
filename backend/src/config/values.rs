//! The value types of the serve settings that are not the standard
//! library's: each parses from a flag, a variable or a TOML string alike.

use crate::net::BearerToken;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Which store keeps the spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One SQLite file (`db`), the default.
    #[default]
    Sqlite,
    /// A ClickHouse server or cluster (`clickhouse_url`).
    Clickhouse,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sqlite" => Ok(Self::Sqlite),
            "clickhouse" => Ok(Self::Clickhouse),
            other => Err(format!(
                "{other:?} is not a store: use sqlite or clickhouse"
            )),
        }
    }
}

/// How `otelite serve` writes its own logs (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("{other:?} is not a log format: use text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// A token as configured; never printed. Empty tokens are refused, since
/// `Authorization: Bearer ` would match them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Secret(String);

impl TryFrom<String> for Secret {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.trim().is_empty() {
            Err("a token must not be empty")
        } else {
            Ok(Self(text))
        }
    }
}

impl Secret {
    /// The form the listeners compare in constant time.
    pub(super) fn into_bearer(self) -> BearerToken {
        BearerToken::new(&self.0)
    }
}

impl FromStr for Secret {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::try_from(text.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
