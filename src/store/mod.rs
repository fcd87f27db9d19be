//! Persistence behind the [`Store`] trait: the network master data, the stock
//! ledger, job records and the policy history. `sled` is the embedded default
//! (`SledStore`); `PgStore` keeps the same ledger in PostgreSQL, shared by
//! several server processes.

use crate::domain::DomainError;
use crate::domain::audit::{AuditEvent, AuditFilter, MovementFilter};
use crate::domain::ledger::{
    Actor, AuditReport, Balance, LedgerEntry, LedgerState, MovementCommand, MovementOutcome,
    PostCommand, Reservation, ReservationFilter, ReserveCommand, VoidCommand,
};
use crate::domain::network::{
    CriticalityCost, DemandRate, DemandSeries, Fleet, Lane, Location, MachineModel, Network, Part,
    Policy, SupplierLeadTime,
};
use crate::domain::plans::{PlanHeader, PlanRecord};
use crate::domain::retire::{RetiredRecords, Retirement};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The request was refused by the ledger rules (bad input, not enough stock,
    /// unknown reservation, idempotency conflict).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The storage engine failed (disk, I/O); the write was not applied.
    #[error("storage failure: {0}")]
    Storage(String),
    /// Stored data broke an invariant (conservation, non-negativity, decoding).
    #[error("ledger corruption: {0}")]
    Corruption(String),
}

/// One master-data record to upsert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NetworkRecord {
    /// A location, keyed by id.
    Location(Location),
    /// A lane, keyed by (from, to, mode, kind).
    Lane(Lane),
    /// A part, keyed by id.
    Part(Part),
    /// A machine model, keyed by id.
    MachineModel(MachineModel),
    /// A fleet, keyed by (store, model).
    Fleet(Fleet),
    /// A demand series, keyed by (part, location).
    Demand(DemandSeries),
    /// A policy, keyed by (part, location).
    Policy(Policy),
    /// A supplier lead-time override, keyed by (part, location).
    SupplierLeadTime(SupplierLeadTime),
    /// A downtime cost per hour of a criticality class, keyed by the class.
    CriticalityCost(CriticalityCost),
    /// A demand rate, keyed by (part, location).
    DemandRate(DemandRate),
    /// Marks a part, location or lane retired (its record stays in its tree).
    Retire(Retirement),
    /// Removes a retirement mark: the record is active again.
    Revive(Retirement),
}

/// Every master-data record of a network (for a snapshot: records are
/// stored as given, so no load order is needed). The destructuring names every collection, so a new one fails to compile
/// here until it is added.
pub fn network_records(network: Network) -> Vec<NetworkRecord> {
    let Network {
        locations,
        lanes,
        parts,
        machine_models,
        fleets,
        demand,
        policies,
        supplier_lead_times,
        criticality_costs,
        demand_rates,
        retired,
    } = network;
    let mut records = Vec::new();
    records.extend(locations.into_values().map(NetworkRecord::Location));
    records.extend(lanes.into_values().map(NetworkRecord::Lane));
    records.extend(parts.into_values().map(NetworkRecord::Part));
    records.extend(
        machine_models
            .into_values()
            .map(NetworkRecord::MachineModel),
    );
    records.extend(fleets.into_values().map(NetworkRecord::Fleet));
    records.extend(demand.into_values().map(NetworkRecord::Demand));
    records.extend(policies.into_values().map(NetworkRecord::Policy));
    records.extend(
        supplier_lead_times
            .into_values()
            .map(NetworkRecord::SupplierLeadTime),
    );
    records.extend(
        criticality_costs
            .into_values()
            .map(NetworkRecord::CriticalityCost),
    );
    records.extend(demand_rates.into_values().map(NetworkRecord::DemandRate));
    // A retired record is kept with its retirement mark.
    let RetiredRecords {
        parts,
        locations,
        lanes,
    } = retired;
    for part in parts.into_values() {
        let mark = Retirement::Part(part.id.clone());
        records.extend([NetworkRecord::Part(part), NetworkRecord::Retire(mark)]);
    }
    for location in locations.into_values() {
        let mark = Retirement::Location(location.id.clone());
        records.extend([
            NetworkRecord::Location(location),
            NetworkRecord::Retire(mark),
        ]);
    }
    for lane in lanes.into_values() {
        let mark = Retirement::Lane(lane.key());
        records.extend([NetworkRecord::Lane(lane), NetworkRecord::Retire(mark)]);
    }
    records
}

/// The operation an idempotency key belongs to: keys are scoped per
/// operation, so a movement and a reservation may use the same client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// `RecordMovements`.
    Movement,
    /// `Reserve` (and the reserving part of `PromiseOrder`).
    Reserve,
    /// `ConfirmReservation`.
    Post,
    /// `ReleaseReservation`.
    Void,
}

/// What an idempotency key answered the first time it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOutcome {
    /// A movement: its log position (0 when it wrote nothing), recording time
    /// and shipment.
    Movement {
        /// Position in the log.
        sequence: u64,
        /// When it was recorded.
        recorded_at: jiff::Timestamp,
        /// The shipment, for transfers.
        shipment_id: Option<String>,
    },
    /// A reservation operation: the reservation it made or settled.
    Reservation {
        /// The reservation.
        reservation_id: String,
    },
}

impl From<codec::StoredOutcome> for KeyOutcome {
    fn from(outcome: codec::StoredOutcome) -> Self {
        match outcome {
            codec::StoredOutcome::Movement {
                sequence,
                recorded_at,
                shipment_id,
            } => Self::Movement {
                sequence,
                recorded_at,
                shipment_id,
            },
            codec::StoredOutcome::Reservation(reservation_id) => {
                Self::Reservation { reservation_id }
            }
        }
    }
}

impl From<&KeyOutcome> for codec::StoredOutcome {
    fn from(outcome: &KeyOutcome) -> Self {
        match outcome {
            KeyOutcome::Movement {
                sequence,
                recorded_at,
                shipment_id,
            } => Self::Movement {
                sequence: *sequence,
                recorded_at: *recorded_at,
                shipment_id: shipment_id.clone(),
            },
            KeyOutcome::Reservation { reservation_id } => Self::Reservation(reservation_id.clone()),
        }
    }
}

/// A stored idempotency key: the canonical payload of the request that first
/// used it (opaque bytes defined by spares, compared on retries; see
/// `store::codec`) and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The operation.
    pub scope: KeyScope,
    /// The client's key.
    pub key: String,
    /// The principal that used it; `None` for a key stored before layout 4,
    /// which answers for every principal.
    pub principal: Option<String>,
    /// The canonical payload.
    pub payload: Vec<u8>,
    /// The answer.
    pub outcome: KeyOutcome,
}

/// One item of a consistent snapshot of a store: what a backup holds and a
/// restore loads, independent of the storage engine.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotItem {
    /// A master-data record.
    Network(NetworkRecord),
    /// A movement-log entry (in sequence order).
    Entry(LedgerEntry),
    /// A reservation, in its state at the snapshot's cut.
    Reservation(Reservation),
    /// An idempotency key.
    Idempotency(IdempotencyRecord),
    /// An opaque record (jobs, the demo marker).
    Record {
        /// Its collection.
        collection: String,
        /// Its key.
        key: String,
        /// Its bytes.
        value: Vec<u8>,
    },
}

/// Durable state of the service. Every mutating call is acknowledged only after
/// its effects are flushed to disk, applies atomically (all or nothing), and is
/// safe to call from many threads at once.
pub trait Store: Send + Sync + 'static {
    /// Loads every master-data record.
    fn load_network(&self) -> Result<Network, StoreError>;
    /// Upserts master-data records (already validated by the caller) in one transaction.
    fn save_network_records(&self, records: &[NetworkRecord]) -> Result<(), StoreError>;

    /// Records a batch of movements atomically, each entry carrying `actor`.
    /// Each command's idempotency key is checked first, within `actor`'s
    /// keys (and those stored before layout 4, which belong to nobody
    /// recorded): same key and payload returns the stored outcome with
    /// `replayed = true`; same key with a different payload is
    /// `DomainError::IdempotencyConflict`. Not enough stock is
    /// `DomainError::FailedPrecondition`.
    fn record_movements(
        &self,
        actor: &Actor,
        commands: &[MovementCommand],
        now: Timestamp,
    ) -> Result<Vec<MovementOutcome>, StoreError>;
    /// Reserves every command or none (available -> reserved). Routine commands
    /// may take only available minus `protected_quantity`.
    fn reserve(
        &self,
        actor: &Actor,
        commands: &[ReserveCommand],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError>;
    /// Posts a pending reservation (reserved -> customer, or -> in transit).
    fn post_reservation(
        &self,
        actor: &Actor,
        command: &PostCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;
    /// Voids a pending reservation (reserved -> available).
    fn void_reservation(
        &self,
        actor: &Actor,
        command: &VoidCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;
    /// Expires every pending reservation whose `expires_at <= now`, exactly
    /// once; the entries' actor is `system:reservation-expiry`.
    fn expire_reservations(&self, now: Timestamp) -> Result<Vec<Reservation>, StoreError>;
    /// One reservation.
    fn reservation(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError>;
    /// Reservations matching a filter, ordered by id.
    fn reservations(&self, filter: &ReservationFilter) -> Result<Vec<Reservation>, StoreError>;

    /// The balance of one part at one location (zero if never moved).
    fn balance(&self, part_id: &str, location_id: &str) -> Result<Balance, StoreError>;
    /// Non-zero balances filtered by part and/or location, ordered by (part, location).
    fn balances(
        &self,
        part_id: Option<&str>,
        location_id: Option<&str>,
    ) -> Result<Vec<Balance>, StoreError>;
    /// Up to `limit` non-zero balances at one location, ordered by part, of
    /// the parts after `after_part_id` (from the first when `None`): one page
    /// of a location's stock. The default filters [`Store::balances`]; a
    /// store with a location index overrides it so a page costs the page.
    fn balances_at_location(
        &self,
        location_id: &str,
        after_part_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Balance>, StoreError> {
        Ok(self
            .balances(None, Some(location_id))?
            .into_iter()
            .filter(|b| after_part_id.is_none_or(|after| b.part_id.as_str() > after))
            .take(limit)
            .collect())
    }
    /// Runs `read` on the in-memory ledger at one cut (under one read
    /// lock: a write is either all in it or not at all) and returns that
    /// cut, the sequence of the last movement applied (0 for an empty
    /// ledger). Every read of balances in place goes through it; keep
    /// `read` short, as writes wait for it.
    fn read_ledger(&self, read: &mut dyn FnMut(&LedgerState)) -> Result<u64, StoreError>;
    /// Calls `visit` with every non-zero balance of one part (the promise
    /// engine's read), in place (see [`Store::read_ledger`]).
    fn visit_part_balances(
        &self,
        part_id: &str,
        visit: &mut dyn FnMut(&Balance),
    ) -> Result<(), StoreError> {
        self.read_ledger(&mut |ledger| ledger.visit_part_balances(part_id, visit))
            .map(|_| ())
    }
    /// Calls `visit` with every non-zero balance of each of `part_ids` (in the
    /// order given; a part's balances ordered by location, as
    /// [`Store::visit_part_balances`] gives them), all read at one cut of the
    /// ledger, and returns that cut: the sequence of the last movement
    /// applied (0 for an empty ledger). Answers computed from one such read
    /// are consistent with each other (the batch availability calls).
    fn visit_balances_at_one_sequence(
        &self,
        part_ids: &[&str],
        visit: &mut dyn FnMut(&Balance),
    ) -> Result<u64, StoreError> {
        self.read_ledger(&mut |ledger| {
            for part_id in part_ids {
                ledger.visit_part_balances(part_id, visit);
            }
        })
    }
    /// Replays the movement log and checks conservation, non-negativity and that
    /// the persisted balances equal the replayed ones.
    fn audit(&self) -> Result<AuditReport, StoreError>;

    /// Up to `filter.limit` log entries matching `filter`, in sequence order,
    /// after `filter.after_sequence`, and the sequence to continue after
    /// (`None` when the log is exhausted). A page reads from its cursor on,
    /// never the entries before it; it stops after
    /// [`MAX_MOVEMENTS_SCANNED`] entries, so a rare filter may answer a short
    /// (even empty) page with a cursor to continue from.
    fn movements(
        &self,
        filter: &MovementFilter,
    ) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError>;

    /// Appends `event` to the audit trail with the next id (its `id` is
    /// ignored), flushed before it returns; returns the stored event.
    fn append_audit_event(&self, event: AuditEvent) -> Result<AuditEvent, StoreError>;
    /// Up to `filter.limit` audit events matching `filter`, oldest first,
    /// after `filter.after_id`, and the id to continue after (`None` when the
    /// trail is exhausted); bounded like [`Store::movements`].
    fn audit_events(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError>;

    /// Stores an opaque record (e.g. a job) under `key` in `collection`, flushed.
    fn put_record(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Every record of `collection`, ordered by key.
    fn records(&self, collection: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// One record of `collection`, or `None`. The default reads them all; a
    /// store that other processes write to overrides it.
    fn record(&self, collection: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .records(collection)?
            .into_iter()
            .find_map(|(k, value)| (k == key).then_some(value)))
    }
    /// The keys of `collection`'s records, ordered. The default reads the
    /// records; a store that other processes write to overrides it.
    fn record_keys(&self, collection: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .records(collection)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Streams a consistent snapshot to `sink` while writes go on: the ledger
    /// as of one log sequence (the cut: every entry up to it, reservations
    /// and idempotency keys as they were then), master data and records as
    /// read (master data only grows, so it covers every id the ledger at the
    /// cut uses). Returns the cut. Errors: the sink's, or a storage failure.
    fn snapshot(
        &self,
        sink: &mut dyn FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;

    /// Loads a snapshot into an empty store and checks it as `open` would.
    /// Errors: `Rejected` if the store is not empty; `Corruption` if the items
    /// do not form a sound ledger (nothing is then committed).
    fn restore(&self, items: Vec<SnapshotItem>) -> Result<(), StoreError>;

    /// Applies a plan in one transaction: writes every policy it sets,
    /// removes every policy it clears, and appends the plan (header and
    /// changes) to the policy history. Errors: `Rejected` if its id is
    /// already in the history; `Storage` (nothing written).
    fn apply_plan(&self, plan: &PlanRecord) -> Result<(), StoreError>;
    /// The policy history, oldest first (headers only).
    fn plan_history(&self) -> Result<Vec<PlanHeader>, StoreError>;
    /// One plan of the history with its changes, or `None` if unknown.
    fn plan(&self, plan_id: &str) -> Result<Option<PlanRecord>, StoreError>;

    /// The queue of shared work (`work`) of every server on this store, or
    /// `None` for a store only one process opens: the application then
    /// keeps its units in memory (`work::LocalWorkQueue`). Called once, when
    /// the application opens.
    fn work_queue(&self) -> Option<std::sync::Arc<dyn work::WorkQueue>> {
        None
    }

    /// The leases of the jobs every server on this store runs
    /// ([`leases::JobLeases`]), or `None` for a store only one process
    /// opens: jobs a restart cut off are then marked failed. Called once,
    /// when the application opens.
    fn job_leases(&self) -> Option<std::sync::Arc<dyn leases::JobLeases>> {
        None
    }

    /// Counters of the shared state other processes on this store may
    /// change, by name: [`NETWORK_COUNTER`] moves with every change to the
    /// master data or the policies, and `records/<collection>` with every
    /// [`Store::put_record`] into that collection. A server sharing the
    /// store with others polls them and reloads what moved (see
    /// `Spares::refresh_shared_state`). Empty for a store only one process
    /// opens: nothing there changes behind this process's back.
    fn change_counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(Vec::new())
    }

    /// Registers `observer`, which is then called with the log entries
    /// other processes sharing this store wrote, in sequence order, once
    /// this process has applied them to the balances it reads (its ledger
    /// follower read them, or one of its writes caught up). It must return
    /// quickly: it may run while the store holds the ledger lock of every
    /// process. The first registration holds. A store only one process
    /// opens never calls it (the default ignores it).
    fn observe_other_writers(&self, observer: OtherWritersObserver) {
        drop(observer);
    }
}

/// The change counter of the master data and policies
/// ([`Store::change_counters`]).
pub const NETWORK_COUNTER: &str = "network";

/// The change counter of the records of `collection`
/// ([`Store::change_counters`]).
pub fn records_counter(collection: &str) -> String {
    format!("records/{collection}")
}

/// See [`Store::observe_other_writers`].
pub type OtherWritersObserver = Box<dyn Fn(&[LedgerEntry]) + Send + Sync>;

/// Most log entries (or audit events) one page of [`Store::movements`] (or
/// [`Store::audit_events`]) reads: a filter that matches rarely answers a
/// short page with a cursor instead of reading the whole log in one call.
pub const MAX_MOVEMENTS_SCANNED: usize = 100_000;

mod codec;
pub mod layout;
pub mod leases;
pub mod pg;
pub mod sled_store;
pub mod work;

pub use pg::PgStore;
pub use sled_store::SledStore;
