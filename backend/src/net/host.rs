//! The `Host` check against DNS rebinding: a page on another site whose
//! name is made to resolve to 127.0.0.1 reaches a loopback listener as
//! "same origin", but its requests still carry that site's name as `Host`.
//! A listener bound to loopback answers only `Host`s naming loopback (or
//! its own address) and those `allowed_hosts` adds; one bound elsewhere is
//! checked only when `allowed_hosts` is given. Others get 421.

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which `Host` names a listener answers; `None` answers every one.
#[derive(Debug, Clone)]
pub struct HostPolicy(Option<Arc<HashSet<String>>>);

impl HostPolicy {
    /// The policy of a listener bound to `bound`, with `allowed` added
    /// (host names, with or without a port: the port is not compared).
    pub fn new(bound: SocketAddr, allowed: &[String]) -> Self {
        if !bound.ip().is_loopback() && allowed.is_empty() {
            return Self(None);
        }
        let mut names: HashSet<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        names.insert(host_of(&SocketAddr::new(bound.ip(), 0).to_string()));
        names.extend(allowed.iter().map(|name| host_of(name)));
        Self(Some(Arc::new(names)))
    }

    /// Whether a request with this `Host` is answered. A request without
    /// one (HTTP/1.0) is: browsers always send it.
    pub fn allows(&self, host: Option<&str>) -> bool {
        match (&self.0, host) {
            (None, _) | (_, None) => true,
            (Some(names), Some(host)) => names.contains(&host_of(host)),
        }
    }
}

/// The host part of a `Host` value, lowercase, without port or final dot.
fn host_of(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    let host = match value.parse::<http::uri::Authority>() {
        Ok(authority) => authority.host().to_owned(),
        Err(_) => value,
    };
    host.trim_end_matches('.').to_owned()
}

/// Answers 421 to a request whose `Host` the policy does not allow.
pub async fn check_host(
    State(policy): State<HostPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let host = request.headers().get(header::HOST).map(|v| v.to_str());
    let allowed = match host {
        None => policy.allows(None),
        Some(Ok(host)) => policy.allows(Some(host)),
        Some(Err(_)) => false,
    };
    if allowed {
        return next.run(request).await;
    }
    let error = "this Host is not one this listener answers (DNS rebinding guard): \
                 add it to allowed_hosts (--allowed-hosts, OTELITE_ALLOWED_HOSTS)";
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(json!({ "error": error })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn loopback_answers_only_loopback_names() {
        let policy = HostPolicy::new(addr("127.0.0.1:16686"), &[]);
        for host in [
            "localhost",
            "localhost:16686",
            "127.0.0.1:9",
            "[::1]:16686",
            "LOCALHOST.",
        ] {
            assert!(policy.allows(Some(host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:16686",
            "127.0.0.1.evil.example",
            "x",
            "",
        ] {
            assert!(!policy.allows(Some(host)), "{host}");
        }
        assert!(policy.allows(None));
    }

    #[test]
    fn allowed_hosts_add_names_and_turn_the_check_on_elsewhere() {
        let everyone = HostPolicy::new(addr("0.0.0.0:16686"), &[]);
        assert!(everyone.allows(Some("evil.example")));
        let allowed = ["otelite.internal".to_owned(), "Other:80".to_owned()];
        for bound in ["0.0.0.0:16686", "127.0.0.1:16686"] {
            let policy = HostPolicy::new(addr(bound), &allowed);
            assert!(policy.allows(Some("otelite.internal:16686")), "{bound}");
            assert!(policy.allows(Some("other")), "{bound}");
            assert!(policy.allows(Some("localhost")), "{bound}");
            assert!(!policy.allows(Some("evil.example")), "{bound}");
        }
        let own = HostPolicy::new(addr("10.1.2.3:16686"), &allowed);
        assert!(own.allows(Some("10.1.2.3:16686")));
        let v6 = HostPolicy::new(addr("[::1]:16686"), &[]);
        assert!(v6.allows(Some("[::1]:16686")));
    }

    /// `GET /healthz` with `host` as `Host` from a real server on
    /// `listen`, with `allowed`; the answer's status line and body.
    async fn ask(
        listen: &str,
        allowed: &[&str],
        host: &str,
    ) -> Result<String, Box<dyn std::error::Error>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir()?;
        let server = crate::Server::bind(crate::Config {
            db_path: dir.path().join("o.db"),
            otlp_listen: "127.0.0.1:0".parse()?,
            otlp_grpc_listen: "127.0.0.1:0".parse()?,
            query_listen: listen.parse()?,
            allowed_hosts: allowed.iter().map(|&h| h.to_owned()).collect(),
            ..Default::default()
        })
        .await?;
        let port = server.query_addr().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let host = host.replace("{port}", &port.to_string());
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        client.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        client.read_to_string(&mut answer).await?;
        let _ = stop.send(());
        running.await??;
        let status = answer.lines().next().unwrap_or_default().to_owned();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        Ok(format!("{status}\n{body}"))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_loopback_listener_refuses_other_names_with_421()
    -> Result<(), Box<dyn std::error::Error>> {
        for host in ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"] {
            let answer = ask("127.0.0.1:0", &[], host).await?;
            assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
        }
        let answer = ask("127.0.0.1:0", &[], "rebound.example:{port}").await?;
        assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
        assert!(answer.contains("allowed_hosts"), "{answer}");
        let answer = ask(
            "127.0.0.1:0",
            &["rebound.example"],
            "rebound.example:{port}",
        )
        .await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Bound to every address: no check unless allowed_hosts is given.
        let answer = ask("0.0.0.0:0", &[], "rebound.example:{port}").await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answer = ask("0.0.0.0:0", &["otelite.internal"], "rebound.example").await?;
        assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
        Ok(())
    }
}
