//! Query-string values in Jaeger's formats: Go durations (`1.5ms`, `2s`),
//! RFC 3339 times, span kinds, and `key:value` / JSON-object tag filters.
//! Each parser returns a message naming what was wrong; the caller adds the
//! parameter's name.

use crate::text;
use otelite_model::SpanKind;

/// The query string as pairs, in order, so that a parameter may repeat.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The non-empty value of the first of `names` that is given (they are
    /// one parameter's spellings); `Repeated` when that one is given more
    /// than once, rather than one copy picked.
    pub fn get(&self, names: &[&'static str]) -> Result<Option<(&'static str, &str)>, Repeated> {
        for name in names {
            let mut values = self.all(name);
            if let Some(value) = values.next() {
                let more = values.count();
                if more > 0 {
                    return Err(Repeated {
                        name,
                        times: more + 1,
                    });
                }
                return Ok(Some((*name, value)));
            }
        }
        Ok(None)
    }

    /// Every non-empty value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// A one-value parameter given several times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{name} is given {times} times; it takes one value")]
pub struct Repeated {
    pub name: &'static str,
    pub times: usize,
}

/// A span kind as Jaeger writes it (`server`, …); empty means any.
pub fn span_kind(text: &str) -> Result<Option<SpanKind>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text::parse_span_kind(text).map(Some)
}

/// Lowercase kind name; `""` for unspecified, as Jaeger's v1 API shows it.
pub fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        other => text::span_kind_name(other),
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
