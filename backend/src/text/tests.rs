use super::span_kind::KINDS;
use super::*;
use otelite_model::SpanKind;

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
