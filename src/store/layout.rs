//! Layout versions of a data directory, and the ordered steps that upgrade an
//! older directory in place.
//!
//! A data directory carries ONE layout version for everything in it (the
//! ledger trees and the master-data trees alike), stored as one byte under
//! `format` in `ledger/meta` (the key earlier releases already wrote, so an
//! older build refuses a newer directory instead of misreading it).
//!
//! # Upgrading
//!
//! [`super::SledStore::open`] reads the version first. An older directory is
//! closed, copied whole to a sibling backup (`<dir>.layout-<v>-backup`, or
//! `...-backup-2` and so on if that exists), reopened, and taken through
//! [`STEPS`] one at a time. Each step reads the old layout and returns the
//! writes that turn it into the next; the runner applies them together with
//! the version bump in ONE sled transaction and flushes, so a crash leaves the
//! directory at either the old or the new version, and opening again resumes.
//!
//! # Adding a step
//!
//! 1. Raise [`LAYOUT_VERSION`] by one.
//! 2. Append a [`Step`] with `from` = the previous version to [`STEPS`]: a
//!    function that reads the trees it changes and returns [`Write`]s. Decode
//!    old records as `serde_json::Value` (or the old binary layout by hand),
//!    never with today's types, so the step stays right when they change.
//! 3. Commit a small fixture directory written by the previous release under
//!    `tests/fixtures/layout-<previous>/` with the answers that release gave,
//!    and a test in `tests/layout_upgrade.rs` that opens it and compares.
//!
//! A step holds its writes in memory (one transaction); a future step over a
//! very large tree (say, re-encoding the whole log) should write in chunks
//! keyed so that a rerun after a crash skips what is done.

use super::StoreError;
use std::path::{Path, PathBuf};

/// The layout this build reads and writes.
///
/// - 1: JSON ledger records, no version marker (no upgrade path; export and import).
/// - 2: binary ledger records (`codec`), master data as JSON, lanes keyed by
///   (from, to, mode).
/// - 3: lanes keyed by (from, to, mode, kind).
/// - 4: log entries carry their actor (log format 2); idempotency keys are
///   scoped per principal; the audit trail (`records/audit_events`).
/// - 5: a movement call's log record carries its idempotency records (log
///   format 3), their only copy; balances reach their tree at checkpoints,
///   with a watermark (`sled_store::deferred`).
pub const LAYOUT_VERSION: u8 = 5;

/// The tree and key holding the version.
pub(crate) const META_TREE: &str = "ledger/meta";
/// The key of the version in [`META_TREE`].
pub(crate) const VERSION_KEY: &[u8] = b"format";

/// One write of an upgrade step: `None` removes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Tree name, e.g. `network/lanes`.
    pub tree: &'static str,
    /// Key in the tree.
    pub key: Vec<u8>,
    /// New value, or `None` to remove the key.
    pub value: Option<Vec<u8>>,
}

/// One upgrade step, from layout `from` to `from + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The layout the step reads.
    pub from: u8,
    /// What changes, for the log.
    pub what: &'static str,
    /// Reads the directory and returns the writes that upgrade it.
    pub writes: fn(&sled::Db) -> Result<Vec<Write>, StoreError>,
}

/// Every upgrade step, in order; step `i` reads layout `STEPS[i].from`.
pub const STEPS: &[Step] = &[
    Step {
        from: 2,
        what: "lanes keyed by (from, to, mode, kind)",
        writes: rekey_lanes,
    },
    Step {
        from: 3,
        what: "log entries carry their actor; idempotency keys scoped per principal",
        writes: actors_and_scoped_keys,
    },
    Step {
        from: 4,
        what: "movement keys in the log; balances written at checkpoints with a watermark",
        writes: balances_watermark,
    },
];

/// The layout of an open directory: `None` for a new, empty one.
///
/// Errors: [`StoreError::Corruption`] for a directory with ledger records but
/// no version (layout 1, which has no upgrade path).
pub(crate) fn read_version(db: &sled::Db) -> Result<Option<u8>, StoreError> {
    let meta = db.open_tree(META_TREE).map_err(storage)?;
    if let Some(version) = meta.get(VERSION_KEY).map_err(storage)? {
        return match version.as_ref() {
            [v] => Ok(Some(*v)),
            other => Err(StoreError::Corruption(format!(
                "the layout version in {META_TREE} is {other:?}, not one byte"
            ))),
        };
    }
    let has_ledger = ["ledger/log", "ledger/balances"]
        .iter()
        .map(|name| db.open_tree(name).map(|t| !t.is_empty()))
        .collect::<Result<Vec<bool>, _>>()
        .map_err(storage)?
        .contains(&true);
    if has_ledger {
        return Err(StoreError::Corruption(
            "the ledger was written in the JSON layout of an earlier spares \
             (version 1); export it with that build and import it with this one"
                .into(),
        ));
    }
    Ok(None)
}

/// Marks a new directory with [`LAYOUT_VERSION`].
pub(crate) fn mark_new(db: &sled::Db) -> Result<(), StoreError> {
    let meta = db.open_tree(META_TREE).map_err(storage)?;
    meta.insert(VERSION_KEY, &[LAYOUT_VERSION][..])
        .map_err(storage)?;
    db.flush().map(|_| ()).map_err(storage)
}

/// Refuses a directory newer than this build.
pub(crate) fn check_not_newer(version: u8) -> Result<(), StoreError> {
    if version > LAYOUT_VERSION {
        return Err(StoreError::Corruption(format!(
            "the data directory has layout version {version}, written by a newer spares; \
             this build reads versions up to {LAYOUT_VERSION}"
        )));
    }
    Ok(())
}

/// Copies the (closed) directory `dir` to a fresh sibling backup and returns
/// its path.
///
/// Errors: [`StoreError::Storage`] if the copy fails; the directory is untouched.
pub fn back_up(dir: &Path, version: u8) -> Result<PathBuf, StoreError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spares-data".into());
    let parent = dir.parent().unwrap_or_else(|| Path::new("."));
    let base = format!("{name}.layout-{version}-backup");
    let mut target = parent.join(&base);
    let mut n = 2;
    while target.exists() {
        target = parent.join(format!("{base}-{n}"));
        n += 1;
    }
    copy_dir(dir, &target).map_err(|e| {
        StoreError::Storage(format!(
            "backing up {} to {} before upgrading it: {e}",
            dir.display(),
            target.display()
        ))
    })?;
    Ok(target)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs every step from `version` up to [`LAYOUT_VERSION`], each in one
/// transaction with its version bump, flushed.
///
/// Errors: [`StoreError::Corruption`] if a step finds records it cannot read
/// or no step starts at a version; [`StoreError::Storage`] if sled fails.
pub(crate) fn upgrade(db: &sled::Db, mut version: u8) -> Result<(), StoreError> {
    while version < LAYOUT_VERSION {
        let step = STEPS.iter().find(|s| s.from == version).ok_or_else(|| {
            StoreError::Corruption(format!(
                "no upgrade from layout version {version}; this build reads {LAYOUT_VERSION}"
            ))
        })?;
        let writes = (step.writes)(db)?;
        tracing::info!(
            from = version,
            what = step.what,
            writes = writes.len(),
            "upgrading the data directory"
        );
        apply(db, &writes, version + 1)?;
        version += 1;
    }
    Ok(())
}

/// Applies `writes` and sets the version to `next`, in one transaction.
fn apply(db: &sled::Db, writes: &[Write], next: u8) -> Result<(), StoreError> {
    use sled::Transactional;
    use sled::transaction::{ConflictableTransactionError, TransactionalTree};
    let mut names: Vec<&str> = writes.iter().map(|w| w.tree).collect();
    names.sort_unstable();
    names.dedup();
    names.retain(|n| *n != META_TREE);
    names.push(META_TREE);
    let trees = names
        .iter()
        .map(|n| db.open_tree(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage)?;
    let index = |tree: &str| names.iter().position(|n| *n == tree).unwrap_or(0);
    trees[..]
        .transaction(|t: &Vec<TransactionalTree>| {
            for write in writes {
                let tree = &t[index(write.tree)];
                match &write.value {
                    Some(value) => tree.insert(write.key.as_slice(), value.as_slice())?,
                    None => tree.remove(write.key.as_slice())?,
                };
            }
            t[names.len() - 1].insert(VERSION_KEY, &[next][..])?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
        .map_err(|e| storage(format!("{e:?}")))?;
    db.flush().map(|_| ()).map_err(storage)
}

fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(error.to_string())
}

/// 2 -> 3: lanes were keyed by the JSON array `[from, to, mode]`; now by
/// `[from, to, mode, kind]`, so lanes of two kinds and one mode coexist.
fn rekey_lanes(db: &sled::Db) -> Result<Vec<Write>, StoreError> {
    const LANES: &str = "network/lanes";
    let tree = db.open_tree(LANES).map_err(storage)?;
    let mut writes = Vec::new();
    for item in tree.iter() {
        let (key, value) = item.map_err(storage)?;
        let lane: serde_json::Value = serde_json::from_slice(&value)
            .map_err(|e| StoreError::Corruption(format!("undecodable lane: {e}")))?;
        let field = |name: &str| {
            lane.get(name).cloned().ok_or_else(|| {
                StoreError::Corruption(format!("a stored lane has no {name:?}: {lane}"))
            })
        };
        let new_key = serde_json::Value::Array(vec![
            field("from")?,
            field("to")?,
            field("mode")?,
            field("kind")?,
        ]);
        let new_key = serde_json::to_vec(&new_key).map_err(storage)?;
        if new_key.as_slice() != key.as_ref() {
            writes.push(Write {
                tree: LANES,
                key: key.to_vec(),
                value: None,
            });
            writes.push(Write {
                tree: LANES,
                key: new_key,
                value: Some(value.to_vec()),
            });
        }
    }
    Ok(writes)
}

/// 3 -> 4: nothing is rewritten, only the version is raised. Every log
/// record starts with its format byte, and format 1 (before layout 4)
/// decodes with the actor "unknown (before layout 4)" (`codec`), so the log,
/// however long, is not re-encoded. Idempotency keys written before layout 4
/// keep their unscoped keys (`m/<key>`) and still dedupe replays from any
/// principal (the principal that used them was not recorded); keys written
/// from layout 4 on are scoped per principal (`sled_store` module docs).
/// The raised version is what keeps an older build, which would misread
/// format-2 records, from opening the directory.
fn actors_and_scoped_keys(_db: &sled::Db) -> Result<Vec<Write>, StoreError> {
    Ok(Vec::new())
}

/// 4 -> 5: a layout-4 directory wrote its balances in the same transaction
/// as each log record, so the balances' tree is current: it gets a
/// watermark at the log's last sequence (none for an empty log, which reads
/// as 0). Nothing else is rewritten: format-2 records still decode, and the
/// keys they wrote stay in the keys' tree.
fn balances_watermark(db: &sled::Db) -> Result<Vec<Write>, StoreError> {
    let log = db.open_tree("ledger/log").map_err(storage)?;
    let Some((key, value)) = log.last().map_err(storage)? else {
        return Ok(Vec::new());
    };
    let entries = super::codec::decode_log_batch(&value)
        .map_err(|e| StoreError::Corruption(format!("undecodable last log record {key:?}: {e}")))?;
    let Some(last) = entries.last() else {
        return Err(StoreError::Corruption(
            "the last log record holds no entry".into(),
        ));
    };
    Ok(vec![Write {
        tree: "ledger/balances",
        key: vec![0xFF],
        value: Some(last.sequence.to_be_bytes().to_vec()),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_from_every_older_upgradable_version_in_order() {
        let first = STEPS.first().map(|s| s.from).unwrap_or(LAYOUT_VERSION);
        let froms: Vec<u8> = STEPS.iter().map(|s| s.from).collect();
        let expected: Vec<u8> = (first..LAYOUT_VERSION).collect();
        assert_eq!(
            froms, expected,
            "one step per version, in order, up to the current"
        );
    }

    #[test]
    fn lane_rekey_matches_the_key_the_store_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("network/lanes").unwrap();
        let lane = serde_json::json!({
            "from": "A", "to": "B", "mode": "Road", "kind": "Emergency",
            "transit": {"Fixed": {"transit_hours": 5.0}}, "schedule": null,
            "cost_per_unit_usd": 1.0
        });
        let old_key = serde_json::to_vec(&("A", "B", "Road")).unwrap();
        tree.insert(old_key.clone(), serde_json::to_vec(&lane).unwrap())
            .unwrap();
        let writes = rekey_lanes(&db).unwrap();
        apply(&db, &writes, 3).unwrap();
        let expected = serde_json::to_vec(&(
            "A",
            "B",
            crate::domain::network::TransportMode::Road,
            crate::domain::network::LaneKind::Emergency,
        ))
        .unwrap();
        assert!(tree.get(&old_key).unwrap().is_none());
        assert!(tree.get(&expected).unwrap().is_some());
        assert_eq!(read_version(&db).unwrap(), Some(3));
        // A second run finds nothing to do.
        assert!(rekey_lanes(&db).unwrap().is_empty());
    }
}
