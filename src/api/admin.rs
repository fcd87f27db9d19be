//! `AdminService`: the online backup, streamed in chunks as it is written,
//! and API keys.

use super::convert::timestamp_to_pb;
use super::gate::caller;
use super::util::{blocking, paginate};
use crate::auth::Role;
use crate::auth::keys::ApiKeyRecord;
use crate::domain::DomainError;
use crate::pb;
use crate::pb::admin_service_server::AdminService;
use crate::service::Spares;
use crate::service::keys::NewApiKey;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Bytes per chunk of a streamed backup: well under the message limit.
pub const BACKUP_CHUNK_BYTES: usize = 1024 * 1024;

/// The gRPC face of whole-service operations.
pub struct AdminApi {
    spares: Arc<Spares>,
}

impl AdminApi {
    /// Serves `spares`.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }
}

/// A stream of backup chunks.
pub type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

/// Writes into chunks sent on a bounded channel: a slow reader slows the
/// backup down instead of letting it pile up in memory, and a reader that
/// goes away stops it.
struct ChunkWriter {
    tx: mpsc::Sender<Result<pb::BackupChunk, Status>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(BACKUP_CHUNK_BYTES));
        self.tx
            .blocking_send(Ok(pb::BackupChunk { data }))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= BACKUP_CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The core role of a protobuf role.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `field` for an unspecified or unknown role.
pub fn role_from_pb(field: &str, role: i32) -> Result<Role, DomainError> {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Dealer) => Ok(Role::Dealer),
        Ok(pb::Role::OrderingApp) => Ok(Role::OrderingApp),
        Ok(pb::Role::Planner) => Ok(Role::Planner),
        Ok(pb::Role::Warehouse) => Ok(Role::Warehouse),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Unspecified) => Err(DomainError::invalid(field, "is required")),
        Err(_) => Err(DomainError::invalid(field, format!("unknown role {role}"))),
    }
}

/// The protobuf role of a core role.
pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Dealer => pb::Role::Dealer,
        Role::OrderingApp => pb::Role::OrderingApp,
        Role::Planner => pb::Role::Planner,
        Role::Warehouse => pb::Role::Warehouse,
        Role::Admin => pb::Role::Admin,
    }
}

/// The protobuf form of a stored key (never its digest).
pub fn api_key_to_pb(record: &ApiKeyRecord) -> pb::ApiKey {
    pb::ApiKey {
        key_id: record.key_id.clone(),
        role: role_to_pb(record.role) as i32,
        store_ids: record.stores.clone(),
        location_ids: record.locations.clone(),
        name: record.name.clone(),
        created_at: Some(timestamp_to_pb(record.created_at)),
        created_by: record.created_by.clone(),
        revoked_at: record.revoked_at.map(timestamp_to_pb),
        principal_id: crate::auth::keys::principal_id(&record.key_id),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type BackupStream = BackupStream;

    async fn backup(
        &self,
        _request: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let spares = self.spares.clone();
        let errors = tx.clone();
        tokio::task::spawn_blocking(move || {
            let writer = ChunkWriter {
                tx,
                buffer: Vec::with_capacity(BACKUP_CHUNK_BYTES),
            };
            if let Err(error) = spares.backup(writer) {
                tracing::warn!(%error, "backup failed");
                let _ = errors
                    .blocking_send(Err(Status::unavailable(format!("backup failed: {error}"))));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let new = NewApiKey {
            role: role_from_pb("role", request.role)?,
            stores: request.store_ids,
            locations: request.location_ids,
            name: request.name,
            created_by: principal.id.clone(),
        };
        let (record, secret) = blocking(&self.spares, move |s| s.create_api_key(new)).await?;
        tracing::info!(key_id = %record.key_id, role = %record.role, by = %principal.id, "api key created");
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(api_key_to_pb(&record)),
            secret,
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let principal = caller(&request)?;
        let key_id = request.into_inner().key_id;
        if key_id.is_empty() {
            return Err(DomainError::invalid("key_id", "is required").into());
        }
        let record = blocking(&self.spares, move |s| s.revoke_api_key(&key_id)).await?;
        tracing::info!(key_id = %record.key_id, by = %principal.id, "api key revoked");
        Ok(Response::new(api_key_to_pb(&record)))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let request = request.into_inner();
        let records = blocking(&self.spares, |s| s.api_keys()).await?;
        let items = records
            .iter()
            .filter(|r| request.include_revoked || r.revoked_at.is_none())
            .map(|r| (r.key_id.clone(), api_key_to_pb(r)));
        let (keys, next_page_token) = paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys,
            next_page_token,
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let filter = super::trail::audit_filter(request.get_ref(), self.spares.limits())?;
        let (events, next) =
            blocking(&self.spares, move |s| s.store().audit_events(&filter)).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events.iter().map(super::trail::audit_event_to_pb).collect(),
            next_page_token: super::trail::next_token(next),
        }))
    }
}
