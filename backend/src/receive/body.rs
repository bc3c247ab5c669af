//! Reading a request body as OTLP/HTTP allows it: any transfer framing
//! (Content-Length or chunked), optionally gzip-compressed, and never more
//! than the limit — counted after decompression, and enforced while
//! inflating so a gzip bomb stops at the limit instead of filling memory.

use crate::admission::BytePermit;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::BodyExt;
use std::io::Read;

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// How a body is encoded: its format, and whether it is gzip'd on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub format: Format,
    pub gzip: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("unsupported content type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    #[error("unsupported content encoding {0:?}: use gzip or none")]
    UnsupportedEncoding(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    Read(String),
    #[error("the request body did not arrive within {0:?}")]
    Timeout(std::time::Duration),
    #[error("request body is not valid gzip: {0}")]
    BadGzip(std::io::Error),
    /// The bytes in flight would pass `max_inflight_bytes` (see `admission`).
    #[error(transparent)]
    OverBudget(#[from] crate::admission::OverBudget),
}

pub fn format_of(headers: &HeaderMap) -> Result<Format, BodyError> {
    let value = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media_type = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(BodyError::UnsupportedContentType(value)),
    }
}

fn is_gzip(headers: &HeaderMap) -> Result<bool, BodyError> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(false);
    };
    let value = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match value.as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "" | "identity" => Ok(false),
        _ => Err(BodyError::UnsupportedEncoding(value)),
    }
}

/// Checks the headers before any byte of the body is read.
fn check_headers(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    Ok(Encoding {
        format: format_of(headers)?,
        gzip: is_gzip(headers)?,
    })
}

/// Most of a refused body read and dropped, and for how long, so that the
/// client finishes sending and reads the error instead of a reset.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the headers, then reads the whole body, at most `limit` bytes on
/// the wire and within `deadline`. When the request is refused, what is
/// left of the body is drained (bounded), so the client gets the answer
/// rather than a broken pipe; a body past its deadline is not waited for
/// any longer.
pub async fn read_checked(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: std::time::Duration,
    permit: &mut BytePermit,
) -> Result<(Encoding, Bytes), BodyError> {
    let checked = match check_headers(headers) {
        Ok(checked) => checked,
        Err(error) => {
            drain(body).await;
            return Err(error);
        }
    };
    match tokio::time::timeout(deadline, read_all(body, limit, permit)).await {
        Ok(bytes) => Ok((checked, bytes?)),
        Err(_) => Err(BodyError::Timeout(deadline)),
    }
}

/// The body's bytes, at most `limit` of them, each held in `permit`
/// before it is kept (a chunked body announces no length).
async fn read_all(
    mut body: Body,
    limit: usize,
    permit: &mut BytePermit,
) -> Result<Bytes, BodyError> {
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > limit {
            drain(body).await;
            return Err(BodyError::TooLarge { limit });
        }
        if let Err(over) = permit.grow_to(bytes.len() + data.len()) {
            drain(body).await;
            return Err(over.into());
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes.freeze())
}

pub(crate) async fn drain(mut body: Body) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.len() >= left {
                return;
            }
            left -= data.len();
        }
    })
    .await;
}

/// The length a body announces, if any: what a permit is first taken for.
pub fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The inflated size a gzip body announces in its trailer (its last
/// member's size modulo 4 GiB), at most `limit`: what its decoding is
/// budgeted for before it is inflated. A body that lies about it is still
/// stopped at `limit` by `gunzip`.
pub fn gzip_size_hint(compressed: &[u8], limit: usize) -> usize {
    let Some(trailer) = compressed.len().checked_sub(4).map(|at| &compressed[at..]) else {
        return 0;
    };
    let mut size = [0u8; 4];
    size.copy_from_slice(trailer);
    (u32::from_le_bytes(size) as usize).min(limit)
}

/// Inflates a gzip body, stopping one byte past `limit`.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(BodyError::BadGzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    }

    #[test]
    fn the_gzip_trailer_announces_the_inflated_size() {
        let data = vec![7u8; 12_345];
        assert_eq!(gzip_size_hint(&gzip(&data), 1 << 20), 12_345);
        assert_eq!(gzip_size_hint(&gzip(&data), 100), 100);
        assert_eq!(gzip_size_hint(b"ab", 100), 0);
    }

    #[test]
    fn gunzip_round_trips_within_the_limit() {
        assert_eq!(gunzip(&gzip(b"hello"), 5).ok(), Some(b"hello".to_vec()));
    }

    #[test]
    fn gunzip_stops_a_bomb_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert!(
            matches!(gunzip(&bomb, 1 << 20), Err(BodyError::TooLarge { limit }) if limit == 1 << 20)
        );
    }

    #[test]
    fn gunzip_rejects_garbage_and_truncation() {
        assert!(matches!(
            gunzip(b"not gzip at all", 100),
            Err(BodyError::BadGzip(_))
        ));
        let whole = gzip(&vec![7u8; 10_000]);
        assert!(matches!(
            gunzip(&whole[..whole.len() / 2], 1 << 20),
            Err(BodyError::BadGzip(_))
        ));
    }

    #[test]
    fn content_types_with_parameters_are_recognised() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8"
                .parse()
                .expect("valid header"),
        );
        assert_eq!(format_of(&headers).ok(), Some(Format::Json));
        headers.insert(CONTENT_TYPE, "text/plain".parse().expect("valid header"));
        assert!(matches!(
            format_of(&headers),
            Err(BodyError::UnsupportedContentType(_))
        ));
        headers.remove(CONTENT_TYPE);
        assert!(format_of(&headers).is_err());
    }
}
