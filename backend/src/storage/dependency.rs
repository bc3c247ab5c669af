//! The service graph's edges, as every store answers them.

use serde::{Deserialize, Serialize};

/// Calls from one service to another over a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub error_count: u64,
}
