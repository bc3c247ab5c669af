//! What asking a running otelite can fail with; each names the server (or
//! the URL asked) and the cause, so the reading commands can print it as is.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot reach the otelite server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: no answer within {timeout:?} (--timeout)")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: 401 Unauthorized: {hint}")]
    Unauthorized { url: String, hint: &'static str },
    #[error("{url}: {status}: {message}")]
    ServerAnswer {
        url: String,
        status: http::StatusCode,
        message: String,
    },
    #[error("{url}: not an answer of otelite's query API: {reason}")]
    BadAnswer { url: String, reason: String },
    /// An answer past the cap of its kind of question, so a wrong or
    /// hostile server cannot fill memory.
    #[error("{url}: the answer is longer than {} MiB, the most otelite reads for this question", .limit >> 20)]
    TooLarge { url: String, limit: usize },
    /// The server's URL, token or CA file cannot be used.
    #[error("{0}")]
    BadArgument(String),
}
