//! Retry in three parts: a pure `classify(status, retry_after)`, the backoff
//! with jitter, and `post_with_retry`, which resends one encoded body until it
//! is acknowledged, refused for good, or the export's single deadline passes.

use super::attempt::{Answer, HttpClient, attempt};
use super::config::Compression;
use crate::error::ExportError;
use bytes::Bytes;
use http::Uri;
use http::header::HeaderMap;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What to do after an answer that is not 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again, after the server's `Retry-After` if it gave a usable one.
    Retry { after: Option<Duration> },
    /// Give up: resending the same body cannot succeed.
    Fail,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Classifies a non-2xx status: 429, 502, 503, 504 are retryable (honouring
/// `Retry-After`), everything else (400, 413, other 4xx, 500, 501…) is not.
/// Connection errors are retryable too, see `post_with_retry`.
pub fn classify(status: u16, retry_after: Option<&str>) -> RetryDecision {
    match status {
        429 | 502 | 503 | 504 => RetryDecision::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
        },
        _ => RetryDecision::Fail,
    }
}

/// Whether an error is one a later try may get past: no answer, a
/// timeout, or a retryable status.
pub(crate) fn worth_retrying(error: &ExportError) -> bool {
    match error {
        ExportError::Transport(_) | ExportError::Timeout(_) | ExportError::CutByShutdown => true,
        ExportError::Http { status, .. } => {
            matches!(classify(*status, None), RetryDecision::Retry { .. })
        }
        ExportError::Internal(_) => false,
    }
}

/// The error for a non-2xx answer, with what its body says.
pub(crate) fn http_error(answer: &Answer) -> ExportError {
    ExportError::Http {
        status: answer.status.as_u16(),
        body: answer_text(answer.content_type.as_deref(), &answer.body),
    }
}

/// `google.rpc.Status`, which OTLP/HTTP puts in a protobuf error answer;
/// the `details` (field 3) are left out.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The readable part of an error answer: the `message` of a protobuf
/// `google.rpc.Status`, else the start of the body as text.
fn answer_text(content_type: Option<&str>, body: &[u8]) -> String {
    let protobuf = content_type.is_some_and(|t| t.starts_with("application/x-protobuf"));
    if protobuf && let Ok(status) = <RpcStatus as prost::Message>::decode(body) {
        return status.message.chars().take(256).collect();
    }
    String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned()
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff for retry number `retry` (0-based) with "equal jitter":
/// a random delay in [d/2, d], so that many exporters do not retry in step.
pub fn backoff(retry: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << retry.min(16))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// How long to wait before the next attempt: our own backoff, or the
/// server's `Retry-After` when that is longer (a `Retry-After: 0` must not turn
/// into a tight loop). `None` when the wait would not leave the deadline any
/// room: sleeping until the deadline only to give up is pointless.
pub fn next_delay(
    server_hint: Option<Duration>,
    retry: u32,
    remaining: Duration,
) -> Option<Duration> {
    let delay = server_hint.map_or_else(|| backoff(retry), |hint| hint.max(backoff(retry)));
    (delay < remaining).then_some(delay)
}

/// POSTs `body` until a 2xx (whose body is returned), a final refusal, or the
/// deadline. The error is the last attempt's, or `Timeout` when the deadline
/// cut an attempt short.
pub(crate) async fn post_with_retry(
    client: &HttpClient,
    url: &Uri,
    headers: &HeaderMap,
    compression: Compression,
    body: Bytes,
    deadline: Instant,
    timeout: Duration,
) -> Result<Bytes, ExportError> {
    let mut retry = 0;
    loop {
        let sent = tokio::time::timeout_at(
            deadline,
            attempt(client, url, headers, compression, body.clone()),
        )
        .await;
        let (error, hint) = match sent {
            Err(_elapsed) => return Err(ExportError::Timeout(timeout)),
            Ok(Ok(answer)) if answer.status.is_success() => return Ok(answer.body),
            Ok(Ok(answer)) => {
                let error = http_error(&answer);
                match classify(answer.status.as_u16(), answer.retry_after.as_deref()) {
                    RetryDecision::Fail => return Err(error),
                    RetryDecision::Retry { after } => (error, after),
                }
            }
            Ok(Err(error @ ExportError::Transport(_))) => (error, None),
            Ok(Err(error)) => return Err(error),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some(delay) = next_delay(hint, retry, remaining) else {
            return Err(error);
        };
        tracing::debug!(%error, ?delay, url = %url, "otelite-exporter: retrying");
        tokio::time::sleep(delay).await;
        retry += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protobuf_status_answer_reads_as_its_message() {
        let status = RpcStatus {
            code: 3,
            message: "request body is not valid gzip".into(),
        };
        let body = prost::Message::encode_to_vec(&status);
        assert_eq!(
            answer_text(Some("application/x-protobuf"), &body),
            "request body is not valid gzip"
        );
        // Other answers stay text.
        assert_eq!(
            answer_text(Some("text/plain"), b"Bad gateway"),
            "Bad gateway"
        );
        assert_eq!(answer_text(None, b"oops"), "oops");
    }

    #[test]
    fn retryable_statuses() {
        for status in [429, 502, 503, 504] {
            assert_eq!(
                classify(status, None),
                RetryDecision::Retry { after: None },
                "{status}"
            );
        }
    }

    #[test]
    fn final_statuses() {
        for status in [400, 401, 403, 404, 413, 415, 500, 501] {
            assert_eq!(classify(status, Some("1")), RetryDecision::Fail, "{status}");
        }
    }

    #[test]
    fn retry_after_seconds_are_honoured() {
        assert_eq!(
            classify(503, Some(" 3 ")),
            RetryDecision::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        // Garbage is ignored, not fatal: fall back to backoff.
        assert_eq!(
            classify(429, Some("soon")),
            RetryDecision::Retry { after: None }
        );
    }

    #[test]
    fn retry_after_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for retry in 0..40 {
            let full = FIRST_BACKOFF
                .saturating_mul(1 << retry.min(16))
                .min(MAX_BACKOFF);
            let d = backoff(retry);
            assert!(d >= full / 2 && d <= full, "{retry}: {d:?}");
        }
    }

    #[test]
    fn delays_never_reach_past_the_deadline() {
        let hint = Some(Duration::from_secs(30));
        assert_eq!(next_delay(hint, 0, Duration::from_secs(10)), None);
        assert_eq!(
            next_delay(Some(Duration::from_secs(2)), 0, Duration::from_secs(10)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(next_delay(None, 0, Duration::from_millis(10)), None);
        // A zero hint still backs off.
        let floor = next_delay(Some(Duration::ZERO), 3, Duration::from_secs(10));
        assert!(
            floor.is_some_and(|d| d >= Duration::from_millis(400)),
            "{floor:?}"
        );
    }
}
