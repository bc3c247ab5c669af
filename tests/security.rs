//! Security: bearer tokens on both listeners, TLS with a certificate made
//! here (the exporter sending over https and trusting it), and the
//! connection limits that stop slow or oversized request heads.

use crate::support::pki::{Pki, pki};
use crate::support::{Backend, WAIT, resource, shutdown};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use otelite_backend::net::{BearerToken, TlsFiles};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INGEST_TOKEN: &str = "ingest-s3cret";
const QUERY_TOKEN: &str = "query-s3cret";

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An https client that trusts only `ca`.
fn https_client(ca: &Path) -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read cert") {
        roots.add(cert.expect("PEM cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends one request; answers status, `WWW-Authenticate` and body.
async fn send(
    client: &HttpsClient,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<String>, Bytes) {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/x-protobuf");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    let response = client.request(request).await.expect("https round trip");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes();
    (status, challenge, body)
}

async fn tls_backend(pki: &Pki) -> Backend {
    let tls = TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    };
    Backend::start_with(|config| {
        config.tls = Some(tls);
        config.ingest_token = Some(BearerToken::new(INGEST_TOKEN));
        config.query_token = Some(BearerToken::new(QUERY_TOKEN));
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exporter_sends_over_tls_with_the_ingest_token() {
    let pki = pki();
    let backend = tls_backend(&pki).await;
    let provider = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(format!("https://localhost:{}", backend.otlp.port()))
        .with_certificate(&pki.cert)
        .with_headers([("authorization", format!("Bearer {INGEST_TOKEN}"))])
        .build_provider(resource("tls-svc"))
        .expect("exporter builds");
    let trace_id = provider.tracer("security").in_span("over-tls", |cx| {
        cx.span().span_context().trace_id().to_string()
    });
    shutdown(provider).await;

    let client = https_client(&pki.cert);
    let url = format!(
        "https://localhost:{}/api/otelite/traces/{trace_id}",
        backend.query.port()
    );
    let (status, _, body) = send(&client, Method::GET, &url, Some(QUERY_TOKEN), vec![]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let trace: serde_json::Value = serde_json::from_slice(&body).expect("JSON trace");
    assert!(
        trace.to_string().contains("over-tls"),
        "the span sent over TLS is stored: {trace}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_ingest_and_queries_but_not_health() {
    let pki = pki();
    let backend = tls_backend(&pki).await;
    let client = https_client(&pki.cert);
    let otlp = |path: &str| format!("https://localhost:{}{path}", backend.otlp.port());
    let query = |path: &str| format!("https://localhost:{}{path}", backend.query.port());
    // An empty ExportTraceServiceRequest is valid protobuf (zero bytes).
    for token in [None, Some("wrong"), Some(QUERY_TOKEN)] {
        let (status, challenge, _) =
            send(&client, Method::POST, &otlp("/v1/traces"), token, vec![]).await;
        assert_eq!(status, 401, "ingest with {token:?}");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
    }
    let (status, _, _) = send(
        &client,
        Method::POST,
        &otlp("/v1/traces"),
        Some(INGEST_TOKEN),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "ingest with its token");

    for path in ["/api/otelite/services", "/api/services", "/metrics"] {
        for token in [None, Some(INGEST_TOKEN)] {
            let (status, _, _) = send(&client, Method::GET, &query(path), token, vec![]).await;
            assert_eq!(status, 401, "{path} with {token:?}");
        }
        let (status, _, _) = send(
            &client,
            Method::GET,
            &query(path),
            Some(QUERY_TOKEN),
            vec![],
        )
        .await;
        assert_eq!(status, 200, "{path} with the query token");
    }
    for path in ["/healthz", "/readyz"] {
        let (status, _, _) = send(&client, Method::GET, &query(path), None, vec![]).await;
        assert_eq!(status, 200, "{path} stays open");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_tls_listener_gets_no_http_answer() {
    let pki = pki();
    let backend = tls_backend(&pki).await;
    let result = reqwest::Client::new()
        .get(format!("http://{}/healthz", backend.query))
        .timeout(WAIT)
        .send()
        .await;
    assert!(
        result.is_err(),
        "plain HTTP must not be answered: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tls_files_stop_the_start() {
    let pki = pki();
    let missing = TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.with_file_name("missing.pem"),
    };
    let swapped = TlsFiles {
        cert: pki.key.clone(),
        key: pki.cert.clone(),
    };
    for files in [missing, swapped] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = otelite_backend::Config {
            db_path: dir.path().join("o.db"),
            otlp_listen: "127.0.0.1:0".parse().expect("addr"),
            otlp_grpc_listen: "127.0.0.1:0".parse().expect("addr"),
            query_listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Some(files.clone()),
            ..Default::default()
        };
        let result = otelite_backend::Server::bind(config).await;
        assert!(
            matches!(result, Err(otelite_backend::Error::Tls(_))),
            "{files:?} must be refused"
        );
    }
}

/// Reads until the server closes; `None` if it keeps the connection open
/// past the suite's wait.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    match read {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&answer).into_owned()),
        // A reset also ends the connection.
        Ok(Err(_)) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_that_never_ends_is_cut_off() {
    let backend = Backend::start_with(|config| {
        config.connection_limits.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut slow = TcpStream::connect(backend.query).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write part of a head");
    assert!(
        read_until_closed(&mut slow).await.is_some(),
        "the server must close a connection whose head never ends"
    );
    let (status, _) = backend.get_json("/api/otelite/services").await;
    assert_eq!(status, 200, "the server still answers others");
}

/// A client that stops in the middle of a body is answered 408 when the
/// body's deadline passes, and its slot is free again: with one slot, the
/// next whole request is taken.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_coming_gets_408_and_frees_its_slot() {
    let backend = Backend::start_with(|config| {
        config.max_concurrent_requests = 1;
        config.connection_limits.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stalled = stall_mid_body(&backend).await;
    let answer = read_until_closed(&mut stalled)
        .await
        .expect("the server answers a body that stops coming");
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "expected 408 Request Timeout, got {answer:?}"
    );
    let reply = backend
        .post(
            "/v1/traces",
            "application/json",
            None,
            br#"{"resourceSpans":[]}"#.to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200, "the slot is free again: {reply:?}");
}

/// Shutdown waits the grace for requests in flight, then closes what is
/// still open: a client that never finishes its body cannot keep the
/// process (and its store's writer) alive.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_what_is_still_open_after_the_grace() {
    let backend = Backend::start_with(|config| {
        config.connection_limits.shutdown_grace = Duration::from_millis(300);
        config.connection_limits.body_read_timeout = Duration::from_secs(3600);
    })
    .await;
    let mut stalled = stall_mid_body(&backend).await;
    // The request is in flight once its answer cannot come yet.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(200), stalled.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "no answer before the body is whole: {early:?}"
    );
    // `stop` fails the test if the backend is not down within WAIT.
    backend.stop().await;
    assert!(
        read_until_closed(&mut stalled).await.is_some(),
        "the stalled connection is closed by the shutdown"
    );
}

/// A trace export whose head promises 1000 bytes of body, of which only
/// the first few are sent.
async fn stall_mid_body(backend: &Backend) -> TcpStream {
    let mut stalled = TcpStream::connect(backend.otlp).await.expect("connect");
    stalled
        .write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"resourceSpans\":[",
        )
        .await
        .expect("send a head and the start of a body");
    stalled
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_request_head_gets_431() {
    let backend = Backend::start().await;
    let mut client = TcpStream::connect(backend.otlp).await.expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    // The server may stop reading once the limit is passed: ignore a
    // broken pipe and read what it answered.
    let _ = client.write_all(head.as_bytes()).await;
    let answer = read_until_closed(&mut client)
        .await
        .expect("the server answers and closes");
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431 Request Header Fields Too Large, got {answer:?}"
    );
}

/// Whether the server has closed `stream`: what it sent before is drained
/// without waiting; an end of stream or a reset means closed, "would
/// block" means it is still open.
fn closed_by_server(stream: TcpStream) -> bool {
    use std::io::Read;
    let mut stream = stream.into_std().expect("a std socket");
    stream.set_nonblocking(true).expect("non-blocking");
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// A client that pipelines requests for a large file and never reads
/// loses its connection once the write deadline has passed (checked once,
/// after the deadline plus slack), and the server still answers others.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_loses_its_connection() {
    let deadline = Duration::from_secs(1);
    let backend = Backend::start_with(|config| {
        config.connection_limits.write_timeout = deadline;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stuck = socket.connect(backend.query).await.expect("connect");
    let request = format!(
        "GET /ui/dagre.min.js HTTP/1.1\r\nHost: {}\r\n\r\n",
        backend.query
    );
    // Far more answer than the socket buffers on both sides hold.
    stuck
        .write_all(request.repeat(200).as_bytes())
        .await
        .expect("send the requests");
    tokio::time::sleep(deadline + Duration::from_secs(5)).await;
    assert!(
        closed_by_server(stuck),
        "the server must close a connection whose client does not read"
    );
    let (status, _) = backend.get_json("/api/otelite/services").await;
    assert_eq!(status, 200, "the server still answers others");
}
