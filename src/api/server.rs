//! Builds and runs the gRPC server: the four spares.v1 services, health and
//! reflection (v1 and v1alpha), one interceptor layer in front of every RPC,
//! message-size limits and the reservation-expiry task.

use super::availability::AvailabilityApi;
use super::inventory::InventoryApi;
use super::network::NetworkApi;
use super::planning::PlanningApi;
use crate::pb;
use crate::pb::availability_service_server::AvailabilityServiceServer;
use crate::pb::inventory_service_server::InventoryServiceServer;
use crate::pb::network_service_server::NetworkServiceServer;
use crate::pb::planning_service_server::PlanningServiceServer;
use crate::service::Spares;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;
use tonic::{Request, Status};

/// The one interceptor every RPC passes through. Authentication goes here.
/// Today it only records the method for tracing.
pub fn intercept(request: Request<()>) -> Result<Request<()>, Status> {
    tracing::trace!(metadata = ?request.metadata(), "rpc");
    Ok(request)
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `spares` on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    spares: Arc<Spares>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
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
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let expiry = tokio::spawn(expire_reservations(spares.clone()));
    let closer = spares.clone();
    let shutdown = async move {
        shutdown.await;
        closer.close_streams();
    };
    let result = Server::builder()
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .layer(InterceptorLayer::new(intercept))
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
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    expiry.abort();
    Ok(result?)
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
