//! An OTLP endpoint that is up but answers every request `503 Service
//! Unavailable`, after reading it whole (so the client sees the answer, not a
//! reset): a backend overloaded past the exporter's retries.

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct Unavailable {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Unavailable {
    /// Listens on a fresh loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(refuse))
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Unavailable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn refuse(
    request: http::Request<Incoming>,
) -> Result<http::Response<Empty<Bytes>>, hyper::Error> {
    request.into_body().collect().await?;
    let mut response = http::Response::new(Empty::new());
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    Ok(response)
}
