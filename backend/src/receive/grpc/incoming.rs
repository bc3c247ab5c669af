//! The gRPC listener's connections, handed to tonic as a stream: accepted
//! while fewer than `max_connections` are open, through TLS when it is on
//! (each handshake on a task of its own and bounded in time, so a slow
//! client holds up no other). Ends when the server stops.

use crate::net::ConnectionLimits;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// One accepted connection, holding its slot until it closes.
pub(super) struct Connection {
    stream: Stream,
    _slot: OwnedSemaphorePermit,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Accepts on `listener` until `stop` turns true or tonic drops the stream.
pub(super) fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<io::Result<Connection>> {
    let (tx, rx) = mpsc::channel(16);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = accept_one(&listener, &slots) => accepted,
                () = stopped(&mut stop) => break,
                () = tx.closed() => break,
            };
            let Some((stream, slot)) = accepted else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let Some(acceptor) = tls.clone() else {
                let _ = tx
                    .send(Ok(Connection::new(Stream::Plain(stream), slot)))
                    .await;
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(limits.tls_handshake_timeout, handshake).await {
                    Ok(Ok(tls)) => {
                        let stream = Stream::Tls(Box::new(tls));
                        let _ = tx.send(Ok(Connection::new(stream, slot))).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Resolves once `stop` turns true (without holding its non-`Send` guard).
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The next connection once a slot is free; `None` after a failed accept
/// (out of file descriptors and the like), having waited rather than spun.
async fn accept_one(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _peer)) => Some((stream, slot)),
        Err(error) => {
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            None
        }
    }
}

impl Connection {
    fn new(stream: Stream, slot: OwnedSemaphorePermit) -> Self {
        Self {
            stream,
            _slot: slot,
        }
    }
}

impl Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
