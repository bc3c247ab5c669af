use super::*;
use otelite_model::fixtures::span;

fn drop_rule(name: &str) -> DropRule {
    DropRule {
        name: name.into(),
        service: None,
        span_name: None,
        attribute: None,
    }
}

fn only_drops(drops: Vec<DropRule>) -> Policy {
    Policy {
        drops,
        samples: Vec::new(),
    }
}

/// A trace id whose first 9 bytes are `0x11` and last 7 are `low`.
fn trace_with_low(low: [u8; 7]) -> TraceId {
    let mut id = [0x11u8; 16];
    id[9..].copy_from_slice(&low);
    TraceId(id)
}

#[test]
fn patterns_match_exactly_or_with_stars() {
    assert!(Pattern::new("GET /healthz").matches("GET /healthz"));
    assert!(!Pattern::new("GET /healthz").matches("GET /healthz2"));
    assert!(!Pattern::new("GET /healthz").matches("get /healthz"));
    assert!(Pattern::new("GET /health*").matches("GET /healthz"));
    assert!(Pattern::new("GET /health*").matches("GET /health"));
    assert!(!Pattern::new("GET /health*").matches("POST /healthz"));
    assert!(Pattern::new("*.internal").matches("cache.internal"));
    assert!(Pattern::new("a*b*c").matches("a-bb-xc"));
    assert!(!Pattern::new("a*b*c").matches("a-bb-x"));
    assert!(Pattern::new("*").matches(""));
    assert!(Pattern::new("é*ü").matches("éaü"));
}

#[test]
fn a_drop_rule_matches_by_service_name_and_attribute_together() {
    let policy = only_drops(vec![DropRule {
        service: Some(Pattern::new("shop")),
        span_name: Some(Pattern::new("GET /health*")),
        ..drop_rule("health-checks")
    }]);
    let health = span(1, 1).service("shop").name("GET /healthz").build();
    let other_service = span(1, 2).service("cart").name("GET /healthz").build();
    let other_name = span(1, 3).service("shop").name("GET /cart").build();
    assert_eq!(policy.dropped_by(&health), Some("health-checks"));
    assert_eq!(policy.dropped_by(&other_service), None);
    assert_eq!(policy.dropped_by(&other_name), None);
}

#[test]
fn an_attribute_rule_looks_at_span_and_resource_attributes() {
    let policy = only_drops(vec![DropRule {
        attribute: Some(("http.route".into(), Pattern::new("/healthz"))),
        ..drop_rule("by-route")
    }]);
    let on_span = span(1, 1)
        .attribute("http.route", AnyValue::String("/healthz".into()))
        .build();
    let other_value = span(1, 2)
        .attribute("http.route", AnyValue::String("/cart".into()))
        .build();
    let resource = std::sync::Arc::new(otelite_model::Resource {
        service_name: "shop".into(),
        attributes: vec![KeyValue::new(
            "http.route",
            AnyValue::String("/healthz".into()),
        )],
        dropped_attributes_count: 0,
        schema_url: String::new(),
    });
    let on_resource = span(1, 3).resource(&resource).build();
    assert_eq!(policy.dropped_by(&on_span), Some("by-route"));
    assert_eq!(policy.dropped_by(&other_value), None);
    assert_eq!(policy.dropped_by(&on_resource), Some("by-route"));
}

#[test]
fn non_string_attributes_match_as_written() {
    let policy = only_drops(vec![DropRule {
        attribute: Some(("internal".into(), Pattern::new("true"))),
        ..drop_rule("internal")
    }]);
    let flagged = span(1, 1)
        .attribute("internal", AnyValue::Bool(true))
        .build();
    let unflagged = span(1, 2)
        .attribute("internal", AnyValue::Bool(false))
        .build();
    assert_eq!(policy.dropped_by(&flagged), Some("internal"));
    assert_eq!(policy.dropped_by(&unflagged), None);
}

#[test]
fn the_first_rule_that_drops_names_the_drop_and_drops_come_before_samples() {
    let policy = Policy {
        drops: vec![
            DropRule {
                span_name: Some(Pattern::new("noisy*")),
                ..drop_rule("first")
            },
            DropRule {
                span_name: Some(Pattern::new("noisy-loop")),
                ..drop_rule("second")
            },
        ],
        samples: vec![SampleRule::new("none", None, 0.0)],
    };
    assert_eq!(
        policy.dropped_by(&span(1, 1).name("noisy-loop").build()),
        Some("first")
    );
    assert_eq!(
        policy.dropped_by(&span(1, 2).name("checkout").build()),
        Some("none")
    );
}

#[test]
fn the_threshold_is_the_rejected_share_of_2_to_the_56() {
    assert_eq!(threshold(1.0), 0);
    assert_eq!(threshold(0.0), 1 << 56);
    assert_eq!(threshold(0.5), 1 << 55);
    assert_eq!(threshold(0.75), 1 << 54);
}

#[test]
fn the_decision_reads_the_low_56_bits_of_the_trace_id() {
    let half = 1u64 << 55;
    // 0x80 00 00 00 00 00 00 in the last 7 bytes: exactly 2^55.
    let at_half = trace_with_low([0x80, 0, 0, 0, 0, 0, 0]);
    let below_half = trace_with_low([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(randomness(&at_half), half);
    assert!(keeps(threshold(0.5), &at_half));
    assert!(!keeps(threshold(0.5), &below_half));
    // The high 9 bytes play no part.
    let mut other_high = at_half;
    other_high.0[..9].copy_from_slice(&[0xee; 9]);
    assert!(keeps(threshold(0.5), &other_high));
    // Fraction 0 keeps not even the largest randomness; 1 keeps the smallest.
    assert!(!keeps(threshold(0.0), &trace_with_low([0xff; 7])));
    assert!(keeps(threshold(1.0), &trace_with_low([0; 7])));
}

#[test]
fn a_sample_rule_applies_to_its_service_only() {
    let policy = Policy {
        drops: Vec::new(),
        samples: vec![SampleRule::new(
            "shop-none",
            Some(Pattern::new("shop")),
            0.0,
        )],
    };
    assert_eq!(
        policy.dropped_by(&span(1, 1).service("shop").build()),
        Some("shop-none")
    );
    assert_eq!(policy.dropped_by(&span(1, 1).service("cart").build()), None);
}

/// splitmix64: random-looking trace ids from a fixed seed, so a failure
/// replays.
fn ids(count: usize) -> impl Iterator<Item = TraceId> {
    let mut state: u64 = 0x0005_eed0_f7ac_e1d5;
    std::iter::repeat_with(move || {
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&next().to_be_bytes());
        id[8..].copy_from_slice(&next().to_be_bytes());
        TraceId(id)
    })
    .take(count)
}

/// Over 100 000 random ids the kept share is within 1 percentage point of
/// the fraction (the binomial's standard deviation is at most 0.16 points
/// here, so 1 point is over 6 of them).
#[test]
fn the_kept_share_of_many_random_ids_is_the_fraction() {
    const COUNT: usize = 100_000;
    for fraction in [0.01, 0.1, 0.25, 0.5, 0.9] {
        let kept = ids(COUNT)
            .filter(|id| keeps(threshold(fraction), id))
            .count();
        let share = kept as f64 / COUNT as f64;
        assert!(
            (share - fraction).abs() < 0.01,
            "fraction {fraction}: kept {share}"
        );
    }
}

#[test]
fn the_same_trace_gets_the_same_answer_every_time_and_for_every_span() {
    let policy = Policy {
        drops: Vec::new(),
        samples: vec![SampleRule::new("half", None, 0.5)],
    };
    for id in ids(1_000) {
        let first = policy.dropped_by(&span(1, 1).trace_id(id).build());
        for other in 2..5 {
            let again = span(1, other).trace_id(id).name("other").build();
            assert_eq!(policy.dropped_by(&again), first);
        }
    }
}

#[test]
fn a_trace_kept_at_a_fraction_is_kept_at_every_larger_one() {
    for id in ids(10_000) {
        if keeps(threshold(0.2), &id) {
            assert!(keeps(threshold(0.6), &id));
        }
    }
}
