//! The accept loop for one listener: each connection is served by hyper's
//! HTTP/1 connection driver, over TLS when configured. What `axum::serve`
//! does, plus what a server left running for months needs: a deadline for
//! the request head (slowloris), a cap on its size, a deadline on writing
//! the response (a client that does not read), a TLS handshake
//! deadline and a cap on open connections. On shutdown it stops accepting,
//! lets each connection finish the request in flight, and waits for them
//! (bounded).

use super::write_deadline::WriteDeadline;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

#[cfg(test)]
mod tests;

/// Bounds on what one client can hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From the first byte of a request (or an idle keep-alive) to the end
    /// of its head.
    pub header_read_timeout: Duration,
    /// From the end of an OTLP request's head to the end of its body: a
    /// client that stops sending gives its slot back (408) instead of
    /// holding it for as long as it stays connected.
    pub body_read_timeout: Duration,
    /// How long a response may wait for the client to take
    /// [`MIN_PROGRESS`](super::write_deadline::MIN_PROGRESS) more bytes: a
    /// client that stops reading loses its connection and the answer's
    /// memory is freed.
    pub write_timeout: Duration,
    /// Largest request head, in bytes (at least 8192): hyper's read
    /// buffer for a head that comes in pieces, counted again on the parsed
    /// head for one that came at once (`head_cap`).
    pub max_header_bytes: usize,
    pub tls_handshake_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long shutdown waits for connections to finish their requests.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let tls = tls.map(TlsAcceptor::from);
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.max_header_bytes.max(8192),
        super::head_cap::refuse_large_heads,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        // Forget the connections that have ended, so the set stays small.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stopped(&mut stop) => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let stream = match stream {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (router, tls, stop) = (router.clone(), tls.clone(), stop.clone());
        connections.spawn(async move {
            connection(stream, router, tls, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    wait_for_connections(&slots, limits).await;
    // Past the grace, what is still open is dropped: each connection holds
    // the router and with it the store, whose writer only ends after them.
    connections.shutdown().await;
}

/// Resolves once `stop` turns true (the guard `wait_for` returns is not
/// `Send`, so it must not live across the caller's awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Every slot back means every connection has ended.
async fn wait_for_connections(slots: &Semaphore, limits: ConnectionLimits) {
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace, "connections still open at shutdown are closed");
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(stream, router, limits, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await
            {
                Ok(Ok(stream)) => http(stream, router, limits, stop).await,
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn http(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let io = WriteDeadline::new(io, limits.write_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
