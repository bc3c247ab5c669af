//! The request-head cap on a real socket: the same 431 whether the head
//! comes in one write or a few bytes at a time.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CAP: usize = 64 * 1024;

/// A server on 127.0.0.1 answering 200 to everything, with the defaults.
async fn server() -> std::io::Result<(std::net::SocketAddr, watch::Sender<bool>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop) = watch::channel(false);
    let router = Router::new().fallback(|| async { "ok" });
    tokio::spawn(serve(
        listener,
        router,
        None,
        ConnectionLimits::default(),
        stop,
    ));
    Ok((addr, stop_tx))
}

/// A GET whose head is exactly `len` bytes.
fn head_of(len: usize) -> Vec<u8> {
    let start = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// Sends `head` in pieces of `piece` bytes and reads the answer's status
/// line; the server may stop reading past the cap, so write errors count
/// for nothing.
async fn status_for(head: &[u8], piece: usize) -> std::io::Result<String> {
    let (addr, _stop) = server().await?;
    let mut client = TcpStream::connect(addr).await?;
    for chunk in head.chunks(piece) {
        if client.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_head_past_the_cap_in_one_write_gets_431() -> std::io::Result<()> {
    assert_eq!(
        status_for(&head_of(70 * 1024), usize::MAX).await?,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // One byte past it, too.
    assert_eq!(
        status_for(&head_of(CAP + 1), usize::MAX).await?,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    Ok(())
}

#[tokio::test]
async fn a_head_past_the_cap_dribbled_gets_431() -> std::io::Result<()> {
    assert_eq!(
        status_for(&head_of(70 * 1024), 1024).await?,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    Ok(())
}

#[tokio::test]
async fn a_head_at_the_cap_is_served() -> std::io::Result<()> {
    for piece in [usize::MAX, 1024] {
        assert_eq!(status_for(&head_of(CAP), piece).await?, "HTTP/1.1 200 OK");
    }
    Ok(())
}
