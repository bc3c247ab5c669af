//! A deadline on writing responses: a client that stops reading (or reads
//! a trickle) would otherwise keep its connection slot and the whole
//! answer in memory for as long as it stays connected. Wrapped around a
//! connection's stream, it fails the write once the stream has accepted
//! less than [`MIN_PROGRESS`] bytes within the deadline while hyper had
//! something to send; hyper then drops the connection and its buffers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes a stalled client must accept within the deadline to get a new
/// one: with the 30 s default, a minimum rate of about 550 bytes/s while
/// the server has something to send.
pub const MIN_PROGRESS: usize = 16 * 1024;

pub struct WriteDeadline<IO> {
    io: IO,
    timeout: Duration,
    /// Armed when a write could not go through; disarmed by progress.
    stall: Option<Stall>,
}

struct Stall {
    timer: Pin<Box<Sleep>>,
    written: usize,
}

impl<IO> WriteDeadline<IO> {
    pub fn new(io: IO, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stall: None,
        }
    }

    /// After a write: progress counts towards disarming the deadline.
    fn progressed(&mut self, bytes: usize) {
        if let Some(stall) = &mut self.stall {
            stall.written += bytes;
            if stall.written >= MIN_PROGRESS {
                self.stall = None;
            }
        }
    }

    /// After a write that could not go through: arms the deadline if it is
    /// not, and fails once it has passed.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let stall = self.stall.get_or_insert_with(|| Stall {
            timer: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            written: 0,
        });
        ready!(stall.timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read the response within the write deadline",
        ))
    }

    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(bytes)) => {
                self.progressed(bytes);
                Poll::Ready(Ok(bytes))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.blocked(cx).map(Err),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.after_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// hyper flushes once everything it had is written: the client has
    /// taken the answer, so an idle keep-alive is not a stall.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.io).poll_flush(cx));
        if result.is_ok() {
            self.stall = None;
        }
        Poll::Ready(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A writer whose peer never reads fails once the deadline passes
    /// (tokio's paused clock: no waiting).
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_fails_the_write() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut writer = WriteDeadline::new(ours, Duration::from_secs(30));
        let error = writer
            .write_all(&vec![b'x'; 1024 * 1024])
            .await
            .expect_err("the write must fail");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    /// A peer that keeps reading is never cut off, however long it takes.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_keeps_its_connection() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match theirs.read(&mut chunk).await {
                    Ok(0) | Err(_) => return sink.len(),
                    Ok(n) => sink.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let mut writer = WriteDeadline::new(ours, Duration::from_secs(30));
        writer
            .write_all(&vec![b'x'; 256 * 1024])
            .await
            .expect("a reading peer gets everything");
        writer.shutdown().await.expect("shutdown");
        drop(writer);
        assert_eq!(reader.await.expect("reader"), 256 * 1024);
    }
}
