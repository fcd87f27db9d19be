//! Persistence behind the [`Store`] trait: the network master data, the stock
//! ledger and job records. `sled` is the embedded default (`SledStore`).

use crate::domain::DomainError;
use crate::domain::ledger::{
    AuditReport, Balance, MovementCommand, MovementOutcome, PostCommand, Reservation,
    ReservationFilter, ReserveCommand, VoidCommand,
};
use crate::domain::network::{
    CriticalityCost, DemandRate, DemandSeries, Fleet, Lane, Location, MachineModel, Network, Part,
    Policy, SupplierLeadTime,
};
use crate::domain::retire::Retirement;
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

/// Durable state of the service. Every mutating call is acknowledged only after
/// its effects are flushed to disk, applies atomically (all or nothing), and is
/// safe to call from many threads at once.
pub trait Store: Send + Sync + 'static {
    /// Loads every master-data record.
    fn load_network(&self) -> Result<Network, StoreError>;
    /// Upserts master-data records (already validated by the caller) in one transaction.
    fn save_network_records(&self, records: &[NetworkRecord]) -> Result<(), StoreError>;

    /// Records a batch of movements atomically. Each command's idempotency key is
    /// checked first: same key and payload returns the stored outcome with
    /// `replayed = true`; same key with a different payload is
    /// `DomainError::IdempotencyConflict`. Not enough stock is
    /// `DomainError::FailedPrecondition`.
    fn record_movements(
        &self,
        commands: &[MovementCommand],
        now: Timestamp,
    ) -> Result<Vec<MovementOutcome>, StoreError>;
    /// Reserves every command or none (available -> reserved). Routine commands
    /// may take only available minus `protected_quantity`.
    fn reserve(
        &self,
        commands: &[ReserveCommand],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError>;
    /// Posts a pending reservation (reserved -> customer, or -> in transit).
    fn post_reservation(
        &self,
        command: &PostCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;
    /// Voids a pending reservation (reserved -> available).
    fn void_reservation(
        &self,
        command: &VoidCommand,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;
    /// Expires every pending reservation whose `expires_at <= now`, exactly once.
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
    /// Replays the movement log and checks conservation, non-negativity and that
    /// the persisted balances equal the replayed ones.
    fn audit(&self) -> Result<AuditReport, StoreError>;

    /// Stores an opaque record (e.g. a job) under `key` in `collection`, flushed.
    fn put_record(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Every record of `collection`, ordered by key.
    fn records(&self, collection: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

mod codec;
pub mod layout;
pub mod sled_store;

pub use sled_store::SledStore;
