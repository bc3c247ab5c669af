//! The rules as the file writes them, through the same parse `otelite
//! serve` does, and each refusal naming its rule.

use super::super::{Config, ConfigError, Settings};
use crate::analyze::policy::Pattern;
use std::path::Path;

fn config(toml: &str) -> Result<Config, ConfigError> {
    Settings::from_toml(toml, Path::new("otelite.toml"))?.into_config()
}

fn refusal(toml: &str) -> String {
    match config(toml) {
        Ok(config) => panic!("accepted: {:?}", config.policy),
        Err(error) => error.to_string(),
    }
}

#[test]
fn drop_and_sample_rules_are_read_from_the_file_in_order() -> Result<(), ConfigError> {
    let config = config(
        r#"
        db = "x.db"
        [[drop]]
        name = "health-checks"
        span_name = "GET /health*"
        [[drop]]
        name = "internal"
        service = "shop"
        attribute = "otel.internal=true"
        [[sample]]
        name = "shop-quarter"
        service = "shop"
        keep = 0.25
        "#,
    )?;
    let policy = config.policy;
    assert_eq!(policy.drops.len(), 2);
    assert_eq!(policy.drops[0].name, "health-checks");
    assert_eq!(
        policy.drops[0].span_name,
        Some(Pattern::new("GET /health*"))
    );
    assert_eq!(
        policy.drops[1].attribute,
        Some(("otel.internal".to_owned(), Pattern::new("true")))
    );
    assert_eq!(policy.drops[1].service, Some(Pattern::new("shop")));
    assert_eq!(policy.samples.len(), 1);
    assert_eq!(policy.samples[0].name, "shop-quarter");
    // 0.75 * 2^56 = 3 * 2^54.
    assert_eq!(policy.samples[0].threshold, 54_043_195_528_445_952);
    Ok(())
}

#[test]
fn without_rules_nothing_is_dropped() -> Result<(), ConfigError> {
    assert!(config("db = \"x.db\"")?.policy.is_empty());
    assert!(Config::default().policy.is_empty());
    Ok(())
}

#[test]
fn bad_rules_are_refused_naming_the_rule() {
    let cases = [
        (
            "[[drop]]\nname = \"everything\"\n",
            "rule `everything`: a drop rule needs service, span_name or attribute",
        ),
        (
            "[[drop]]\nname = \"attr\"\nattribute = \"no-equals\"\n",
            "rule `attr`: attribute must be written key=value",
        ),
        (
            "[[drop]]\nname = \"attr\"\nattribute = \"=x\"\n",
            "rule `attr`: attribute must be written key=value",
        ),
        (
            "[[sample]]\nname = \"too-many\"\nkeep = 1.5\n",
            "rule `too-many`: keep must be a fraction from 0 to 1, not 1.5",
        ),
        (
            "[[sample]]\nname = \"nan\"\nkeep = nan\n",
            "rule `nan`: keep must be a fraction from 0 to 1, not NaN",
        ),
        (
            "[[drop]]\nname = \"twice\"\nservice = \"a\"\n[[sample]]\nname = \"twice\"\nkeep = 0.5\n",
            "rule `twice`: two rules have this name",
        ),
        (
            "[[drop]]\nname = \"has space\"\nservice = \"a\"\n",
            "rule `has space`: a rule's name must be",
        ),
        (
            "[[drop]]\nname = \"empty\"\nspan_name = \"\"\n",
            "rule `empty`: span_name is empty",
        ),
    ];
    for (toml, expected) in cases {
        let message = refusal(toml);
        assert!(message.starts_with(expected), "{toml}: {message}");
    }
}

#[test]
fn an_unknown_key_in_a_rule_is_refused() {
    let message = refusal("[[drop]]\nname = \"typo\"\nspan = \"GET /\"\n");
    assert!(message.contains("unknown field `span`"), "{message}");
}

/// The README's example rules are a valid config file as written.
#[test]
fn the_readme_example_rules_parse() -> Result<(), ConfigError> {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split_once("### Keep or drop spans by rule")
        .map(|(_, rest)| rest)
        .expect("the README has the section");
    let example = section
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(toml, _)| toml)
        .expect("the section has a TOML example");
    let policy = config(example)?.policy;
    assert_eq!(policy.drops[0].name, "health-checks");
    assert_eq!(policy.samples[0].name, "shop-tenth");
    Ok(())
}
