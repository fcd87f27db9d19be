//! `spares backup` and `spares restore`: whole-service copies in the
//! engine-independent backup format, online over gRPC or offline from a data
//! directory, and restores into an empty data directory.

use super::client::{ClientError, Target};
use crate::clock::{Clock, SystemClock};
use crate::pb;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::service::backup::{restore_backup, write_backup};
use crate::store::sled_store::SledStore;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

fn partial(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Checks the written file reads back whole, then gives it its name.
fn seal(file: &Path) -> Result<crate::backup::Backup, String> {
    let temporary = partial(file);
    let reader =
        std::fs::File::open(&temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
    let backup = crate::backup::read_backup(BufReader::new(reader)).map_err(|e| {
        format!(
            "{}: the backup does not read back: {e}",
            temporary.display()
        )
    })?;
    std::fs::rename(&temporary, file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(backup)
}

/// `spares backup FILE --server URL` or `--data-dir D`.
pub async fn backup(
    file: &Path,
    server: Option<&Target>,
    data_dir: Option<&Path>,
) -> Result<String, String> {
    if file.exists() {
        return Err(format!("{} exists; choose a new file name", file.display()));
    }
    let temporary = partial(file);
    let out =
        std::fs::File::create(&temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
    let source = match (server, data_dir) {
        (Some(target), None) => {
            backup_remote(target, BufWriter::new(out)).await?;
            target.url.clone()
        }
        (None, Some(dir)) => {
            let store = SledStore::open(dir).map_err(|e| in_use(dir, &e.to_string()))?;
            write_backup(&store, BufWriter::new(out), SystemClock.now())
                .map_err(|e| e.to_string())?;
            dir.display().to_string()
        }
        _ => return Err("give --server URL (a running server) or --data-dir D".into()),
    };
    let backup = seal(file)?;
    Ok(format!(
        "backed up {source} to {}: {} items, movement log cut at sequence {}\n",
        file.display(),
        backup.items.len(),
        backup.last_sequence
    ))
}

/// A clearer message for the commonest offline failure.
fn in_use(dir: &Path, error: &str) -> String {
    if error.contains("could not acquire lock") {
        format!(
            "{}: a running server holds this data directory; back it up with `spares backup FILE --server URL`",
            dir.display()
        )
    } else {
        format!("{}: {error}", dir.display())
    }
}

async fn backup_remote(target: &Target, mut out: impl Write) -> Result<(), String> {
    let channel = super::client::channel(target)
        .await
        .map_err(|e| e.to_string())?;
    let mut client = AdminServiceClient::new(channel);
    let mut stream = client
        .backup(pb::BackupRequest {})
        .await
        .map_err(|s| ClientError::Status(s).to_string())?
        .into_inner();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| ClientError::Status(s).to_string())?
    {
        out.write_all(&chunk.data).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// `spares restore FILE --data-dir D`: into an empty directory only.
pub fn restore(file: &Path, data_dir: &Path) -> Result<String, String> {
    let non_empty = std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty {
        return Err(format!(
            "{} is not empty; restore into a new or empty directory",
            data_dir.display()
        ));
    }
    let input = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let store = SledStore::open(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let (last_sequence, items) = restore_backup(&store, BufReader::new(input))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    drop(store);
    // Opening runs the full audit (log replay, balances, reservations).
    SledStore::open(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    Ok(format!(
        "restored {items} items (movement log to sequence {last_sequence}) into {}; it audits clean\n",
        data_dir.display()
    ))
}
