//! Span blocks: how span bodies sit on disk. The spans of one write are
//! grouped by (trace, resource, scope); each group is a run of
//! length-delimited OTLP `Span` encodings, and the groups of a block are
//! compressed together as one zstd frame. Spans of one request repeat their
//! attribute keys, values and names, so compressing many together costs a
//! fraction of compressing each alone; a group's row (see `writer`) keeps
//! where its run starts and ends in the decompressed block.

use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use prost::Message;
use std::sync::mpsc;

/// A block is cut once its raw size passes this: reading one trace
/// decompresses whole blocks, so they stay small enough to do that in well
/// under a millisecond.
pub const MAX_RAW_BYTES: usize = 256 * 1024;
/// zstd's fastest level: the writer thread compresses, and higher levels
/// gained little on span batches (measured: see BENCHMARKS.md).
const LEVEL: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("a span block does not decompress: {0}")]
    Decompress(std::io::Error),
    #[error("a span group lies outside its block ({offset}+{length} of {size} bytes)")]
    OutOfBounds {
        offset: usize,
        length: usize,
        size: usize,
    },
    #[error("a stored span runs past the end of its group")]
    Truncated,
    #[error("a stored span does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the block compression thread stopped with {0} blocks not yet stored")]
    Lost(usize),
}

/// Where a group's spans are in its block, once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: usize,
    pub length: usize,
}

/// Collects groups of encoded spans into one raw block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    raw: Vec<u8>,
}

/// Room for a span's length before it in a block: a varint of a length
/// below 2^35, more than any body limit allows.
pub const LENGTH_PREFIX_BYTES: usize = 5;

impl BlockBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            raw: Vec::with_capacity(bytes),
        }
    }

    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Appends one group: each span as its length and its OTLP encoding.
    pub fn push_group<'a>(&mut self, spans: impl IntoIterator<Item = &'a [u8]>) -> Extent {
        let offset = self.raw.len();
        for span in spans {
            prost::encoding::encode_varint(span.len() as u64, &mut self.raw);
            self.raw.extend_from_slice(span);
        }
        Extent {
            offset,
            length: self.raw.len() - offset,
        }
    }

    /// The compressed block, ready to store.
    pub fn finish(self) -> Vec<u8> {
        // Compressing an in-memory buffer cannot fail short of allocation
        // failure; keep the raw bytes rather than lose them if it ever does.
        zstd::bulk::compress(&self.raw, LEVEL).unwrap_or(self.raw)
    }
}

/// Blocks being compressed on a thread of their own while the writer
/// thread goes on inserting their groups: zstd was a large part of the
/// writer's work, and the writer is the one part of ingest that cannot use
/// the other cores. Each block has its id before it is compressed, so its
/// groups can point to it; `take` hands the compressed blocks back for
/// insertion before the transaction commits.
#[derive(Debug, Default)]
pub struct PendingBlocks {
    worker: Option<Worker>,
    /// Blocks sent to the worker and not yet taken back.
    pending: usize,
    /// Blocks compressed on the caller's thread, had the worker failed.
    ready: Vec<(i64, Vec<u8>)>,
}

#[derive(Debug)]
struct Worker {
    jobs: mpsc::Sender<(i64, BlockBuilder)>,
    done: mpsc::Receiver<(i64, Vec<u8>)>,
}

impl Worker {
    fn start() -> Option<Self> {
        let (jobs, incoming) = mpsc::channel::<(i64, BlockBuilder)>();
        let (finished, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("otelite-zstd".into())
            .spawn(move || {
                for (id, block) in incoming {
                    if finished.send((id, block.finish())).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Self { jobs, done })
    }
}

impl PendingBlocks {
    /// Starts compressing `block`, to be stored under `id`.
    pub fn submit(&mut self, id: i64, block: BlockBuilder) {
        if self.worker.is_none() {
            self.worker = Worker::start();
        }
        let block = match &self.worker {
            Some(worker) => match worker.jobs.send((id, block)) {
                Ok(()) => {
                    self.pending += 1;
                    return;
                }
                Err(mpsc::SendError((_, block))) => block,
            },
            None => block,
        };
        self.ready.push((id, block.finish()));
    }

    /// Every block submitted since the last call, compressed.
    pub fn take(&mut self) -> Result<Vec<(i64, Vec<u8>)>, BlockError> {
        let mut blocks = std::mem::take(&mut self.ready);
        if let Some(worker) = &self.worker {
            while self.pending > 0 {
                match worker.done.recv() {
                    Ok(block) => blocks.push(block),
                    Err(_) => {
                        let lost = std::mem::take(&mut self.pending);
                        self.worker = None;
                        return Err(BlockError::Lost(lost));
                    }
                }
                self.pending -= 1;
            }
        }
        Ok(blocks)
    }
}

/// A stored block back to its raw bytes.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, BlockError> {
    zstd::stream::decode_all(body).map_err(BlockError::Decompress)
}

/// The spans of one group of a decompressed block.
pub fn spans_of(raw: &[u8], extent: Extent) -> Result<Vec<PbSpan>, BlockError> {
    raw_spans_of(raw, extent)?
        .into_iter()
        .map(|body| Ok(PbSpan::decode(body)?))
        .collect()
}

/// The encoded spans of a group, as the writer put them in the block.
pub fn raw_spans_of(raw: &[u8], extent: Extent) -> Result<Vec<&[u8]>, BlockError> {
    let Extent { offset, length } = extent;
    let mut run =
        raw.get(offset..offset.saturating_add(length))
            .ok_or(BlockError::OutOfBounds {
                offset,
                length,
                size: raw.len(),
            })?;
    let mut spans = Vec::new();
    while !run.is_empty() {
        let len = prost::encoding::decode_varint(&mut run)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let body = run.get(..len).ok_or(BlockError::Truncated)?;
        spans.push(body);
        run = &run[len..];
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str) -> Vec<u8> {
        PbSpan {
            name: name.to_owned(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn groups_come_back_from_the_compressed_block() {
        let mut builder = BlockBuilder::default();
        let (a, b, c) = (span("a"), span("b"), span("c"));
        let first = builder.push_group([a.as_slice(), b.as_slice()]);
        let second = builder.push_group([c.as_slice()]);
        let raw = decompress(&builder.finish()).expect("decompresses");
        let names = |extent| -> Vec<String> {
            spans_of(&raw, extent)
                .expect("decodes")
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(names(first), ["a", "b"]);
        assert_eq!(names(second), ["c"]);
    }

    #[test]
    fn pending_blocks_come_back_compressed_under_their_ids() {
        let mut pending = PendingBlocks::default();
        for id in [7, 8, 9] {
            let mut builder = BlockBuilder::default();
            builder.push_group([span(&format!("op{id}")).as_slice()]);
            pending.submit(id, builder);
        }
        let mut blocks = pending.take().expect("compressed");
        blocks.sort();
        let ids: Vec<i64> = blocks.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [7, 8, 9]);
        for (id, body) in blocks {
            let raw = decompress(&body).expect("decompresses");
            let extent = Extent {
                offset: 0,
                length: raw.len(),
            };
            let spans = spans_of(&raw, extent).expect("decodes");
            assert_eq!(spans[0].name, format!("op{id}"));
        }
        assert!(pending.take().expect("nothing pending").is_empty());
    }

    #[test]
    fn a_repetitive_block_compresses() {
        let mut builder = BlockBuilder::default();
        let spans: Vec<Vec<u8>> = (0..500)
            .map(|i| span(&format!("GET /cart/{}", i % 7)))
            .collect();
        builder.push_group(spans.iter().map(Vec::as_slice));
        let raw_len = builder.raw_len();
        assert!(builder.finish().len() * 4 < raw_len);
    }

    #[test]
    fn a_bad_extent_or_body_is_an_error_not_a_panic() {
        let mut builder = BlockBuilder::default();
        builder.push_group([span("a").as_slice()]);
        let raw = decompress(&builder.finish()).expect("decompresses");
        let past_end = Extent {
            offset: raw.len() - 1,
            length: 10,
        };
        assert!(matches!(
            spans_of(&raw, past_end),
            Err(BlockError::OutOfBounds { .. })
        ));
        let truncated = Extent {
            offset: 0,
            length: raw.len() - 1,
        };
        assert!(matches!(
            spans_of(&raw, truncated),
            Err(BlockError::Truncated)
        ));
        assert!(decompress(b"not zstd").is_err());
    }
}
