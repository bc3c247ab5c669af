//! Times and durations as people type and read them: `10ms`, `1.5s`, `1h`
//! for durations; RFC 3339 (`2024-05-01T12:00:00Z`) for instants. Small
//! enough to own rather than pull in a date crate; all UTC.

use crate::text::{self, civil_from_days};
use std::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `10ms`, `1.5s`, `2h`, `250us`, `1h30m`: see `crate::text::parse_duration`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    text::parse_duration(text.trim()).map(Duration::from_nanos)
}

/// A short human form: `850ns`, `12.5µs`, `1.50ms`, `250ms`, `2.00s`, `3m05s`.
pub fn format_duration(nanos: u64) -> String {
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos >= 60 * NANOS_PER_SECOND {
        let seconds = nanos / NANOS_PER_SECOND;
        return format!("{}m{:02}s", seconds / 60, seconds % 60);
    }
    let (value, unit) = match nanos {
        n if n < 1_000_000 => (n as f64 / 1e3, "µs"),
        n if n < NANOS_PER_SECOND => (n as f64 / 1e6, "ms"),
        n => (n as f64 / 1e9, "s"),
    };
    // About three significant digits; rounding may reach the next power of ten.
    if value < 9.995 {
        format!("{value:.2}{unit}")
    } else if value < 99.95 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

/// The last instant the stores keep: SQLite's integers are i64, so a
/// span's start past it is stored as it, and the trace summaries say so.
const LAST_STORED_NANOS: u64 = i64::MAX as u64;

/// UTC with milliseconds: `2024-05-01T12:00:00.123Z`. Instants past the
/// last one the store keeps (2262-04-11T23:47:16.854Z) are shown as that
/// one, so a span and its trace's summary never name different years.
pub fn format_time(unix_nanos: u64) -> String {
    let unix_nanos = unix_nanos.min(LAST_STORED_NANOS);
    let seconds = unix_nanos / NANOS_PER_SECOND;
    let millis = (unix_nanos % NANOS_PER_SECOND) / 1_000_000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// RFC 3339, as unix nanoseconds: see `crate::text::parse_rfc3339`.
pub fn parse_time(text: &str) -> Result<u64, String> {
    text::parse_rfc3339(text)
}

/// The instants a command looks at: `--since` back from `now`, or
/// `--start`/`--end`; `None` ends are open.
/// The time window flags of the reading commands: `--since 1h`, or
/// `--start` and/or `--end` as RFC 3339 times.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Window {
    /// Only within this long before now, e.g. 1h.
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["start", "end"])]
    pub since: Option<Duration>,
    /// From this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub start: Option<u64>,
    /// Up to this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<u64>,
}

impl Window {
    /// The window as unix nanoseconds, `--since` counted back from `now_ns`.
    pub fn resolve(&self, now_ns: u64) -> Result<(Option<u64>, Option<u64>), String> {
        range(self.since, self.start, self.end, now_ns)
    }
}

fn range(
    since: Option<Duration>,
    start: Option<u64>,
    end: Option<u64>,
    now_ns: u64,
) -> Result<(Option<u64>, Option<u64>), String> {
    if let Some(since) = since {
        let back = since.as_nanos().min(u128::from(u64::MAX)) as u64;
        return Ok((Some(now_ns.saturating_sub(back)), None));
    }
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err("--start must not be after --end".into());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_unit() {
        for (text, nanos) in [
            ("10ms", 10_000_000),
            ("1.5s", 1_500_000_000),
            ("1h", 3_600_000_000_000),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("7ns", 7),
            ("2m", 120_000_000_000),
            ("1d", 86_400_000_000_000),
            (" 0s ", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(nanos)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_without_a_known_unit_are_refused() {
        for text in ["10", "", "ms", "1.2.3s", "10 ms", "10sec", "-1s", "1e400h"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn durations_format_with_three_digits() {
        for (nanos, text) in [
            (850, "850ns"),
            (12_500, "12.5µs"),
            (1_500_000, "1.50ms"),
            (250_000_000, "250ms"),
            (999_999_999, "1000ms"),
            (2_000_000_000, "2.00s"),
            (185_000_000_000, "3m05s"),
        ] {
            assert_eq!(format_duration(nanos), text);
        }
    }

    #[test]
    fn times_format_and_parse_back() {
        let t = 1_714_564_800_123_000_000; // 2024-05-01T12:00:00.123Z
        assert_eq!(format_time(t), "2024-05-01T12:00:00.123Z");
        assert_eq!(parse_time("2024-05-01T12:00:00.123Z"), Ok(t));
        assert_eq!(parse_time("2024-05-01T14:00:00.123+02:00"), Ok(t));
        assert_eq!(parse_time("2024-05-01T11:30:00.123-00:30"), Ok(t));
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z"),
            Ok(951_782_400 * NANOS_PER_SECOND)
        );
        assert_eq!(
            format_time(951_782_400 * NANOS_PER_SECOND),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn malformed_times_are_refused() {
        for text in [
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024/05/01T12:00:00Z",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert!(parse_time(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn since_counts_back_from_now() {
        let hour = Duration::from_secs(3_600);
        let now = 10_000 * NANOS_PER_SECOND;
        assert_eq!(
            range(Some(hour), None, None, now),
            Ok((Some(6_400 * NANOS_PER_SECOND), None))
        );
        assert_eq!(range(None, Some(5), Some(9), now), Ok((Some(5), Some(9))));
        assert!(range(None, Some(9), Some(5), now).is_err());
    }
}
