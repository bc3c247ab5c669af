//! Keep/drop rules, the one decision analysis makes: a span matching a drop
//! rule, or whose trace falls outside a sample rule's fraction, is not
//! stored and is counted at analyze as dropped by that rule (not lost).
//! Pure: the decision depends only on the span, so a trace's spans get the
//! same answer in every batch, after a restart and on every receiver.
//!
//! The trace-id decision is OpenTelemetry's consistent probability sampling
//! (the `th` threshold of the W3C trace-context level 2 randomness): the
//! randomness is the trace id's low 56 bits (its last 7 bytes, big-endian)
//! and a trace is kept when they are at least the rejection threshold
//! `round((1 - fraction) * 2^56)`. So fraction 1 keeps every trace, 0 none,
//! and a trace kept at a fraction is kept at every larger one.

use otelite_model::{AnyValue, KeyValue, Span, TraceId};

/// What storage and the rates call a span dropped by a rule: a loss reason
/// with this prefix, so both stores keep drops beside their losses unchanged.
pub const REASON_PREFIX: &str = "policy:";

/// The loss reason a drop by `rule` is recorded under.
pub fn reason(rule: &str) -> String {
    format!("{REASON_PREFIX}{rule}")
}

/// The rule a recorded reason names, when it is a policy drop.
pub fn rule_of(reason: &str) -> Option<&str> {
    reason.strip_prefix(REASON_PREFIX)
}

/// 2^56: the randomness of a trace id is below it.
const RANDOMNESS_SPAN: f64 = 72_057_594_037_927_936.0;

/// The configured rules, drop rules first, each in file order; the first
/// that decides against a span names the drop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub drops: Vec<DropRule>,
    pub samples: Vec<SampleRule>,
}

/// Drops the spans every given matcher matches (at least one is given).
#[derive(Debug, Clone, PartialEq)]
pub struct DropRule {
    pub name: String,
    pub service: Option<Pattern>,
    pub span_name: Option<Pattern>,
    /// A span or resource attribute with this key whose value matches.
    pub attribute: Option<(String, Pattern)>,
}

/// Keeps `fraction` of the traces of a service (of every service without one).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRule {
    pub name: String,
    pub service: Option<Pattern>,
    pub threshold: u64,
}

/// Text matched exactly, or with `*` standing for any run of characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn matches(&self, text: &str) -> bool {
        glob(self.0.as_bytes(), text.as_bytes())
    }
}

impl SampleRule {
    pub fn new(name: impl Into<String>, service: Option<Pattern>, fraction: f64) -> Self {
        Self {
            name: name.into(),
            service,
            threshold: threshold(fraction),
        }
    }
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.drops.is_empty() && self.samples.is_empty()
    }

    /// The rule that drops `span`, or `None` to keep it. A span matching no
    /// sample rule's service is kept.
    pub fn dropped_by(&self, span: &Span) -> Option<&str> {
        let service = span.service_name();
        if let Some(rule) = self.drops.iter().find(|rule| rule.matches(span)) {
            return Some(&rule.name);
        }
        let rule = self
            .samples
            .iter()
            .find(|rule| rule.service.as_ref().is_none_or(|p| p.matches(service)))?;
        (!keeps(rule.threshold, &span.trace_id)).then_some(rule.name.as_str())
    }
}

impl DropRule {
    fn matches(&self, span: &Span) -> bool {
        let service = self
            .service
            .as_ref()
            .is_none_or(|p| p.matches(span.service_name()));
        let name = self
            .span_name
            .as_ref()
            .is_none_or(|p| p.matches(&span.name));
        let attribute = self.attribute.as_ref().is_none_or(|(key, value)| {
            has_attribute(&span.attributes, key, value)
                || has_attribute(&span.resource.attributes, key, value)
        });
        service && name && attribute
    }
}

fn has_attribute(attributes: &[KeyValue], key: &str, value: &Pattern) -> bool {
    attributes
        .iter()
        .filter(|kv| kv.key == key)
        .any(|kv| text_of(&kv.value).is_some_and(|text| value.matches(&text)))
}

/// An attribute value as a rule compares it: as search writes it; arrays,
/// maps and bytes never match.
fn text_of(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::String(s) => Some(s.clone()),
        AnyValue::Bool(b) => Some(b.to_string()),
        AnyValue::Int(i) => Some(i.to_string()),
        AnyValue::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// The rejection threshold of a fraction in [0, 1]: traces whose
/// randomness is below it are dropped. Computed in `f64`: exact for
/// fractions that are sums of powers of two (0.5, 0.25, 0.75…), else within
/// 8 of the exact value (2^56 has 3 bits more than an `f64`'s mantissa), a
/// share error below 2^-53, the same for every receiver.
pub fn threshold(fraction: f64) -> u64 {
    let reject = (1.0 - fraction.clamp(0.0, 1.0)) * RANDOMNESS_SPAN;
    // At most 2^56, which no 56-bit randomness reaches: fraction 0 drops all.
    reject.round() as u64
}

/// A trace id's randomness: its low 56 bits.
pub fn randomness(trace_id: &TraceId) -> u64 {
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&trace_id.0[9..]);
    u64::from_be_bytes(low)
}

/// Whether the trace is kept under `threshold`.
pub fn keeps(threshold: u64, trace_id: &TraceId) -> bool {
    randomness(trace_id) >= threshold
}

/// `*`-glob matching with the usual backtrack to the last star: linear in
/// practice, no recursion, no allocation.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
