//! The time limit of the ClickHouse store's reads, and their cancellation.
//!
//! Each read carries `max_execution_time` (whole seconds: 18.16 reads a
//! fraction as 0, which means no limit) and a `query_id` of its own.
//! ClickHouse 18.16 keeps running a query whose HTTP client has hung up
//! (`cancel_http_readonly_queries_on_client_close` came later), so a read
//! whose future is dropped before its answer leaves a [`KillOnDrop`] behind,
//! which sends `KILL QUERY` for that id.

use super::http::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// ClickHouse's code for "Timeout exceeded" (`TIMEOUT_EXCEEDED`).
const TIMEOUT_CODE: &str = "Code: 159,";

/// The URL parameters that hold one read to `limit` under the id `id`.
pub fn settings(limit: Duration, id: &str) -> String {
    format!("max_execution_time={}&query_id={id}", whole_seconds(limit))
}

/// `limit` rounded up to whole seconds, at least one.
fn whole_seconds(limit: Duration) -> u64 {
    let seconds = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
    seconds.max(1)
}

/// Whether ClickHouse's error message says the query ran past its limit.
pub fn is_timeout(message: &str) -> bool {
    message.starts_with(TIMEOUT_CODE)
}

/// An id no other query on the server has: several otelite processes may
/// share one ClickHouse, so the pid and this process's start are in it.
pub fn query_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("otelite-{}-{started}-{n}", std::process::id())
}

/// Kills the query `id` when dropped armed: its read was abandoned (or
/// ClickHouse gave no answer), so nobody waits for what it computes.
pub struct KillOnDrop {
    client: Option<Client>,
    id: String,
}

impl KillOnDrop {
    pub fn new(client: Client, id: String) -> Self {
        Self {
            client: Some(client),
            id,
        }
    }

    /// The query has ended: ClickHouse answered.
    pub fn disarm(mut self) {
        self.client = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // Outside a runtime (a test's runtime shutting down) there is
        // nothing to send it with; the query's time limit still ends it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            if let Err(e) = client.kill_query(&id).await {
                tracing::warn!(error = %e, query_id = %id, "ClickHouse: could not kill an abandoned query");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(
            settings(Duration::from_secs(2), "q"),
            "max_execution_time=2&query_id=q"
        );
    }

    #[test]
    fn ids_differ_and_need_no_quoting() {
        let (a, b) = (query_id(), query_id());
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn the_timeout_code_is_recognised() {
        let message = "Code: 159, e.displayText() = DB::Exception: Timeout exceeded: \
                       elapsed 1.004000023 seconds, maximum: 1";
        assert!(is_timeout(message));
        assert!(!is_timeout(
            "Code: 62, e.displayText() = DB::Exception: Syntax error"
        ));
    }
}
