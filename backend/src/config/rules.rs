//! The keep/drop rules as the config file writes them (`[[drop]]` and
//! `[[sample]]` tables, file only: rules are structured), checked into the
//! `analyze::Policy` the receiver applies. A bad rule stops the start with
//! a message naming it.

use super::ConfigError;
use crate::analyze::policy::{DropRule, Pattern, Policy, SampleRule};
use serde::Deserialize;
use std::collections::HashSet;

/// `[[drop]]`: drops the spans that every given matcher matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropSpec {
    pub name: String,
    pub service: Option<String>,
    pub span_name: Option<String>,
    /// `key=value`: a span or resource attribute.
    pub attribute: Option<String>,
}

/// `[[sample]]`: keeps `keep` (0 to 1) of the traces of `service` (of
/// every service when it is left out), by trace id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    pub name: String,
    pub service: Option<String>,
    pub keep: f64,
}

/// Checks the rules and builds the policy: names non-empty, of letters,
/// digits, `-`, `_` and `.` (they become metric labels and loss reasons)
/// and unique; a drop rule with a matcher; a fraction in [0, 1].
pub fn policy(drops: &[DropSpec], samples: &[SampleSpec]) -> Result<Policy, ConfigError> {
    let mut names = HashSet::new();
    let mut policy = Policy::default();
    for spec in drops {
        check_name(&spec.name, &mut names)?;
        let attribute = spec
            .attribute
            .as_deref()
            .map(|text| match text.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), Pattern::new(value))),
                _ => Err(bad(&spec.name, "attribute must be written key=value")),
            })
            .transpose()?;
        if spec.service.is_none() && spec.span_name.is_none() && attribute.is_none() {
            return Err(bad(
                &spec.name,
                "a drop rule needs service, span_name or attribute (or it would drop every span)",
            ));
        }
        for (field, value) in [("service", &spec.service), ("span_name", &spec.span_name)] {
            if value.as_deref() == Some("") {
                return Err(bad(&spec.name, &format!("{field} is empty")));
            }
        }
        policy.drops.push(DropRule {
            name: spec.name.clone(),
            service: spec.service.clone().map(Pattern::new),
            span_name: spec.span_name.clone().map(Pattern::new),
            attribute,
        });
    }
    for spec in samples {
        check_name(&spec.name, &mut names)?;
        if !(0.0..=1.0).contains(&spec.keep) {
            return Err(bad(
                &spec.name,
                &format!("keep must be a fraction from 0 to 1, not {}", spec.keep),
            ));
        }
        if spec.service.as_deref() == Some("") {
            return Err(bad(&spec.name, "service is empty"));
        }
        policy.samples.push(SampleRule::new(
            spec.name.clone(),
            spec.service.clone().map(Pattern::new),
            spec.keep,
        ));
    }
    Ok(policy)
}

fn check_name(name: &str, seen: &mut HashSet<String>) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(bad(
            name,
            "a rule's name must be letters, digits, '-', '_' or '.'",
        ));
    }
    if !seen.insert(name.to_owned()) {
        return Err(bad(name, "two rules have this name"));
    }
    Ok(())
}

fn bad(rule: &str, reason: &str) -> ConfigError {
    ConfigError::Rule {
        rule: rule.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
