//! Snapshot, restore and the policy history for [`PgStore`](super::PgStore).
//!
//! A snapshot is one `REPEATABLE READ` read-only transaction: PostgreSQL
//! gives it one consistent view of every table while writers go on, so the
//! cut is simply the head's sequence in that view (the sled store has to
//! trim what it read back to a cut instead). A restore writes everything in
//! one transaction and audits it before `COMMIT`, so a snapshot that does
//! not form a sound ledger leaves the database empty.

use super::{
    KeyRow, check_in, database, load_network_in, read_log, save_network_in, to_i64, to_u64,
    write_keys, write_reservations,
};
use crate::domain::DomainError;
use crate::domain::ledger::{LedgerEntry, LedgerState, Reservation};
use crate::domain::plans::{PlanHeader, PlanRecord, PolicyChange};
use crate::store::codec::{self, StoredOutcome};
use crate::store::sled_store::backup::check_entries;
use crate::store::sled_store::{corrupt, from_json, to_json};
use crate::store::{
    IdempotencyRecord, KeyOutcome, KeyScope, SnapshotItem, StoreError, network_records,
};
use postgres::{Client, GenericClient, IsolationLevel};

/// The collection of plan headers (the same as the sled store's).
pub(super) const PLAN_HISTORY: &str = "plan_history";
/// The collection of plan changes (the same as the sled store's).
const PLAN_CHANGES: &str = "plan_changes";

/// Entries per log row written by a restore.
const RESTORE_BATCH: usize = 10_000;

/// See [`crate::store::Store::snapshot`].
pub(super) fn snapshot(
    client: &mut Client,
    sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(database)?;
    let head: i64 = tx
        .query_one("SELECT next_sequence FROM ledger_head WHERE id = 1", &[])
        .map_err(database)?
        .get(0);
    let cut = to_u64(head, "next sequence")?.saturating_sub(1);
    for record in network_records(load_network_in(&mut tx)?) {
        sink(SnapshotItem::Network(record))?;
    }
    read_log(&mut tx, 1, &mut |entry| {
        sink(SnapshotItem::Entry(entry))?;
        Ok(true)
    })?;
    for row in tx
        .query("SELECT body FROM reservations ORDER BY reservation_id", &[])
        .map_err(database)?
    {
        sink(SnapshotItem::Reservation(from_json(
            row.get(0),
            "reservation",
        )?))?;
    }
    for row in tx
        .query(
            "SELECT scope, principal, client_key, record FROM idempotency \
             ORDER BY scope, principal, client_key",
            &[],
        )
        .map_err(database)?
    {
        sink(SnapshotItem::Idempotency(key_record(
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
        )?))?;
    }
    for row in tx
        .query(
            "SELECT collection, key, value FROM records ORDER BY collection, key",
            &[],
        )
        .map_err(database)?
    {
        sink(SnapshotItem::Record {
            collection: row.get(0),
            key: row.get(1),
            value: row.get(2),
        })?;
    }
    tx.commit().map_err(database)?;
    Ok(cut)
}

/// An idempotency row as a snapshot item.
fn key_record(
    tag: &str,
    principal: String,
    client_key: String,
    record: &[u8],
) -> Result<IdempotencyRecord, StoreError> {
    let scope = match tag.to_ascii_uppercase().as_str() {
        "M" => KeyScope::Movement,
        "R" => KeyScope::Reserve,
        "P" => KeyScope::Post,
        "V" => KeyScope::Void,
        other => return Err(corrupt(format!("unknown idempotency scope {other}"))),
    };
    let legacy = tag.chars().all(|c| c.is_ascii_lowercase());
    let (payload, outcome) = codec::decode_idempotency(record)
        .map_err(|e| corrupt(format!("undecodable idempotency record: {e}")))?;
    let outcome = KeyOutcome::from(outcome);
    Ok(IdempotencyRecord {
        scope,
        key: client_key,
        principal: (!legacy).then_some(principal),
        payload: payload.to_vec(),
        outcome,
    })
}

/// A snapshot's idempotency record as a row.
fn key_row(key: &IdempotencyRecord) -> KeyRow {
    let tag = super::scope_tag(key.scope);
    let record = codec::encode_idempotency(&key.payload, &StoredOutcome::from(&key.outcome));
    match &key.principal {
        Some(principal) => (tag, principal.clone(), key.key.clone(), record),
        None => (
            legacy_tag(key.scope),
            String::new(),
            key.key.clone(),
            record,
        ),
    }
}

/// The tag of a key restored from before layout 4 (no principal).
fn legacy_tag(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Movement => "m",
        KeyScope::Reserve => "r",
        KeyScope::Post => "p",
        KeyScope::Void => "v",
    }
}

/// See [`crate::store::Store::restore`].
pub(super) fn restore(client: &mut Client, items: Vec<SnapshotItem>) -> Result<(), StoreError> {
    let mut network = Vec::new();
    let mut entries: Vec<LedgerEntry> = Vec::new();
    let mut reservations: Vec<Reservation> = Vec::new();
    let mut keys = Vec::new();
    let mut records = Vec::new();
    for item in items {
        match item {
            SnapshotItem::Network(record) => network.push(record),
            SnapshotItem::Entry(entry) => entries.push(entry),
            SnapshotItem::Reservation(r) => reservations.push(r),
            SnapshotItem::Idempotency(k) => keys.push(key_row(&k)),
            SnapshotItem::Record {
                collection,
                key,
                value,
            } => records.push((collection, key, value)),
        }
    }
    let mut tx = client.transaction().map_err(database)?;
    tx.execute("SELECT 1 FROM ledger_head WHERE id = 1 FOR UPDATE", &[])
        .map_err(database)?;
    if !is_empty(&mut tx)? {
        return Err(DomainError::FailedPrecondition(
            "a restore needs an empty database (schema)".into(),
        )
        .into());
    }
    check_entries(&entries)?;
    save_network_in(&mut tx, &network)?;
    write_log(&mut tx, &entries)?;
    write_keys(&mut tx, &keys)?;
    write_reservations(&mut tx, &reservations)?;
    for (collection, key, value) in &records {
        tx.execute(
            "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
            &[collection, key, value],
        )
        .map_err(database)?;
    }
    let checked = check_in(&mut tx, None)?;
    if let Some(problem) = checked.report.problems.first() {
        return Err(corrupt(format!(
            "the restored ledger does not audit: {problem}"
        )));
    }
    tx.commit().map_err(database)
}

fn is_empty(client: &mut impl GenericClient) -> Result<bool, StoreError> {
    let found: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM ledger_log) OR EXISTS (SELECT 1 FROM balances) \
             OR EXISTS (SELECT 1 FROM idempotency) OR EXISTS (SELECT 1 FROM reservations) \
             OR EXISTS (SELECT 1 FROM network_records)",
            &[],
        )
        .map_err(database)?
        .get(0);
    Ok(!found)
}

/// Writes the log in rows of [`RESTORE_BATCH`] entries, the balances they
/// replay to and the head.
fn write_log(
    tx: &mut postgres::Transaction<'_>,
    entries: &[LedgerEntry],
) -> Result<(), StoreError> {
    let mut ledger = LedgerState::default();
    for chunk in entries.chunks(RESTORE_BATCH) {
        for entry in chunk {
            ledger.apply(entry);
        }
        if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
            tx.execute(
                "INSERT INTO ledger_log (first_sequence, last_sequence, entries) \
                 VALUES ($1, $2, $3)",
                &[
                    &to_i64(first.sequence, "sequence")?,
                    &to_i64(last.sequence, "sequence")?,
                    &codec::encode_log_batch(chunk),
                ],
            )
            .map_err(database)?;
        }
    }
    let accounts: Vec<_> = ledger.accounts().iter().collect();
    for chunk in accounts.chunks(RESTORE_BATCH) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|(a, _)| codec::account_key(a)).collect();
        let parts: Vec<&str> = chunk.iter().map(|(a, _)| a.part_id()).collect();
        let internal: Vec<bool> = chunk.iter().map(|(a, _)| a.is_internal()).collect();
        let balances: Vec<i64> = chunk.iter().map(|(_, b)| **b).collect();
        tx.execute(
            "INSERT INTO balances (account, part_id, internal, balance) \
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bool[], $4::bigint[])",
            &[&keys, &parts, &internal, &balances],
        )
        .map_err(database)?;
    }
    let next = entries.last().map_or(1, |e| e.sequence + 1);
    tx.execute(
        "UPDATE ledger_head SET next_sequence = $1 WHERE id = 1",
        &[&to_i64(next, "sequence")?],
    )
    .map_err(database)?;
    Ok(())
}

fn change_key(plan_id: &str, index: usize) -> String {
    format!("{plan_id}/{index:09}")
}

/// See [`crate::store::Store::apply_plan`]: the header goes in first, so a
/// second plan with the same id (from any process) finds it and is refused.
pub(super) fn write_plan(
    tx: &mut postgres::Transaction<'_>,
    plan: &PlanRecord,
) -> Result<(), StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (collection, key) DO NOTHING",
            &[&PLAN_HISTORY, &plan.header.plan_id, &to_json(&plan.header)?],
        )
        .map_err(database)?;
    if inserted == 0 {
        return Err(StoreError::Rejected(DomainError::FailedPrecondition(
            format!("{} is already in the policy history", plan.header.plan_id),
        )));
    }
    for (i, change) in plan.changes.iter().enumerate() {
        tx.execute(
            "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3)",
            &[
                &PLAN_CHANGES,
                &change_key(&plan.header.plan_id, i),
                &to_json(change)?,
            ],
        )
        .map_err(database)?;
        let key = to_json(&(&change.part_id, &change.location_id))?;
        // In order, as the sled store does: a later change to the same
        // policy wins.
        match &change.after {
            Some(policy) => tx.execute(
                "INSERT INTO network_records (collection, key, value) VALUES ('policies', $1, $2) \
                 ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &to_json(policy)?],
            ),
            None => tx.execute(
                "DELETE FROM network_records WHERE collection = 'policies' AND key = $1",
                &[&key],
            ),
        }
        .map_err(database)?;
    }
    Ok(())
}

/// See [`crate::store::Store::plan`].
pub(super) fn read_plan(
    client: &mut Client,
    plan_id: &str,
) -> Result<Option<PlanRecord>, StoreError> {
    let Some(row) = client
        .query_opt(
            "SELECT value FROM records WHERE collection = $1 AND key = $2",
            &[&PLAN_HISTORY, &plan_id],
        )
        .map_err(database)?
    else {
        return Ok(None);
    };
    let header: PlanHeader = from_json(row.get(0), PLAN_HISTORY)?;
    // Byte order: every key of this plan lies between "<id>/" and "<id>0".
    let (from, to) = (format!("{plan_id}/"), format!("{plan_id}0"));
    let mut changes: Vec<PolicyChange> = Vec::with_capacity(header.changes);
    for row in client
        .query(
            "SELECT value FROM records WHERE collection = $1 AND key >= $2 AND key < $3 \
             ORDER BY key",
            &[&PLAN_CHANGES, &from, &to],
        )
        .map_err(database)?
    {
        changes.push(from_json(row.get(0), PLAN_CHANGES)?);
    }
    if changes.len() != header.changes {
        return Err(corrupt(format!(
            "{plan_id} lists {} changes, {} are stored",
            header.changes,
            changes.len()
        )));
    }
    Ok(Some(PlanRecord { header, changes }))
}
