//! The sled implementation of [`Store`]: the movement log, persisted balances,
//! idempotency records and reservations in one sled database.
//!
//! # Layout
//!
//! | tree | key | value |
//! |---|---|---|
//! | `ledger/log` | first sequence of the batch (big-endian `u64`) | every [`LedgerEntry`] one call wrote, and from layout 5 a movement call's idempotency records (binary, see `codec`) |
//! | `ledger/balances` | [`Account`] (binary) | balance (big-endian `i64`) as of the watermark; zero balances are absent. Key `0xFF`: the watermark (big-endian `u64`) |
//! | `ledger/idempotency` | scope byte (upper case), `/`, principal length (`u32`), principal, client key; before layout 4: scope byte (lower case), `/`, client key | canonical payload and outcome (binary); from layout 5 a movement's keys are in its log record instead |
//! | `ledger/reservations` | reservation id | [`Reservation`] (JSON) |
//! | `ledger/meta` | `format` | layout version of the whole directory (one byte; see `layout`) |
//! | `network/<collection>` | record key | record (JSON) |
//! | `records/<collection>` | caller's key | caller's bytes |
//! | `records/plan_history` | plan id (`plan-000001`) | [`PlanHeader`](crate::domain::plans::PlanHeader) (JSON) |
//! | `records/audit_events` | event id (20 digits, increasing) | [`AuditEvent`](crate::domain::audit::AuditEvent) (JSON) |
//! | `records/plan_changes` | plan id, `/`, index (9 digits) | [`PolicyChange`](crate::domain::plans::PolicyChange) (JSON) |
//!
//! # Writes
//!
//! One mutex serialises ledger writers. Under it a write is checked against the
//! in-memory balances (the truth: the log replayed), staged, and committed.
//! A movement call writes ONE log record, which carries its entries and its
//! idempotency records, with a single atomic insert; reservation calls write
//! the log record, their keys and the reservations in one sled transaction,
//! which re-reads a settled reservation and requires it to be pending. The
//! non-negativity guard and the quantity bound are checked again on every
//! changed balance before anything is written. A movement's keys stay in its
//! log record, found through an in-memory index; changed balances wait in
//! memory and reach their tree at checkpoints, in one atomic batch with its
//! watermark (`deferred`). The in-memory
//! state is then updated and the mutex released *before* `Db::flush`, so
//! concurrent callers share flushes (group commit): sled's log is sequential
//! and a flush returns only once everything written before it is durable, so
//! each call is acknowledged only after its own writes, and every write it
//! read, are on disk. Readers may see a committed write a few hundred
//! microseconds before it is durable; no reply depends on that.
//!
//! If the flush fails the call returns [`StoreError::Storage`] although the
//! write is committed in memory and may reach disk later: the outcome is
//! unknown to the client, which retries with the same idempotency key and gets
//! either the stored result or a fresh one.
//!
//! # Opening
//!
//! `open` replays the whole log into fresh balances and checks conservation,
//! non-negativity, and equality with the persisted balances at their
//! watermark (the sequence of the last checkpoint): the checkpoint wrote
//! exactly the replay's balances at that sequence, so any difference means the
//! files are damaged, and `open` refuses with [`StoreError::Corruption`]
//! rather than guess which side is right. What the tree lacks past its
//! watermark (after a crash) is taken from the log and written at once.

pub(super) mod backup;
mod close;
mod deferred;
mod plans;
mod trail;

pub use trail::AUDIT_COLLECTION;

use super::codec::{self, KeyRecord, StoredOutcome};
use super::{NetworkRecord, SnapshotItem, Store, StoreError, layout};
use crate::domain::DomainError;
use crate::domain::ledger::{
    Account, Actor, AuditReport, Balance, Bucket, LedgerEntry, LedgerState, MAX_QUANTITY,
    MovementCommand, MovementOutcome, PostCommand, Reservation, ReservationFilter,
    ReservationState, ReserveCommand, Settlement, Staged, VoidCommand, check_movement_shape,
    movement_entry, reserve_entry, settle_entry,
};
use crate::domain::network::Network;
use crate::domain::plans::{PlanHeader, PlanRecord};
use deferred::{BALANCES_WATERMARK, Deferred, KeyFilter, LoggedKeys, decode_watermark};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// Most commands in one `record_movements` or `reserve` call: one call is one
/// sled transaction held in memory until commit. The same number as the API's
/// batch limit ([`crate::config::MAX_BATCH_ITEMS`]), so every batch the API
/// accepts fits one call.
pub const MAX_BATCH_COMMANDS: usize = crate::config::MAX_BATCH_ITEMS;

/// Problems listed in a refusal to open (the audit report has all of them).
const MAX_PROBLEMS_IN_ERROR: usize = 10;

const LOG: &str = "ledger/log";
const BALANCES: &str = "ledger/balances";
const IDEMPOTENCY: &str = "ledger/idempotency";
const RESERVATIONS: &str = "ledger/reservations";

/// The master-data collections, in the order of `SledStore::network`.
pub(super) const NETWORK_COLLECTIONS: [&str; 11] = [
    "locations",
    "lanes",
    "parts",
    "machine_models",
    "fleets",
    "demand",
    "policies",
    "supplier_lead_times",
    "criticality_costs",
    "demand_rates",
    "retired",
];

/// Idempotency keys are scoped per operation (a movement and a reservation may
/// use the same client key without conflict) and, from layout 4, per
/// principal: a key another principal used is simply a different key, so
/// reusing it neither conflicts nor tells the caller that it exists.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Movement,
    Reserve,
    Post,
    Void,
}

impl Scope {
    /// The tag of an unscoped key (layouts before 4); the scoped key's tag
    /// is its upper case.
    fn tag(self) -> u8 {
        match self {
            Self::Movement => b'm',
            Self::Reserve => b'r',
            Self::Post => b'p',
            Self::Void => b'v',
        }
    }

    /// The stored key of `client_key` used by `principal`: the upper-case
    /// tag, `/`, the principal's length (big-endian `u32`), the principal
    /// and the client key. The length keeps (`a/b`, `c`) and (`a`, `b/c`)
    /// apart.
    fn key(self, principal: &str, client_key: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(principal.len() + client_key.len() + 6);
        key.push(self.tag().to_ascii_uppercase());
        key.push(b'/');
        key.extend_from_slice(
            &u32::try_from(principal.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        key.extend_from_slice(principal.as_bytes());
        key.extend_from_slice(client_key.as_bytes());
        key
    }

    /// The stored key of `client_key` written before layout 4, by a
    /// principal nobody recorded: the tag, `/` and the client key.
    fn legacy_key(self, client_key: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(client_key.len() + 2);
        key.push(self.tag());
        key.push(b'/');
        key.extend_from_slice(client_key.as_bytes());
        key
    }
}

/// Why a ledger transaction was aborted.
#[derive(Debug)]
enum Abort {
    Rejected(DomainError),
    Corrupt(String),
}

/// The in-memory, derived state readers use.
#[derive(Debug, Default)]
struct Cache {
    ledger: LedgerState,
    /// Pending reservations by (expires_at, id), for the expiry sweep.
    pending: BTreeSet<(Timestamp, String)>,
    /// The sequence of the last entry applied to `ledger` (0 for none): the
    /// cut a reader of `ledger` sees.
    last_sequence: u64,
}

/// Serialised writer state.
#[derive(Debug, Default)]
struct Writer {
    next_sequence: u64,
    /// Balances the log holds and the balances' tree does not yet.
    deferred: Deferred,
    /// Fingerprints of every key in the keys' tree.
    filter: KeyFilter,
    /// Where each key carried by a log record is.
    logged: LoggedKeys,
    /// The checkpoint being written in the background: the watermark it
    /// writes, or why it failed and what it held.
    checkpointing: Option<CheckpointThread>,
}

/// A background checkpoint's thread.
type CheckpointThread = std::thread::JoinHandle<Result<u64, (StoreError, Checkpoint)>>;

/// Balances to write to their tree, as of `through`.
#[derive(Debug)]
struct Checkpoint {
    balances: std::collections::HashMap<Account, i64>,
    through: u64,
}

/// Writes a checkpoint: the balances and the watermark in one atomic batch.
fn write_checkpoint(tree: &sled::Tree, checkpoint: &Checkpoint) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut batch = sled::Batch::default();
    for (account, balance) in &checkpoint.balances {
        let key = codec::account_key(account);
        if *balance == 0 {
            batch.remove(key);
        } else {
            batch.insert(key, &balance.to_be_bytes()[..]);
        }
    }
    batch.insert(BALANCES_WATERMARK, &checkpoint.through.to_be_bytes()[..]);
    tree.apply_batch(batch).map_err(storage)?;
    tracing::debug!(
        balances = checkpoint.balances.len(),
        through = checkpoint.through,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "ledger checkpoint"
    );
    Ok(())
}

/// Everything one ledger write puts on disk besides the staged entries.
#[derive(Debug, Default)]
struct WriteSet {
    /// Keys written to their tree in the same transaction.
    idempotency: Vec<KeyRecord>,
    /// Keys carried in the call's log record, their only durable copy
    /// (movement calls; see `deferred`).
    logged_keys: Vec<KeyRecord>,
    reservations: Vec<Reservation>,
    /// Reservations that must still be pending inside the transaction.
    must_be_pending: Vec<String>,
}

/// The sled-backed store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    balances: sled::Tree,
    idempotency: sled::Tree,
    reservations: sled::Tree,
    network: Vec<sled::Tree>,
    cache: RwLock<Cache>,
    writer: Mutex<Writer>,
    /// Serialises audit-trail appends (ids follow the last stored one).
    audit_appender: Mutex<()>,
    /// Whether the idempotency tree may hold keys written before layout 4
    /// (unscoped by principal). Only then does a key not found among the
    /// caller's own keys cost a second lookup: a directory created at
    /// layout 4 or later never has any, which halves the lookups of a fresh
    /// movement. Set at open and by a restore that brings such keys; never
    /// cleared while the store is open.
    legacy_keys: AtomicBool,
    /// Tests drop a store as a crash would leave it: no checkpoint at close.
    #[cfg(test)]
    crash_on_drop: AtomicBool,
}

pub(super) fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(error.to_string())
}

pub(super) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corruption(error.to_string())
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Storage("a writer panicked while holding the ledger lock".into())
}

pub(super) fn to_json(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Storage(format!("encoding: {e}")))
}

pub(super) fn from_json<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("undecodable {what}: {e}")))
}

fn decode_i64(bytes: &[u8]) -> Result<i64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt("a balance is not 8 bytes"))?;
    Ok(i64::from_be_bytes(array))
}

pub(super) fn conflict(field: String, key: &str) -> StoreError {
    StoreError::Rejected(DomainError::IdempotencyConflict {
        field,
        key: key.to_string(),
    })
}

/// Writes the field prefix of movement `index` of a batch, `movements[3]`,
/// into `prefix` (reused, so a batch allocates it once).
fn movement_prefix(prefix: &mut String, index: usize) {
    use std::fmt::Write as _;
    prefix.clear();
    // Writing to a String cannot fail.
    let _ = write!(prefix, "movements[{index}]");
}

pub(super) fn check_batch_size(field: &str, len: usize) -> Result<(), StoreError> {
    if len > MAX_BATCH_COMMANDS {
        return Err(StoreError::Rejected(DomainError::OutOfRange {
            field: field.into(),
            reason: format!("{len} commands; at most {MAX_BATCH_COMMANDS} per call"),
        }));
    }
    Ok(())
}

impl SledStore {
    /// Opens (or creates) the store at `path`, replays the movement log and checks
    /// it. Errors: [`StoreError::Storage`] if sled cannot open the files;
    /// [`StoreError::Corruption`] if the log does not decode, does not conserve
    /// stock, takes an internal account below zero, or disagrees with the
    /// persisted balances (the store then refuses to open; see the module docs).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = open_at_current_layout(path.as_ref())?;
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        let network = NETWORK_COLLECTIONS
            .iter()
            .map(|c| tree(&format!("network/{c}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = Self {
            log: tree(LOG)?,
            balances: tree(BALANCES)?,
            idempotency: tree(IDEMPOTENCY)?,
            reservations: tree(RESERVATIONS)?,
            network,
            db,
            cache: RwLock::new(Cache::default()),
            writer: Mutex::new(Writer::default()),
            audit_appender: Mutex::new(()),
            legacy_keys: AtomicBool::new(true),
            #[cfg(test)]
            crash_on_drop: AtomicBool::new(false),
        };
        store.legacy_keys = AtomicBool::new(store.holds_legacy_keys()?);
        let checked = store.check(None)?;
        if !checked.report.problems.is_empty() {
            let shown: Vec<&str> = checked
                .report
                .problems
                .iter()
                .take(MAX_PROBLEMS_IN_ERROR)
                .map(String::as_str)
                .collect();
            return Err(StoreError::Corruption(format!(
                "{} problem(s) in the ledger: {}",
                checked.report.problems.len(),
                shown.join("; ")
            )));
        }
        store.take_checked(checked)?;
        Ok(store)
    }

    /// Takes a clean replay as the store's state: the in-memory ledger, the
    /// writer's next sequence, and what the trees lack (written at once by a
    /// checkpoint, so a crash's deferred changes reach their trees here).
    fn take_checked(&self, checked: Checked) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().map_err(poisoned)?;
        self.finish_checkpoint(&mut writer)?;
        writer.next_sequence = checked.last_sequence + 1;
        writer.deferred = Deferred::default();
        writer.deferred.balances = checked.unpersisted.into_iter().collect();
        writer.deferred.through = checked.last_sequence;
        writer.deferred.checkpointed = checked.watermark;
        writer.logged = checked.logged;
        self.checkpoint(&mut writer)?;
        self.flush()?;
        let mut filter = KeyFilter::default();
        for key in self.idempotency.iter().keys() {
            filter.insert(&key.map_err(storage)?);
        }
        writer.filter = filter;
        let mut cache = self.cache.write().map_err(poisoned)?;
        cache.ledger = checked.ledger;
        cache.pending = checked.pending;
        cache.last_sequence = checked.last_sequence;
        Ok(())
    }

    /// Writes every deferred balance to its tree now (after any checkpoint
    /// running in the background), in one atomic batch with the watermark
    /// (see `deferred`). The caller holds the writer lock; the next flush
    /// makes the batch durable, and until then the log holds everything it
    /// does.
    fn checkpoint(&self, writer: &mut Writer) -> Result<(), StoreError> {
        self.finish_checkpoint(writer)?;
        if writer.deferred.is_empty() {
            return Ok(());
        }
        let checkpoint = Checkpoint {
            balances: std::mem::take(&mut writer.deferred.balances),
            through: writer.deferred.through,
        };
        match write_checkpoint(&self.balances, &checkpoint) {
            Ok(()) => {
                writer.deferred.checkpointed = checkpoint.through;
                Ok(())
            }
            Err(e) => {
                writer.deferred.restore(checkpoint.balances);
                Err(e)
            }
        }
    }

    /// Hands the deferred balances to a background thread that writes them
    /// (the write path's checkpoint: the writer lock is released while sled
    /// inserts them). One runs at a time: a second waits for the first.
    fn checkpoint_in_background(&self, writer: &mut Writer) -> Result<(), StoreError> {
        self.finish_checkpoint(writer)?;
        let checkpoint = Checkpoint {
            balances: std::mem::take(&mut writer.deferred.balances),
            through: writer.deferred.through,
        };
        let tree = self.balances.clone();
        let spawned = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || match write_checkpoint(&tree, &checkpoint) {
                Ok(()) => Ok(checkpoint.through),
                Err(e) => Err((e, checkpoint)),
            });
        match spawned {
            Ok(handle) => {
                writer.checkpointing = Some(handle);
                Ok(())
            }
            Err(e) => Err(storage(format!("starting the checkpoint thread: {e}"))),
        }
    }

    /// Waits for the background checkpoint, if one runs. If it failed, its
    /// balances go back to the deferred set (newer values kept), so the
    /// next checkpoint writes them.
    fn finish_checkpoint(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let Some(handle) = writer.checkpointing.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(Ok(through)) => {
                writer.deferred.checkpointed = through;
                Ok(())
            }
            Ok(Err((e, checkpoint))) => {
                writer.deferred.restore(checkpoint.balances);
                Err(e)
            }
            Err(_) => Err(storage("the checkpoint thread panicked")),
        }
    }

    /// Whether the idempotency tree holds a key written before layout 4:
    /// those start with a lower-case scope tag, every later key with an
    /// upper-case one, so the first key at or after `a` tells.
    fn holds_legacy_keys(&self) -> Result<bool, StoreError> {
        Ok(self
            .idempotency
            .range(&b"a"[..]..)
            .next()
            .transpose()
            .map_err(storage)?
            .is_some())
    }

    /// Flushes sled's log to disk; a write is acknowledged only after this.
    fn flush(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let flushed = self.db.flush().map(|_| ()).map_err(storage);
        crate::metrics::metrics()
            .store_flush
            .observe(started.elapsed().as_secs_f64());
        flushed
    }

    /// The stored idempotency record of `client_key` used by `principal`,
    /// if any: (payload, outcome). A key stored before layout 4 (by an
    /// unrecorded principal) answers for every principal, so replays of
    /// requests made before the upgrade still dedupe.
    ///
    /// Keys carried by log records are read from the record the index names;
    /// the tree only for a key whose fingerprint is in the filter: a fresh
    /// key costs no read at all.
    fn idempotency_record(
        &self,
        writer: &Writer,
        scope: Scope,
        principal: &str,
        client_key: &str,
    ) -> Result<Option<(Vec<u8>, StoredOutcome)>, StoreError> {
        let scoped = scope.key(principal, client_key);
        for record_key in writer.logged.records(&scoped) {
            let record = self
                .log
                .get(record_key.to_be_bytes())
                .map_err(storage)?
                .ok_or_else(|| {
                    corrupt(format!(
                        "the key index names log record {record_key}, which is absent"
                    ))
                })?;
            let keys = codec::log_record_keys(&record)
                .map_err(|e| corrupt(format!("undecodable log record {record_key}: {e}")))?;
            if let Some((_, stored)) = keys.iter().find(|(key, _)| *key == scoped.as_slice()) {
                let (payload, outcome) = codec::decode_idempotency(stored)
                    .map_err(|e| corrupt(format!("undecodable idempotency record: {e}")))?;
                return Ok(Some((payload.to_vec(), outcome)));
            }
        }
        let read = |key: Vec<u8>| -> Result<Option<sled::IVec>, StoreError> {
            if writer.filter.may_contain(&key) {
                self.idempotency.get(key).map_err(storage)
            } else {
                Ok(None)
            }
        };
        let stored = match read(scoped)? {
            Some(bytes) => Some(bytes),
            None if self.legacy_keys.load(Ordering::Acquire) => read(scope.legacy_key(client_key))?,
            None => None,
        };
        match stored {
            Some(bytes) => {
                let (payload, outcome) = codec::decode_idempotency(&bytes)
                    .map_err(|e| corrupt(format!("undecodable idempotency record: {e}")))?;
                Ok(Some((payload.to_vec(), outcome)))
            }
            None => Ok(None),
        }
    }

    fn stored_reservation(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError> {
        match self.reservations.get(reservation_id).map_err(storage)? {
            Some(bytes) => Ok(Some(from_json(&bytes, "reservation")?)),
            None => Ok(None),
        }
    }

    /// Stages entries on the in-memory ledger with `stage` (under the read lock)
    /// and returns what `stage` produced, the staged entries and the final
    /// balances of the accounts they touch. The caller holds the writer lock, so
    /// nothing changes between this and the commit.
    #[allow(clippy::type_complexity)]
    fn prepare<T>(
        &self,
        stage: impl FnOnce(&mut Staged<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, Vec<LedgerEntry>, Vec<(Account, i64)>), StoreError> {
        let cache = self.cache.read().map_err(poisoned)?;
        let mut staged = Staged::new(&cache.ledger);
        let value = stage(&mut staged)?;
        let (entries, changed) = staged.finish();
        Ok((value, entries, changed))
    }

    /// Commits prepared entries and their write set, then updates the
    /// in-memory state. The caller holds the writer lock and flushes after
    /// releasing it.
    ///
    /// The log record is the only write of a movement call (its keys ride in
    /// it, format 3); a call that also writes keys or reservations directly
    /// commits them with the log record in one transaction. Balances and
    /// logged keys are deferred to the next checkpoint (`deferred`).
    fn commit(
        &self,
        writer: &mut Writer,
        entries: Vec<LedgerEntry>,
        changed: Vec<(Account, i64)>,
        mut writes: WriteSet,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            // No log record to carry the keys (every command replayed, or a
            // count equal to on hand): they go to their tree directly.
            writes.idempotency.append(&mut writes.logged_keys);
        }
        if entries.is_empty() && writes.idempotency.is_empty() && writes.reservations.is_empty() {
            return Ok(());
        }
        for (account, balance) in &changed {
            // The non-negativity guard and the quantity bound, checked again
            // on every balance the call changes, before anything is written.
            if account.is_internal() && *balance < 0 {
                return Err(DomainError::FailedPrecondition(format!(
                    "an internal account would go to {balance}"
                ))
                .into());
            }
            if balance.unsigned_abs() > MAX_QUANTITY {
                return Err(DomainError::OutOfRange {
                    field: "quantity".into(),
                    reason: format!(
                        "a balance would reach {balance}, past the limit of {MAX_QUANTITY} units"
                    ),
                }
                .into());
            }
        }
        // One log record per call, keyed by its first sequence: a batch costs
        // one log insert instead of one per entry.
        let log_write = entries.first().map(|first| {
            let record = if writes.logged_keys.is_empty() {
                codec::encode_log_batch(&entries)
            } else {
                codec::encode_log_record(&entries, &writes.logged_keys)
            };
            (first.sequence.to_be_bytes(), record)
        });
        let mut reservation_writes = Vec::with_capacity(writes.reservations.len());
        for reservation in &writes.reservations {
            reservation_writes.push((reservation.reservation_id.as_bytes(), to_json(reservation)?));
        }
        let direct = !writes.idempotency.is_empty()
            || !reservation_writes.is_empty()
            || !writes.must_be_pending.is_empty();
        if direct {
            let trees = [
                self.log.clone(),
                self.idempotency.clone(),
                self.reservations.clone(),
            ];
            let result = trees[..].transaction(|t: &Vec<TransactionalTree>| {
                let [log, idempotency, reservations] = t.as_slice() else {
                    return Err(ConflictableTransactionError::Abort(Abort::Corrupt(
                        "transaction over the wrong trees".into(),
                    )));
                };
                for id in &writes.must_be_pending {
                    ensure_pending(reservations, id)?;
                }
                if let Some((key, value)) = &log_write {
                    log.insert(&key[..], value.as_slice())?;
                }
                for (key, value) in &writes.idempotency {
                    idempotency.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &reservation_writes {
                    reservations.insert(*key, value.as_slice())?;
                }
                Ok(())
            });
            match result {
                Ok(()) => {}
                Err(TransactionError::Abort(Abort::Rejected(e))) => return Err(e.into()),
                Err(TransactionError::Abort(Abort::Corrupt(e))) => return Err(corrupt(e)),
                Err(TransactionError::Storage(e)) => return Err(storage(e)),
            }
        } else if let Some((key, value)) = &log_write {
            // A single insert is atomic: no transaction needed.
            self.log
                .insert(&key[..], value.as_slice())
                .map_err(storage)?;
        }
        let metrics = crate::metrics::metrics();
        metrics.ledger_writes.inc();
        metrics.ledger_entries.inc_by(entries.len() as u64);
        for (key, _) in &writes.idempotency {
            writer.filter.insert(key);
        }
        if let Some(first) = entries.first() {
            for (key, _) in &writes.logged_keys {
                writer.logged.insert(key, first.sequence);
            }
        }
        writer.deferred.balances.extend(changed);
        let mut cache = self.cache.write().map_err(poisoned)?;
        for entry in &entries {
            // The entries were checked when staged; `apply` cannot find new problems.
            cache.ledger.apply(entry);
            cache.last_sequence = entry.sequence;
            writer.next_sequence = entry.sequence + 1;
            writer.deferred.through = entry.sequence;
        }
        for reservation in writes.reservations {
            metrics
                .reservations
                .with_label_values(&[crate::metrics::reservation_state(reservation.state)])
                .inc();
            let key = (reservation.expires_at, reservation.reservation_id);
            if reservation.state == ReservationState::Pending {
                cache.pending.insert(key);
            } else {
                cache.pending.remove(&key);
            }
        }
        metrics
            .reservations_pending
            .set(i64::try_from(cache.pending.len()).unwrap_or(i64::MAX));
        drop(cache);
        if writer.deferred.is_due() {
            // The call is committed whatever happens here: a failed
            // checkpoint leaves its changes deferred (and in the log) for
            // the next one.
            if let Err(e) = self.checkpoint_in_background(writer) {
                tracing::warn!(error = %e, "ledger checkpoint failed; retried on the next write");
            }
        }
        Ok(())
    }

    /// Replays the log and checks it; `cache` (when given) must equal the
    /// replay. The persisted balances are compared with the replay at their
    /// watermark (layout 5 writes them at checkpoints, `deferred`); what
    /// the trees lack after it is returned for the next checkpoint.
    fn check(&self, cache: Option<&LedgerState>) -> Result<Checked, StoreError> {
        let mut ledger = LedgerState::default();
        let mut problems = Vec::new();
        let mut movements = 0u64;
        let mut last_sequence = 0u64;
        let (persisted, balances_at) = self.persisted_balances()?;
        let mut logged = LoggedKeys::default();
        let mut compared = false;
        let compare_persisted = |ledger: &LedgerState, problems: &mut Vec<String>| {
            compare_balances("persisted", &persisted, ledger.accounts(), problems);
        };
        if balances_at == 0 {
            compare_persisted(&ledger, &mut problems);
            compared = true;
        }
        for item in self.log.iter() {
            let (key, value) = item.map_err(storage)?;
            let key_sequence = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("a log key is not 8 bytes"))?,
            );
            let undecodable = |e| corrupt(format!("undecodable log record {key_sequence}: {e}"));
            let (entries, keys) = codec::decode_log_record(&value).map_err(undecodable)?;
            for (key, _) in keys {
                logged.insert(key, key_sequence);
            }
            if entries.first().is_none_or(|e| e.sequence != key_sequence) {
                problems.push(format!(
                    "log key {key_sequence} does not hold its first entry"
                ));
            }
            for entry in &entries {
                if entry.sequence <= last_sequence {
                    problems.push(format!(
                        "log record {key_sequence} holds entry {} after {last_sequence}",
                        entry.sequence
                    ));
                }
                last_sequence = last_sequence.max(entry.sequence);
                problems.extend(ledger.apply(entry));
                movements += 1;
            }
            if !compared && last_sequence == balances_at {
                compare_persisted(&ledger, &mut problems);
                compared = true;
            }
        }
        if !compared {
            problems.push(format!(
                "the persisted balances are at sequence {balances_at}, \
                 which ends no log record (the log ends at {last_sequence})"
            ));
        }
        problems.extend(ledger.conservation_problems());
        if let Some(cache) = cache {
            compare_balances(
                "in-memory",
                cache.accounts(),
                ledger.accounts(),
                &mut problems,
            );
        }
        let mut unpersisted: Vec<(Account, i64)> = ledger
            .accounts()
            .iter()
            .filter(|(account, balance)| persisted.get(*account) != Some(*balance))
            .map(|(account, balance)| (account.clone(), *balance))
            .collect();
        unpersisted.extend(
            persisted
                .keys()
                .filter(|account| !ledger.accounts().contains_key(*account))
                .map(|account| (account.clone(), 0)),
        );
        let pending = self.check_reservations(&ledger, &mut problems)?;
        Ok(Checked {
            report: AuditReport {
                movements,
                parts: ledger.part_count(),
                problems,
            },
            ledger,
            pending,
            last_sequence,
            unpersisted,
            logged,
            watermark: balances_at,
        })
    }

    /// The persisted balances and their watermark (0 if none was written).
    fn persisted_balances(&self) -> Result<(BTreeMap<Account, i64>, u64), StoreError> {
        let mut persisted = BTreeMap::new();
        let mut watermark = 0;
        for item in self.balances.iter() {
            let (key, value) = item.map_err(storage)?;
            if key.as_ref() == BALANCES_WATERMARK {
                watermark = decode_watermark(&value)
                    .ok_or_else(|| corrupt("the balances' watermark is not 8 bytes"))?;
                continue;
            }
            let account = codec::decode_account_key(&key)
                .map_err(|e| corrupt(format!("undecodable balance key: {e}")))?;
            persisted.insert(account, decode_i64(&value)?);
        }
        Ok((persisted, watermark))
    }

    /// Checks each location's reserved bucket equals its pending reservations and
    /// returns the pending index.
    fn check_reservations(
        &self,
        ledger: &LedgerState,
        problems: &mut Vec<String>,
    ) -> Result<BTreeSet<(Timestamp, String)>, StoreError> {
        let mut pending = BTreeSet::new();
        let mut held: BTreeMap<Account, i64> = BTreeMap::new();
        for item in self.reservations.iter() {
            let (_, value) = item.map_err(storage)?;
            let reservation: Reservation = from_json(&value, "reservation")?;
            if reservation.state == ReservationState::Pending {
                let account = Account::reserved(&reservation.part_id, &reservation.location_id);
                *held.entry(account).or_default() +=
                    i64::try_from(reservation.quantity).unwrap_or(i64::MAX);
                pending.insert((reservation.expires_at, reservation.reservation_id));
            }
        }
        let reserved: BTreeMap<Account, i64> = ledger
            .accounts()
            .iter()
            .filter(|(a, _)| {
                matches!(
                    a,
                    Account::Internal {
                        bucket: Bucket::Reserved,
                        ..
                    }
                )
            })
            .map(|(a, b)| (a.clone(), *b))
            .collect();
        compare_balances("pending reservations", &held, &reserved, problems);
        Ok(pending)
    }
}

impl Drop for SledStore {
    /// Writes the deferred balances and keys to their trees and flushes, so
    /// the next open has no log to re-index (a crash only makes it longer).
    /// The flush is waited for at most `close::CLOSE_FLUSH_WAIT` (see
    /// `close` for the sled hang that bound is for).
    fn drop(&mut self) {
        #[cfg(test)]
        if self.crash_on_drop.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut writer) = self.writer.lock() else {
            return;
        };
        if let Err(e) = self.checkpoint(&mut writer) {
            tracing::warn!(error = %e, "ledger checkpoint at close failed; the next open redoes it");
        }
        drop(writer);
        close::flush_at_close(&self.db);
    }
}

/// How long `open` waits for a previous handle's file lock: sled 0.34 releases
/// it a little after the last `Db` is dropped (sled issue #1234), and the
/// kernel releases a killed process's lock lazily.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, retrying while another handle's lock is still being released.
/// Opens the directory, marking a new one with the current layout and
/// upgrading an older one in place after backing it up (see `layout`).
fn open_at_current_layout(path: &Path) -> Result<sled::Db, StoreError> {
    let db = open_waiting_for_lock(path)?;
    match layout::read_version(&db)? {
        None => layout::mark_new(&db)?,
        Some(version) if version == layout::LAYOUT_VERSION => {}
        Some(version) => {
            layout::check_not_newer(version)?;
            db.flush().map_err(storage)?;
            drop(db);
            let backup = layout::back_up(path, version)?;
            tracing::warn!(
                from = version,
                to = layout::LAYOUT_VERSION,
                backup = %backup.display(),
                "upgrading the data directory in place; the backup holds it as it was"
            );
            let db = open_waiting_for_lock(path)?;
            layout::upgrade(&db, version)?;
            return Ok(db);
        }
    }
    Ok(db)
}

fn open_waiting_for_lock(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            // sled wraps the flock failure as `ErrorKind::Other` with this message.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(storage(e)),
        }
    }
}

/// The result of replaying the log.
struct Checked {
    report: AuditReport,
    ledger: LedgerState,
    pending: BTreeSet<(Timestamp, String)>,
    last_sequence: u64,
    /// Balances the balances' tree lacks (0: remove the persisted one).
    unpersisted: Vec<(Account, i64)>,
    /// Where each key carried by a log record is.
    logged: LoggedKeys,
    /// The balances' watermark.
    watermark: u64,
}

/// Reports every account where `found` differs from `replayed`.
pub(super) fn compare_balances(
    what: &str,
    found: &BTreeMap<Account, i64>,
    replayed: &BTreeMap<Account, i64>,
    problems: &mut Vec<String>,
) {
    for (account, balance) in replayed {
        let other = found.get(account).copied().unwrap_or(0);
        if other != *balance {
            problems.push(format!(
                "{what} balance of {account:?} is {other}, the log says {balance}"
            ));
        }
    }
    for (account, balance) in found {
        if !replayed.contains_key(account) {
            problems.push(format!(
                "{what} balance of {account:?} is {balance}, the log says 0"
            ));
        }
    }
}

fn ensure_pending(
    reservations: &TransactionalTree,
    reservation_id: &str,
) -> Result<(), ConflictableTransactionError<Abort>> {
    let Some(bytes) = reservations.get(reservation_id)? else {
        return Err(ConflictableTransactionError::Abort(Abort::Rejected(
            DomainError::not_found("reservation", reservation_id),
        )));
    };
    let reservation: Reservation = serde_json::from_slice(&bytes).map_err(|e| {
        ConflictableTransactionError::Abort(Abort::Corrupt(format!(
            "undecodable reservation {reservation_id}: {e}"
        )))
    })?;
    if reservation.state != ReservationState::Pending {
        return Err(ConflictableTransactionError::Abort(Abort::Rejected(
            DomainError::FailedPrecondition(format!(
                "reservation {reservation_id} is {:?}, not Pending",
                reservation.state
            )),
        )));
    }
    Ok(())
}

/// The key a master-data record is stored under, and its collection index.
pub(super) fn network_key(record: &NetworkRecord) -> Result<(usize, Vec<u8>), StoreError> {
    Ok(match record {
        NetworkRecord::Location(l) => (0, l.id.as_bytes().to_vec()),
        NetworkRecord::Lane(l) => (1, to_json(&l.key())?),
        NetworkRecord::Part(p) => (2, p.id.as_bytes().to_vec()),
        NetworkRecord::MachineModel(m) => (3, m.id.as_bytes().to_vec()),
        NetworkRecord::Fleet(f) => (4, to_json(&(&f.store_location_id, &f.machine_model_id))?),
        NetworkRecord::Demand(d) => (5, to_json(&(&d.part_id, &d.location_id))?),
        NetworkRecord::Policy(p) => (6, to_json(&(&p.part_id, &p.location_id))?),
        NetworkRecord::SupplierLeadTime(s) => (7, to_json(&s.key())?),
        NetworkRecord::CriticalityCost(c) => (8, to_json(&c.criticality)?),
        NetworkRecord::DemandRate(r) => (9, to_json(&r.key())?),
        NetworkRecord::Retire(r) | NetworkRecord::Revive(r) => (10, to_json(r)?),
    })
}

pub(super) fn network_value(record: &NetworkRecord) -> Result<Vec<u8>, StoreError> {
    match record {
        NetworkRecord::Location(x) => to_json(x),
        NetworkRecord::Lane(x) => to_json(x),
        NetworkRecord::Part(x) => to_json(x),
        NetworkRecord::MachineModel(x) => to_json(x),
        NetworkRecord::Fleet(x) => to_json(x),
        NetworkRecord::Demand(x) => to_json(x),
        NetworkRecord::Policy(x) => to_json(x),
        NetworkRecord::SupplierLeadTime(x) => to_json(x),
        NetworkRecord::CriticalityCost(x) => to_json(x),
        NetworkRecord::DemandRate(x) => to_json(x),
        NetworkRecord::Retire(x) | NetworkRecord::Revive(x) => to_json(x),
    }
}

/// Builds a network from its stored collections: `values(i)` is every record
/// (JSON) of `NETWORK_COLLECTIONS[i]`. Retirements come last, after the
/// records they mark.
pub(super) fn build_network(
    mut values: impl FnMut(usize) -> Result<Vec<Vec<u8>>, StoreError>,
) -> Result<Network, StoreError> {
    fn decoded<T: for<'de> Deserialize<'de>>(
        values: &mut impl FnMut(usize) -> Result<Vec<Vec<u8>>, StoreError>,
        index: usize,
    ) -> Result<Vec<T>, StoreError> {
        values(index)?
            .iter()
            .map(|bytes| from_json(bytes, NETWORK_COLLECTIONS[index]))
            .collect()
    }
    use crate::domain::network as n;
    let mut network = Network::default();
    for l in decoded::<n::Location>(&mut values, 0)? {
        network.locations.insert(l.id.clone(), l);
    }
    for l in decoded::<n::Lane>(&mut values, 1)? {
        network.lanes.insert(l.key(), l);
    }
    for p in decoded::<n::Part>(&mut values, 2)? {
        network.parts.insert(p.id.clone(), p);
    }
    for m in decoded::<n::MachineModel>(&mut values, 3)? {
        network.machine_models.insert(m.id.clone(), m);
    }
    for f in decoded::<n::Fleet>(&mut values, 4)? {
        let key = (f.store_location_id.clone(), f.machine_model_id.clone());
        network.fleets.insert(key, f);
    }
    for d in decoded::<n::DemandSeries>(&mut values, 5)? {
        network
            .demand
            .insert((d.part_id.clone(), d.location_id.clone()), d);
    }
    for p in decoded::<n::Policy>(&mut values, 6)? {
        network
            .policies
            .insert((p.part_id.clone(), p.location_id.clone()), p);
    }
    for s in decoded::<n::SupplierLeadTime>(&mut values, 7)? {
        network.supplier_lead_times.insert(s.key(), s);
    }
    for c in decoded::<n::CriticalityCost>(&mut values, 8)? {
        network.criticality_costs.insert(c.criticality, c);
    }
    for r in decoded::<n::DemandRate>(&mut values, 9)? {
        network.demand_rates.insert(r.key(), r);
    }
    for r in decoded::<crate::domain::retire::Retirement>(&mut values, 10)? {
        network.retire(&r);
    }
    Ok(network)
}

impl SledStore {
    fn load_network_inner(&self) -> Result<Network, StoreError> {
        build_network(|index| {
            let tree = self
                .network
                .get(index)
                .ok_or_else(|| corrupt("unknown network collection"))?;
            let mut out = Vec::new();
            for item in tree.iter() {
                let (_, value) = item.map_err(storage)?;
                out.push(value.to_vec());
            }
            Ok(out)
        })
    }

    /// Checks the idempotency key of movement `index` of a batch against the
    /// earlier fresh movements of the batch (`in_batch`: key -> index) and the
    /// stored records: `Some(outcome)` for a replay.
    #[allow(clippy::too_many_arguments)]
    fn movement_replay(
        &self,
        writer: &Writer,
        actor: &Actor,
        index: usize,
        commands: &[MovementCommand],
        payloads: &[Vec<u8>],
        outcomes: &[MovementOutcome],
        in_batch: &HashMap<&str, usize>,
    ) -> Result<Option<MovementOutcome>, StoreError> {
        let key = commands[index].idempotency_key.as_str();
        let payload = payloads[index].as_slice();
        let conflicting = || conflict(format!("movements[{index}].idempotency_key"), key);
        if let Some(&earlier) = in_batch.get(key) {
            if payloads[earlier] != payload {
                return Err(conflicting());
            }
            let mut outcome = outcomes[earlier].clone();
            outcome.replayed = true;
            return Ok(Some(outcome));
        }
        match self.idempotency_record(writer, Scope::Movement, &actor.id, key)? {
            Some((stored, _)) if stored != payload => Err(conflicting()),
            Some((
                _,
                StoredOutcome::Movement {
                    sequence,
                    recorded_at,
                    shipment_id,
                },
            )) => Ok(Some(MovementOutcome {
                idempotency_key: key.to_string(),
                sequence,
                replayed: true,
                shipment_id,
                recorded_at,
            })),
            Some(_) => Err(corrupt("a movement key holds a reservation")),
            None => Ok(None),
        }
    }

    /// Checks a reservation-scoped key: `Some(reservation)` for a replay.
    fn reservation_replay(
        &self,
        writer: &Writer,
        actor: &Actor,
        scope: Scope,
        key: &str,
        payload: &[u8],
        field: String,
    ) -> Result<Option<Reservation>, StoreError> {
        match self.idempotency_record(writer, scope, &actor.id, key)? {
            Some((p, StoredOutcome::Reservation(id))) if p == payload => self
                .stored_reservation(&id)?
                .map(Some)
                .ok_or_else(|| corrupt(format!("idempotency record names missing {id}"))),
            Some(_) => Err(conflict(field, key)),
            None => Ok(None),
        }
    }

    /// Posts or voids under the writer lock.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        actor: &Actor,
        scope: Scope,
        reservation_id: &str,
        idempotency_key: &str,
        payload: &[u8],
        settlement: Settlement<'_>,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        if idempotency_key.is_empty() {
            return Err(DomainError::invalid("idempotency_key", "must not be empty").into());
        }
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let field = "idempotency_key".to_string();
        if let Some(replayed) =
            self.reservation_replay(&writer, actor, scope, idempotency_key, payload, field)?
        {
            return Ok(replayed);
        }
        let reservation = self
            .stored_reservation(reservation_id)?
            .ok_or_else(|| DomainError::not_found("reservation", reservation_id))?;
        let sequence = writer.next_sequence;
        let (settled, entries, changed) = self.prepare(|staged| {
            let (entry, settled) = settle_entry(&reservation, settlement, sequence, now, actor)?;
            staged.push(entry)?;
            Ok(settled)
        })?;
        let record = codec::encode_idempotency(
            payload,
            &StoredOutcome::Reservation(reservation_id.to_string()),
        );
        let writes = WriteSet {
            idempotency: vec![(scope.key(&actor.id, idempotency_key), record)],
            reservations: vec![settled.clone()],
            must_be_pending: vec![reservation_id.to_string()],
            ..WriteSet::default()
        };
        self.commit(&mut writer, entries, changed, writes)?;
        drop(writer);
        self.flush()?;
        Ok(settled)
    }
}

/// The field path of command `i` of a reservation batch: plain for a single
/// command (`quantity`), `lines[i].quantity` for several (the order request).
pub(super) fn reserve_prefix(len: usize, i: usize) -> String {
    if len == 1 {
        String::new()
    } else {
        format!("lines[{i}]")
    }
}

impl Store for SledStore {
    fn load_network(&self) -> Result<Network, StoreError> {
        self.load_network_inner()
    }

    fn save_network_records(&self, records: &[NetworkRecord]) -> Result<(), StoreError> {
        let mut writes = Vec::with_capacity(records.len());
        for record in records {
            let (index, key) = network_key(record)?;
            // A revival removes the retirement mark; everything else is written.
            let value = match record {
                NetworkRecord::Revive(_) => None,
                _ => Some(network_value(record)?),
            };
            writes.push((index, key, value));
        }
        self.network[..]
            .transaction(|trees: &Vec<TransactionalTree>| {
                for (index, key, value) in &writes {
                    let Some(tree) = trees.get(*index) else {
                        continue;
                    };
                    match value {
                        Some(value) => tree.insert(key.as_slice(), value.as_slice())?,
                        None => tree.remove(key.as_slice())?,
                    };
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| storage(format!("{e:?}")))?;
        self.flush()
    }

    fn record_movements(
        &self,
        actor: &Actor,
        commands: &[MovementCommand],
        now: Timestamp,
    ) -> Result<Vec<MovementOutcome>, StoreError> {
        check_batch_size("movements", commands.len())?;
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut payloads = Vec::with_capacity(commands.len());
        // One buffer for every command's field prefix (`movements[i]`).
        let mut prefix = String::new();
        for (i, command) in commands.iter().enumerate() {
            movement_prefix(&mut prefix, i);
            check_movement_shape(command, &prefix)?;
            payloads.push(codec::movement_payload(command));
        }
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let first_sequence = writer.next_sequence;
        let ((outcomes, idempotency), entries, changed) = self.prepare(|staged| {
            let mut sequence = first_sequence;
            let mut outcomes: Vec<MovementOutcome> = Vec::with_capacity(commands.len());
            let mut idempotency = Vec::with_capacity(commands.len());
            let mut in_batch: HashMap<&str, usize> = HashMap::with_capacity(commands.len());
            let mut prefix = String::new();
            for (i, (command, payload)) in commands.iter().zip(&payloads).enumerate() {
                let replay = self.movement_replay(
                    &writer, actor, i, commands, &payloads, &outcomes, &in_batch,
                )?;
                if let Some(outcome) = replay {
                    outcomes.push(outcome);
                    continue;
                }
                movement_prefix(&mut prefix, i);
                let entry = movement_entry(command, &prefix, &*staged, sequence, now, actor)?;
                // A count equal to on hand writes no entry and takes no sequence
                // (reported as 0); its key is still stored, so a retry replays.
                let outcome = MovementOutcome {
                    idempotency_key: command.idempotency_key.clone(),
                    sequence: if entry.is_some() { sequence } else { 0 },
                    replayed: false,
                    shipment_id: entry
                        .as_ref()
                        .and_then(|e| e.shipment.as_ref())
                        .map(|s| s.shipment_id.clone()),
                    recorded_at: now,
                };
                if let Some(entry) = entry {
                    staged.push(entry).map_err(|e| e.within(&prefix))?;
                    sequence += 1;
                }
                let record = codec::encode_idempotency(payload, &StoredOutcome::movement(&outcome));
                idempotency.push((
                    Scope::Movement.key(&actor.id, &command.idempotency_key),
                    record,
                ));
                in_batch.insert(&command.idempotency_key, i);
                outcomes.push(outcome);
            }
            Ok((outcomes, idempotency))
        })?;
        let writes = WriteSet {
            logged_keys: idempotency,
            ..WriteSet::default()
        };
        self.commit(&mut writer, entries, changed, writes)?;
        drop(writer);
        self.flush()?;
        Ok(outcomes)
    }

    fn reserve(
        &self,
        actor: &Actor,
        commands: &[ReserveCommand],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        check_batch_size("lines", commands.len())?;
        let mut payloads = Vec::with_capacity(commands.len());
        for command in commands {
            payloads.push(to_json(command)?);
        }
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let first_sequence = writer.next_sequence;
        let ((results, idempotency, fresh), entries, changed) = self.prepare(|staged| {
            let mut sequence = first_sequence;
            let mut results = Vec::with_capacity(commands.len());
            let mut idempotency = Vec::new();
            let mut fresh = Vec::new();
            let mut in_batch: HashMap<&str, (&[u8], usize)> = HashMap::new();
            for (i, (command, payload)) in commands.iter().zip(&payloads).enumerate() {
                let prefix = reserve_prefix(commands.len(), i);
                let field = crate::domain::ledger::field_of(&prefix, "idempotency_key");
                let key = command.idempotency_key.as_str();
                if let Some((earlier_payload, index)) = in_batch.get(key) {
                    if earlier_payload != payload {
                        return Err(conflict(field, key));
                    }
                    let earlier: &Reservation = &results[*index];
                    results.push(earlier.clone());
                    continue;
                }
                if let Some(replayed) =
                    self.reservation_replay(&writer, actor, Scope::Reserve, key, payload, field)?
                {
                    results.push(replayed);
                    continue;
                }
                let (entry, reservation) =
                    reserve_entry(command, &prefix, &*staged, sequence, now, actor)?;
                staged.push(entry).map_err(|e| e.within(&prefix))?;
                let record = codec::encode_idempotency(
                    payload,
                    &StoredOutcome::Reservation(reservation.reservation_id.clone()),
                );
                idempotency.push((Scope::Reserve.key(&actor.id, key), record));
                in_batch.insert(key, (payload.as_slice(), results.len()));
                fresh.push(reservation.clone());
                results.push(reservation);
                sequence += 1;
            }
            Ok((results, idempotency, fresh))
        })?;
        let writes = WriteSet {
            idempotency,
            reservations: fresh,
            ..WriteSet::default()
        };
        self.commit(&mut writer, entries, changed, writes)?;
        drop(writer);
        self.flush()?;
        Ok(results)
    }

    fn post_reservation(
        &self,
        actor: &Actor,
        command: &PostCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let payload = to_json(command)?;
        self.settle(
            actor,
            Scope::Post,
            &command.reservation_id,
            &command.idempotency_key,
            &payload,
            Settlement::Post(command),
            now,
        )
    }

    fn void_reservation(
        &self,
        actor: &Actor,
        command: &VoidCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let payload = to_json(command)?;
        self.settle(
            actor,
            Scope::Void,
            &command.reservation_id,
            &command.idempotency_key,
            &payload,
            Settlement::Void,
            now,
        )
    }

    fn expire_reservations(&self, now: Timestamp) -> Result<Vec<Reservation>, StoreError> {
        let expiry = Actor::system("reservation-expiry");
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let due: Vec<String> = {
            let cache = self.cache.read().map_err(poisoned)?;
            cache
                .pending
                .iter()
                .take_while(|(expires_at, _)| *expires_at <= now)
                .take(MAX_BATCH_COMMANDS)
                .map(|(_, id)| id.clone())
                .collect()
        };
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut reservations = Vec::with_capacity(due.len());
        for id in &due {
            let reservation = self
                .stored_reservation(id)?
                .ok_or_else(|| corrupt(format!("pending index names missing {id}")))?;
            reservations.push(reservation);
        }
        let first_sequence = writer.next_sequence;
        let (expired, entries, changed) = self.prepare(|staged| {
            let mut expired = Vec::with_capacity(reservations.len());
            for (offset, reservation) in (0u64..).zip(&reservations) {
                let sequence = first_sequence + offset;
                let (entry, settled) =
                    settle_entry(reservation, Settlement::Expire, sequence, now, &expiry)?;
                staged.push(entry)?;
                expired.push(settled);
            }
            Ok(expired)
        })?;
        let writes = WriteSet {
            reservations: expired.clone(),
            must_be_pending: due,
            ..WriteSet::default()
        };
        self.commit(&mut writer, entries, changed, writes)?;
        drop(writer);
        self.flush()?;
        Ok(expired)
    }

    fn reservation(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError> {
        self.stored_reservation(reservation_id)
    }

    fn reservations(&self, filter: &ReservationFilter) -> Result<Vec<Reservation>, StoreError> {
        let start = filter.after_id.as_deref().unwrap_or("").as_bytes().to_vec();
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let mut out = Vec::new();
        for item in self.reservations.range(start..) {
            let (key, value) = item.map_err(storage)?;
            if filter
                .after_id
                .as_deref()
                .is_some_and(|after| after.as_bytes() == &key[..])
            {
                continue;
            }
            let reservation: Reservation = from_json(&value, "reservation")?;
            let wanted = filter
                .part_id
                .as_ref()
                .is_none_or(|p| *p == reservation.part_id)
                && filter
                    .location_id
                    .as_ref()
                    .is_none_or(|l| *l == reservation.location_id)
                && filter.state.is_none_or(|s| s == reservation.state)
                && filter
                    .held_for
                    .as_ref()
                    .is_none_or(|stores| stores.iter().any(|l| l == reservation.held_for()));
            if wanted {
                out.push(reservation);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn balance(&self, part_id: &str, location_id: &str) -> Result<Balance, StoreError> {
        let cache = self.cache.read().map_err(poisoned)?;
        Ok(cache.ledger.balance(part_id, location_id))
    }

    fn balances(
        &self,
        part_id: Option<&str>,
        location_id: Option<&str>,
    ) -> Result<Vec<Balance>, StoreError> {
        let cache = self.cache.read().map_err(poisoned)?;
        Ok(cache.ledger.balances(part_id, location_id))
    }

    fn balances_at_location(
        &self,
        location_id: &str,
        after_part_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Balance>, StoreError> {
        let cache = self.cache.read().map_err(poisoned)?;
        Ok(cache
            .ledger
            .balances_at_location(location_id, after_part_id, limit))
    }

    fn read_ledger(
        &self,
        read: &mut dyn FnMut(&crate::domain::ledger::LedgerState),
    ) -> Result<u64, StoreError> {
        // A commit applies its entries and moves `last_sequence` under the
        // write lock, so this read sees either all of a write or none of it.
        let cache = self.cache.read().map_err(poisoned)?;
        read(&cache.ledger);
        Ok(cache.last_sequence)
    }

    fn audit(&self) -> Result<AuditReport, StoreError> {
        // Holding the writer lock keeps the log, the persisted balances and the
        // in-memory balances still while they are compared (after the
        // background checkpoint, if one runs, has finished).
        let mut writer = self.writer.lock().map_err(poisoned)?;
        self.finish_checkpoint(&mut writer)?;
        let cache = self.cache.read().map_err(poisoned)?;
        Ok(self.check(Some(&cache.ledger))?.report)
    }

    fn movements(
        &self,
        filter: &crate::domain::audit::MovementFilter,
    ) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError> {
        self.read_movements(filter)
    }

    fn append_audit_event(
        &self,
        event: crate::domain::audit::AuditEvent,
    ) -> Result<crate::domain::audit::AuditEvent, StoreError> {
        self.append_audit(event)
    }

    fn audit_events(
        &self,
        filter: &crate::domain::audit::AuditFilter,
    ) -> Result<(Vec<crate::domain::audit::AuditEvent>, Option<u64>), StoreError> {
        self.read_audit(filter)
    }

    fn put_record(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tree = self
            .db
            .open_tree(format!("records/{collection}"))
            .map_err(storage)?;
        tree.insert(key, value).map_err(storage)?;
        self.flush()
    }

    fn records(&self, collection: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tree = self
            .db
            .open_tree(format!("records/{collection}"))
            .map_err(storage)?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (key, value) = item.map_err(storage)?;
            let key = String::from_utf8(key.to_vec()).map_err(corrupt)?;
            out.push((key, value.to_vec()));
        }
        Ok(out)
    }

    fn snapshot(
        &self,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        self.snapshot_items(sink)
    }

    fn restore(&self, items: Vec<SnapshotItem>) -> Result<(), StoreError> {
        self.restore_items(items)
    }

    fn apply_plan(&self, plan: &PlanRecord) -> Result<(), StoreError> {
        self.write_plan(plan)
    }

    fn plan_history(&self) -> Result<Vec<PlanHeader>, StoreError> {
        self.read_plan_history()
    }

    fn plan(&self, plan_id: &str) -> Result<Option<PlanRecord>, StoreError> {
        self.read_plan(plan_id)
    }
}
