//! A call's message read into memory under the byte budget, before tonic
//! decodes it, as OTLP/HTTP reads its bodies: the bytes are held in a
//! permit from the frame's announced length on (so a refused call costs no
//! memory), refused past the budget, and then grown to what decoding will
//! take (`decoded_bytes`). The permit goes with the call to the handler,
//! which keeps it until the spans are committed.

use crate::admission::{BytePermit, OverBudget};
use crate::receive::body::{Encoding, Format};
use crate::receive::{ReceiveState, decoded_bytes};
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use tonic::body::Body;

/// gRPC's length-prefixed message frame: a compressed flag and a 32-bit
/// big-endian length before the message bytes.
const FRAME_HEADER: usize = 5;

/// Why a message was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum MessageError {
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error("the message is longer than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the message could not be read: {0}")]
    Read(String),
}

/// The request's bytes in the budget, handed from the gate to the handler
/// through the request's extensions (which must be `Clone`).
#[derive(Debug, Clone, Default)]
pub(super) struct HeldBytes(Arc<Mutex<Option<BytePermit>>>);

impl HeldBytes {
    fn new(permit: BytePermit) -> Self {
        Self(Arc::new(Mutex::new(Some(permit))))
    }

    /// The permit, once; later calls get `None`.
    pub(super) fn take(&self) -> Option<BytePermit> {
        self.0.lock().ok()?.take()
    }
}

/// Reads the whole body of a call, at most `limit` message bytes, holding
/// them in the budget; returns the body to hand tonic and the permit.
pub(super) async fn read(
    state: &ReceiveState,
    mut body: Body,
    gzip: bool,
) -> Result<(Body, HeldBytes), MessageError> {
    let limit = state.max_body_bytes;
    let mut permit = state.bytes.try_take(FRAME_HEADER)?;
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| MessageError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        bytes.extend_from_slice(&data);
        let announced = announced_length(&bytes).unwrap_or(0);
        if announced > limit || bytes.len() > limit + FRAME_HEADER {
            return Err(MessageError::TooLarge { limit });
        }
        permit.grow_to(bytes.len().max(FRAME_HEADER + announced))?;
    }
    let message = bytes.get(FRAME_HEADER..).unwrap_or_default();
    let compressed = bytes.first().is_some_and(|flag| *flag == 1);
    let encoding = Encoding {
        format: Format::Protobuf,
        gzip: gzip && compressed,
    };
    permit.grow_to(decoded_bytes(encoding, message, limit))?;
    Ok((
        Body::new(http_body_util::Full::new(bytes.freeze())),
        HeldBytes::new(permit),
    ))
}

/// The message length the frame header announces, once it has arrived.
fn announced_length(bytes: &[u8]) -> Option<usize> {
    let mut header = bytes.get(1..FRAME_HEADER)?;
    Some(header.get_u32() as usize)
}
