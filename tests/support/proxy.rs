//! A TCP proxy in front of the backend whose gate the test opens: while it
//! is closed, connections are accepted but nothing is forwarded, so an
//! exporter's request hangs exactly as long as the test wants.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct GatedProxy {
    pub addr: SocketAddr,
    gate: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl GatedProxy {
    /// Listens on a fresh loopback port and forwards to `upstream` once open.
    pub async fn start(upstream: SocketAddr, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (gate, watcher) = watch::channel(open);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(forward(inbound, upstream, watcher.clone()));
            }
        });
        Self { addr, gate, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn open(&self) {
        let _ = self.gate.send(true);
    }
}

impl Drop for GatedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut inbound: TcpStream, upstream: SocketAddr, mut gate: watch::Receiver<bool>) {
    if gate.wait_for(|open| *open).await.is_err() {
        return;
    }
    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}
