//! `AdminService`: the online backup, streamed in chunks as it is written.

use crate::pb;
use crate::pb::admin_service_server::AdminService;
use crate::service::Spares;
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
}
