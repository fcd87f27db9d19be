//! The PostgreSQL implementation of [`Store`]: the same ledger as the sled
//! store, in a database that several `spares serve` processes can share
//! (`spares serve --store postgres://...`).
//!
//! # Layout
//!
//! The schema is in `migrations/` (applied on open, see `schema`): the log
//! holds every entry of one call as one row in the sled store's binary log
//! format; balances, idempotency keys, reservations, master data and opaque
//! records (jobs, API keys, the audit trail, the policy history) are tables
//! of their own. Text keys sort in byte order (`COLLATE "C"`), as sled's do.
//!
//! # Writes
//!
//! Every ledger write is one transaction that first locks the single
//! `ledger_head` row (`SELECT ... FOR UPDATE`). Ledger writers from every
//! process sharing the database therefore run one at a time, and the
//! sequences they assign are dense and in commit order, as with sled's
//! writer mutex. Holding that lock, the writer reads the log entries other
//! processes appended since it last looked and applies them to its
//! in-memory balances, so they equal the persisted ones; it checks and
//! stages the request against them with the same pure rules as sled
//! (`domain::ledger`), then writes the log row, the balance changes (as
//! deltas, `RETURNING` the result, which must equal the staged balance),
//! idempotency keys and reservations. The table's `CHECK` constraints are
//! the non-negativity guard and the quantity bound inside the transaction;
//! settlements lock the reservation row and require it to be pending. The
//! call returns only after `COMMIT` has returned, so every acknowledged
//! write is durable (with `synchronous_commit` at its default, on).
//!
//! If the commit's outcome is unknown (the connection broke) the call returns
//! [`StoreError::Storage`]; the client retries with the same idempotency key
//! and gets either the stored result or a fresh one. Broken connections are
//! replaced, and with a multi-host URL and `target_session_attrs=read-write`
//! a new one goes to a promoted standby after a failover (see `pool`).
//!
//! # Reads
//!
//! Balance reads (the promise engine's) come from the in-memory ledger, as
//! with sled: they see every write of this process and of the others up to
//! the last time this process wrote, audited or caught up
//! ([`PgStore::catch_up`]). Reservations, keys, the log and records are read
//! from the database. The entries other processes wrote are handed, once
//! applied, to the observer the application registered
//! ([`Store::observe_other_writers`]) for its watch streams.

mod backup;
pub mod leases;
mod pool;
mod schema;
pub mod work;

pub use schema::{SCHEMA_VERSION, upgrade};

use super::codec::{self, StoredOutcome};
use super::sled_store::{
    NETWORK_COLLECTIONS, build_network, check_batch_size, compare_balances, conflict, corrupt,
    from_json, network_key, network_value, reserve_prefix, to_json,
};
use super::{
    KeyScope, MAX_MOVEMENTS_SCANNED, NetworkRecord, OtherWritersObserver, SnapshotItem, Store,
    StoreError,
};
use crate::domain::DomainError;
use crate::domain::audit::{AuditEvent, AuditFilter, MovementFilter};
use crate::domain::ledger::{
    Account, Actor, AuditReport, Balance, Bucket, LedgerEntry, LedgerState, MovementCommand,
    MovementOutcome, PostCommand, Reservation, ReservationFilter, ReservationState, ReserveCommand,
    Settlement, Staged, VoidCommand, check_movement_shape, movement_entry, reserve_entry,
    settle_entry,
};
use crate::domain::network::Network;
use crate::domain::plans::{PlanHeader, PlanRecord};
use jiff::Timestamp;
use pool::Pool;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, NoTls};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, RwLock};

/// Log rows read per query when the log is scanned (a row may hold a whole
/// batch of up to [`crate::config::MAX_BATCH_ITEMS`] entries).
const LOG_ROWS_PER_QUERY: i64 = 64;

/// The channel a commit notifies with its last sequence (`LISTEN` /
/// `NOTIFY`): a wake-up for followers, which then read the log by sequence.
pub const LEDGER_CHANNEL: &str = "spares_ledger";

/// Problems listed in a refusal to open (the audit report has all of them).
const MAX_PROBLEMS_IN_ERROR: usize = 10;

/// The in-memory, derived state readers use.
#[derive(Debug, Default)]
struct Cache {
    ledger: LedgerState,
    /// The sequence of the last entry applied to `ledger` (0 for none).
    last_sequence: u64,
    /// The first and last sequence of the write this process is
    /// committing: its follower may read them back from the log before the
    /// writer applies them, and they are not another process's.
    committing: Option<(u64, u64)>,
}

/// The PostgreSQL-backed store. Cheap to share behind an `Arc`.
pub struct PgStore {
    pool: Pool,
    cache: RwLock<Cache>,
    /// Serialises this process's ledger writers, so they queue here rather
    /// than each holding a connection while waiting for the head row.
    writer: Mutex<()>,
    /// Told of the entries other processes wrote (the application's watch
    /// streams), once they are applied.
    observer: OnceLock<OtherWritersObserver>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Runs a call that blocks on the database. The blocking client may not
/// run on an async worker thread (it starts a runtime of its own), and a
/// few handlers call the store directly: there the call is moved off the
/// worker with `block_in_place`; elsewhere (blocking threads, plain
/// threads) it just runs.
fn off_runtime<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Storage("a writer panicked while holding the ledger lock".into())
}

/// A database error as a storage failure, with the server's message.
fn database(error: postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => {
            StoreError::Storage(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        None => StoreError::Storage(format!("PostgreSQL: {error}")),
    }
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| corrupt(format!("{what} {value} is past i64")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{what} {value} is negative")))
}

/// The tag of a scope's keys (upper case; lower case for a key restored
/// from before layout 4, which has no principal).
fn scope_tag(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Movement => "M",
        KeyScope::Reserve => "R",
        KeyScope::Post => "P",
        KeyScope::Void => "V",
    }
}

/// The stored name of a reservation state.
fn state_name(state: ReservationState) -> &'static str {
    match state {
        ReservationState::Pending => "pending",
        ReservationState::Posted => "posted",
        ReservationState::Voided => "voided",
        ReservationState::Expired => "expired",
    }
}

/// A timestamp as (seconds, nanoseconds) columns: exact, and ordered like
/// the timestamp.
fn time_columns(at: Timestamp) -> (i64, i32) {
    (at.as_second(), at.subsec_nanosecond())
}

/// One idempotency key to insert: (tag, principal, client key, record).
type KeyRow = (&'static str, String, String, Vec<u8>);

/// Everything one ledger write puts in the database besides its entries.
#[derive(Debug, Default)]
struct WriteSet {
    keys: Vec<KeyRow>,
    reservations: Vec<Reservation>,
    /// Reservations that must still be pending inside the transaction.
    must_be_pending: Vec<String>,
}

/// Staged entries with the balances they change: (account, before, after).
struct Prepared<T> {
    value: T,
    entries: Vec<LedgerEntry>,
    changed: Vec<(Account, i64, i64)>,
}

/// Stored idempotency keys of one principal in one scope, read at once for a
/// batch: client key -> (payload, outcome).
type KnownKeys = HashMap<String, (Vec<u8>, StoredOutcome)>;

impl PgStore {
    /// Connects to the database at `url` (a libpq-style URL or key=value
    /// string), applies any missing schema migrations in one transaction,
    /// replays the movement log and checks it as the sled store's `open`
    /// does. Errors: [`StoreError::Storage`] if the URL does not parse, the
    /// database cannot be reached or its schema is newer than this build;
    /// [`StoreError::Corruption`] if the ledger does not audit.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        off_runtime(|| Self::open_here(url))
    }

    fn open_here(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Storage(format!("database URL: {e}")))?;
        let store = Self {
            pool: Pool::new(config),
            cache: RwLock::new(Cache::default()),
            writer: Mutex::new(()),
            observer: OnceLock::new(),
        };
        {
            let mut conn = store.pool.get()?;
            schema::migrate(conn.client())?;
        }
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
        *store.cache.write().map_err(poisoned)? = Cache {
            ledger: checked.ledger,
            last_sequence: checked.last_sequence,
            committing: None,
        };
        Ok(store)
    }

    /// Reads the log entries other processes appended since this one last
    /// looked and applies them to the in-memory balances, so balance reads
    /// see them. Returns the sequence now applied.
    pub fn catch_up(&self) -> Result<u64, StoreError> {
        off_runtime(|| self.pool.run(|client| self.apply_log_after(client)))
    }

    /// Follows the writes of other processes sharing the database: a thread
    /// that listens on [`LEDGER_CHANNEL`] and calls [`PgStore::catch_up`] on
    /// every notification, after every (re)connection and at least every
    /// `poll`, so a notification lost while disconnected delays nothing
    /// past the next poll. The thread ends within `poll` of the store being
    /// dropped.
    pub fn follow(self: &std::sync::Arc<Self>, poll: std::time::Duration) -> std::io::Result<()> {
        let store = std::sync::Arc::downgrade(self);
        let config = self.pool.config.clone();
        std::thread::Builder::new()
            .name("spares-ledger-follower".into())
            .spawn(move || {
                let mut listener: Option<Client> = None;
                while let Some(store) = store.upgrade() {
                    if listener.as_ref().is_none_or(Client::is_closed) {
                        listener = listen(&config);
                    }
                    if let Err(error) = store.catch_up() {
                        tracing::warn!(%error, "cannot follow the ledger; retrying");
                    }
                    drop(store);
                    match listener.as_mut() {
                        Some(client) => {
                            let mut notifications = client.notifications();
                            let _ = notifications.timeout_iter(poll).next();
                            // Several commits, one catch-up.
                            while let Ok(Some(_)) = notifications.iter().next() {}
                        }
                        None => std::thread::sleep(poll),
                    }
                }
            })
            .map(drop)
    }

    /// Applies every log entry after the cache's last sequence, then tells
    /// the observer of those other processes wrote.
    fn apply_log_after(&self, client: &mut impl GenericClient) -> Result<u64, StoreError> {
        let from = self.cache.read().map_err(poisoned)?.last_sequence;
        let mut newer = Vec::new();
        read_log(client, from + 1, &mut |entry| {
            newer.push(entry);
            Ok(true)
        })?;
        let observer = self.observer.get();
        let mut others = Vec::new();
        let applied = {
            let mut cache = self.cache.write().map_err(poisoned)?;
            let mut applied = Ok(());
            for entry in newer {
                // Another thread may have applied some of them meanwhile.
                if entry.sequence == cache.last_sequence + 1 {
                    cache.ledger.apply(&entry);
                    cache.last_sequence = entry.sequence;
                    let own = cache
                        .committing
                        .is_some_and(|(first, last)| (first..=last).contains(&entry.sequence));
                    if observer.is_some() && !own {
                        others.push(entry);
                    }
                } else if entry.sequence > cache.last_sequence {
                    applied = Err(corrupt(format!(
                        "the log jumps from {} to {}",
                        cache.last_sequence, entry.sequence
                    )));
                    break;
                }
            }
            applied.map(|()| cache.last_sequence)
        };
        if let Some(observer) = observer
            && !others.is_empty()
        {
            observer(&others);
        }
        applied
    }

    /// Runs one ledger write: locks the head row, catches up, calls `write`
    /// with the next sequence and commits. `write` returns the result and
    /// what to write; nothing is written when it fails. Errors: `write`'s;
    /// `Storage` when the database cannot be reached, or when the
    /// connection broke during `COMMIT` (the outcome is unknown: the client
    /// retries with the same idempotency key).
    fn ledger_write<T>(
        &self,
        write: impl FnOnce(
            &mut postgres::Transaction<'_>,
            u64,
        ) -> Result<(T, Prepared<WriteSet>), StoreError>,
    ) -> Result<T, StoreError> {
        let _local = self.writer.lock().map_err(poisoned)?;
        let outcome = self.pool.begin(|mut tx| {
            let head: i64 = tx
                .query_one(
                    "SELECT next_sequence FROM ledger_head WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .map_err(database)?
                .get(0);
            let next_sequence = to_u64(head, "next sequence")?;
            let applied = self.apply_log_after(&mut tx)?;
            if applied + 1 != next_sequence {
                return Err(corrupt(format!(
                    "the log ends at {applied} but the head says {next_sequence}"
                )));
            }
            let (value, prepared) = write(&mut tx, next_sequence)?;
            let Prepared {
                value: writes,
                entries,
                changed,
            } = prepared;
            if entries.is_empty() && writes.keys.is_empty() && writes.reservations.is_empty() {
                // Rolled back: a replay writes nothing and waits for no
                // standby.
                return Ok((value, None));
            }
            write_ledger(&mut tx, &entries, &changed, &writes)?;
            if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
                // Delivered at commit, to every process following the ledger.
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&LEDGER_CHANNEL, &last.sequence.to_string()],
                )
                .map_err(database)?;
                self.cache.write().map_err(poisoned)?.committing =
                    Some((first.sequence, last.sequence));
            }
            pool::commit(tx)?;
            Ok((value, Some((entries, writes.reservations))))
        });
        // Clearing the mark and applying the entries under one lock: the
        // follower either applied them already (marked as this process's)
        // or finds them applied. After a failed call the follower reports
        // what it reads as another process's, as it should if the commit
        // happened after all (this process published nothing for it).
        let mut cache = self.cache.write().map_err(poisoned)?;
        cache.committing = None;
        let (value, written) = outcome?;
        let Some((entries, reservations)) = written else {
            return Ok(value);
        };
        for entry in &entries {
            // The follower may have read this commit back already.
            if entry.sequence == cache.last_sequence + 1 {
                cache.ledger.apply(entry);
                cache.last_sequence = entry.sequence;
            }
        }
        drop(cache);
        let metrics = crate::metrics::metrics();
        metrics.ledger_writes.inc();
        metrics.ledger_entries.inc_by(entries.len() as u64);
        for reservation in &reservations {
            metrics
                .reservations
                .with_label_values(&[crate::metrics::reservation_state(reservation.state)])
                .inc();
        }
        Ok(value)
    }

    /// Stages entries on the in-memory ledger with `stage` and returns what
    /// it produced, the entries and each changed account's balance before
    /// and after. The caller holds the head lock and has caught up.
    fn prepare<T>(
        &self,
        stage: impl FnOnce(&mut Staged<'_>) -> Result<T, StoreError>,
    ) -> Result<Prepared<T>, StoreError> {
        use crate::domain::ledger::LedgerView;
        let cache = self.cache.read().map_err(poisoned)?;
        let mut staged = Staged::new(&cache.ledger);
        let value = stage(&mut staged)?;
        let (entries, changed) = staged.finish();
        let changed = changed
            .into_iter()
            .map(|(account, after)| {
                let before = cache.ledger.account_balance(&account);
                (account, before, after)
            })
            .collect();
        Ok(Prepared {
            value,
            entries,
            changed,
        })
    }

    /// Replays the log (read in one snapshot) and checks it; `cache` (when
    /// given) must equal the replay.
    fn check(&self, cache: Option<&LedgerState>) -> Result<Checked, StoreError> {
        self.pool.run(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(database)?;
            let checked = check_in(&mut tx, cache)?;
            tx.commit().map_err(database)?;
            Ok(checked)
        })
    }
}

/// A connection listening on [`LEDGER_CHANNEL`], or `None` (logged) when
/// the database cannot be reached.
fn listen(config: &postgres::Config) -> Option<Client> {
    let connected = config.connect(NoTls).and_then(|mut client| {
        client.batch_execute(&format!("LISTEN {LEDGER_CHANNEL}"))?;
        Ok(client)
    });
    match connected {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::warn!(error = %database(error), "cannot listen for ledger writes");
            None
        }
    }
}

/// The result of replaying the log.
struct Checked {
    report: AuditReport,
    ledger: LedgerState,
    last_sequence: u64,
}

/// Replays the log seen by `client` and compares it with the persisted
/// balances, the pending reservations and `cache`.
fn check_in(
    client: &mut impl GenericClient,
    cache: Option<&LedgerState>,
) -> Result<Checked, StoreError> {
    let mut ledger = LedgerState::default();
    let mut problems = Vec::new();
    let mut movements = 0u64;
    let mut last_sequence = 0u64;
    read_log(client, 1, &mut |entry| {
        if entry.sequence != last_sequence + 1 {
            problems.push(format!(
                "log entry {} follows entry {last_sequence}",
                entry.sequence
            ));
        }
        last_sequence = last_sequence.max(entry.sequence);
        problems.extend(ledger.apply(&entry));
        movements += 1;
        Ok(true)
    })?;
    problems.extend(ledger.conservation_problems());
    let head: i64 = client
        .query_one("SELECT next_sequence FROM ledger_head WHERE id = 1", &[])
        .map_err(database)?
        .get(0);
    if to_u64(head, "next sequence")? != last_sequence + 1 {
        problems.push(format!(
            "the head says the next sequence is {head}, the log ends at {last_sequence}"
        ));
    }
    let persisted = persisted_balances(client)?;
    compare_balances("persisted", &persisted, ledger.accounts(), &mut problems);
    if let Some(cache) = cache {
        compare_balances(
            "in-memory",
            cache.accounts(),
            ledger.accounts(),
            &mut problems,
        );
    }
    check_reservations(client, &ledger, &mut problems)?;
    Ok(Checked {
        report: AuditReport {
            movements,
            parts: ledger.part_count(),
            problems,
        },
        ledger,
        last_sequence,
    })
}

/// Calls `visit` with every log entry from sequence `first` on, in order,
/// until it returns `false`.
fn read_log(
    client: &mut impl GenericClient,
    first: u64,
    visit: &mut dyn FnMut(LedgerEntry) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let first = to_i64(first, "sequence")?;
    let mut after_row = -1i64;
    loop {
        let rows = client
            .query(
                "SELECT first_sequence, entries FROM ledger_log \
                 WHERE last_sequence >= $1 AND first_sequence > $2 \
                 ORDER BY first_sequence LIMIT $3",
                &[&first, &after_row, &LOG_ROWS_PER_QUERY],
            )
            .map_err(database)?;
        for row in &rows {
            after_row = row.get(0);
            let bytes: &[u8] = row.get(1);
            let entries = codec::decode_log_batch(bytes)
                .map_err(|e| corrupt(format!("undecodable log row {after_row}: {e}")))?;
            if entries
                .first()
                .is_none_or(|e| e.sequence != after_row as u64)
            {
                return Err(corrupt(format!(
                    "log row {after_row} does not hold its first entry"
                )));
            }
            for entry in entries {
                if (entry.sequence as i64) < first {
                    continue;
                }
                if !visit(entry)? {
                    return Ok(());
                }
            }
        }
        if (rows.len() as i64) < LOG_ROWS_PER_QUERY {
            return Ok(());
        }
    }
}

fn persisted_balances(
    client: &mut impl GenericClient,
) -> Result<BTreeMap<Account, i64>, StoreError> {
    let mut persisted = BTreeMap::new();
    for row in client
        .query(
            "SELECT account, balance FROM balances WHERE balance <> 0",
            &[],
        )
        .map_err(database)?
    {
        let key: &[u8] = row.get(0);
        let account = codec::decode_account_key(key)
            .map_err(|e| corrupt(format!("undecodable balance key: {e}")))?;
        persisted.insert(account, row.get(1));
    }
    Ok(persisted)
}

/// Each location's reserved bucket must equal its pending reservations.
fn check_reservations(
    client: &mut impl GenericClient,
    ledger: &LedgerState,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut held: BTreeMap<Account, i64> = BTreeMap::new();
    for row in client
        .query("SELECT body FROM reservations WHERE state = 'pending'", &[])
        .map_err(database)?
    {
        let reservation: Reservation = from_json(row.get(0), "reservation")?;
        let account = Account::reserved(&reservation.part_id, &reservation.location_id);
        *held.entry(account).or_default() +=
            i64::try_from(reservation.quantity).unwrap_or(i64::MAX);
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
    Ok(())
}

/// Writes staged entries, balance changes, keys and reservations inside the
/// caller's transaction, checking in the database what must hold.
fn write_ledger(
    tx: &mut postgres::Transaction<'_>,
    entries: &[LedgerEntry],
    changed: &[(Account, i64, i64)],
    writes: &WriteSet,
) -> Result<(), StoreError> {
    ensure_pending(tx, &writes.must_be_pending)?;
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        tx.execute(
            "INSERT INTO ledger_log (first_sequence, last_sequence, entries) VALUES ($1, $2, $3)",
            &[
                &to_i64(first.sequence, "sequence")?,
                &to_i64(last.sequence, "sequence")?,
                &codec::encode_log_batch(entries),
            ],
        )
        .map_err(database)?;
        tx.execute(
            "UPDATE ledger_head SET next_sequence = $1 WHERE id = 1",
            &[&to_i64(last.sequence + 1, "sequence")?],
        )
        .map_err(database)?;
    }
    write_balances(tx, changed)?;
    write_keys(tx, &writes.keys)?;
    write_reservations(tx, &writes.reservations)
}

/// Adds each change to its row as a delta and requires the result to be the
/// staged balance: the database's balance, not only this process's copy, is
/// what the change was checked against. An account without a row is
/// inserted (its balance before must then be zero). A balance that would
/// break a `CHECK` (below zero, past the bound) is refused. (An upsert
/// cannot do both: PostgreSQL checks the proposed row, the bare delta,
/// before it finds the conflict.)
fn write_balances(
    tx: &mut postgres::Transaction<'_>,
    changed: &[(Account, i64, i64)],
) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(changed.len());
    let mut deltas = Vec::with_capacity(changed.len());
    let mut expected = HashMap::with_capacity(changed.len());
    for (account, before, after) in changed {
        let key = codec::account_key(account);
        let delta = after
            .checked_sub(*before)
            .ok_or_else(|| corrupt("a balance change overflows"))?;
        expected.insert(key.clone(), (account, *before, *after));
        keys.push(key);
        deltas.push(delta);
    }
    let updated = tx
        .query(
            "UPDATE balances AS b SET balance = b.balance + d.delta \
             FROM unnest($1::bytea[], $2::bigint[]) AS d(account, delta) \
             WHERE b.account = d.account RETURNING b.account, b.balance",
            &[&keys, &deltas],
        )
        .map_err(guard_refusal)?;
    for row in &updated {
        let key: Vec<u8> = row.get(0);
        let balance: i64 = row.get(1);
        match expected.remove(&key) {
            Some((_, _, after)) if after == balance => {}
            other => {
                return Err(corrupt(format!(
                    "a persisted balance is {balance}, this process expected {:?}",
                    other.map(|(_, _, after)| after)
                )));
            }
        }
    }
    if !expected.is_empty() {
        let mut new_keys = Vec::with_capacity(expected.len());
        let mut parts = Vec::with_capacity(expected.len());
        let mut internal = Vec::with_capacity(expected.len());
        let mut balances = Vec::with_capacity(expected.len());
        for (key, (account, before, after)) in expected {
            if before != 0 {
                return Err(corrupt(format!(
                    "the {account} has no row, this process has it at {before}"
                )));
            }
            new_keys.push(key);
            parts.push(account.part_id());
            internal.push(account.is_internal());
            balances.push(after);
        }
        tx.execute(
            "INSERT INTO balances (account, part_id, internal, balance) \
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bool[], $4::bigint[])",
            &[&new_keys, &parts, &internal, &balances],
        )
        .map_err(guard_refusal)?;
    }
    tx.execute(
        "DELETE FROM balances WHERE account = ANY($1) AND balance = 0",
        &[&keys],
    )
    .map_err(database)?;
    Ok(())
}

/// A `CHECK` violation (SQLSTATE 23514) is the guard inside the transaction
/// refusing the write; anything else is a storage failure.
fn guard_refusal(error: postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) if db.code().code() == "23514" => {
            StoreError::Rejected(DomainError::FailedPrecondition(format!(
                "a balance would go below zero or past the limit: {}",
                db.message()
            )))
        }
        _ => database(error),
    }
}

fn write_keys(tx: &mut postgres::Transaction<'_>, keys: &[KeyRow]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let tags: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let principals: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let client_keys: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
    let records: Vec<&[u8]> = keys.iter().map(|k| k.3.as_slice()).collect();
    tx.execute(
        "INSERT INTO idempotency (scope, principal, client_key, record) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])",
        &[&tags, &principals, &client_keys, &records],
    )
    .map_err(database)?;
    Ok(())
}

fn write_reservations(
    tx: &mut postgres::Transaction<'_>,
    reservations: &[Reservation],
) -> Result<(), StoreError> {
    if reservations.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut states = Vec::new();
    let mut seconds = Vec::new();
    let mut nanos = Vec::new();
    let mut parts = Vec::new();
    let mut locations = Vec::new();
    let mut held_for = Vec::new();
    let mut bodies = Vec::new();
    for r in reservations {
        let (s, n) = time_columns(r.expires_at);
        ids.push(r.reservation_id.as_str());
        states.push(state_name(r.state));
        seconds.push(s);
        nanos.push(n);
        parts.push(r.part_id.as_str());
        locations.push(r.location_id.as_str());
        held_for.push(r.held_for());
        bodies.push(to_json(r)?);
    }
    tx.execute(
        "INSERT INTO reservations (reservation_id, state, expires_seconds, expires_nanoseconds, \
         part_id, location_id, held_for, body) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::text[], \
         $6::text[], $7::text[], $8::bytea[]) \
         ON CONFLICT (reservation_id) DO UPDATE SET state = EXCLUDED.state, body = EXCLUDED.body",
        &[
            &ids, &states, &seconds, &nanos, &parts, &locations, &held_for, &bodies,
        ],
    )
    .map_err(database)?;
    Ok(())
}

/// Locks each reservation and requires it to exist and be pending.
fn ensure_pending(tx: &mut postgres::Transaction<'_>, ids: &[String]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows = tx
        .query(
            "SELECT reservation_id, state FROM reservations WHERE reservation_id = ANY($1) \
             FOR UPDATE",
            &[&ids],
        )
        .map_err(database)?;
    let states: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for id in ids {
        match states.get(id).map(String::as_str) {
            None => return Err(DomainError::not_found("reservation", id).into()),
            Some("pending") => {}
            Some(state) => {
                return Err(DomainError::FailedPrecondition(format!(
                    "reservation {id} is {state}, not Pending"
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// The stored keys of `principal` in `scope` among `client_keys` (and the
/// keys restored from before layout 4, which answer for every principal).
fn known_keys(
    client: &mut impl GenericClient,
    scope: KeyScope,
    principal: &str,
    client_keys: &[&str],
) -> Result<KnownKeys, StoreError> {
    let tag = scope_tag(scope);
    let legacy = tag.to_ascii_lowercase();
    let rows = client
        .query(
            "SELECT scope, client_key, record FROM idempotency \
             WHERE ((scope = $1 AND principal = $2) OR (scope = $3 AND principal = '')) \
             AND client_key = ANY($4)",
            &[&tag, &principal, &legacy, &client_keys],
        )
        .map_err(database)?;
    let mut known = KnownKeys::new();
    for row in rows {
        let row_scope: &str = row.get(0);
        let key: String = row.get(1);
        let record: &[u8] = row.get(2);
        let (payload, outcome) = codec::decode_idempotency(record)
            .map_err(|e| corrupt(format!("undecodable idempotency record: {e}")))?;
        // The principal's own key wins over a legacy one.
        if row_scope == tag || !known.contains_key(&key) {
            known.insert(key, (payload.to_vec(), outcome));
        }
    }
    Ok(known)
}

fn stored_reservation(
    client: &mut impl GenericClient,
    reservation_id: &str,
) -> Result<Option<Reservation>, StoreError> {
    client
        .query_opt(
            "SELECT body FROM reservations WHERE reservation_id = $1",
            &[&reservation_id],
        )
        .map_err(database)?
        .map(|row| from_json(row.get(0), "reservation"))
        .transpose()
}

/// A reservation-scoped replay: `Some(reservation)` when the key was used
/// with this payload, a conflict when with another.
fn reservation_replay(
    client: &mut impl GenericClient,
    known: &KnownKeys,
    key: &str,
    payload: &[u8],
    field: String,
) -> Result<Option<Reservation>, StoreError> {
    match known.get(key) {
        Some((p, StoredOutcome::Reservation(id))) if p == payload => {
            stored_reservation(client, id)?
                .map(Some)
                .ok_or_else(|| corrupt(format!("idempotency record names missing {id}")))
        }
        Some(_) => Err(conflict(field, key)),
        None => Ok(None),
    }
}

/// A movement's replay against the earlier fresh movements of its batch
/// and the stored keys: `Some(outcome)` for a replay.
fn movement_replay(
    known: &KnownKeys,
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
    match known.get(key) {
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
            sequence: *sequence,
            replayed: true,
            shipment_id: shipment_id.clone(),
            recorded_at: *recorded_at,
        })),
        Some(_) => Err(corrupt("a movement key holds a reservation")),
        None => Ok(None),
    }
}

impl PgStore {
    /// Posts or voids under the head lock.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        actor: &Actor,
        scope: KeyScope,
        reservation_id: &str,
        idempotency_key: &str,
        payload: &[u8],
        settlement: Settlement<'_>,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        if idempotency_key.is_empty() {
            return Err(DomainError::invalid("idempotency_key", "must not be empty").into());
        }
        self.ledger_write(|tx, sequence| {
            let known = known_keys(tx, scope, &actor.id, &[idempotency_key])?;
            let field = "idempotency_key".to_string();
            if let Some(replayed) = reservation_replay(tx, &known, idempotency_key, payload, field)?
            {
                return Ok((replayed, empty_write()));
            }
            let reservation = stored_reservation(tx, reservation_id)?
                .ok_or_else(|| DomainError::not_found("reservation", reservation_id))?;
            let prepared = self.prepare(|staged| {
                let (entry, settled) =
                    settle_entry(&reservation, settlement, sequence, now, actor)?;
                staged.push(entry)?;
                Ok(settled)
            })?;
            let settled = prepared.value.clone();
            let record = codec::encode_idempotency(
                payload,
                &StoredOutcome::Reservation(reservation_id.to_string()),
            );
            let writes = WriteSet {
                keys: vec![(
                    scope_tag(scope),
                    actor.id.clone(),
                    idempotency_key.to_string(),
                    record,
                )],
                reservations: vec![settled.clone()],
                must_be_pending: vec![reservation_id.to_string()],
            };
            Ok((settled, with_writes(prepared, writes)))
        })
    }
}

fn empty_write() -> Prepared<WriteSet> {
    Prepared {
        value: WriteSet::default(),
        entries: Vec::new(),
        changed: Vec::new(),
    }
}

fn with_writes<T>(prepared: Prepared<T>, writes: WriteSet) -> Prepared<WriteSet> {
    Prepared {
        value: writes,
        entries: prepared.entries,
        changed: prepared.changed,
    }
}

impl Store for PgStore {
    fn load_network(&self) -> Result<Network, StoreError> {
        off_runtime(|| self.pool.run(load_network_in))
    }

    fn save_network_records(&self, records: &[NetworkRecord]) -> Result<(), StoreError> {
        off_runtime(|| {
            self.pool.transact(|tx| {
                save_network_in(tx, records)?;
                count_change(tx, super::NETWORK_COUNTER)
            })
        })
    }

    fn record_movements(
        &self,
        actor: &Actor,
        commands: &[MovementCommand],
        now: Timestamp,
    ) -> Result<Vec<MovementOutcome>, StoreError> {
        off_runtime(|| {
            check_batch_size("movements", commands.len())?;
            if commands.is_empty() {
                return Ok(Vec::new());
            }
            let mut payloads = Vec::with_capacity(commands.len());
            for (i, command) in commands.iter().enumerate() {
                check_movement_shape(command, &format!("movements[{i}]"))?;
                payloads.push(codec::movement_payload(command));
            }
            let client_keys: Vec<&str> = commands
                .iter()
                .map(|c| c.idempotency_key.as_str())
                .collect();
            self.ledger_write(|tx, first_sequence| {
                let known = known_keys(tx, KeyScope::Movement, &actor.id, &client_keys)?;
                let prepared = self.prepare(|staged| {
                    let mut sequence = first_sequence;
                    let mut outcomes: Vec<MovementOutcome> = Vec::with_capacity(commands.len());
                    let mut keys = Vec::with_capacity(commands.len());
                    let mut in_batch: HashMap<&str, usize> = HashMap::with_capacity(commands.len());
                    for (i, (command, payload)) in commands.iter().zip(&payloads).enumerate() {
                        let replay =
                            movement_replay(&known, i, commands, &payloads, &outcomes, &in_batch)?;
                        if let Some(outcome) = replay {
                            outcomes.push(outcome);
                            continue;
                        }
                        let prefix = format!("movements[{i}]");
                        let entry =
                            movement_entry(command, &prefix, &*staged, sequence, now, actor)?;
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
                        let record =
                            codec::encode_idempotency(payload, &StoredOutcome::movement(&outcome));
                        keys.push((
                            scope_tag(KeyScope::Movement),
                            actor.id.clone(),
                            command.idempotency_key.clone(),
                            record,
                        ));
                        in_batch.insert(&command.idempotency_key, i);
                        outcomes.push(outcome);
                    }
                    Ok((outcomes, keys))
                })?;
                let (outcomes, keys) = (prepared.value.0.clone(), prepared.value.1.clone());
                let writes = WriteSet {
                    keys,
                    ..WriteSet::default()
                };
                Ok((outcomes, with_writes(prepared, writes)))
            })
        })
    }

    fn reserve(
        &self,
        actor: &Actor,
        commands: &[ReserveCommand],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        off_runtime(|| {
            check_batch_size("lines", commands.len())?;
            let mut payloads = Vec::with_capacity(commands.len());
            for command in commands {
                payloads.push(to_json(command)?);
            }
            let client_keys: Vec<&str> = commands
                .iter()
                .map(|c| c.idempotency_key.as_str())
                .collect();
            self.ledger_write(|tx, first_sequence| {
                let known = known_keys(tx, KeyScope::Reserve, &actor.id, &client_keys)?;
                let prepared = self.prepare(|staged| {
                    let mut sequence = first_sequence;
                    let mut results: Vec<Reservation> = Vec::with_capacity(commands.len());
                    let mut keys = Vec::new();
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
                            let earlier = results[*index].clone();
                            results.push(earlier);
                            continue;
                        }
                        // A stored key replays (reading its reservation from the
                        // database, inside this transaction).
                        if let Some(replayed) = reservation_replay(tx, &known, key, payload, field)?
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
                        keys.push((
                            scope_tag(KeyScope::Reserve),
                            actor.id.clone(),
                            key.to_string(),
                            record,
                        ));
                        in_batch.insert(key, (payload.as_slice(), results.len()));
                        fresh.push(reservation.clone());
                        results.push(reservation);
                        sequence += 1;
                    }
                    Ok((results, keys, fresh))
                })?;
                let (results, keys, fresh) = prepared.value.clone();
                let writes = WriteSet {
                    keys,
                    reservations: fresh,
                    must_be_pending: Vec::new(),
                };
                Ok((results, with_writes(prepared, writes)))
            })
        })
    }

    fn post_reservation(
        &self,
        actor: &Actor,
        command: &PostCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        off_runtime(|| {
            let payload = to_json(command)?;
            self.settle(
                actor,
                KeyScope::Post,
                &command.reservation_id,
                &command.idempotency_key,
                &payload,
                Settlement::Post(command),
                now,
            )
        })
    }

    fn void_reservation(
        &self,
        actor: &Actor,
        command: &VoidCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        off_runtime(|| {
            let payload = to_json(command)?;
            self.settle(
                actor,
                KeyScope::Void,
                &command.reservation_id,
                &command.idempotency_key,
                &payload,
                Settlement::Void,
                now,
            )
        })
    }

    fn expire_reservations(&self, now: Timestamp) -> Result<Vec<Reservation>, StoreError> {
        off_runtime(|| {
            let expiry = Actor::system("reservation-expiry");
            let (seconds, nanoseconds) = time_columns(now);
            let limit = i64::try_from(super::sled_store::MAX_BATCH_COMMANDS).unwrap_or(i64::MAX);
            self.ledger_write(|tx, first_sequence| {
                // Under the head lock: a reservation another replica expired is
                // no longer pending here, so each expires exactly once.
                let rows = tx
                    .query(
                        "SELECT body FROM reservations WHERE state = 'pending' \
                         AND (expires_seconds, expires_nanoseconds) <= ($1, $2) \
                         ORDER BY expires_seconds, expires_nanoseconds, reservation_id LIMIT $3",
                        &[&seconds, &nanoseconds, &limit],
                    )
                    .map_err(database)?;
                let mut due = Vec::with_capacity(rows.len());
                for row in &rows {
                    due.push(from_json::<Reservation>(row.get(0), "reservation")?);
                }
                let prepared = self.prepare(|staged| {
                    let mut expired = Vec::with_capacity(due.len());
                    for (offset, reservation) in (0u64..).zip(&due) {
                        let (entry, settled) = settle_entry(
                            reservation,
                            Settlement::Expire,
                            first_sequence + offset,
                            now,
                            &expiry,
                        )?;
                        staged.push(entry)?;
                        expired.push(settled);
                    }
                    Ok(expired)
                })?;
                let expired = prepared.value.clone();
                let writes = WriteSet {
                    keys: Vec::new(),
                    reservations: expired.clone(),
                    must_be_pending: due.into_iter().map(|r| r.reservation_id).collect(),
                };
                Ok((expired, with_writes(prepared, writes)))
            })
        })
    }

    fn reservation(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError> {
        off_runtime(|| {
            self.pool
                .run(|client| stored_reservation(client, reservation_id))
        })
    }

    fn reservations(&self, filter: &ReservationFilter) -> Result<Vec<Reservation>, StoreError> {
        off_runtime(|| {
            let limit = if filter.limit == 0 {
                i64::MAX
            } else {
                i64::try_from(filter.limit).unwrap_or(i64::MAX)
            };
            let after = filter.after_id.as_deref().unwrap_or("");
            let state = filter.state.map(state_name);
            let rows = self.pool.run(|client| {
                client
                    .query(
                        "SELECT body FROM reservations WHERE reservation_id > $1 \
                         AND ($2::text IS NULL OR part_id = $2) \
                         AND ($3::text IS NULL OR location_id = $3) \
                         AND ($4::text IS NULL OR state = $4) \
                         AND ($5::text[] IS NULL OR held_for = ANY($5)) \
                         ORDER BY reservation_id LIMIT $6",
                        &[
                            &after,
                            &filter.part_id,
                            &filter.location_id,
                            &state,
                            &filter.held_for,
                            &limit,
                        ],
                    )
                    .map_err(database)
            })?;
            rows.iter()
                .map(|row| from_json(row.get(0), "reservation"))
                .collect()
        })
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
        off_runtime(|| {
            // The head lock keeps every writer (of every process) still while
            // the log, the persisted and the in-memory balances are compared.
            let _local = self.writer.lock().map_err(poisoned)?;
            self.pool.run(|client| {
                let mut tx = client
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .start()
                    .map_err(database)?;
                tx.execute("SELECT 1 FROM ledger_head WHERE id = 1 FOR UPDATE", &[])
                    .map_err(database)?;
                self.apply_log_after(&mut tx)?;
                let cache = self.cache.read().map_err(poisoned)?;
                let checked = check_in(&mut tx, Some(&cache.ledger))?;
                drop(cache);
                tx.commit().map_err(database)?;
                Ok(checked.report)
            })
        })
    }

    fn movements(
        &self,
        filter: &MovementFilter,
    ) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError> {
        off_runtime(|| {
            let first = filter.after_sequence.saturating_add(1);
            let limit = filter.limit.max(1);
            self.pool.run(|client| {
                let mut found = Vec::new();
                let mut scanned = 0usize;
                let mut cursor = None;
                read_log(client, first, &mut |entry| {
                    scanned += 1;
                    let sequence = entry.sequence;
                    if filter.matches(&entry) {
                        found.push(entry);
                    }
                    if found.len() >= limit || scanned >= MAX_MOVEMENTS_SCANNED {
                        cursor = Some(sequence);
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                Ok((found, cursor))
            })
        })
    }

    fn append_audit_event(&self, mut event: AuditEvent) -> Result<AuditEvent, StoreError> {
        off_runtime(|| {
            self.pool.transact(|tx| {
                // One appender at a time (of every process), so ids stay increasing;
                // the id follows the last stored one (a restored trail keeps its ids).
                tx.execute(
                    "SELECT 1 FROM counters WHERE name = 'audit_events' FOR UPDATE",
                    &[],
                )
                .map_err(database)?;
                let last: Option<String> = tx
                    .query_one(
                        "SELECT max(key) FROM records WHERE collection = $1",
                        &[&AUDIT_COLLECTION],
                    )
                    .map_err(database)?
                    .get(0);
                let last = match last {
                    Some(key) => key
                        .parse::<u64>()
                        .map_err(|_| corrupt("an audit event key is not a number"))?,
                    None => 0,
                };
                event.id = last + 1;
                tx.execute(
                    "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3)",
                    &[&AUDIT_COLLECTION, &audit_key(event.id), &to_json(&event)?],
                )
                .map_err(database)?;
                Ok(event)
            })
        })
    }

    fn audit_events(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError> {
        off_runtime(|| {
            let limit = filter.limit.max(1);
            self.pool.run(|client| {
                let mut found = Vec::new();
                let mut scanned = 0usize;
                let mut from = audit_key(filter.after_id.saturating_add(1));
                loop {
                    let rows = client
                        .query(
                            "SELECT key, value FROM records WHERE collection = $1 AND key >= $2 \
                         ORDER BY key LIMIT 1000",
                            &[&AUDIT_COLLECTION, &from],
                        )
                        .map_err(database)?;
                    for row in &rows {
                        let event: AuditEvent = from_json(row.get(1), "audit event")?;
                        scanned += 1;
                        let id = event.id;
                        if filter.matches(&event) {
                            found.push(event);
                        }
                        if found.len() >= limit || scanned >= MAX_MOVEMENTS_SCANNED {
                            return Ok((found, Some(id)));
                        }
                        from = audit_key(id.saturating_add(1));
                    }
                    if rows.len() < 1000 {
                        return Ok((found, None));
                    }
                }
            })
        })
    }

    fn put_record(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        off_runtime(|| {
            // An upsert: running it twice leaves what running it once does.
            // The collection's change counter moves in the same transaction,
            // so a replica that sees the counter move reads the record.
            self.pool.transact(|tx| {
                tx.execute(
                    "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&collection, &key, &value],
                )
                .map_err(database)?;
                count_change(tx, &super::records_counter(collection))
            })
        })
    }

    fn records(&self, collection: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        off_runtime(|| self.pool.run(|client| records_in(client, collection)))
    }

    fn record(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        off_runtime(|| {
            self.pool.run(|client| {
                Ok(client
                    .query_opt(
                        "SELECT value FROM records WHERE collection = $1 AND key = $2",
                        &[&collection, &key],
                    )
                    .map_err(database)?
                    .map(|row| row.get(0)))
            })
        })
    }

    fn record_keys(&self, collection: &str) -> Result<Vec<String>, StoreError> {
        off_runtime(|| {
            self.pool.run(|client| {
                Ok(client
                    .query(
                        "SELECT key FROM records WHERE collection = $1 ORDER BY key",
                        &[&collection],
                    )
                    .map_err(database)?
                    .iter()
                    .map(|row| row.get(0))
                    .collect())
            })
        })
    }

    fn snapshot(
        &self,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            backup::snapshot(conn.client(), sink)
        })
    }

    fn restore(&self, items: Vec<SnapshotItem>) -> Result<(), StoreError> {
        off_runtime(|| {
            let _local = self.writer.lock().map_err(poisoned)?;
            {
                let mut conn = self.pool.get()?;
                backup::restore(conn.client(), items)?;
            }
            let checked = self.check(None)?;
            let mut cache = self.cache.write().map_err(poisoned)?;
            cache.ledger = checked.ledger;
            cache.last_sequence = checked.last_sequence;
            Ok(())
        })
    }

    fn apply_plan(&self, plan: &PlanRecord) -> Result<(), StoreError> {
        off_runtime(|| {
            self.pool.transact(|tx| {
                backup::write_plan(tx, plan)?;
                // The plan changes policies, which are master data.
                count_change(tx, super::NETWORK_COUNTER)
            })
        })
    }

    fn change_counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        off_runtime(|| {
            self.pool.run(|client| {
                client
                    .query("SELECT name, value FROM counters ORDER BY name", &[])
                    .map_err(database)?
                    .iter()
                    .map(|row| Ok((row.get(0), to_u64(row.get(1), "change counter")?)))
                    .collect()
            })
        })
    }

    fn plan_history(&self) -> Result<Vec<PlanHeader>, StoreError> {
        off_runtime(|| {
            self.pool
                .run(|client| records_in(client, backup::PLAN_HISTORY))?
                .iter()
                .map(|(_, value)| from_json(value, backup::PLAN_HISTORY))
                .collect()
        })
    }

    fn work_queue(&self) -> Option<std::sync::Arc<dyn super::work::WorkQueue>> {
        Some(std::sync::Arc::new(work::PgWorkQueue::new(
            self.pool.config.clone(),
        )))
    }

    fn job_leases(&self) -> Option<std::sync::Arc<dyn super::leases::JobLeases>> {
        Some(std::sync::Arc::new(leases::PgJobLeases::new(
            self.pool.config.clone(),
        )))
    }

    fn observe_other_writers(&self, observer: OtherWritersObserver) {
        let _ = self.observer.set(observer);
    }

    fn plan(&self, plan_id: &str) -> Result<Option<PlanRecord>, StoreError> {
        off_runtime(|| self.pool.run(|client| backup::read_plan(client, plan_id)))
    }
}

/// The record collection of the audit trail (the same as sled's).
const AUDIT_COLLECTION: &str = super::sled_store::AUDIT_COLLECTION;

fn audit_key(id: u64) -> String {
    format!("{id:020}")
}

fn records_in(
    client: &mut impl GenericClient,
    collection: &str,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(client
        .query(
            "SELECT key, value FROM records WHERE collection = $1 ORDER BY key",
            &[&collection],
        )
        .map_err(database)?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

fn load_network_in(client: &mut impl GenericClient) -> Result<Network, StoreError> {
    let mut by_collection: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for row in client
        .query(
            "SELECT collection, value FROM network_records ORDER BY collection, key",
            &[],
        )
        .map_err(database)?
    {
        by_collection
            .entry(row.get(0))
            .or_default()
            .push(row.get(1));
    }
    build_network(|index| {
        Ok(by_collection
            .remove(NETWORK_COLLECTIONS[index])
            .unwrap_or_default())
    })
}

/// Upserts (and, for a revival, deletes) master-data records, in key
/// order so that concurrent saves lock rows in one order.
/// Moves the change counter `name` by one inside `tx` (creating it at 1):
/// replicas that poll [`Store::change_counters`] reload what it counts.
fn count_change(tx: &mut postgres::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO counters (name, value) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
        &[&name],
    )
    .map_err(database)?;
    Ok(())
}

fn save_network_in(
    tx: &mut postgres::Transaction<'_>,
    records: &[NetworkRecord],
) -> Result<(), StoreError> {
    let mut upserts: BTreeMap<(usize, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let mut deletes = Vec::new();
    for record in records {
        let (index, key) = network_key(record)?;
        match record {
            NetworkRecord::Revive(_) => {
                upserts.remove(&(index, key.clone()));
                deletes.push((index, key));
            }
            _ => {
                upserts.insert((index, key), network_value(record)?);
            }
        }
    }
    for (index, key) in &deletes {
        tx.execute(
            "DELETE FROM network_records WHERE collection = $1 AND key = $2",
            &[&NETWORK_COLLECTIONS[*index], key],
        )
        .map_err(database)?;
    }
    for chunk in upserts.into_iter().collect::<Vec<_>>().chunks(10_000) {
        let collections: Vec<&str> = chunk
            .iter()
            .map(|((i, _), _)| NETWORK_COLLECTIONS[*i])
            .collect();
        let keys: Vec<&[u8]> = chunk.iter().map(|((_, k), _)| k.as_slice()).collect();
        let values: Vec<&[u8]> = chunk.iter().map(|(_, v)| v.as_slice()).collect();
        tx.execute(
            "INSERT INTO network_records (collection, key, value) \
             SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
             ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
            &[&collections, &keys, &values],
        )
        .map_err(database)?;
    }
    Ok(())
}
