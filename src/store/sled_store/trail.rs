//! The trails of [`SledStore`]: the movement log read back page by page,
//! and the audit trail of mutating calls (`records/audit_events`, keyed by
//! the event id as 20 digits, so the tree's order is the trail's order and a
//! backup carries it as an ordinary record collection).

use super::{SledStore, corrupt, from_json, poisoned, storage, to_json};
use crate::domain::audit::{AuditEvent, AuditFilter, MovementFilter};
use crate::domain::ledger::LedgerEntry;
use crate::store::{MAX_MOVEMENTS_SCANNED, StoreError, codec};

/// The record collection (tree `records/<this>`) of the audit trail.
pub const AUDIT_COLLECTION: &str = "audit_events";

fn audit_key(id: u64) -> String {
    format!("{id:020}")
}

impl SledStore {
    fn audit_tree(&self) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(format!("records/{AUDIT_COLLECTION}"))
            .map_err(storage)
    }

    pub(super) fn read_movements(
        &self,
        filter: &MovementFilter,
    ) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError> {
        let first = filter.after_sequence.saturating_add(1);
        // The batch holding `first` starts at or before it: begin there.
        let start = match self
            .log
            .range(..=first.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(storage)?
        {
            Some((key, _)) => key.to_vec(),
            None => first.to_be_bytes().to_vec(),
        };
        let limit = filter.limit.max(1);
        let mut found = Vec::new();
        let mut scanned = 0usize;
        for item in self.log.range(start..) {
            let (key, value) = item.map_err(storage)?;
            let entries = codec::decode_log_batch(&value)
                .map_err(|e| corrupt(format!("undecodable log record {key:?}: {e}")))?;
            for entry in entries {
                if entry.sequence < first {
                    continue;
                }
                scanned += 1;
                let sequence = entry.sequence;
                if filter.matches(&entry) {
                    found.push(entry);
                }
                if found.len() >= limit || scanned >= MAX_MOVEMENTS_SCANNED {
                    return Ok((found, Some(sequence)));
                }
            }
        }
        Ok((found, None))
    }

    pub(super) fn append_audit(&self, mut event: AuditEvent) -> Result<AuditEvent, StoreError> {
        let tree = self.audit_tree()?;
        {
            // One appender at a time, so ids stay increasing; the id follows
            // the last stored one (a restored trail keeps its ids).
            let _appending = self.audit_appender.lock().map_err(poisoned)?;
            let last = match tree.last().map_err(storage)? {
                Some((key, _)) => std::str::from_utf8(&key)
                    .ok()
                    .and_then(|k| k.parse::<u64>().ok())
                    .ok_or_else(|| corrupt("an audit event key is not a number"))?,
                None => 0,
            };
            event.id = last + 1;
            tree.insert(audit_key(event.id), to_json(&event)?)
                .map_err(storage)?;
        }
        self.flush()?;
        Ok(event)
    }

    pub(super) fn read_audit(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError> {
        let tree = self.audit_tree()?;
        let limit = filter.limit.max(1);
        let mut found = Vec::new();
        let mut scanned = 0usize;
        for item in tree.range(audit_key(filter.after_id.saturating_add(1))..) {
            let (_, value) = item.map_err(storage)?;
            let event: AuditEvent = from_json(&value, "audit event")?;
            scanned += 1;
            let id = event.id;
            if filter.matches(&event) {
                found.push(event);
            }
            if found.len() >= limit || scanned >= MAX_MOVEMENTS_SCANNED {
                return Ok((found, Some(id)));
            }
        }
        Ok((found, None))
    }
}
