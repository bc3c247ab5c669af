//! The request body: protobuf, then gzip (level "fast") when configured.
//! The exporter keeps one `BodyEncoder` across exports: a fresh deflate
//! state (hundreds of KB of tables, zeroed) and a fresh protobuf buffer for
//! every batch made page faults and `memset` a large share of the exporter's
//! CPU per span (`examples/exporter_cost.rs`), more than compressing did.

use super::config::Compression;
use crate::error::ExportError;
use bytes::Bytes;
use flate2::{Compress, FlushCompress, Status};

/// The gzip member header flate2's `GzEncoder` writes for level "fast": no
/// name, no mtime, XFL 4 (fastest), OS 255 (unknown).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// A raw buffer larger than this is not kept after use (one huge batch
/// should not pin its memory for the exporter's lifetime).
const KEEP_RAW_BYTES: usize = 4 << 20;

/// Encodes bodies, reusing its buffer and deflate state.
#[derive(Default)]
pub(crate) struct BodyEncoder {
    raw: Vec<u8>,
    deflate: Option<Compress>,
}

impl std::fmt::Debug for BodyEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyEncoder")
            .field("raw_capacity", &self.raw.capacity())
            .finish_non_exhaustive()
    }
}

impl BodyEncoder {
    /// Protobuf-encodes `message` and compresses it as configured.
    pub(crate) fn encode(
        &mut self,
        message: &impl prost::Message,
        compression: Compression,
    ) -> Result<Bytes, ExportError> {
        self.encode_with(compression, |buf| {
            message
                .encode(buf)
                .map_err(|e| ExportError::Internal(format!("protobuf: {e}")))
        })
    }

    /// The body of the protobuf bytes `write` appends to the buffer it gets,
    /// compressed as configured.
    pub(crate) fn encode_with(
        &mut self,
        compression: Compression,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), ExportError>,
    ) -> Result<Bytes, ExportError> {
        match compression {
            // The encoded bytes are the body: nothing to reuse.
            Compression::None => {
                let mut body = Vec::new();
                write(&mut body)?;
                Ok(Bytes::from(body))
            }
            Compression::Gzip => {
                self.raw.clear();
                write(&mut self.raw)?;
                let deflate = self
                    .deflate
                    .get_or_insert_with(|| Compress::new(flate2::Compression::fast(), false));
                let body = gzip(deflate, &self.raw);
                if self.raw.capacity() > KEEP_RAW_BYTES {
                    self.raw = Vec::new();
                }
                body.map(Bytes::from)
            }
        }
    }
}

/// One gzip member of `raw`: header, raw deflate, CRC-32 and size.
fn gzip(deflate: &mut Compress, raw: &[u8]) -> Result<Vec<u8>, ExportError> {
    deflate.reset();
    let mut out = Vec::with_capacity(raw.len() / 4 + 64);
    out.extend_from_slice(&GZIP_HEADER);
    loop {
        let consumed = usize::try_from(deflate.total_in())
            .map_err(|e| ExportError::Internal(format!("gzip: {e}")))?;
        let rest = raw.get(consumed..).unwrap_or_default();
        match deflate.compress_vec(rest, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            // Out of room in `out`: compress_vec never grows it.
            Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(4096)),
            Err(e) => return Err(ExportError::Internal(format!("gzip: {e}"))),
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(raw);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input size modulo 2^32.
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn flate2_gzip(raw: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(raw).expect("write");
        gz.finish().expect("finish")
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    /// Text that compresses, and bytes that do not (so the output outgrows
    /// its first reservation and the loop has to grow it).
    fn inputs() -> Vec<Vec<u8>> {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("span-{} ", i % 977).into_bytes())
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        vec![Vec::new(), b"x".to_vec(), text, noise]
    }

    #[test]
    fn reused_gzip_state_writes_valid_gzip() {
        let mut deflate = Compress::new(flate2::Compression::fast(), false);
        // Twice over, so the second pass runs on a reset, reused state.
        for raw in inputs().iter().chain(inputs().iter()) {
            let ours = gzip(&mut deflate, raw).expect("gzip");
            assert_eq!(&gunzip(&ours), raw, "input of {} bytes", raw.len());
            // flate2 feeds deflate in chunks, so block boundaries (and the
            // bytes) may differ on large inputs; header and size do not.
            let theirs = flate2_gzip(raw);
            assert_eq!(ours[..10], theirs[..10]);
            assert_eq!(ours[ours.len() - 8..], theirs[theirs.len() - 8..]);
        }
    }

    #[test]
    fn encoder_bodies_decode_to_the_message() {
        use opentelemetry_proto::tonic::common::v1::KeyValue;
        let message = KeyValue {
            key: "service.name".repeat(1000),
            value: None,
            key_strindex: 0,
        };
        let mut encoder = BodyEncoder::default();
        for _ in 0..2 {
            let gz = encoder
                .encode(&message, Compression::Gzip)
                .expect("gzip body");
            assert_eq!(gunzip(&gz), prost::Message::encode_to_vec(&message));
            let plain = encoder
                .encode(&message, Compression::None)
                .expect("plain body");
            assert_eq!(&plain[..], prost::Message::encode_to_vec(&message));
        }
    }
}
