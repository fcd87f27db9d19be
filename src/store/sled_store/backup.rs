//! Snapshot and restore for [`SledStore`]: a consistent copy while writes go
//! on, and a load into an empty store, both as engine-independent
//! [`SnapshotItem`]s (the backup file format is in `crate::backup`).
//!
//! # A consistent cut without stopping writers
//!
//! Only one thing is read under the writer lock: the last sequence, which is
//! the cut. Everything else is read while writers go on, and trimmed back to
//! the cut afterwards. The log is append-only, so its entries up to the cut
//! never change. Idempotency keys are only ever added, each in the same
//! transaction as its entries (a movement's, from layout 5, in the log
//! record of its entries), so a key whose outcome lies past the cut is
//! left out. Reservations change in two ways, both logged: they are made (the
//! id carries the sequence of its entry, so one made past the cut is left
//! out) and settled (post, void or expire; a reservation settled past the cut
//! goes back to pending, and the post or void key that settled it is left
//! out). To see every settlement that could show in what was read, the log
//! is read up to a second sequence taken under the lock *after* the
//! reservations and keys were read: every write those reads saw had
//! committed by then. Master data is only ever upserted, so what is read
//! covers every id the ledger at the cut refers to.

use super::{Scope, SledStore, corrupt, from_json, poisoned, storage, to_json};
use crate::domain::DomainError;
use crate::domain::ledger::{EntryCause, LedgerEntry, LedgerState, Reservation, ReservationState};
use crate::store::codec::{self, StoredOutcome};
use crate::store::{
    IdempotencyRecord, KeyOutcome, KeyScope, SnapshotItem, Store, StoreError, network_records,
};
use std::collections::BTreeSet;

/// Entries per log record written by a restore (a write batch is at most
/// this many too).
const RESTORE_BATCH: usize = 10_000;

impl From<KeyScope> for Scope {
    fn from(scope: KeyScope) -> Self {
        match scope {
            KeyScope::Movement => Self::Movement,
            KeyScope::Reserve => Self::Reserve,
            KeyScope::Post => Self::Post,
            KeyScope::Void => Self::Void,
        }
    }
}

/// The scope of a stored key from its tag byte (see `Scope::key`; a lower
/// case tag is a key stored before layout 4, with no principal).
fn scope_of(tag: u8) -> Option<KeyScope> {
    Some(match tag.to_ascii_lowercase() {
        b'm' => KeyScope::Movement,
        b'r' => KeyScope::Reserve,
        b'p' => KeyScope::Post,
        b'v' => KeyScope::Void,
        _ => return None,
    })
}

/// Splits a stored idempotency key into (scope, principal, client key).
fn split_key(key: &[u8]) -> Result<(KeyScope, Option<String>, String), StoreError> {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(corrupt);
    let (Some(&tag), Some(b'/')) = (key.first(), key.get(1)) else {
        return Err(corrupt("an idempotency key has no scope"));
    };
    let scope = scope_of(tag).ok_or_else(|| corrupt("an idempotency key has no scope"))?;
    if tag.is_ascii_lowercase() {
        return Ok((scope, None, text(&key[2..])?));
    }
    let length = key
        .get(2..6)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .ok_or_else(|| corrupt("an idempotency key has no principal length"))?;
    let principal = key
        .get(6..6 + length)
        .ok_or_else(|| corrupt("an idempotency key is shorter than its principal"))?;
    Ok((scope, Some(text(principal)?), text(&key[6 + length..])?))
}

/// One stored key and its record, as a snapshot item.
fn key_record(key: &[u8], value: &[u8]) -> Result<IdempotencyRecord, StoreError> {
    let (scope, principal, client_key) = split_key(key)?;
    let (payload, outcome) = codec::decode_idempotency(value)
        .map_err(|e| corrupt(format!("undecodable idempotency record: {e}")))?;
    let outcome = KeyOutcome::from(outcome);
    Ok(IdempotencyRecord {
        scope,
        key: client_key,
        principal,
        payload: payload.to_vec(),
        outcome,
    })
}

/// The sequence of the entry that made a reservation, from its id.
pub(in crate::store) fn made_at(reservation_id: &str) -> Option<u64> {
    reservation_id.strip_prefix('R')?.parse().ok()
}

impl SledStore {
    fn last_sequence(&self) -> Result<u64, StoreError> {
        let writer = self.writer.lock().map_err(poisoned)?;
        Ok(writer.next_sequence.saturating_sub(1))
    }

    /// Every idempotency record: the keys' tree's, and from layout 5 the
    /// movement keys carried by log records (`deferred`).
    fn read_keys(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let mut keys = Vec::new();
        for item in self.idempotency.iter() {
            let (key, value) = item.map_err(storage)?;
            keys.push(key_record(&key, &value)?);
        }
        for item in self.log.iter() {
            let (sequence, value) = item.map_err(storage)?;
            let logged = codec::log_record_keys(&value)
                .map_err(|e| corrupt(format!("undecodable log record {sequence:?}: {e}")))?;
            for (key, record) in logged {
                keys.push(key_record(key, record)?);
            }
        }
        Ok(keys)
    }

    fn read_reservations(&self) -> Result<Vec<Reservation>, StoreError> {
        let mut out = Vec::new();
        for item in self.reservations.iter() {
            let (_, value) = item.map_err(storage)?;
            out.push(from_json(&value, "reservation")?);
        }
        Ok(out)
    }

    fn record_collections(&self) -> Vec<String> {
        self.db
            .tree_names()
            .iter()
            .filter_map(|name| {
                std::str::from_utf8(name)
                    .ok()?
                    .strip_prefix("records/")
                    .map(str::to_string)
            })
            .collect()
    }

    /// Sends the log entries up to `cut` and returns the reservations settled
    /// after it, up to `end`.
    fn send_log(
        &self,
        cut: u64,
        end: u64,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut settled_after = BTreeSet::new();
        for item in self.log.range(..=end.to_be_bytes()) {
            let (_, value) = item.map_err(storage)?;
            let entries = codec::decode_log_batch(&value)
                .map_err(|e| corrupt(format!("undecodable log record: {e}")))?;
            for entry in entries {
                if entry.sequence <= cut {
                    sink(SnapshotItem::Entry(entry))?;
                } else if entry.sequence <= end {
                    match entry.cause {
                        EntryCause::Post { reservation_id }
                        | EntryCause::Void { reservation_id }
                        | EntryCause::Expire { reservation_id } => {
                            settled_after.insert(reservation_id);
                        }
                        EntryCause::Movement { .. } | EntryCause::Reserve { .. } => {}
                    }
                }
            }
        }
        Ok(settled_after)
    }

    pub(super) fn snapshot_items(
        &self,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let cut = self.last_sequence()?;
        let reservations = self.read_reservations()?;
        let keys = self.read_keys()?;
        let end = self.last_sequence()?;
        self.send_snapshot(cut, end, reservations, keys, sink)?;
        Ok(cut)
    }

    /// Sends everything as of `cut`, given the reservations and keys read
    /// after it and before `end` was taken.
    fn send_snapshot(
        &self,
        cut: u64,
        end: u64,
        reservations: Vec<Reservation>,
        keys: Vec<IdempotencyRecord>,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for record in network_records(self.load_network()?) {
            sink(SnapshotItem::Network(record))?;
        }
        let settled_after = self.send_log(cut, end, sink)?;
        for mut reservation in reservations {
            if made_at(&reservation.reservation_id).is_none_or(|s| s > cut) {
                continue;
            }
            if settled_after.contains(&reservation.reservation_id) {
                reservation.state = ReservationState::Pending;
                reservation.settled_at = None;
                reservation.ship_to_location_id = None;
                reservation.shipment_id = None;
            }
            sink(SnapshotItem::Reservation(reservation))?;
        }
        for key in keys {
            let keep = match (&key.scope, &key.outcome) {
                (_, KeyOutcome::Movement { sequence, .. }) => *sequence <= cut,
                (KeyScope::Reserve, KeyOutcome::Reservation { reservation_id }) => {
                    made_at(reservation_id).is_some_and(|s| s <= cut)
                }
                (_, KeyOutcome::Reservation { reservation_id }) => {
                    !settled_after.contains(reservation_id)
                        && made_at(reservation_id).is_some_and(|s| s <= cut)
                }
            };
            if keep {
                sink(SnapshotItem::Idempotency(key))?;
            }
        }
        for collection in self.record_collections() {
            for (key, value) in self.records(&collection)? {
                sink(SnapshotItem::Record {
                    collection: collection.clone(),
                    key,
                    value,
                })?;
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.log.is_empty()
            && self.balances.is_empty()
            && self.idempotency.is_empty()
            && self.reservations.is_empty()
            && self.network.iter().all(sled::Tree::is_empty)
    }

    pub(super) fn restore_items(&self, items: Vec<SnapshotItem>) -> Result<(), StoreError> {
        if !self.is_empty() {
            return Err(DomainError::FailedPrecondition(
                "a restore needs an empty data directory".into(),
            )
            .into());
        }
        let mut network = Vec::new();
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut reservations = Vec::new();
        let mut keys = Vec::new();
        let mut records = Vec::new();
        for item in items {
            match item {
                SnapshotItem::Network(record) => network.push(record),
                SnapshotItem::Entry(entry) => entries.push(entry),
                SnapshotItem::Reservation(r) => reservations.push(r),
                SnapshotItem::Idempotency(k) => keys.push(k),
                SnapshotItem::Record {
                    collection,
                    key,
                    value,
                } => records.push((collection, key, value)),
            }
        }
        check_entries(&entries)?;
        for chunk in network.chunks(RESTORE_BATCH) {
            self.save_network_records(chunk)?;
        }
        self.write_ledger(&entries, &reservations, &keys)?;
        for (collection, key, value) in records {
            let tree = self
                .db
                .open_tree(format!("records/{collection}"))
                .map_err(storage)?;
            tree.insert(key.as_bytes(), value).map_err(storage)?;
        }
        self.flush()?;
        self.reload()
    }

    fn write_ledger(
        &self,
        entries: &[LedgerEntry],
        reservations: &[Reservation],
        keys: &[IdempotencyRecord],
    ) -> Result<(), StoreError> {
        let mut ledger = LedgerState::default();
        for chunk in entries.chunks(RESTORE_BATCH) {
            for entry in chunk {
                ledger.apply(entry);
            }
            if let Some(first) = chunk.first() {
                self.log
                    .insert(first.sequence.to_be_bytes(), codec::encode_log_batch(chunk))
                    .map_err(storage)?;
            }
        }
        // Balances are written whole, so their watermark is the last entry
        // (see `deferred`).
        let watermark = entries.last().map_or(0, |e| e.sequence).to_be_bytes();
        let mut batch = sled::Batch::default();
        for (account, balance) in ledger.accounts() {
            batch.insert(codec::account_key(account), &balance.to_be_bytes()[..]);
        }
        batch.insert(super::BALANCES_WATERMARK, &watermark[..]);
        self.balances.apply_batch(batch).map_err(storage)?;
        let mut batch = sled::Batch::default();
        for reservation in reservations {
            batch.insert(reservation.reservation_id.as_bytes(), to_json(reservation)?);
        }
        self.reservations.apply_batch(batch).map_err(storage)?;
        if keys.iter().any(|key| key.principal.is_none()) {
            // Before the keys are written, so no lookup can miss one.
            self.legacy_keys
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let mut batch = sled::Batch::default();
        for key in keys {
            let outcome = StoredOutcome::from(&key.outcome);
            batch.insert(
                match &key.principal {
                    Some(principal) => Scope::from(key.scope).key(principal, &key.key),
                    None => Scope::from(key.scope).legacy_key(&key.key),
                },
                codec::encode_idempotency(&key.payload, &outcome),
            );
        }
        self.idempotency.apply_batch(batch).map_err(storage)
    }

    /// Replays what was written and takes it as the in-memory state, as
    /// `open` does; problems are corruption.
    fn reload(&self) -> Result<(), StoreError> {
        let checked = self.check(None)?;
        if !checked.report.problems.is_empty() {
            return Err(corrupt(format!(
                "the restored ledger does not audit: {}",
                checked
                    .report
                    .problems
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        self.take_checked(checked)
    }
}

/// The entries of a snapshot must be in strictly increasing sequence order
/// and replay without a problem (balanced, never below zero, no overflow).
pub(in crate::store) fn check_entries(entries: &[LedgerEntry]) -> Result<(), StoreError> {
    let mut ledger = LedgerState::default();
    let mut last = 0;
    for entry in entries {
        if entry.sequence <= last {
            return Err(corrupt(format!(
                "entry {} comes after entry {last}",
                entry.sequence
            )));
        }
        last = entry.sequence;
        if let Some(problem) = ledger.apply(entry).into_iter().next() {
            return Err(corrupt(problem));
        }
    }
    let problems = ledger.conservation_problems();
    match problems.first() {
        Some(problem) => Err(corrupt(problem)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{
        MovementCommand, MovementKind, PostCommand, Priority, ReserveCommand,
    };
    use std::sync::atomic::Ordering;

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn reserve(key: &str) -> ReserveCommand {
        ReserveCommand {
            idempotency_key: key.into(),
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 2,
            ttl_seconds: 600,
            priority: Priority::Critical,
            protected_quantity: 0,
            order_reference: String::new(),
            for_location_id: None,
        }
    }

    /// Writes that land between the cut and the end of the reads are trimmed:
    /// a reservation posted after the cut is pending in the copy (without its
    /// post key), one made after the cut is absent, and the copy audits clean.
    #[test]
    fn writes_after_the_cut_are_trimmed_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let receipt = MovementCommand {
            idempotency_key: "m1".into(),
            kind: MovementKind::Receipt,
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 10,
            to_location_id: None,
            shipment_id: None,
            expected_arrival: None,
            note: String::new(),
        };
        store
            .record_movements(
                &crate::domain::ledger::Actor::local("test"),
                &[receipt],
                at(0),
            )
            .unwrap();
        let first = store
            .reserve(
                &crate::domain::ledger::Actor::local("test"),
                &[reserve("r1")],
                at(1),
            )
            .unwrap()
            .remove(0);
        let cut = store.last_sequence().unwrap();
        let post = PostCommand {
            reservation_id: first.reservation_id.clone(),
            idempotency_key: "p1".into(),
            ship_to_location_id: None,
            expected_arrival: None,
        };
        store
            .post_reservation(&crate::domain::ledger::Actor::local("test"), &post, at(2))
            .unwrap();
        let second = store
            .reserve(
                &crate::domain::ledger::Actor::local("test"),
                &[reserve("r2")],
                at(3),
            )
            .unwrap()
            .remove(0);
        let reservations = store.read_reservations().unwrap();
        let keys = store.read_keys().unwrap();
        let end = store.last_sequence().unwrap();
        let mut items = Vec::new();
        store
            .send_snapshot(cut, end, reservations, keys, &mut |item| {
                items.push(item);
                Ok(())
            })
            .unwrap();
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = SledStore::open(copy_dir.path()).unwrap();
        copy.restore(items).unwrap();
        let restored = copy.reservation(&first.reservation_id).unwrap().unwrap();
        assert_eq!(restored.state, ReservationState::Pending);
        assert_eq!(restored.settled_at, None);
        assert!(copy.reservation(&second.reservation_id).unwrap().is_none());
        assert_eq!(copy.balance("P", "L").unwrap().reserved, 2);
        assert!(copy.audit().unwrap().problems.is_empty());
        // The post key did not travel: posting again in the copy is a fresh post.
        let again = copy
            .post_reservation(&crate::domain::ledger::Actor::local("test"), &post, at(4))
            .unwrap();
        assert_eq!(again.state, ReservationState::Posted);
        drop(copy);
        let reopened = SledStore::open(copy_dir.path()).unwrap();
        assert!(reopened.audit().unwrap().problems.is_empty());
    }

    /// A key written before layout 4 (no principal recorded) dedupes a
    /// replay from any principal, whether the store learns of it by a
    /// restore into an open store or by opening the directory; a store
    /// without such keys does not look for them.
    #[test]
    fn keys_from_before_layout_4_dedupe_after_a_restore_and_a_reopen() {
        let receipt = MovementCommand {
            idempotency_key: "old".into(),
            kind: MovementKind::Receipt,
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 3,
            to_location_id: None,
            shipment_id: None,
            expected_arrival: None,
            note: String::new(),
        };
        let source_dir = tempfile::tempdir().unwrap();
        let source = SledStore::open(source_dir.path()).unwrap();
        let writer = crate::domain::ledger::Actor::local("before");
        source
            .record_movements(&writer, std::slice::from_ref(&receipt), at(0))
            .unwrap();
        assert!(!source.legacy_keys.load(Ordering::Acquire));
        let mut items = Vec::new();
        source
            .snapshot(&mut |item| {
                items.push(item);
                Ok(())
            })
            .unwrap();
        // As a backup of layout 3 would carry it: nobody recorded.
        for item in &mut items {
            if let SnapshotItem::Idempotency(key) = item {
                key.principal = None;
            }
        }
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = SledStore::open(copy_dir.path()).unwrap();
        copy.restore(items).unwrap();
        let someone = crate::domain::ledger::Actor::principal("key-2", "admin");
        let replay = copy
            .record_movements(&someone, std::slice::from_ref(&receipt), at(5))
            .unwrap();
        assert_eq!((replay[0].replayed, replay[0].sequence), (true, 1));
        drop(copy);
        let reopened = SledStore::open(copy_dir.path()).unwrap();
        let replay = reopened
            .record_movements(&someone, std::slice::from_ref(&receipt), at(6))
            .unwrap();
        assert_eq!((replay[0].replayed, replay[0].sequence), (true, 1));
        assert_eq!(reopened.balance("P", "L").unwrap().available, 3);
    }
}
