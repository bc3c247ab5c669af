//! Retention as every store applies it: what it keeps, as the settings
//! write it (an age, `7d`, `36h`, and a size, `10GB`, `512MiB`; `0` turns
//! either off, both parse from flag and environment text and from TOML, a
//! size also as an integer), how often it runs, and what it has deleted.

use serde::Deserialize;
use std::str::FromStr;
use std::time::Duration;

/// How long spans are kept; `0` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Age(pub Duration);

impl FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        crate::text::parse_duration(text.trim()).map(|ns| Age(Duration::from_nanos(ns)))
    }
}

impl TryFrom<String> for Age {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// A size in bytes: a number with an optional unit, decimal (`kB`, `MB`,
/// `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`, `TiB`), any case; `0` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeValue")]
pub struct ByteSize(pub u64);

/// A size in TOML: `max_db_size = "10GB"` or `max_db_size = 1000000`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeValue> for ByteSize {
    type Error = String;

    fn try_from(value: SizeValue) -> Result<Self, String> {
        match value {
            SizeValue::Bytes(n) => Ok(ByteSize(n)),
            SizeValue::Text(text) => text.parse(),
        }
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not a size like 10GB or 512MiB");
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let number: f64 = text[..split].parse().map_err(|_| invalid())?;
        let scale: f64 = match text[split..].trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return Err(invalid()),
        };
        let bytes = number * scale;
        if bytes >= u64::MAX as f64 {
            return Err(format!("{text:?} is too large"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

/// What the background task enforces; `None` where the setting is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Traces that started longer ago than this are deleted.
    pub max_age: Option<Duration>,
    /// A cap on the database's files: the oldest traces are deleted until
    /// the data fits under it with room for the WAL (see the README).
    pub max_bytes: Option<u64>,
}

impl Policy {
    pub fn new(age: Option<Age>, size: Option<ByteSize>) -> Self {
        Self {
            max_age: age.map(|a| a.0).filter(|a| !a.is_zero()),
            max_bytes: size.map(|s| s.0).filter(|s| *s > 0),
        }
    }

    pub fn is_off(&self) -> bool {
        self.max_age.is_none() && self.max_bytes.is_none()
    }
}

/// How often retention runs.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// What retention has deleted since start, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub deleted_spans: u64,
    pub deleted_traces: u64,
    pub batches: u64,
    pub runs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        let size = |text: &str| text.parse::<ByteSize>().map(|s| s.0);
        assert_eq!(size("10GB"), Ok(10_000_000_000));
        assert_eq!(size("10 gb"), Ok(10_000_000_000));
        assert_eq!(size("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(size("1.5kB"), Ok(1500));
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("0"), Ok(0));
        assert!(size("10 parsecs").is_err());
        assert!(size("GB").is_err());
        assert!(size("-1GB").is_err());
    }

    #[test]
    fn ages_take_days_and_go_durations() {
        let age = |text: &str| text.parse::<Age>().map(|a| a.0);
        assert_eq!(age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(age("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert!(age("a week").is_err());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let policy = Policy::new(Some(Age(Duration::ZERO)), Some(ByteSize(0)));
        assert!(policy.is_off());
        let policy = Policy::new(Some(Age(Duration::from_secs(60))), None);
        assert_eq!(policy.max_age, Some(Duration::from_secs(60)));
        assert!(!policy.is_off());
    }
}
