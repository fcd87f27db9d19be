//! Layout 5: the log is the only write of a movement call. Its record
//! carries the call's entries and idempotency records (log format 3); the
//! balances it changed wait in [`Deferred`] and reach the balances' tree at
//! checkpoints; its keys never go to the keys' tree at all.
//!
//! # Keys
//!
//! Inserting 1,000 keys at random places in a large sled tree was most of
//! what a batch cost (`benches/sled_shapes.rs`: 58.5k movements/s on a
//! fresh store, 13.2k/s on one of the demo's size), and reading a fresh key
//! there cost about as much. So a movement's key stays in its log record,
//! and [`LoggedKeys`] maps a 64-bit fingerprint of every such key to the
//! record holding it (20-40 bytes of memory per key in its hash table, rebuilt from the log at
//! open, which replays the log anyway). A replay check reads that record's
//! key section; a fresh key (no fingerprint) costs no read at all. Keys in
//! the keys' tree (reservation calls, restores, earlier layouts) have their
//! fingerprints in [`KeyFilter`], so a fresh key costs no tree read either.
//!
//! # Balances
//!
//! Every [`CHECKPOINT_BALANCES`] changed balances a checkpoint writes them
//! on a background thread (the writer lock is not held meanwhile; a second
//! checkpoint waits for the first), and when the store is dropped, before an
//! audit and at open, in the caller's thread. Each is one atomic
//! `apply_batch`, which also writes the watermark: the last sequence the
//! tree reflects, under a key no account can have. A balance changed by many
//! calls is written once. A crash loses only the deferred copy: `open`
//! replays the whole log anyway (the audit), compares the persisted balances
//! with the replay *at their watermark*, and writes what the tree lacks.

use crate::domain::ledger::Account;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The key of the balances' watermark in `ledger/balances`: no account key
/// starts with `0xFF` (their first byte is the account tag, 0 or 1).
pub(super) const BALANCES_WATERMARK: &[u8] = &[0xFF];
/// Deferred balances that trigger a checkpoint.
pub(super) const CHECKPOINT_BALANCES: usize = 50_000;

/// Balances in the log and not yet in the balances' tree.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// The latest balance of every account changed since the checkpoint (0:
    /// remove the persisted balance).
    pub(super) balances: HashMap<Account, i64>,
    /// The last sequence written to the log: the watermark the next
    /// checkpoint writes.
    pub(super) through: u64,
    /// The watermark of the last checkpoint.
    pub(super) checkpointed: u64,
    /// Tests lower the checkpoint's trigger with this.
    #[cfg(test)]
    pub(super) limit: Option<usize>,
}

impl Deferred {
    /// Whether a checkpoint has anything to write.
    pub(super) fn is_empty(&self) -> bool {
        self.balances.is_empty() && self.through == self.checkpointed
    }

    /// Takes back the balances of a checkpoint that failed; a balance
    /// changed since keeps its newer value.
    pub(super) fn restore(&mut self, balances: HashMap<Account, i64>) {
        for (account, balance) in balances {
            self.balances.entry(account).or_insert(balance);
        }
    }

    /// Whether enough is deferred to write a checkpoint now.
    pub(super) fn is_due(&self) -> bool {
        #[cfg(test)]
        if let Some(limit) = self.limit {
            return self.balances.len() >= limit;
        }
        self.balances.len() >= CHECKPOINT_BALANCES
    }
}

/// The 64-bit fingerprint of a stored key: SipHash with fixed keys, the same
/// for the same key for as long as the process runs (never stored).
fn fingerprint(key: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Fingerprints of every key in the keys' tree: a key whose fingerprint is
/// absent is not there. A collision only costs a tree read that finds nothing.
#[derive(Debug, Default)]
pub(super) struct KeyFilter {
    fingerprints: HashSet<u64>,
}

impl KeyFilter {
    /// Records that `key` is in the tree.
    pub(super) fn insert(&mut self, key: &[u8]) {
        self.fingerprints.insert(fingerprint(key));
    }

    /// `false` only if `key` is not in the tree.
    pub(super) fn may_contain(&self, key: &[u8]) -> bool {
        self.fingerprints.contains(&fingerprint(key))
    }

    /// Fingerprints held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.fingerprints.len()
    }
}

/// Where each key carried by a log record is: fingerprint -> the record's
/// key (its first sequence). Two keys of different records with one
/// fingerprint (about one in 10^8 pairs at a billion keys) both stay
/// findable: the later record goes to `shared`.
#[derive(Debug, Default)]
pub(super) struct LoggedKeys {
    records: HashMap<u64, u64>,
    shared: HashMap<u64, Vec<u64>>,
}

impl LoggedKeys {
    /// Records that the log record `record` carries `key`.
    pub(super) fn insert(&mut self, key: &[u8], record: u64) {
        let print = fingerprint(key);
        match self.records.get(&print) {
            None => {
                self.records.insert(print, record);
            }
            Some(&first) if first == record => {}
            Some(_) => {
                let shared = self.shared.entry(print).or_default();
                if !shared.contains(&record) {
                    shared.push(record);
                }
            }
        }
    }

    /// The log records that may carry `key`, earliest first (none if it was
    /// never logged).
    pub(super) fn records(&self, key: &[u8]) -> impl Iterator<Item = u64> + '_ {
        let print = fingerprint(key);
        self.records
            .get(&print)
            .into_iter()
            .chain(self.shared.get(&print).into_iter().flatten())
            .copied()
    }

    /// Keys held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.records.len() + self.shared.values().map(Vec::len).sum::<usize>()
    }
}

/// Decodes a watermark value (big-endian `u64`).
pub(super) fn decode_watermark(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_never_forgets_a_key_and_rejects_most_others() {
        let mut filter = KeyFilter::default();
        for i in 0..10_000 {
            filter.insert(format!("M/key-{i}").as_bytes());
        }
        assert_eq!(filter.len(), 10_000);
        for i in 0..10_000 {
            assert!(filter.may_contain(format!("M/key-{i}").as_bytes()));
        }
        let false_positives = (0..10_000)
            .filter(|i| filter.may_contain(format!("M/other-{i}").as_bytes()))
            .count();
        assert!(false_positives < 5, "{false_positives}");
    }

    #[test]
    fn logged_keys_find_every_record_that_may_hold_a_key() {
        let mut logged = LoggedKeys::default();
        logged.insert(b"M/a", 1);
        logged.insert(b"M/b", 1);
        logged.insert(b"M/a", 1);
        assert_eq!(logged.records(b"M/a").collect::<Vec<_>>(), vec![1]);
        assert_eq!(logged.records(b"M/c").count(), 0);
        // A fingerprint shared by keys of two records keeps both records.
        let print = fingerprint(b"M/a");
        logged.shared.entry(print).or_default().push(7);
        assert_eq!(logged.records(b"M/a").collect::<Vec<_>>(), vec![1, 7]);
        logged.insert(b"M/a", 9);
        assert_eq!(logged.records(b"M/a").collect::<Vec<_>>(), vec![1, 7, 9]);
    }

    #[test]
    fn the_watermark_key_cannot_be_an_account_key() {
        use crate::domain::ledger::ExternalParty;
        for account in [
            Account::available("P", "L"),
            Account::in_transit("P", "L", "S"),
            Account::external("P", ExternalParty::Supplier),
        ] {
            let key = crate::store::codec::account_key(&account);
            assert_ne!(key.first(), BALANCES_WATERMARK.first());
        }
        assert_eq!(decode_watermark(&7u64.to_be_bytes()), Some(7));
        assert_eq!(decode_watermark(&[1, 2]), None);
    }

    mod store {
        use super::super::super::{SledStore, Store};
        use super::*;
        use crate::domain::ledger::{Actor, MovementCommand, MovementKind};

        fn at(seconds: i64) -> jiff::Timestamp {
            jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
        }

        fn receipts(batch: usize, len: usize) -> Vec<MovementCommand> {
            (0..len)
                .map(|i| MovementCommand {
                    idempotency_key: format!("b{batch}-{i}"),
                    kind: MovementKind::Receipt,
                    part_id: format!("P{}", (batch * len + i) % 7),
                    location_id: format!("L{}", i % 3),
                    quantity: 1 + i as i64,
                    to_location_id: None,
                    shipment_id: None,
                    expected_arrival: None,
                    note: String::new(),
                })
                .collect()
        }

        fn watermark(store: &SledStore) -> u64 {
            store
                .balances
                .get(BALANCES_WATERMARK)
                .unwrap()
                .map_or(0, |v| decode_watermark(&v).unwrap())
        }

        fn persisted_equal_the_ledger(store: &SledStore) -> bool {
            let (persisted, _) = store.persisted_balances().unwrap();
            &persisted == store.cache.read().unwrap().ledger.accounts()
        }

        /// Opens `dir`, lets `write` use the store, then drops it the way a
        /// crash after the last acknowledgement leaves it: everything
        /// acknowledged is flushed, nothing deferred reached its tree.
        fn crash_after(
            dir: &std::path::Path,
            limit: Option<usize>,
            write: impl FnOnce(&SledStore),
        ) {
            let store = SledStore::open(dir).unwrap();
            store.writer.lock().unwrap().deferred.limit = limit;
            write(&store);
            store
                .crash_on_drop
                .store(true, std::sync::atomic::Ordering::Release);
        }

        #[test]
        fn deferred_balances_and_logged_keys_come_back_from_the_log_after_a_crash() {
            let dir = tempfile::tempdir().unwrap();
            let actor = Actor::local("test");
            let mut first = Vec::new();
            crash_after(dir.path(), None, |store| {
                for batch in 0..3 {
                    first.push(
                        store
                            .record_movements(&actor, &receipts(batch, 10), at(0))
                            .unwrap(),
                    );
                }
                // Nothing was checkpointed, and keys never go to their tree.
                assert_eq!(watermark(store), 0);
                assert_eq!(store.balances.len(), 0);
                assert_eq!(store.idempotency.len(), 0);
                assert_eq!(store.writer.lock().unwrap().logged.len(), 30);
            });
            let store = SledStore::open(dir.path()).unwrap();
            assert!(store.audit().unwrap().problems.is_empty());
            // Open wrote the balances the crash left deferred, with the watermark.
            assert_eq!(watermark(&store), 30);
            assert!(persisted_equal_the_ledger(&store));
            assert!(store.writer.lock().unwrap().deferred.is_empty());
            assert_eq!(store.writer.lock().unwrap().logged.len(), 30);
            // Every acknowledged key replays with its first outcome.
            for (batch, outcomes) in first.iter().enumerate() {
                let replayed = store
                    .record_movements(&actor, &receipts(batch, 10), at(5))
                    .unwrap();
                for (again, before) in replayed.iter().zip(outcomes) {
                    assert!(again.replayed);
                    assert_eq!(
                        (again.sequence, again.recorded_at),
                        (before.sequence, before.recorded_at)
                    );
                }
            }
            assert_eq!(
                store.audit().unwrap().movements,
                30,
                "replays wrote nothing"
            );
            // A different payload under a stored key is still a conflict.
            let mut changed = receipts(2, 1);
            changed[0].quantity = 99;
            assert!(store.record_movements(&actor, &changed, at(5)).is_err());
        }

        #[test]
        fn a_due_checkpoint_writes_the_balances_mid_run_and_a_crash_after_it_loses_nothing() {
            let dir = tempfile::tempdir().unwrap();
            let actor = Actor::local("test");
            crash_after(dir.path(), Some(18), |store| {
                store
                    .record_movements(&actor, &receipts(0, 10), at(0))
                    .unwrap();
                // 17 accounts changed (10 positions, 7 parts' suppliers).
                assert_eq!(watermark(store), 0, "17 balances are not yet due");
                store
                    .record_movements(&actor, &receipts(1, 10), at(0))
                    .unwrap();
                // 3 more positions: 20 balances, due, written in the background.
                store
                    .finish_checkpoint(&mut store.writer.lock().unwrap())
                    .unwrap();
                assert_eq!(watermark(store), 20);
                assert!(store.writer.lock().unwrap().deferred.is_empty());
                assert!(persisted_equal_the_ledger(store));
                store
                    .record_movements(&actor, &receipts(2, 10), at(0))
                    .unwrap();
                assert_eq!(watermark(store), 20);
            });
            let store = SledStore::open(dir.path()).unwrap();
            assert!(store.audit().unwrap().problems.is_empty());
            assert_eq!(watermark(&store), 30);
            assert!(persisted_equal_the_ledger(&store));
            for batch in [0, 2] {
                let again = store
                    .record_movements(&actor, &receipts(batch, 10), at(5))
                    .unwrap();
                assert!(again.iter().all(|o| o.replayed), "batch {batch}");
            }
        }

        #[test]
        fn a_balance_damaged_at_the_watermark_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            let actor = Actor::local("test");
            crash_after(dir.path(), Some(1), |store| {
                store
                    .record_movements(&actor, &receipts(0, 10), at(0))
                    .unwrap();
                store
                    .record_movements(&actor, &receipts(1, 10), at(0))
                    .unwrap();
                store
                    .finish_checkpoint(&mut store.writer.lock().unwrap())
                    .unwrap();
                assert_eq!(watermark(store), 20);
            });
            {
                // sled releases the file lock a little after the drop.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let db = sled::open(dir.path()).unwrap();
                let balances = db.open_tree("ledger/balances").unwrap();
                let (key, _) = balances.iter().next().unwrap().unwrap();
                balances.insert(key, &1_000i64.to_be_bytes()[..]).unwrap();
                db.flush().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            let Err(error) = SledStore::open(dir.path()) else {
                panic!("opened a ledger whose persisted balance disagrees at its watermark")
            };
            assert!(error.to_string().contains("persisted balance"), "{error}");
        }

        #[test]
        fn reopening_finds_keys_in_the_log_and_the_tree_alike() {
            let dir = tempfile::tempdir().unwrap();
            let actor = Actor::local("test");
            {
                let store = SledStore::open(dir.path()).unwrap();
                store
                    .record_movements(&actor, &receipts(0, 10), at(0))
                    .unwrap();
                let reserve = crate::domain::ledger::ReserveCommand {
                    idempotency_key: "r1".into(),
                    part_id: "P0".into(),
                    location_id: "L0".into(),
                    quantity: 1,
                    ttl_seconds: 600,
                    priority: crate::domain::ledger::Priority::Critical,
                    protected_quantity: 0,
                    order_reference: String::new(),
                    for_location_id: None,
                };
                store.reserve(&actor, &[reserve], at(1)).unwrap();
            }
            let store = SledStore::open(dir.path()).unwrap();
            let writer = store.writer.lock().unwrap();
            assert_eq!(writer.logged.len(), 10);
            // The reservation's key went to the tree, and only it.
            assert_eq!(writer.filter.len(), 1);
            for key in store.idempotency.iter().keys() {
                assert!(writer.filter.may_contain(&key.unwrap()));
            }
        }
    }
}
