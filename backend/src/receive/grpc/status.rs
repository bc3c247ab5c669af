//! gRPC statuses for what can fail while receiving, as the OTLP
//! specification maps them: undecodable data is `INVALID_ARGUMENT`, a full
//! server or a failing store `UNAVAILABLE` with a `google.rpc.RetryInfo`
//! detail (the throttling signal OTLP/gRPC clients honour), an oversized
//! message `RESOURCE_EXHAUSTED` without one (retrying cannot help).

use crate::receive::body::BodyError;
use crate::receive::response::ReceiveError;
use crate::storage::StoreError;
use prost::Message;
use tonic::{Code, Status};

/// How long a client is asked to wait, as HTTP's `Retry-After`.
const RETRY_DELAY_SECONDS: i64 = 1;

/// `google.rpc.Status` with its details, carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<Duration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct Duration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `UNAVAILABLE`, asking the client to retry after `RETRY_DELAY_SECONDS`.
pub(super) fn retry_later(message: &str) -> Status {
    let retry = RetryInfo {
        retry_delay: Some(Duration {
            seconds: RETRY_DELAY_SECONDS,
            nanos: 0,
        }),
    };
    let details = RpcStatus {
        code: Code::Unavailable as i32,
        message: message.to_owned(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            value: retry.encode_to_vec(),
        }],
    };
    Status::with_details(Code::Unavailable, message, details.encode_to_vec().into())
}

/// The answer to a request past the concurrency limit or the store's queue.
pub(super) fn overloaded() -> Status {
    retry_later("the server is busy; retry later")
}

/// The status for a failure of the shared pipeline; internals of a store
/// failure go to the log, not to the client.
pub(super) fn of(error: &ReceiveError) -> Status {
    match error {
        ReceiveError::Store(StoreError::Overloaded)
        | ReceiveError::OverBudget(_)
        | ReceiveError::Body(BodyError::OverBudget(_)) => overloaded(),
        ReceiveError::Store(_) => {
            tracing::warn!(%error, "refusing an OTLP/gRPC request");
            retry_later("the spans could not be stored; retry later")
        }
        ReceiveError::Body(BodyError::TooLarge { .. }) => {
            Status::resource_exhausted(error.to_string())
        }
        ReceiveError::Body(_) | ReceiveError::Decode { .. } => {
            tracing::debug!(%error, "rejecting an OTLP/gRPC request");
            Status::invalid_argument(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_carries_a_retry_delay_of_one_second() -> Result<(), prost::DecodeError> {
        let status = overloaded();
        assert_eq!(status.code(), Code::Unavailable);
        let details = RpcStatus::decode(status.details())?;
        assert_eq!(details.details.len(), 1);
        assert_eq!(
            details.details[0].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        let retry = RetryInfo::decode(&details.details[0].value[..])?;
        assert_eq!(
            retry.retry_delay,
            Some(Duration {
                seconds: 1,
                nanos: 0
            })
        );
        Ok(())
    }
}
