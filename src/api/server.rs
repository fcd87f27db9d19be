//! Builds and runs the gRPC server: the five spares.v1 services, health and
//! reflection (v1 and v1alpha), the gate (authentication, the authorisation
//! table, rate limits) in front of every RPC, message-size limits and the
//! reservation-expiry task. Every accepted
//! connection gets TCP_NODELAY and TCP keep-alive (see [`tune_accepted`]),
//! then, when TLS is configured, a TLS handshake (see [`super::tls`]).

use super::access_log::AccessLogLayer;
use super::admin::AdminApi;
use super::audit::AuditLayer;
use super::availability::AvailabilityApi;
use super::conn::Batched;
use super::gate::{GateLayer, GateSettings};
use super::inventory::InventoryApi;
use super::network::NetworkApi;
use super::planning::PlanningApi;
use super::tls::{ServerTls, tls_incoming};
use crate::config::Limits;
use crate::pb;
use crate::pb::admin_service_server::AdminServiceServer;
use crate::pb::availability_service_server::AvailabilityServiceServer;
use crate::pb::inventory_service_server::InventoryServiceServer;
use crate::pb::network_service_server::NetworkServiceServer;
use crate::pb::planning_service_server::PlanningServiceServer;
use crate::service::Spares;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::transport::server::Connected;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Authentication is on and nothing could authenticate a caller.
    #[error("{NO_KEYS}")]
    NoCredentials,
    /// API keys are turned off and no other credential is configured.
    #[error(
        "authentication is on, API keys are turned off ([auth] api_keys = false) and neither a JWT key (--jwt-public-key / --jwt-jwks) nor client certificates (--client-ca) are configured, so every call would be refused"
    )]
    NoAuthenticator,
}

/// How the server protects its connections and who it lets in.
#[derive(Debug, Clone)]
pub struct Security {
    /// TLS (with mutual TLS if it names a client CA); `None` serves
    /// plaintext.
    pub tls: Option<Arc<ServerTls>>,
    /// Authentication off: every request acts as an administrator. Announced
    /// at start; only for development or a private network.
    pub insecure_dev: bool,
    /// Health checks need no credentials (the default).
    pub open_health: bool,
    /// Reflection needs no credentials (the default).
    pub open_reflection: bool,
    /// Whether the store's API keys authenticate (the default). Off, only
    /// bearer JWTs and client certificates do.
    pub api_keys: bool,
    /// Authenticators asked after the API keys of the store (a bearer JWT
    /// verifier). Client certificates need no entry: with a client CA in
    /// `tls`, they are asked last (see [`super::client_certificate`]).
    pub authenticators: Vec<Arc<dyn crate::auth::Authenticator>>,
}

impl Default for Security {
    /// Plaintext; authentication on, by the store's API keys; health and
    /// reflection open.
    fn default() -> Self {
        Self {
            tls: None,
            insecure_dev: false,
            open_health: true,
            open_reflection: true,
            api_keys: true,
            authenticators: Vec::new(),
        }
    }
}

/// The refusal of a server with authentication on and nothing to
/// authenticate with: it could only ever answer UNAUTHENTICATED.
pub const NO_KEYS: &str = "authentication is on and the data directory holds no API key, so every call would be refused. Create the first administrator key with `spares keys create --role admin --data-dir DIR` (with the server stopped; the key is printed once), or serve with `--insecure-dev` to turn authentication off on a private network";

/// The gate of a server over `spares`: its authenticators in order (API
/// keys, then the configured ones such as bearer JWT, then client
/// certificates when TLS has a client CA), open RPCs and rate limit.
///
/// # Errors
/// [`ServeError::NoCredentials`] when authentication is on and there is
/// neither an active API key nor another authenticator;
/// [`ServeError::NoAuthenticator`] when API keys are off and nothing else
/// is configured.
pub fn gate_settings(spares: &Spares, security: &Security) -> Result<GateSettings, ServeError> {
    let mutual_tls = security
        .tls
        .as_ref()
        .is_some_and(|tls| tls.requires_client_certificate());
    let others = !security.authenticators.is_empty() || mutual_tls;
    if !security.insecure_dev && !others {
        if !security.api_keys {
            return Err(ServeError::NoAuthenticator);
        }
        if spares.key_ring().active() == 0 {
            return Err(ServeError::NoCredentials);
        }
    }
    let mut authenticators = crate::auth::Authenticators::new();
    if security.api_keys {
        authenticators = authenticators.with(Arc::new(
            crate::auth::keys::ApiKeyAuthenticator::new(spares.key_ring().clone()),
        ));
    }
    for extra in &security.authenticators {
        authenticators = authenticators.with(extra.clone());
    }
    if mutual_tls {
        authenticators = authenticators.with(Arc::new(
            super::client_certificate::ClientCertificateAuthenticator,
        ));
    }
    let limits = spares.limits();
    Ok(GateSettings {
        authenticators,
        insecure_dev: security.insecure_dev,
        open_health: security.open_health,
        open_reflection: security.open_reflection,
        rate_limit: crate::auth::rate::RateLimit {
            per_second: limits.rate_per_principal_per_second,
            burst: limits.rate_burst_per_principal,
        },
    })
}

/// Serves `spares` on an already-bound listener until `shutdown` resolves,
/// with [`Security::default`] (plaintext; authentication by the store's API
/// keys).
pub async fn serve(
    spares: Arc<Spares>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with(spares, listener, shutdown, Security::default()).await
}

/// Serves `spares` on an already-bound listener until `shutdown` resolves.
pub async fn serve_with(
    spares: Arc<Spares>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    security: Security,
) -> Result<(), ServeError> {
    serve_incoming_with(spares, TcpListenerStream::new(listener), shutdown, security).await
}

/// Sets the options every accepted connection needs, whichever way the
/// server was started. tonic applies its own `tcp_nodelay` and keep-alive
/// settings only to listeners it binds itself and drops them for an
/// incoming stream, so they are set here, on each socket.
///
/// TCP_NODELAY: a gRPC response is written as headers, then data and
/// trailers; with Nagle's algorithm the second write waits for the client's
/// delayed ACK (40 ms on Linux), which capped a one-in-flight client at
/// about 25 requests a second. Keep-alive frees connections to peers that
/// vanished without closing them.
///
/// # Errors
/// The `setsockopt` error, if the kernel refused an option (the connection
/// is usually already gone).
pub fn tune_accepted(stream: &TcpStream, limits: &Limits) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(limits.tcp_keepalive_idle)
        .with_interval(limits.tcp_keepalive_interval)
        .with_retries(limits.tcp_keepalive_retries);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// `accepted` with [`tune_accepted`] applied to each connection; one whose
/// options cannot be set is still passed on (it works, only slower) and
/// the failure is logged.
pub fn tuned_connections<S>(
    accepted: S,
    limits: Limits,
) -> impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static
where
    S: Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
{
    accepted.map(move |accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = tune_accepted(stream, &limits) {
                tracing::warn!(%error, "cannot set TCP options on an accepted connection");
            }
        })
    })
}

/// Serves `spares` on a stream of accepted connections until `shutdown`
/// resolves, with [`Security::default`]; see [`serve_incoming_with`].
pub async fn serve_incoming<S>(
    spares: Arc<Spares>,
    accepted: S,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    S: Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
{
    serve_incoming_with(spares, accepted, shutdown, Security::default()).await
}

/// Serves `spares` on a stream of accepted connections until `shutdown`
/// resolves. Each connection is tuned with [`tune_accepted`] before it is
/// served (one whose options cannot be set is still served: it works, only
/// slower, and the failure is logged), then goes through a TLS handshake
/// when `security` has TLS.
///
/// # Errors
/// [`ServeError::NoCredentials`] before serving when authentication is on
/// and nothing could authenticate a caller; reflection and transport errors.
pub async fn serve_incoming_with<S>(
    spares: Arc<Spares>,
    accepted: S,
    shutdown: impl Future<Output = ()> + Send,
    security: Security,
) -> Result<(), ServeError>
where
    S: Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
{
    let gate = GateLayer::new(gate_settings(&spares, &security)?);
    if security.insecure_dev {
        tracing::warn!(
            "AUTHENTICATION IS OFF (--insecure-dev): every caller acts as an administrator"
        );
    }
    let limits = spares.limits().clone();
    let tuned = tuned_connections(accepted, limits.clone());
    match security.tls {
        None => serve_connections(spares, tuned, shutdown, gate).await,
        Some(tls) => {
            let incoming = tls_incoming(tuned, tls, &limits);
            serve_connections(spares, incoming, shutdown, gate).await
        }
    }
}

/// Serves every service on `incoming` (plain TCP or TLS connections) until
/// `shutdown` resolves.
async fn serve_connections<I, IO>(
    spares: Arc<Spares>,
    incoming: I,
    shutdown: impl Future<Output = ()> + Send,
    gate: GateLayer,
) -> Result<(), ServeError>
where
    I: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
{
    let limits = spares.limits().clone();
    let max = limits.max_message_bytes;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<NetworkServiceServer<NetworkApi>>()
        .await;
    health_reporter
        .set_serving::<InventoryServiceServer<InventoryApi>>()
        .await;
    health_reporter
        .set_serving::<AvailabilityServiceServer<AvailabilityApi>>()
        .await;
    health_reporter
        .set_serving::<PlanningServiceServer<PlanningApi>>()
        .await;
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let expiry = tokio::spawn(expire_reservations(spares.clone()));
    // On a store several servers share, this server takes over the jobs of
    // servers that die (on a store one process opens there is none).
    let taker = spares.clone();
    let takeover = tokio::task::spawn_blocking(move || {
        let rebuild = super::planning::job_rebuilder(&taker);
        taker.jobs().take_over_jobs(rebuild)
    });
    match takeover.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot adopt jobs left without a server; the lease keeper retries");
        }
        Err(error) => tracing::warn!(%error, "the job takeover task failed"),
    }
    let closer = spares.clone();
    let grace = limits.shutdown_grace;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let jobs_stopped = Arc::new(tokio::sync::Notify::new());
    let notify = jobs_stopped.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; ending streams and jobs");
        closer.close_streams();
        let _ = stopping.send(());
        let jobs = closer.jobs().clone();
        let ended = tokio::task::spawn_blocking(move || jobs.shutdown(grace)).await;
        if !matches!(ended, Ok(true)) {
            tracing::warn!("some jobs did not stop within {grace:?}");
        }
        // Units of shared work this server still holds go to the other
        // servers when their leases run out.
        closer.work().halt();
        notify.notify_one();
    };
    let serving = Server::builder()
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        // Outermost, so the access line covers everything inside, the
        // gate's refusals included.
        .layer(AccessLogLayer::new(limits.request_timeout))
        .layer(gate)
        .layer(AuditLayer::new(spares.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            NetworkServiceServer::new(NetworkApi::new(spares.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            InventoryServiceServer::new(InventoryApi::new(spares.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            AvailabilityServiceServer::new(AvailabilityApi::new(spares.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            PlanningServiceServer::new(PlanningApi::new(spares.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            AdminServiceServer::new(AdminApi::new(spares.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .serve_with_incoming_shutdown(
            incoming.map(|accepted| accepted.map(Batched::new)),
            shutdown,
        );
    // In-flight requests get `grace` once the shutdown begins; a request that
    // takes longer is cut off rather than holding the exit.
    let drain_bound = async {
        let _ = stopped.await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = serving => result,
        () = drain_bound => {
            tracing::warn!("requests still running after {grace:?}; stopping anyway");
            Ok(())
        }
    };
    expiry.abort();
    jobs_stopped_or(grace, &jobs_stopped).await;
    Ok(result?)
}

/// Waits until the jobs have stopped (or `grace` passes: the job pool has
/// its own bound, this only keeps a stuck pool from holding the exit).
async fn jobs_stopped_or(grace: Duration, stopped: &tokio::sync::Notify) {
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), stopped.notified()).await;
}

/// Expires due reservations once a second, so held stock comes back even when
/// nobody asks.
async fn expire_reservations(spares: Arc<Spares>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let spares = spares.clone();
        match tokio::task::spawn_blocking(move || spares.expire_due()).await {
            Ok(Ok(expired)) if !expired.is_empty() => {
                tracing::info!(count = expired.len(), "reservations expired");
            }
            Ok(Err(error)) => tracing::warn!(%error, "expiring reservations failed"),
            _ => {}
        }
    }
}
