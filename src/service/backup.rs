//! Backups of the running application in the engine-independent format of
//! [`crate::backup`], and restores into an empty store.

use super::Spares;
use crate::backup::{BackupError, BackupWriter, read_backup};
use crate::store::{Store, StoreError};
use std::io::{BufRead, Write};

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// The log sequence it was cut at.
    pub last_sequence: u64,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupFailure {
    /// Writing or reading the file failed, or it is not a valid backup.
    #[error(transparent)]
    File(#[from] BackupError),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Spares {
    /// Writes a consistent backup of everything the store holds to `out`
    /// while writes go on (see [`Store::snapshot`]).
    pub fn backup<W: Write>(&self, out: W) -> Result<BackupSummary, BackupFailure> {
        write_backup(self.store().as_ref(), out, self.clock().now())
    }
}

/// Writes a backup of `store` to `out` (`now` goes in the header).
pub fn write_backup<W: Write>(
    store: &dyn Store,
    out: W,
    now: jiff::Timestamp,
) -> Result<BackupSummary, BackupFailure> {
    let mut writer = BackupWriter::new(out, now)?;
    let mut failure = None;
    let cut = store.snapshot(&mut |item| {
        writer.item(item).map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            StoreError::Storage(message)
        })
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    let last_sequence = cut?;
    writer.finish(last_sequence)?;
    Ok(BackupSummary { last_sequence })
}

/// Reads a backup and loads it into `store`, which must be empty. Returns
/// what was restored: the cut and the number of items.
pub fn restore_backup(
    store: &dyn Store,
    input: impl BufRead,
) -> Result<(u64, usize), BackupFailure> {
    let backup = read_backup(input)?;
    let items = backup.items.len();
    store.restore(backup.items)?;
    Ok((backup.last_sequence, items))
}
