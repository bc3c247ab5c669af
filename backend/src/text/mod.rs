//! Text forms shared by the query APIs and the command line, one per file.
//! Each parser returns a message saying what was wrong; the caller adds
//! which parameter or flag it was.

mod cause_chain;
mod duration;
mod percent;
mod rfc3339;
mod span_kind;

pub use cause_chain::cause_chain;
pub use duration::parse_duration;
pub use percent::percent_encode;
pub use rfc3339::{civil_from_days, days_from_civil, parse_rfc3339};
pub use span_kind::{parse_span_kind, span_kind_name};

#[cfg(test)]
mod tests;
