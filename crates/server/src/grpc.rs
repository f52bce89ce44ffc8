//! The gRPC front door: `hotwasm.v1.Verifier` (tonic) over a shared
//! [`Server`], with the standard health service and server reflection.
//!
//! [`serve`] runs the API on a listener until a shutdown future resolves.
//! What a caller can rely on:
//!
//! - **Verdicts, not errors, for bad jobs.** A request that is not a usable
//!   job (unknown scheme, empty id, oversized field) is answered with
//!   `valid: false` and the reason; a stream or batch goes on. RPC status
//!   codes are for failures of the call itself.
//! - **Message size.** Requests and responses are limited to
//!   [`GrpcOptions::max_message_bytes`]; a larger request is answered with
//!   `RESOURCE_EXHAUSTED` (tonic itself says `OUT_OF_RANGE`; it is mapped).
//! - **Deadlines.** A client's `grpc-timeout` ends the call with
//!   `DEADLINE_EXCEEDED` (tonic's own timeout would say `CANCELLED`, so the
//!   service enforces the deadline itself, [`GrpcOptions::deadline_margin`]
//!   before tonic does).
//! - **Module administration needs an admin token** (`LoadModule`,
//!   `ActivateModule`, `RollbackModule`; [`GrpcOptions::admin_tokens`]):
//!   `PERMISSION_DENIED` when the server accepts none, `UNAUTHENTICATED`
//!   without one it accepts. Every such request is in the audit trail.
//! - **TLS** when [`GrpcOptions::tls`] is given (rustls).
//! - **Graceful shutdown.** Health goes `NOT_SERVING` first, new
//!   connections stop, in-flight calls finish (bounded by
//!   [`GrpcOptions::drain_timeout`]).
//!
//! # Layout
//!
//! - `grpc.rs`: [`serve`], [`GrpcOptions`], [`GrpcError`].
//! - `grpc/service.rs`: the `Verifier` implementation.
//! - `grpc/admin.rs`: admin tokens and the audit trail of administration.
//! - `grpc/convert.rs`: requests to jobs, verdicts and versions to messages.
//! - `grpc/status.rs`: errors to `tonic::Status`, the one place.
//! - `grpc/guard.rs`: deadlines and the size-limit status, around the service.

mod admin;
mod convert;
mod guard;
mod service;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotwasm_auth::AdminTokens;
use hotwasm_proto::v1::verifier_server::VerifierServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

use crate::Server;
use guard::Guarded;
use service::VerifierService;

/// The name health checks and reflection know the API by.
pub const SERVICE_NAME: &str = "hotwasm.v1.Verifier";

/// How to run the gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Largest request or response message, in bytes (default 4 MiB). A
    /// larger request gets `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: usize,
    /// After health turns `NOT_SERVING`, how long to keep accepting new
    /// connections so load balancers notice (default: none).
    pub shutdown_grace: Duration,
    /// How long in-flight calls may take to finish after shutdown before
    /// their connections are closed (default 30 s). Open health `Watch`
    /// streams never finish on their own; this bounds them.
    pub drain_timeout: Duration,
    /// How long before the client's deadline a call is ended with
    /// `DEADLINE_EXCEEDED` (default and minimum 1 ms, so the server's
    /// answer beats tonic's transport timer, which says `CANCELLED`). A
    /// larger margin lets the answer reach a client that also times the
    /// call itself, as tonic clients do, before its own timer fires.
    pub deadline_margin: Duration,
    /// The admin tokens module administration accepts (default: none, so
    /// administration is closed).
    pub admin_tokens: AdminTokens,
    /// The server's certificate chain and key, PEM; without them the API
    /// is plain HTTP/2.
    pub tls: Option<TlsIdentity>,
}

/// A server's TLS certificate chain and private key, PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(30),
            deadline_margin: guard::MIN_MARGIN,
            admin_tokens: AdminTokens::default(),
            tls: None,
        }
    }
}

/// Why the gRPC API could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The reflection service could not read the API's descriptors.
    #[error("building gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed while serving.
    #[error("serving gRPC: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves `hotwasm.v1.Verifier`, `grpc.health.v1.Health` and reflection
/// (v1 and v1alpha) on `listener` until `shutdown` resolves, then shuts down
/// gracefully: health `NOT_SERVING`, wait [`GrpcOptions::shutdown_grace`],
/// stop accepting, let in-flight calls finish for up to
/// [`GrpcOptions::drain_timeout`].
///
/// Verification runs on the server's worker pool; module administration on
/// blocking threads (it compiles). The pool is not closed here: other front
/// doors may still use it.
///
/// ```no_run
/// # async fn run(server: std::sync::Arc<hotwasm_server::Server>) -> Result<(), Box<dyn std::error::Error>> {
/// use hotwasm_server::grpc::{GrpcOptions, serve};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
/// serve(server, listener, GrpcOptions::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`GrpcError`] when reflection cannot be built or the transport fails.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let address = listener.local_addr().ok();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(hotwasm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let limit = options.max_message_bytes;
    let in_flight = Arc::clone(&server.stats().grpc_in_flight);
    let verifier = VerifierServer::new(VerifierService::new(
        server,
        limit,
        options.admin_tokens.clone(),
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);

    // Small unary calls must not wait for Nagle's algorithm.
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
        ))?;
    }
    let serving = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(Guarded::new(verifier, options.deadline_margin, in_flight))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    tokio::pin!(serving);
    tracing::info!(?address, max_message_bytes = limit, "gRPC serving");

    tokio::select! {
        result = &mut serving => return result.map_err(GrpcError::from),
        () = shutdown => {}
    }
    tracing::info!(?address, "gRPC shutting down: health NOT_SERVING");
    health
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    if !options.shutdown_grace.is_zero() {
        tokio::select! {
            result = &mut serving => return result.map_err(GrpcError::from),
            () = tokio::time::sleep(options.shutdown_grace) => {}
        }
    }
    let _ = stop.send(());
    match tokio::time::timeout(options.drain_timeout, serving).await {
        Ok(result) => {
            tracing::info!(?address, "gRPC stopped; in-flight calls finished");
            result.map_err(GrpcError::from)
        }
        Err(_) => {
            tracing::warn!(
                ?address,
                drain_timeout = ?options.drain_timeout,
                "gRPC calls still open after the drain timeout; closing their connections"
            );
            Ok(())
        }
    }
}
