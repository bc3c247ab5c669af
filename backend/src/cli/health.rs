//! `otelite health`: asks a running server whether it is ready (`GET
//! /readyz` on its query listener) and reports it by exit status, 0 or 1.
//! It exists for the container's `HEALTHCHECK`: a `scratch` image has no
//! curl, so the binary checks itself, with the hyper client it already has
//! (`super::client`, shared with `--server`).
//!
//! With TLS on (`OTELITE_TLS_CERT`, as the image turns it on), the default
//! URL is https and the check trusts exactly the server's own certificate
//! from that file, whatever names it holds: the check goes over loopback.
//! `--url` and `--server-ca` check any other server, as `--server` does.

use crate::storage::remote::client::{FetchError, HttpClient};
use http::Uri;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Enough of `/readyz`'s JSON to say why; a bigger answer is cut off.
const MAX_BODY_BYTES: usize = 4096;
/// Where `otelite serve` puts the query listener when `--query-listen` is
/// not given, so the check follows it in a container.
const QUERY_LISTEN_ENV: &str = "OTELITE_QUERY_LISTEN";
/// The certificate `otelite serve` presents when TLS is on.
const TLS_CERT_ENV: &str = "OTELITE_TLS_CERT";

#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// URL to GET; any 2xx answer means healthy [default:
    /// http://127.0.0.1:16686/readyz, on the port of OTELITE_QUERY_LISTEN;
    /// https trusting the certificate of OTELITE_TLS_CERT when that is set]
    #[arg(long, value_name = "URL")]
    pub url: Option<Uri>,
    /// With an https URL: PEM certificates to trust besides Mozilla's roots
    /// (a private CA or a self-signed server), as the reading commands'
    /// --server-ca
    #[arg(long, value_name = "PATH")]
    pub server_ca: Option<PathBuf>,
    /// Unhealthy when no complete answer comes within this time
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = super::time::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{url}: only http:// and https:// URLs can be checked")]
    Scheme { url: Uri },
    #[error("{0}")]
    Tls(FetchError),
    #[error("{url}: {source}")]
    Request { url: Uri, source: FetchError },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: Uri, timeout: Duration },
    #[error("{url}: unhealthy, {status} {body}")]
    Unhealthy {
        url: Uri,
        status: http::StatusCode,
        body: String,
    },
}

/// Checks the server and returns the line to print when it is healthy.
/// `var` reads the environment (`std::env::var` in `main`).
pub async fn run(
    args: &HealthArgs,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, HealthError> {
    let own_cert = var(TLS_CERT_ENV).filter(|path| !path.trim().is_empty());
    let url = match &args.url {
        Some(url) => url.clone(),
        None => default_url(var(QUERY_LISTEN_ENV).as_deref(), own_cert.is_some()),
    };
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        return Err(HealthError::Scheme { url });
    }
    let client = client(args, own_cert.as_deref(), args.timeout).map_err(HealthError::Tls)?;
    let timeout = args.timeout;
    match tokio::time::timeout(timeout, get(&client, &url)).await {
        Ok(Ok((status, body))) if status.is_success() => Ok(format!("{url}: {status} {body}")),
        Ok(Ok((status, body))) => Err(HealthError::Unhealthy { url, status, body }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(HealthError::Timeout { url, timeout }),
    }
}

/// Trusts `--server-ca` (with Mozilla's roots) when given, else the
/// server's own certificate when TLS is on, else Mozilla's roots.
fn client(
    args: &HealthArgs,
    own_cert: Option<&str>,
    timeout: Duration,
) -> Result<HttpClient, FetchError> {
    match (&args.server_ca, own_cert) {
        (None, Some(cert)) => {
            let tls = otelite_model::tls::pinned_config(TLS_CERT_ENV, Path::new(cert))?;
            Ok(HttpClient::with_tls(tls, timeout))
        }
        (ca, _) => HttpClient::new(ca.as_deref(), timeout),
    }
}

/// `/readyz` on the query listener named by `query_listen` (a socket
/// address), reached over loopback when it listens on every interface.
pub fn default_url(query_listen: Option<&str>, tls: bool) -> Uri {
    let fallback = crate::Config::default().query_listen;
    let listen = query_listen
        .and_then(|text| text.trim().parse::<SocketAddr>().ok())
        .filter(|addr| addr.port() != 0)
        .unwrap_or(fallback);
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{}/readyz", SocketAddr::new(ip, listen.port()));
    url.parse()
        .unwrap_or_else(|_| Uri::from_static("http://127.0.0.1:16686/readyz"))
}

async fn get(client: &HttpClient, url: &Uri) -> Result<(http::StatusCode, String), HealthError> {
    let answer = client
        .get(url, None, MAX_BODY_BYTES)
        .await
        .map_err(|source| HealthError::Request {
            url: url.clone(),
            source,
        })?;
    let body = String::from_utf8_lossy(&answer.body).trim().to_owned();
    Ok((answer.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn args(url: &str) -> HealthArgs {
        HealthArgs {
            url: Some(url.parse().expect("test URL")),
            server_ca: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// Answers one connection with `response`, as written, from a thread.
    fn one_answer(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut socket, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request);
                let _ = socket.write_all(response.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn default_url_follows_the_query_listener_over_loopback() {
        let url = |env: Option<&str>| default_url(env, false).to_string();
        assert_eq!(url(None), "http://127.0.0.1:16686/readyz");
        assert_eq!(url(Some("0.0.0.0:9000")), "http://127.0.0.1:9000/readyz");
        assert_eq!(url(Some("[::]:9000")), "http://[::1]:9000/readyz");
        assert_eq!(url(Some("10.1.2.3:80")), "http://10.1.2.3:80/readyz");
        assert_eq!(url(Some("0.0.0.0:0")), "http://127.0.0.1:16686/readyz");
        assert_eq!(url(Some("nonsense")), "http://127.0.0.1:16686/readyz");
        assert_eq!(
            default_url(Some("0.0.0.0:9000"), true).to_string(),
            "https://127.0.0.1:9000/readyz"
        );
    }

    #[tokio::test]
    async fn a_running_server_is_healthy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = crate::Server::bind(crate::Config {
            db_path: dir.path().join("otelite.db"),
            otlp_listen: "127.0.0.1:0".parse().expect("addr"),
            otlp_grpc_listen: "127.0.0.1:0".parse().expect("addr"),
            query_listen: "127.0.0.1:0".parse().expect("addr"),
            ..Default::default()
        })
        .await
        .expect("server binds");
        let listen = server.query_addr().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let defaults = HealthArgs {
            url: None,
            server_ca: None,
            timeout: Duration::from_secs(5),
        };
        let line = run(&defaults, |name| {
            (name == QUERY_LISTEN_ENV).then(|| listen.clone())
        })
        .await
        .expect("healthy");
        assert!(line.contains("200 OK") && line.contains("ready"), "{line}");
        let _ = stop.send(());
        task.await.expect("server task").expect("server ran");
    }

    #[tokio::test]
    async fn a_503_is_unhealthy_and_says_why() {
        let addr = one_answer(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 14\r\nconnection: close\r\n\r\nqueue is full\n",
        );
        let error = run(&args(&format!("http://{addr}/readyz")), |_| None)
            .await
            .expect_err("503 is unhealthy");
        assert!(
            matches!(&error, HealthError::Unhealthy { status, body, .. }
                if status.as_u16() == 503 && body == "queue is full"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        // Bound then dropped: the port is very likely closed right after.
        let addr = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        let error = run(&args(&format!("http://{addr}/readyz")), |_| None)
            .await
            .expect_err("refused");
        assert!(matches!(error, HealthError::Request { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let health = HealthArgs {
            timeout: Duration::from_millis(200),
            ..args(&format!("http://{addr}/readyz"))
        };
        // Accepted by the kernel's backlog, never answered.
        let error = run(&health, |_| None).await.expect_err("times out");
        assert!(matches!(error, HealthError::Timeout { .. }), "{error}");
        drop(listener);
    }

    #[tokio::test]
    async fn only_http_and_https_urls_are_checked() {
        let error = run(&args("ftp://127.0.0.1:1/readyz"), |_| None)
            .await
            .expect_err("ftp refused");
        assert!(matches!(error, HealthError::Scheme { .. }), "{error}");
    }
}
