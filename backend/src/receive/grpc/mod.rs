//! The OTLP/gRPC receiver: `TraceService/Export` and `MetricsService/Export`,
//! the services `opentelemetry-proto` generates, served by tonic over HTTP/2
//! (TLS when the server has it). The gate reads the message into memory
//! under the byte budget (`message`), tonic decodes it (gzip or not, at
//! most the body limit); from there a call takes the OTLP/HTTP receiver's
//! path (`store_traces`, `store_metrics`) behind the same token, the same
//! admission and the same byte budget (`gate`), and only the statuses
//! differ (`status`).

mod gate;
mod incoming;
mod message;
mod status;

use super::{ReceiveState, store_metrics, store_traces};
use crate::net::{BearerToken, ConnectionLimits};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// What the gRPC listener serves with besides its socket.
pub struct GrpcServing {
    pub state: ReceiveState,
    /// The ingest token, as on `/v1/*`.
    pub token: Option<BearerToken>,
    /// The server's TLS configuration (its ALPN is set to `h2` here).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: ConnectionLimits,
}

/// Serves until `stop` turns true, then stops accepting and lets the calls
/// in flight finish (within `shutdown_grace`), as the HTTP listener does.
pub async fn serve(listener: TcpListener, serving: GrpcServing, mut stop: watch::Receiver<bool>) {
    let GrpcServing {
        state,
        token,
        tls,
        limits,
    } = serving;
    let max = state.max_body_bytes;
    let receiver = Receiver {
        state: state.clone(),
    };
    let traces = TraceServiceServer::new(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let metrics = MetricsServiceServer::new(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let tls = tls.map(|config| tokio_rustls::TlsAcceptor::from(h2_only(&config)));
    let connections = incoming::accept(listener, tls, limits, stop.clone());
    let mut stop_serving = stop.clone();
    let server = tonic::transport::Server::builder()
        // A call that neither finishes sending nor gets its answer gives its
        // admission back, as an HTTP body past its read timeout does.
        .timeout(limits.body_read_timeout)
        .add_service(gate::Gate::new(traces, state.clone(), token.clone()))
        .add_service(gate::Gate::new(metrics, state, token))
        .serve_with_incoming_shutdown(connections, async move {
            incoming::stopped(&mut stop_serving).await;
        });
    let grace = async {
        incoming::stopped(&mut stop).await;
        tokio::time::sleep(limits.shutdown_grace).await;
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::warn!(%error, "the OTLP/gRPC listener failed");
            }
        }
        () = grace => tracing::warn!(grace = ?limits.shutdown_grace, "gRPC calls still open at shutdown are dropped"),
    }
}

/// The server's TLS configuration offering HTTP/2 only: gRPC needs it, and
/// the HTTP listeners' configuration offers HTTP/1.1 only.
fn h2_only(config: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Both services' handlers: the shared pipeline, and the status of its
/// failures.
#[derive(Clone)]
struct Receiver {
    state: ReceiveState,
}

impl Receiver {
    fn refuse(&self, error: &super::response::ReceiveError) -> Status {
        self.state.metrics.request_rejected(error.rejection());
        status::of(error)
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let held = request
            .extensions()
            .get::<message::HeldBytes>()
            .and_then(message::HeldBytes::take);
        let request = request.into_inner();
        let processed = move || Ok(crate::process::process(request));
        match store_traces(&self.state, held, processed).await {
            Ok(partial_success) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success,
            })),
            Err(error) => Err(self.refuse(&error)),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let (host, port) = request
            .extensions()
            .get::<gate::Destination>()
            .map_or((None, None), |d| (d.host.clone(), d.port));
        match store_metrics(&self.state, request.into_inner(), host, port).await {
            Ok(()) => Ok(Response::new(ExportMetricsServiceResponse {
                partial_success: None,
            })),
            Err(error) => Err(self.refuse(&error)),
        }
    }
}
