//! Text forms shared by the query APIs and the command line: durations
//! (`1.5ms`, `1h30m`, Go's syntax, plus `d`), RFC 3339 instants, and span
//! kind names, and percent-encoding. Each parser returns a message saying what was wrong; the
//! caller adds which parameter or flag it was.

use otelite_model::SpanKind;

/// `text` percent-encoded except RFC 3986's unreserved characters, so it
/// is one URL path segment or one query value whatever it holds.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A Go `time.ParseDuration` string, in nanoseconds; negative durations are
/// refused since no span lasts less than nothing.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("{text:?} is not a duration like 1.5ms or 2s");
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    let mut rest = rest;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if total >= u64::MAX as f64 {
        return Err(format!("{text:?} is too long"));
    }
    Ok(total.round() as u64)
}

/// An RFC 3339 time (`2024-05-01T12:00:00.5Z`, `…+02:00`) as unix nanoseconds.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let invalid = || format!("{text:?} is not an RFC 3339 time like 2024-05-01T12:00:00Z");
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return Err(invalid());
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return Err(invalid());
    }
    let field = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &text[range];
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(invalid());
    }
    if second > 60 {
        return Err(invalid());
    }
    let mut rest = &text[19..];
    let mut fraction_ns = 0i64;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        if digits == 0 {
            return Err(invalid());
        }
        let kept = &after_dot[..digits.min(9)];
        fraction_ns =
            kept.parse::<i64>().map_err(|_| invalid())? * 10i64.pow(9 - kept.len() as u32);
        rest = &after_dot[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(invalid()),
            };
            let hours: i64 = rest[1..3].parse().map_err(|_| invalid())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| invalid())?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(invalid()),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    if seconds < 0 {
        return Err(format!("{text:?} is before 1970"));
    }
    Ok(seconds as u64 * 1_000_000_000 + fraction_ns as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (the
/// inverse of `days_from_civil`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

/// A span kind by its lowercase name, in any case.
pub fn parse_span_kind(text: &str) -> Result<SpanKind, String> {
    let lower = text.to_ascii_lowercase();
    KINDS
        .into_iter()
        .find(|kind| span_kind_name(*kind) == lower)
        .ok_or_else(|| {
            format!("{text:?} is not a span kind: use server, client, internal, producer, consumer or unspecified")
        })
}

pub fn span_kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(parse_duration("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("1h2m"), Ok(3_720_000_000_000));
        assert_eq!(parse_duration("300us"), Ok(300_000));
        assert_eq!(parse_duration("7µs"), Ok(7_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("12ns"), Ok(12));
        for bad in ["", "5", "ms", "1x", "1.2.3s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5Z"),
            Ok(1_714_564_800_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Ok(1_714_564_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00.000000001Z"),
            Ok(951_782_400_000_000_001)
        );
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad} accepted");
        }
    }
    #[test]
    fn days_and_dates_round_trip() {
        for days in [-1, 0, 59, 10_957, 19_844, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(
                days_from_civil(year, i64::from(month), i64::from(day)),
                days
            );
        }
        assert_eq!(civil_from_days(19_844), (2024, 5, 1));
    }

    #[test]
    fn kinds_parse_by_name_in_any_case() {
        for kind in KINDS {
            assert_eq!(parse_span_kind(span_kind_name(kind)), Ok(kind));
        }
        assert_eq!(parse_span_kind("SERVER"), Ok(SpanKind::Server));
        assert!(parse_span_kind("serverless").is_err());
    }
}
