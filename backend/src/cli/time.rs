//! Times and durations as people type and read them: `10ms`, `1.5s`, `1h`
//! for durations; RFC 3339 (`2024-05-01T12:00:00Z`) for instants. Small
//! enough to own rather than pull in a date crate; all UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `10ms`, `1.5s`, `2h`, `250us`: a non-negative number and a unit
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit: write e.g. 10ms, 1.5s, 1h"))?;
    let (number, unit) = text.split_at(split);
    let unit_nanos: f64 = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3_600e9,
        "d" => 86_400e9,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ns, us, ms, s, m, h or d"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number and a unit, e.g. 10ms"))?;
    let nanos = (value * unit_nanos).round();
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(format!("{text:?} is too long"));
    }
    Ok(Duration::from_nanos(nanos as u64))
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

/// UTC with milliseconds: `2024-05-01T12:00:00.123Z`.
pub fn format_time(unix_nanos: u64) -> String {
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

/// RFC 3339: `2024-05-01T12:00:00Z`, with optional fraction and a `Z` or
/// `±hh:mm` offset. Instants before 1970 are refused.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z");
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u64, String> {
        let part = text.get(range).ok_or_else(bad)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| bytes[at] != sep) {
        return Err(bad());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut fraction_nanos = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let kept = &after_dot[..digits.min(9)];
        fraction_nanos = kept.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - kept.len() as u32);
        rest = &after_dot[digits..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let hours: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| bad())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3_600 + minutes * 60)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let seconds = days * 86_400 + (hour * 3_600 + minute * 60 + second) as i64 - offset_seconds;
    if seconds < 0 {
        return Err(format!("{text:?} is before 1970"));
    }
    Ok(seconds as u64 * NANOS_PER_SECOND + fraction_nanos)
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// The instants a command looks at: `--since` back from `now`, or
/// `--start`/`--end`; `None` ends are open.
pub fn range(
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

// Howard Hinnant's days <-> civil date algorithms (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
