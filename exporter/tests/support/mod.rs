//! A scripted fake OTLP/HTTP endpoint on 127.0.0.1:0: answers `/v1/traces`
//! from a script (then a default), answers `/v1/metrics` with 200, and
//! records every request with its body decompressed.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One scripted answer to a `/v1/traces` POST.
#[derive(Clone, Debug)]
pub enum Reply {
    Ok,
    Status(u16, Option<&'static str>),
    PartialSuccess(i64),
    /// Wait until the gate opens, then 200.
    Gated(watch::Receiver<bool>),
    /// Never answer.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    /// The body as sent (maybe gzip).
    pub raw: Vec<u8>,
    /// The body after `Content-Encoding` was undone.
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn traces(&self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(self.body.as_slice()).expect("traces body decodes")
    }

    pub fn metrics(&self) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest::decode(self.body.as_slice()).expect("metrics body decodes")
    }

    pub fn span_count(&self) -> usize {
        self.traces()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    recorded: Mutex<Vec<Recorded>>,
}

pub struct FakeEndpoint {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl FakeEndpoint {
    /// Starts on the current tokio runtime; `script` answers the first trace
    /// POSTs in order, then every one gets `default`.
    pub async fn start(script: Vec<Reply>, default: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            default: Mutex::new(Some(default)),
            recorded: Mutex::default(),
        });
        let server_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = server_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        let recorded = self.state.recorded.lock().expect("lock");
        recorded
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn traces(&self) -> Vec<Recorded> {
        self.requests("/v1/traces")
    }

    pub fn metrics(&self) -> Vec<Recorded> {
        self.requests("/v1/metrics")
    }

    /// Waits (polling) until `n` trace requests arrived; a hang guard, not a speed check.
    pub async fn wait_for_traces(&self, n: usize) {
        for _ in 0..3000 {
            if self.traces().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} trace requests arrived");
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let raw = request.into_body().collect().await?.to_bytes().to_vec();
    let body = match headers.get("content-encoding").map(|v| v.as_bytes()) {
        Some(b"gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .expect("gzip body");
            out
        }
        _ => raw.clone(),
    };
    state.recorded.lock().expect("lock").push(Recorded {
        path: path.clone(),
        headers,
        raw,
        body,
    });
    let reply = if path == "/v1/traces" {
        let scripted = state.script.lock().expect("lock").pop_front();
        scripted
            .or_else(|| state.default.lock().expect("lock").clone())
            .unwrap_or(Reply::Ok)
    } else {
        Reply::Ok
    };
    Ok(answer(reply).await)
}

async fn answer(reply: Reply) -> Response<Full<Bytes>> {
    let protobuf = |message: ExportTraceServiceResponse| {
        Response::builder()
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(message.encode_to_vec())))
            .expect("response")
    };
    match reply {
        Reply::Ok => protobuf(ExportTraceServiceResponse::default()),
        Reply::PartialSuccess(rejected) => protobuf(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: "some spans were invalid".into(),
            }),
        }),
        Reply::Status(status, retry_after) => {
            let mut builder =
                Response::builder().status(StatusCode::from_u16(status).expect("status"));
            if let Some(value) = retry_after {
                builder = builder.header("retry-after", value);
            }
            builder
                .body(Full::new(Bytes::from_static(b"scripted")))
                .expect("response")
        }
        Reply::Gated(mut gate) => {
            let _ = gate.wait_for(|open| *open).await;
            protobuf(ExportTraceServiceResponse::default())
        }
        Reply::Hang => std::future::pending().await,
    }
}
