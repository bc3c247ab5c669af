//! Query-string values in Jaeger's formats: Go durations (`1.5ms`, `2s`),
//! RFC 3339 times, span kinds, and `key:value` / JSON-object tag filters.
//! Each parser returns a message naming what was wrong; the caller adds the
//! parameter's name.

use otelite_exporter::model::SpanKind;

/// The query string as pairs, in order, so that a parameter may repeat.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first non-empty value of the first of `names` that is given.
    pub fn get(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|name| {
            self.0
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| (*name, value.as_str()))
        })
    }

    /// Every non-empty value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// A Go `time.ParseDuration` string, in nanoseconds; negative durations are
/// refused since no span lasts less than nothing.
pub fn go_duration(text: &str) -> Result<u64, String> {
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
pub fn rfc3339(text: &str) -> Result<u64, String> {
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
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A span kind as Jaeger writes it (`server`, …); empty means any.
pub fn span_kind(text: &str) -> Result<Option<SpanKind>, String> {
    Ok(Some(match text.to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        "unspecified" => SpanKind::Unspecified,
        _ => {
            return Err(format!(
                "{text:?} is not one of server, client, producer, consumer, internal"
            ));
        }
    }))
}

/// Lowercase kind name; `""` for unspecified, as Jaeger's v1 API shows it.
pub fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

/// A `key:value` tag filter (the value may itself hold colons).
pub fn tag_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key:value")),
    }
}

/// A JSON object of tag filters; strings as they are, numbers and booleans
/// as written in JSON (the store's searchable text).
pub fn tag_object(text: &str) -> Result<Vec<(String, String)>, String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("{text:?} is not a JSON object of tags: {e}"))?;
    object
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Ok((key, s)),
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                Ok((key, value.to_string()))
            }
            other => Err(format!(
                "tag {key:?} has value {other}, not a string, number or bool"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1.5ms"), Ok(1_500_000));
        assert_eq!(go_duration("2s"), Ok(2_000_000_000));
        assert_eq!(go_duration("1h2m"), Ok(3_720_000_000_000));
        assert_eq!(go_duration("300us"), Ok(300_000));
        assert_eq!(go_duration("7µs"), Ok(7_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("12ns"), Ok(12));
        for bad in ["", "5", "ms", "1x", "1.2.3s", "-1s"] {
            assert!(go_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            rfc3339("2024-05-01T12:00:00.5Z"),
            Ok(1_714_564_800_500_000_000)
        );
        assert_eq!(
            rfc3339("2024-05-01T14:00:00+02:00"),
            Ok(1_714_564_800_000_000_000)
        );
        assert_eq!(
            rfc3339("2000-02-29T00:00:00.000000001Z"),
            Ok(951_782_400_000_000_001)
        );
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "yesterday",
        ] {
            assert!(rfc3339(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            tag_pair("http.url:http://x"),
            Ok(("http.url".into(), "http://x".into()))
        );
        assert!(tag_pair("nocolon").is_err());
        assert_eq!(
            tag_object(r#"{"a":"x","b":200,"c":true}"#),
            Ok(vec![
                ("a".into(), "x".into()),
                ("b".into(), "200".into()),
                ("c".into(), "true".into())
            ])
        );
        assert!(tag_object("[1]").is_err());
        assert!(tag_object(r#"{"a":[1]}"#).is_err());
    }
}
