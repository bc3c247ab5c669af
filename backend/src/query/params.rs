//! Query-string parameters, read so that a bad one gets a 400 that names
//! it and says why (axum's own extractor answers in plain text and names
//! no parameter).

use super::ApiError;
use std::str::FromStr;

/// The decoded `name=value` pairs of a query string; empty values count as
/// absent.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes `raw`, refusing names outside `known`.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ApiError::BadParameter(format!("query string: {e}")))?;
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        {
            return Err(ApiError::BadParameter(format!(
                "unknown parameter {name:?}; known: {}",
                known.join(", ")
            )));
        }
        Ok(Self(
            pairs
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .collect(),
        ))
    }

    /// Every value given for `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, parsed; a parameter that takes one value and
    /// is given more than once is refused rather than one copy picked.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        let given = self.all(name).count();
        if given > 1 {
            return Err(ApiError::BadParameter(format!(
                "{name} is given {given} times; it takes one value"
            )));
        }
        self.all(name)
            .next()
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::BadParameter(format!(
                        "{name} {value:?} is not a valid {}",
                        short_type_name::<T>()
                    ))
                })
            })
            .transpose()
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "u64" | "usize" | "i64" => "non-negative integer",
        "bool" => "boolean (true or false)",
        _ => name.rsplit("::").next().unwrap_or(name),
    }
}

/// A `[start, end]` window in unix nanoseconds, checked.
pub fn window(params: &Params) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let (start, end): (Option<u64>, Option<u64>) = (params.get("start")?, params.get("end")?);
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::BadParameter("start must not be after end".into()));
    }
    Ok((start, end))
}
