//! The stock ledger's data types and its pure posting rules.
//!
//! Stock moves only as double-entry movements between accounts
//! `(part, location, bucket)` and the external supplier, customer, scrap and
//! adjustment accounts. On hand = available + reserved. For every part the
//! balances of all accounts sum to zero, and every internal bucket stays >= 0.

use super::error::DomainError;
use super::network::{LocationId, PartId, Qty};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The one bound on stock quantities. Every movement, reservation and counted
/// quantity, and every account balance (internal and external alike), stays
/// within `-MAX_QUANTITY..=MAX_QUANTITY`; a write that would pass it is refused
/// with `OutOfRange`. 10^12 units is far above any real count of one part, and
/// nine million such balances still sum inside `i64`, so no sum the ledger or
/// its readers form (on hand, in transit, an audit's per-part total) can
/// overflow, and nothing reaches the log that the audit on open would reject.
pub const MAX_QUANTITY: u64 = 1_000_000_000_000;

/// `MAX_QUANTITY` as a signed balance.
const MAX_BALANCE: i64 = MAX_QUANTITY as i64;

/// Checks a quantity against [`MAX_QUANTITY`]; `OutOfRange` naming `field`.
pub fn check_quantity(field: &str, quantity: u64) -> Result<(), DomainError> {
    if quantity > MAX_QUANTITY {
        return Err(DomainError::OutOfRange {
            field: field.to_string(),
            reason: format!("{quantity} units is above the limit of {MAX_QUANTITY} units"),
        });
    }
    Ok(())
}

/// What a movement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MovementKind {
    /// Supplier -> available at the location.
    Receipt,
    /// Available at the location -> customer.
    Issue,
    /// Available at the location -> in transit to `to_location_id`.
    TransferShip,
    /// In transit (shipment) -> available at the location.
    TransferReceive,
    /// Count correction; the sign of the quantity gives the direction.
    Adjustment,
    /// Available at the location -> scrap.
    Scrap,
    /// A stock count: sets on hand (available + reserved) at the location to
    /// `quantity` (>= 0) by an adjustment of the difference, logged as an
    /// [`MovementKind::Adjustment`] noted "stock count". A count equal to on
    /// hand moves nothing; a count below the units reserved there is refused.
    Count,
}

/// The note of the adjustment a [`MovementKind::Count`] writes.
pub const STOCK_COUNT_NOTE: &str = "stock count";

/// A movement as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementCommand {
    /// Client idempotency key.
    pub idempotency_key: String,
    /// What to do.
    pub kind: MovementKind,
    /// The part.
    pub part_id: PartId,
    /// The location the stock is at (receive: where it arrives).
    pub location_id: LocationId,
    /// Units; positive except for negative adjustments.
    pub quantity: i64,
    /// Transfer ship: the destination.
    pub to_location_id: Option<LocationId>,
    /// Transfer ship/receive: the shipment (generated on ship when absent).
    pub shipment_id: Option<String>,
    /// Transfer ship: expected arrival.
    pub expected_arrival: Option<Timestamp>,
    /// Free text.
    pub note: String,
}

/// The ledger's answer for one movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementOutcome {
    /// The key the client sent.
    pub idempotency_key: String,
    /// Position in the movement log.
    pub sequence: u64,
    /// True when this is the stored result of an earlier identical request.
    pub replayed: bool,
    /// The shipment, for transfers.
    pub shipment_id: Option<String>,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Stock on its way to a location (an in-transit account owned by the destination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundShipment {
    /// Shipment id.
    pub shipment_id: String,
    /// Where it comes from.
    pub from_location_id: LocationId,
    /// Units still in transit.
    pub quantity: Qty,
    /// Expected arrival, when known.
    pub expected_arrival: Option<Timestamp>,
}

/// Balances of one part at one location.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// The part.
    pub part_id: PartId,
    /// The location.
    pub location_id: LocationId,
    /// Free stock.
    pub available: Qty,
    /// Stock held by pending reservations.
    pub reserved: Qty,
    /// Shipments on their way here.
    pub inbound: Vec<InboundShipment>,
}

impl Balance {
    /// On hand = available + reserved (each within [`MAX_QUANTITY`], so the sum fits).
    pub fn on_hand(&self) -> Qty {
        self.available.saturating_add(self.reserved)
    }

    /// Units in transit to this location.
    pub fn in_transit(&self) -> Qty {
        self.inbound
            .iter()
            .fold(0, |sum, s| sum.saturating_add(s.quantity))
    }
}

/// Routine or critical (machine-down) demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Priority {
    /// May take available minus protected.
    #[default]
    Routine,
    /// May take all available stock, never stock held by another reservation.
    Critical,
}

/// Life cycle of a reservation: pending, then exactly one of posted, voided, expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReservationState {
    /// Holding stock.
    Pending,
    /// Confirmed: shipped or consumed.
    Posted,
    /// Released by the client.
    Voided,
    /// Its TTL passed.
    Expired,
}

/// A request to hold stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveCommand {
    /// Client idempotency key.
    pub idempotency_key: String,
    /// The part.
    pub part_id: PartId,
    /// Where the stock is.
    pub location_id: LocationId,
    /// Units to hold (> 0).
    pub quantity: Qty,
    /// Time to live in seconds.
    pub ttl_seconds: u32,
    /// Routine or critical.
    pub priority: Priority,
    /// Units of available stock at the location that routine demand may not take
    /// (from the policy in force; read by the caller, checked inside the write).
    pub protected_quantity: Qty,
    /// Client's order reference.
    pub order_reference: String,
    /// The location the stock is held for when it is not where it is held
    /// (an order's destination store); it decides which dealer sees the
    /// reservation. `None`: held for `location_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_location_id: Option<LocationId>,
}

/// Stock held for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Server-assigned id.
    pub reservation_id: String,
    /// The key of the reserve request.
    pub idempotency_key: String,
    /// The part.
    pub part_id: PartId,
    /// Where the stock is held.
    pub location_id: LocationId,
    /// Units held.
    pub quantity: Qty,
    /// Life-cycle state.
    pub state: ReservationState,
    /// Routine or critical.
    pub priority: Priority,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it expires if still pending.
    pub expires_at: Timestamp,
    /// When it left the pending state.
    pub settled_at: Option<Timestamp>,
    /// Client's order reference.
    pub order_reference: String,
    /// Posted as a transfer to this location.
    pub ship_to_location_id: Option<LocationId>,
    /// Posted as this shipment.
    pub shipment_id: Option<String>,
    /// The location the stock is held for, when not `location_id` (see
    /// [`ReserveCommand::for_location_id`]); absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_location_id: Option<LocationId>,
}

impl Reservation {
    /// The location this reservation holds stock for: the order's
    /// destination, else where the stock is held. Dealers see the
    /// reservations held for their stores.
    pub fn held_for(&self) -> &str {
        self.for_location_id.as_deref().unwrap_or(&self.location_id)
    }
}

/// Confirm a reservation: reserved -> customer, or -> in transit to `ship_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCommand {
    /// The reservation.
    pub reservation_id: String,
    /// Client idempotency key.
    pub idempotency_key: String,
    /// Post as a transfer to this location instead of issuing to the customer.
    pub ship_to_location_id: Option<LocationId>,
    /// Expected arrival of the transfer.
    pub expected_arrival: Option<Timestamp>,
}

/// Release a reservation: reserved -> available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidCommand {
    /// The reservation.
    pub reservation_id: String,
    /// Client idempotency key.
    pub idempotency_key: String,
}

/// Filter for listing reservations; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReservationFilter {
    /// Only this part.
    pub part_id: Option<PartId>,
    /// Only this location.
    pub location_id: Option<LocationId>,
    /// Only this state.
    pub state: Option<ReservationState>,
    /// Only reservations held for one of these locations
    /// ([`Reservation::held_for`]): a dealer's stores.
    pub held_for: Option<Vec<LocationId>>,
    /// Start after this reservation id (paging).
    pub after_id: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// What an audit of the ledger found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Movements in the log.
    pub movements: u64,
    /// Parts checked.
    pub parts: u64,
    /// Problems found (empty when the ledger is sound).
    pub problems: Vec<String>,
}

// ---------------------------------------------------------------------------
// Accounts, entries and the pure posting rules.
// ---------------------------------------------------------------------------

/// Where stock sits inside a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bucket {
    /// Free stock.
    Available,
    /// Stock held by pending reservations.
    Reserved,
    /// Stock on its way here as this shipment (the destination owns the account).
    InTransit(String),
}

/// An account outside the network, one per part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExternalParty {
    /// Where receipts come from.
    Supplier,
    /// Where issues and posted reservations go.
    Customer,
    /// Where scrapped stock goes.
    Scrap,
    /// The other side of count corrections.
    Adjustment,
}

/// A ledger account. Internal accounts never go below zero; external ones may.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Account {
    /// Stock of a part at a location in a bucket.
    Internal {
        /// The part.
        part_id: PartId,
        /// The location (for in-transit stock: the destination).
        location_id: LocationId,
        /// The bucket.
        bucket: Bucket,
    },
    /// A part's account with the outside world.
    External {
        /// The part.
        part_id: PartId,
        /// Which outside party.
        party: ExternalParty,
    },
}

impl Account {
    /// The available bucket of a part at a location.
    pub fn available(part_id: &str, location_id: &str) -> Self {
        Self::internal(part_id, location_id, Bucket::Available)
    }

    /// The reserved bucket of a part at a location.
    pub fn reserved(part_id: &str, location_id: &str) -> Self {
        Self::internal(part_id, location_id, Bucket::Reserved)
    }

    /// The in-transit account of a shipment to a location.
    pub fn in_transit(part_id: &str, location_id: &str, shipment_id: &str) -> Self {
        Self::internal(
            part_id,
            location_id,
            Bucket::InTransit(shipment_id.to_string()),
        )
    }

    /// An internal account.
    pub fn internal(part_id: &str, location_id: &str, bucket: Bucket) -> Self {
        Self::Internal {
            part_id: part_id.to_string(),
            location_id: location_id.to_string(),
            bucket,
        }
    }

    /// A part's external account.
    pub fn external(part_id: &str, party: ExternalParty) -> Self {
        Self::External {
            part_id: part_id.to_string(),
            party,
        }
    }

    /// The part this account holds.
    pub fn part_id(&self) -> &str {
        match self {
            Self::Internal { part_id, .. } | Self::External { part_id, .. } => part_id,
        }
    }

    /// Whether the account is inside the network (and so must stay >= 0).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Internal { .. })
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Internal {
                part_id,
                location_id,
                bucket: Bucket::Available,
            } => write!(f, "available stock of {part_id} at {location_id}"),
            Self::Internal {
                part_id,
                location_id,
                bucket: Bucket::Reserved,
            } => write!(f, "reserved stock of {part_id} at {location_id}"),
            Self::Internal {
                part_id,
                location_id,
                bucket: Bucket::InTransit(shipment_id),
            } => write!(
                f,
                "stock of {part_id} in transit to {location_id} on shipment {shipment_id}"
            ),
            Self::External { part_id, party } => {
                let party = match party {
                    ExternalParty::Supplier => "supplier",
                    ExternalParty::Customer => "customer",
                    ExternalParty::Scrap => "scrap",
                    ExternalParty::Adjustment => "adjustment",
                };
                write!(f, "{party} account of {part_id}")
            }
        }
    }
}

/// One side of a double-entry posting: `delta` units added to `account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The account.
    pub account: Account,
    /// Signed change (debit > 0, credit < 0).
    pub delta: i64,
}

/// A shipment's route, fixed by the entry that first ships on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentInfo {
    /// Shipment id.
    pub shipment_id: String,
    /// Where it leaves from.
    pub from_location_id: LocationId,
    /// Where it arrives (owner of its in-transit accounts).
    pub to_location_id: LocationId,
    /// Expected arrival, when known.
    pub expected_arrival: Option<Timestamp>,
}

/// Who wrote a log entry: the authenticated principal of a gRPC call, a
/// local (offline) command, the server itself, or, for entries written
/// before layout 4, nobody known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Actor {
    /// The principal id (an API key id, a JWT subject, a certificate
    /// subject), `local:<user>` for an offline command, `system:<task>` for
    /// the server's own writes, or [`Actor::UNKNOWN_ID`].
    pub id: String,
    /// The principal's role (`admin`, `warehouse`, ...), `local`, `system`
    /// or `unknown`.
    pub role: String,
}

impl Actor {
    /// The id of the actor of every entry written before layout 4, which
    /// recorded none.
    pub const UNKNOWN_ID: &'static str = "unknown (before layout 4)";

    /// An authenticated principal with `role`.
    pub fn principal(id: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            role: role.into(),
        }
    }

    /// An offline command (import, `keys create`, restore) run by `user`
    /// (`cli` when the user is not known): `local:<user>`.
    pub fn local(user: &str) -> Self {
        let user = if user.trim().is_empty() { "cli" } else { user };
        Self::principal(format!("local:{user}"), "local")
    }

    /// The server's own writes, e.g. `system:reservation-expiry`.
    pub fn system(task: &str) -> Self {
        Self::principal(format!("system:{task}"), "system")
    }

    /// The actor of an entry written before layout 4 (the layout that
    /// records actors), in backups and logs that carry none.
    pub fn unknown_before_layout_4() -> Self {
        Self::principal(Self::UNKNOWN_ID, "unknown")
    }
}

/// Why an entry is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryCause {
    /// A client movement.
    Movement {
        /// Its idempotency key.
        idempotency_key: String,
        /// What it did.
        kind: MovementKind,
        /// Free text.
        note: String,
    },
    /// A reservation was made (available -> reserved).
    Reserve {
        /// The reservation.
        reservation_id: String,
    },
    /// A reservation was posted (reserved -> customer or in transit).
    Post {
        /// The reservation.
        reservation_id: String,
    },
    /// A reservation was voided (reserved -> available).
    Void {
        /// The reservation.
        reservation_id: String,
    },
    /// A reservation expired (reserved -> available).
    Expire {
        /// The reservation.
        reservation_id: String,
    },
}

/// An immutable record of the movement log. Its legs sum to zero per part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the log (strictly increasing, from 1).
    pub sequence: u64,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Why.
    pub cause: EntryCause,
    /// The double-entry legs.
    pub legs: Vec<Leg>,
    /// The shipment this entry ships on, if any (its route).
    pub shipment: Option<ShipmentInfo>,
    /// Who wrote it (absent from backups of layouts before 4, which read
    /// as [`Actor::unknown_before_layout_4`]).
    #[serde(default = "Actor::unknown_before_layout_4")]
    pub actor: Actor,
}

impl LedgerEntry {
    /// Problems with the entry on its own: legs that do not sum to zero per part.
    pub fn imbalance(&self) -> Option<String> {
        let report = |part: &str, sum: i128| {
            format!(
                "entry {} legs of part {part} sum to {sum}, not 0",
                self.sequence
            )
        };
        // Every entry the rules write moves one part: sum without a map.
        if let Some(first) = self.legs.first() {
            let part = first.account.part_id();
            if self.legs.iter().all(|leg| leg.account.part_id() == part) {
                let sum: i128 = self.legs.iter().map(|leg| i128::from(leg.delta)).sum();
                return (sum != 0).then(|| report(part, sum));
            }
        }
        let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
        for leg in &self.legs {
            *sums.entry(leg.account.part_id()).or_default() += i128::from(leg.delta);
        }
        sums.into_iter()
            .find(|(_, sum)| *sum != 0)
            .map(|(part, sum)| report(part, sum))
    }
}

/// The server-assigned id of the reservation made by log entry `sequence`
/// (zero-padded so that ids order like their sequences).
pub fn reservation_id_for(sequence: u64) -> String {
    format!("R{sequence:020}")
}

/// The generated id of a shipment opened by log entry `sequence`.
pub fn shipment_id_for(sequence: u64) -> String {
    format!("S{sequence:020}")
}

/// Read access to balances and shipments, for the posting rules.
pub trait LedgerView {
    /// The balance of an account (0 if never moved).
    fn account_balance(&self, account: &Account) -> i64;
    /// A shipment's route, if it exists.
    fn shipment(&self, shipment_id: &str) -> Option<&ShipmentInfo>;
}

/// Derived ledger state: every non-zero account balance and every shipment's route.
/// Rebuilt from the log by applying entries in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerState {
    accounts: BTreeMap<Account, i64>,
    shipments: HashMap<String, ShipmentInfo>,
    /// Stock by location: for each location, the parts with a non-zero
    /// internal account there, with how many such accounts (so the entry
    /// goes when the last one reaches zero) and their available and
    /// reserved balances. Derived from `accounts` in `apply`; it makes a
    /// location's stock a range read of this index alone (no search of the
    /// ledger per part) unless units are in transit to it.
    by_location: StockIndex,
    /// The same index by part: for each part, its locations with a non-zero
    /// internal account. A promise reads a part's balances through it with
    /// one hash lookup, where a search of `accounts` compared the part id
    /// at every level of the tree.
    by_part: StockIndex,
}

/// One of the two stock indexes of [`LedgerState`]: by location then part,
/// or by part then location.
type StockIndex = rustc_hash::FxHashMap<String, BTreeMap<String, AtLocation>>;

/// Records in `index` an internal account of the entry (`outer`, `inner`)
/// going from `before` to `after`, removing the entry (and `outer`'s map)
/// once nothing is left in it.
fn step_index(
    index: &mut StockIndex,
    outer: &str,
    inner: &str,
    bucket: &Bucket,
    before: i64,
    after: i64,
) {
    // The ids are copied only for a new entry.
    let entries = match index.get_mut(outer) {
        Some(entries) => entries,
        None => index.entry(outer.to_owned()).or_default(),
    };
    let at = match entries.get_mut(inner) {
        Some(at) => at,
        None => entries.entry(inner.to_owned()).or_default(),
    };
    if at.step(bucket, before, after) {
        entries.remove(inner);
        if entries.is_empty() {
            index.remove(outer);
        }
    }
}

/// A part's entry in the location index of [`LedgerState`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AtLocation {
    /// Non-zero internal accounts of the part at the location.
    accounts: u32,
    available: i64,
    reserved: i64,
}

impl AtLocation {
    /// Records an internal account of this part and location going from
    /// `before` to `after` in `bucket`. Returns whether the entry is now
    /// empty (no non-zero account left), so the caller removes it.
    fn step(&mut self, bucket: &Bucket, before: i64, after: i64) -> bool {
        match (before != 0, after != 0) {
            (false, true) => self.accounts += 1,
            (true, false) => self.accounts = self.accounts.saturating_sub(1),
            _ => {}
        }
        match bucket {
            Bucket::Available => self.available = after,
            Bucket::Reserved => self.reserved = after,
            Bucket::InTransit(_) => {}
        }
        self.accounts == 0
    }

    /// Whether the available and reserved buckets are all the accounts
    /// (nothing in transit), so the balance is this entry alone.
    fn is_whole(&self) -> bool {
        self.accounts == u32::from(self.available != 0) + u32::from(self.reserved != 0)
    }
}

impl LedgerView for LedgerState {
    fn account_balance(&self, account: &Account) -> i64 {
        self.accounts.get(account).copied().unwrap_or(0)
    }

    fn shipment(&self, shipment_id: &str) -> Option<&ShipmentInfo> {
        self.shipments.get(shipment_id)
    }
}

impl LedgerState {
    /// Applies one entry. Returns the problems it causes (imbalanced legs, an
    /// internal account below zero, overflow); the entry is applied regardless so
    /// that an audit can go on and report everything.
    pub fn apply(&mut self, entry: &LedgerEntry) -> Vec<String> {
        let mut problems: Vec<String> = entry.imbalance().into_iter().collect();
        if let Some(shipment) = &entry.shipment {
            self.shipments
                .entry(shipment.shipment_id.clone())
                .or_insert_with(|| shipment.clone());
        }
        for leg in &entry.legs {
            // One search per leg for an account that already has a balance
            // (the common case): its balance is read and written in place.
            let slot = self.accounts.get_mut(&leg.account);
            let current = slot.as_deref().copied().unwrap_or(0);
            let Some(next) = current.checked_add(leg.delta) else {
                problems.push(format!(
                    "entry {} overflows the {}",
                    entry.sequence, leg.account
                ));
                continue;
            };
            if next < 0 && leg.account.is_internal() {
                problems.push(format!(
                    "entry {} takes the {} to {next}",
                    entry.sequence, leg.account
                ));
            }
            match slot {
                Some(balance) if next != 0 => *balance = next,
                Some(_) => {
                    self.accounts.remove(&leg.account);
                }
                None if next != 0 => {
                    self.accounts.insert(leg.account.clone(), next);
                }
                None => {}
            }
            if current != next {
                self.index(&leg.account, current, next);
            }
        }
        problems
    }

    /// Records in the location and part indexes an internal account going from
    /// `before` to `after`: counts it when it becomes non-zero, uncounts it
    /// when it reaches zero, and keeps the available and reserved figures.
    fn index(&mut self, account: &Account, before: i64, after: i64) {
        let Account::Internal {
            part_id,
            location_id,
            bucket,
        } = account
        else {
            return;
        };
        step_index(
            &mut self.by_location,
            location_id,
            part_id,
            bucket,
            before,
            after,
        );
        step_index(
            &mut self.by_part,
            part_id,
            location_id,
            bucket,
            before,
            after,
        );
    }

    /// Up to `limit` non-zero balances at one location, ordered by part, of
    /// the parts after `after_part_id` (all when `None`). Reads the location
    /// index, so the cost is the page, not the ledger.
    pub fn balances_at_location(
        &self,
        location_id: &str,
        after_part_id: Option<&str>,
        limit: usize,
    ) -> Vec<Balance> {
        use std::ops::Bound;
        let Some(parts) = self.by_location.get(location_id) else {
            return Vec::new();
        };
        let start = after_part_id.map_or(Bound::Unbounded, Bound::Excluded);
        parts
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(part_id, at)| {
                if !at.is_whole() {
                    // Units in transit: their shipments are in the ledger.
                    return self.balance(part_id, location_id);
                }
                // Internal balances are checked >= 0 on every write (see
                // `add_to_balance`); clamping is for display.
                Balance {
                    part_id: part_id.clone(),
                    location_id: location_id.to_string(),
                    available: u64::try_from(at.available).unwrap_or(0),
                    reserved: u64::try_from(at.reserved).unwrap_or(0),
                    ..Balance::default()
                }
            })
            .collect()
    }

    /// Calls `visit` with each non-zero balance of one part, ordered by
    /// location, reusing one [`Balance`] so that no balance is cloned.
    ///
    /// Reads the part index: a location whose units are all available or
    /// reserved is answered from it alone; one with units in transit reads
    /// its accounts (for the shipments).
    pub fn visit_part_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance)) {
        let Some(locations) = self.by_part.get(part_id) else {
            return;
        };
        let mut balance = Balance {
            part_id: part_id.to_string(),
            ..Balance::default()
        };
        for (location_id, at) in locations {
            if !at.is_whole() {
                visit(&self.balance(part_id, location_id));
                continue;
            }
            // Internal balances are checked >= 0 on every write (see
            // `add_to_balance`); clamping is for display.
            balance.location_id.clone_from(location_id);
            balance.available = u64::try_from(at.available).unwrap_or(0);
            balance.reserved = u64::try_from(at.reserved).unwrap_or(0);
            visit(&balance);
        }
    }

    /// Every non-zero account, ordered.
    pub fn accounts(&self) -> &BTreeMap<Account, i64> {
        &self.accounts
    }

    /// Parts whose accounts do not sum to zero, with their sums.
    pub fn conservation_problems(&self) -> Vec<String> {
        let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
        for (account, balance) in &self.accounts {
            *sums.entry(account.part_id()).or_default() += i128::from(*balance);
        }
        sums.into_iter()
            .filter(|(_, sum)| *sum != 0)
            .map(|(part, sum)| format!("part {part} accounts sum to {sum}, not 0"))
            .collect()
    }

    /// Number of distinct parts with a non-zero account.
    pub fn part_count(&self) -> u64 {
        let mut parts: Vec<&str> = self.accounts.keys().map(Account::part_id).collect();
        parts.dedup();
        parts.len() as u64
    }

    /// The balance of one part at one location.
    pub fn balance(&self, part_id: &str, location_id: &str) -> Balance {
        let start = Account::available(part_id, location_id);
        let mut balance = Balance {
            part_id: part_id.to_string(),
            location_id: location_id.to_string(),
            ..Balance::default()
        };
        for (account, quantity) in self.accounts.range(start..) {
            match account {
                Account::Internal {
                    part_id: p,
                    location_id: l,
                    bucket,
                } if p == part_id && l == location_id => {
                    self.add_to_balance(&mut balance, bucket, *quantity)
                }
                _ => break,
            }
        }
        balance
    }

    /// Non-zero balances, filtered, ordered by (part, location).
    pub fn balances(&self, part_id: Option<&str>, location_id: Option<&str>) -> Vec<Balance> {
        if let (None, Some(location_id)) = (part_id, location_id) {
            return self.balances_at_location(location_id, None, usize::MAX);
        }
        let start = Account::available(part_id.unwrap_or(""), "");
        let mut out: Vec<Balance> = Vec::new();
        for (account, quantity) in self.accounts.range(start..) {
            let Account::Internal {
                part_id: p,
                location_id: l,
                bucket,
            } = account
            else {
                break;
            };
            if part_id.is_some_and(|wanted| wanted != p) {
                break;
            }
            if location_id.is_some_and(|wanted| wanted != l) {
                continue;
            }
            let same = out
                .last()
                .is_some_and(|b| &b.part_id == p && &b.location_id == l);
            if !same {
                out.push(Balance {
                    part_id: p.clone(),
                    location_id: l.clone(),
                    ..Balance::default()
                });
            }
            if let Some(balance) = out.last_mut() {
                self.add_to_balance(balance, bucket, *quantity);
            }
        }
        out
    }

    fn add_to_balance(&self, balance: &mut Balance, bucket: &Bucket, quantity: i64) {
        // Internal balances are checked >= 0 on every write; a negative one can only
        // come from a corrupt log, which `open` refuses, so clamping is for display.
        let quantity = u64::try_from(quantity).unwrap_or(0);
        match bucket {
            Bucket::Available => balance.available = quantity,
            Bucket::Reserved => balance.reserved = quantity,
            Bucket::InTransit(shipment_id) => {
                let info = self.shipments.get(shipment_id);
                balance.inbound.push(InboundShipment {
                    shipment_id: shipment_id.clone(),
                    from_location_id: info.map(|s| s.from_location_id.clone()).unwrap_or_default(),
                    quantity,
                    expected_arrival: info.and_then(|s| s.expected_arrival),
                });
            }
        }
    }
}

/// Entries staged on top of a [`LedgerState`] for one write: later commands in a
/// batch see the effects of earlier ones; nothing touches the base until commit.
#[derive(Debug)]
pub struct Staged<'a> {
    base: &'a LedgerState,
    deltas: BTreeMap<Account, i64>,
    shipments: HashMap<String, ShipmentInfo>,
    entries: Vec<LedgerEntry>,
}

impl LedgerView for Staged<'_> {
    fn account_balance(&self, account: &Account) -> i64 {
        // Both terms stay within MAX_QUANTITY (checked when staged), so the sum
        // cannot saturate; saturating keeps even a damaged base from panicking.
        self.base
            .account_balance(account)
            .saturating_add(self.deltas.get(account).copied().unwrap_or(0))
    }

    fn shipment(&self, shipment_id: &str) -> Option<&ShipmentInfo> {
        self.shipments
            .get(shipment_id)
            .or_else(|| self.base.shipment(shipment_id))
    }
}

impl<'a> Staged<'a> {
    /// Starts staging on top of `base`.
    pub fn new(base: &'a LedgerState) -> Self {
        Self {
            base,
            deltas: BTreeMap::new(),
            shipments: HashMap::new(),
            entries: Vec::new(),
        }
    }

    /// Stages an entry: the last-line guard every write passes. Errors:
    /// `FailedPrecondition` if its legs do not balance or it would take an
    /// internal account below zero; `OutOfRange` on field `quantity` (callers
    /// prefix it with their field path) if any account, internal or external,
    /// would pass [`MAX_QUANTITY`] in either direction. All arithmetic is
    /// checked, so nothing staged can overflow on replay.
    pub fn push(&mut self, entry: LedgerEntry) -> Result<(), DomainError> {
        if let Some(problem) = entry.imbalance() {
            return Err(DomainError::FailedPrecondition(problem));
        }
        let entry_deltas = net_deltas(&entry.legs)?;
        for (account, delta) in &entry_deltas {
            let next = self.account_balance(account).checked_add(*delta);
            match next {
                Some(n) if account.is_internal() && n < 0 => {
                    return Err(DomainError::FailedPrecondition(format!(
                        "the {account} would go below zero (to {n})"
                    )));
                }
                Some(n) if n.unsigned_abs() <= MAX_QUANTITY => {}
                _ => return Err(out_of_range(account)),
            }
        }
        for (account, delta) in entry_deltas {
            let staged = self.deltas.entry(account.clone()).or_default();
            *staged = staged.saturating_add(delta);
        }
        if let Some(shipment) = &entry.shipment
            && self.shipment(&shipment.shipment_id).is_none()
        {
            self.shipments
                .insert(shipment.shipment_id.clone(), shipment.clone());
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The staged entries, in order.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// The final balance of every account the staged entries touch.
    pub fn changed_accounts(&self) -> Vec<(Account, i64)> {
        self.deltas
            .keys()
            .map(|account| (account.clone(), self.account_balance(account)))
            .collect()
    }

    /// Gives back the staged entries and the final balance of every account
    /// they touch (as [`Staged::changed_accounts`], without copying the
    /// accounts).
    pub fn finish(self) -> (Vec<LedgerEntry>, Vec<(Account, i64)>) {
        let base = self.base;
        let changed = self
            .deltas
            .into_iter()
            .map(|(account, delta)| {
                let balance = base.account_balance(&account).saturating_add(delta);
                (account, balance)
            })
            .collect();
        (self.entries, changed)
    }
}

/// The net change of each account an entry's legs touch, in leg order (an
/// account named by two legs appears once), in account order. Entries have
/// two or three legs, so the duplicate search is a scan, not a map. Errors: `OutOfRange` on
/// `quantity` if an account's legs overflow.
fn net_deltas(legs: &[Leg]) -> Result<Vec<(&Account, i64)>, DomainError> {
    let mut deltas: Vec<(&Account, i64)> = Vec::with_capacity(legs.len());
    for leg in legs {
        match deltas
            .iter_mut()
            .find(|(account, _)| *account == &leg.account)
        {
            Some((account, delta)) => {
                *delta = delta
                    .checked_add(leg.delta)
                    .ok_or_else(|| out_of_range(account))?;
            }
            None => deltas.push((&leg.account, leg.delta)),
        }
    }
    // In account order, as a map would give them: the first refusal names
    // the same account whatever the order of the legs.
    deltas.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(deltas)
}

/// Field path of a batch element: `movements[3].quantity`.
pub fn field_of(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

fn not_enough(part_id: &str, location_id: &str, have: i64, need: u64) -> DomainError {
    DomainError::FailedPrecondition(format!(
        "not enough available stock of {part_id} at {location_id}: have {}, need {need}",
        have.max(0)
    ))
}

/// The refusal of a write that would take `account` past [`MAX_QUANTITY`].
fn out_of_range(account: &Account) -> DomainError {
    DomainError::OutOfRange {
        field: "quantity".into(),
        reason: format!(
            "the {account} would pass the limit of {MAX_QUANTITY} units (in either direction)"
        ),
    }
}

fn transfer(from: Account, to: Account, quantity: u64) -> Result<Vec<Leg>, DomainError> {
    check_quantity("quantity", quantity)?;
    // MAX_QUANTITY fits in i64, so this conversion cannot fail after the check.
    let delta = i64::try_from(quantity).unwrap_or(MAX_BALANCE);
    Ok(vec![
        Leg {
            account: from,
            delta: -delta,
        },
        Leg { account: to, delta },
    ])
}

/// Checks the shape of a movement command (no stock lookups): non-empty ids,
/// a quantity > 0 (any non-zero for adjustments), a destination for ships.
/// Errors are `InvalidArgument` naming `prefix.field`.
pub fn check_movement_shape(command: &MovementCommand, prefix: &str) -> Result<(), DomainError> {
    for (field, value) in [
        ("idempotency_key", &command.idempotency_key),
        ("part_id", &command.part_id),
        ("location_id", &command.location_id),
    ] {
        if value.is_empty() {
            return Err(DomainError::invalid(
                field_of(prefix, field),
                "must not be empty",
            ));
        }
    }
    let quantity_ok = match command.kind {
        MovementKind::Adjustment => command.quantity != 0,
        MovementKind::Count => command.quantity >= 0,
        _ => command.quantity > 0,
    };
    if !quantity_ok {
        let rule = match command.kind {
            MovementKind::Adjustment => "must not be 0",
            MovementKind::Count => "a count must be >= 0",
            _ => "must be > 0 (only adjustments may be negative)",
        };
        return Err(DomainError::invalid(field_of(prefix, "quantity"), rule));
    }
    // The field path is written only for a refusal (this runs for every
    // movement of a batch).
    if command.quantity.unsigned_abs() > MAX_QUANTITY {
        check_quantity(
            &field_of(prefix, "quantity"),
            command.quantity.unsigned_abs(),
        )?;
    }
    match command.kind {
        MovementKind::TransferShip => match command.to_location_id.as_deref() {
            None | Some("") => Err(DomainError::invalid(
                field_of(prefix, "to_location_id"),
                "a transfer needs a destination",
            )),
            Some(to) if to == command.location_id => Err(DomainError::invalid(
                field_of(prefix, "to_location_id"),
                "must differ from location_id",
            )),
            Some(_) => Ok(()),
        },
        MovementKind::TransferReceive
            if command.shipment_id.as_deref().is_none_or(str::is_empty) =>
        {
            Err(DomainError::invalid(
                field_of(prefix, "shipment_id"),
                "a receipt of a transfer names its shipment",
            ))
        }
        _ => Ok(()),
    }
}

/// The log entry for a movement, checked against current balances; `None` for
/// a count that equals on hand (nothing to write). Not enough stock, or a count
/// below the reserved units, is `FailedPrecondition`; an unknown shipment is
/// `NotFound`; a quantity past [`MAX_QUANTITY`] is `OutOfRange`.
pub fn movement_entry(
    command: &MovementCommand,
    prefix: &str,
    view: &impl LedgerView,
    sequence: u64,
    now: Timestamp,
    actor: &Actor,
) -> Result<Option<LedgerEntry>, DomainError> {
    check_movement_shape(command, prefix)?;
    let part = command.part_id.as_str();
    let location = command.location_id.as_str();
    let quantity = command.quantity.unsigned_abs();
    let available = Account::available(part, location);
    let need_available = |view: &dyn LedgerView| {
        let have = view.account_balance(&available);
        if have < i64::try_from(quantity).unwrap_or(i64::MAX) {
            Err(not_enough(part, location, have, quantity))
        } else {
            Ok(())
        }
    };
    let mut shipment = None;
    let legs = match command.kind {
        MovementKind::Receipt => transfer(
            Account::external(part, ExternalParty::Supplier),
            available.clone(),
            quantity,
        )?,
        MovementKind::Issue | MovementKind::Scrap => {
            need_available(view)?;
            let party = if command.kind == MovementKind::Issue {
                ExternalParty::Customer
            } else {
                ExternalParty::Scrap
            };
            transfer(available.clone(), Account::external(part, party), quantity)?
        }
        MovementKind::Adjustment if command.quantity > 0 => transfer(
            Account::external(part, ExternalParty::Adjustment),
            available.clone(),
            quantity,
        )?,
        MovementKind::Adjustment => {
            need_available(view)?;
            transfer(
                available.clone(),
                Account::external(part, ExternalParty::Adjustment),
                quantity,
            )?
        }
        MovementKind::TransferShip => {
            need_available(view)?;
            let info = ship_route(command, prefix, view, sequence)?;
            let legs = transfer(
                available.clone(),
                Account::in_transit(part, &info.to_location_id, &info.shipment_id),
                quantity,
            )?;
            shipment = Some(info);
            legs
        }
        MovementKind::TransferReceive => receive_legs(command, view, quantity)?,
        MovementKind::Count => return count_entry(command, prefix, view, sequence, now, actor),
    };
    Ok(Some(LedgerEntry {
        sequence,
        recorded_at: now,
        cause: EntryCause::Movement {
            idempotency_key: command.idempotency_key.clone(),
            kind: command.kind,
            note: command.note.clone(),
        },
        legs,
        shipment,
        actor: actor.clone(),
    }))
}

/// The adjustment a stock count writes: the difference between the count and
/// on hand now, in or out of available stock; `None` when they are equal.
fn count_entry(
    command: &MovementCommand,
    prefix: &str,
    view: &impl LedgerView,
    sequence: u64,
    now: Timestamp,
    actor: &Actor,
) -> Result<Option<LedgerEntry>, DomainError> {
    let part = command.part_id.as_str();
    let location = command.location_id.as_str();
    let available = Account::available(part, location);
    let have = view.account_balance(&available);
    let reserved = view.account_balance(&Account::reserved(part, location));
    // Balances and the count are all within MAX_QUANTITY, so these cannot overflow.
    let counted = command.quantity;
    if counted < reserved {
        return Err(DomainError::FailedPrecondition(format!(
            "{}: a count of {counted} of {part} at {location} is below the {reserved} units reserved there; settle or release those reservations first",
            field_of(prefix, "quantity")
        )));
    }
    let difference = counted - reserved - have;
    let adjustment = Account::external(part, ExternalParty::Adjustment);
    let legs = match difference {
        0 => return Ok(None),
        d if d > 0 => transfer(adjustment, available, d.unsigned_abs())?,
        d => transfer(available, adjustment, d.unsigned_abs())?,
    };
    let note = if command.note.is_empty() {
        STOCK_COUNT_NOTE.to_string()
    } else {
        format!("{STOCK_COUNT_NOTE}: {}", command.note)
    };
    Ok(Some(LedgerEntry {
        sequence,
        recorded_at: now,
        cause: EntryCause::Movement {
            idempotency_key: command.idempotency_key.clone(),
            kind: MovementKind::Adjustment,
            note,
        },
        legs,
        shipment: None,
        actor: actor.clone(),
    }))
}

/// The route of a ship: a new shipment, or more stock on an existing one with
/// the same route (else `FailedPrecondition`).
fn ship_route(
    command: &MovementCommand,
    prefix: &str,
    view: &impl LedgerView,
    sequence: u64,
) -> Result<ShipmentInfo, DomainError> {
    let to = command.to_location_id.clone().unwrap_or_default();
    let shipment_id = match command.shipment_id.as_deref() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => shipment_id_for(sequence),
    };
    match view.shipment(&shipment_id) {
        Some(existing)
            if existing.from_location_id != command.location_id
                || existing.to_location_id != to =>
        {
            Err(DomainError::FailedPrecondition(format!(
                "shipment {shipment_id} ({}) goes from {} to {}, not from {} to {to}",
                field_of(prefix, "shipment_id"),
                existing.from_location_id,
                existing.to_location_id,
                command.location_id
            )))
        }
        Some(existing) => Ok(existing.clone()),
        None => Ok(ShipmentInfo {
            shipment_id,
            from_location_id: command.location_id.clone(),
            to_location_id: to,
            expected_arrival: command.expected_arrival,
        }),
    }
}

fn receive_legs(
    command: &MovementCommand,
    view: &impl LedgerView,
    quantity: u64,
) -> Result<Vec<Leg>, DomainError> {
    let part = command.part_id.as_str();
    let location = command.location_id.as_str();
    let shipment_id = command.shipment_id.as_deref().unwrap_or_default();
    let Some(info) = view.shipment(shipment_id) else {
        return Err(DomainError::not_found("shipment", shipment_id));
    };
    if info.to_location_id != location {
        return Err(DomainError::FailedPrecondition(format!(
            "shipment {shipment_id} goes to {}, not {location}",
            info.to_location_id
        )));
    }
    let in_transit = Account::in_transit(part, location, shipment_id);
    let have = view.account_balance(&in_transit);
    if have < i64::try_from(quantity).unwrap_or(i64::MAX) {
        return Err(DomainError::FailedPrecondition(format!(
            "not enough of {part} in transit on shipment {shipment_id} to {location}: have {}, need {quantity}",
            have.max(0)
        )));
    }
    transfer(in_transit, Account::available(part, location), quantity)
}

/// A new pending reservation and its entry (available -> reserved). Routine
/// priority may take only available minus `protected_quantity`. Errors:
/// `InvalidArgument` for a zero quantity or empty ids, `FailedPrecondition` for
/// not enough stock.
pub fn reserve_entry(
    command: &ReserveCommand,
    prefix: &str,
    view: &impl LedgerView,
    sequence: u64,
    now: Timestamp,
    actor: &Actor,
) -> Result<(LedgerEntry, Reservation), DomainError> {
    for (field, value) in [
        ("idempotency_key", &command.idempotency_key),
        ("part_id", &command.part_id),
        ("location_id", &command.location_id),
    ] {
        if value.is_empty() {
            return Err(DomainError::invalid(
                field_of(prefix, field),
                "must not be empty",
            ));
        }
    }
    if command.quantity == 0 {
        return Err(DomainError::invalid(
            field_of(prefix, "quantity"),
            "must be > 0",
        ));
    }
    if command.quantity > MAX_QUANTITY {
        check_quantity(&field_of(prefix, "quantity"), command.quantity)?;
    }
    if command.ttl_seconds == 0 {
        return Err(DomainError::invalid(
            field_of(prefix, "ttl_seconds"),
            "must be > 0",
        ));
    }
    let part = command.part_id.as_str();
    let location = command.location_id.as_str();
    let available = view.account_balance(&Account::available(part, location));
    let protected = match command.priority {
        Priority::Routine => i64::try_from(command.protected_quantity).unwrap_or(i64::MAX),
        Priority::Critical => 0,
    };
    let takeable = available.saturating_sub(protected);
    if takeable < i64::try_from(command.quantity).unwrap_or(i64::MAX) {
        return Err(not_enough(part, location, takeable, command.quantity));
    }
    let reservation_id = reservation_id_for(sequence);
    let legs = transfer(
        Account::available(part, location),
        Account::reserved(part, location),
        command.quantity,
    )?;
    let reservation = Reservation {
        reservation_id: reservation_id.clone(),
        idempotency_key: command.idempotency_key.clone(),
        part_id: command.part_id.clone(),
        location_id: command.location_id.clone(),
        quantity: command.quantity,
        state: ReservationState::Pending,
        priority: command.priority,
        created_at: now,
        expires_at: now
            .saturating_add(jiff::SignedDuration::from_secs(i64::from(
                command.ttl_seconds,
            )))
            .unwrap_or(Timestamp::MAX),
        settled_at: None,
        order_reference: command.order_reference.clone(),
        ship_to_location_id: None,
        shipment_id: None,
        for_location_id: command.for_location_id.clone(),
    };
    let entry = LedgerEntry {
        sequence,
        recorded_at: now,
        cause: EntryCause::Reserve { reservation_id },
        legs,
        shipment: None,
        actor: actor.clone(),
    };
    Ok((entry, reservation))
}

/// Settles a pending reservation: post (to the customer or in transit), void or
/// expire. Returns the entry and the settled reservation. A reservation that is
/// not pending is `FailedPrecondition` naming its state.
pub fn settle_entry(
    reservation: &Reservation,
    settlement: Settlement<'_>,
    sequence: u64,
    now: Timestamp,
    actor: &Actor,
) -> Result<(LedgerEntry, Reservation), DomainError> {
    if reservation.state != ReservationState::Pending {
        return Err(DomainError::FailedPrecondition(format!(
            "reservation {} is {:?}, not Pending",
            reservation.reservation_id, reservation.state
        )));
    }
    let part = reservation.part_id.as_str();
    let location = reservation.location_id.as_str();
    let reserved = Account::reserved(part, location);
    let id = reservation.reservation_id.clone();
    let mut settled = reservation.clone();
    settled.settled_at = Some(now);
    let mut shipment = None;
    let (cause, destination) = match settlement {
        Settlement::Post(_) if now >= reservation.expires_at => {
            return Err(DomainError::FailedPrecondition(format!(
                "reservation {} expired at {}",
                reservation.reservation_id, reservation.expires_at
            )));
        }
        Settlement::Post(post) => {
            settled.state = ReservationState::Posted;
            match post
                .ship_to_location_id
                .as_deref()
                .filter(|to| !to.is_empty())
            {
                Some(to) if to == location => {
                    return Err(DomainError::invalid(
                        "ship_to_location_id",
                        "must differ from the reservation's location",
                    ));
                }
                Some(to) => {
                    let info = ShipmentInfo {
                        shipment_id: shipment_id_for(sequence),
                        from_location_id: location.to_string(),
                        to_location_id: to.to_string(),
                        expected_arrival: post.expected_arrival,
                    };
                    settled.ship_to_location_id = Some(to.to_string());
                    settled.shipment_id = Some(info.shipment_id.clone());
                    let account = Account::in_transit(part, to, &info.shipment_id);
                    shipment = Some(info);
                    (EntryCause::Post { reservation_id: id }, account)
                }
                None => (
                    EntryCause::Post { reservation_id: id },
                    Account::external(part, ExternalParty::Customer),
                ),
            }
        }
        Settlement::Void => {
            settled.state = ReservationState::Voided;
            (
                EntryCause::Void { reservation_id: id },
                Account::available(part, location),
            )
        }
        Settlement::Expire => {
            settled.state = ReservationState::Expired;
            (
                EntryCause::Expire { reservation_id: id },
                Account::available(part, location),
            )
        }
    };
    let entry = LedgerEntry {
        sequence,
        recorded_at: now,
        cause,
        legs: transfer(reserved, destination, reservation.quantity)?,
        shipment,
        actor: actor.clone(),
    };
    Ok((entry, settled))
}

/// How a pending reservation is settled.
#[derive(Debug, Clone, Copy)]
pub enum Settlement<'a> {
    /// Confirmed by the client.
    Post(&'a PostCommand),
    /// Released by the client.
    Void,
    /// Its TTL passed.
    Expire,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn command(kind: MovementKind, quantity: i64) -> MovementCommand {
        MovementCommand {
            idempotency_key: "k".into(),
            kind,
            part_id: "P".into(),
            location_id: "L".into(),
            quantity,
            to_location_id: None,
            shipment_id: None,
            expected_arrival: None,
            note: String::new(),
        }
    }

    fn state_with(available: i64) -> LedgerState {
        let mut state = LedgerState::default();
        let entry = movement_entry(
            &command(MovementKind::Receipt, available),
            "",
            &state,
            1,
            at(0),
            &Actor::local("test"),
        )
        .unwrap()
        .unwrap();
        assert!(state.apply(&entry).is_empty());
        state
    }

    #[test]
    fn every_rule_balances_per_part() {
        let state = state_with(5);
        for kind in [
            MovementKind::Issue,
            MovementKind::Scrap,
            MovementKind::Adjustment,
        ] {
            let entry = movement_entry(
                &command(kind, 2),
                "",
                &state,
                2,
                at(1),
                &Actor::local("test"),
            )
            .unwrap()
            .unwrap();
            assert_eq!(entry.imbalance(), None, "{kind:?}");
            assert_eq!(entry.legs.len(), 2);
        }
        assert!(state.conservation_problems().is_empty());
    }

    #[test]
    fn negative_adjustment_needs_available_stock() {
        let state = state_with(1);
        let err = movement_entry(
            &command(MovementKind::Adjustment, -2),
            "m",
            &state,
            2,
            at(1),
            &Actor::local("test"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            DomainError::FailedPrecondition(
                "not enough available stock of P at L: have 1, need 2".into()
            )
        );
    }

    #[test]
    fn staging_refuses_to_take_an_internal_account_below_zero() {
        let state = state_with(1);
        let mut staged = Staged::new(&state);
        let entry = LedgerEntry {
            sequence: 2,
            recorded_at: at(1),
            cause: EntryCause::Void {
                reservation_id: "R".into(),
            },
            legs: transfer(Account::reserved("P", "L"), Account::available("P", "L"), 1).unwrap(),
            shipment: None,
            actor: Actor::local("test"),
        };
        assert!(matches!(
            staged.push(entry),
            Err(DomainError::FailedPrecondition(_))
        ));
        assert!(staged.entries().is_empty());
    }

    /// The location and part indexes answer a location's stock and a
    /// part's balances exactly as searching the ledger does, through receipts, reservations,
    /// shipments in transit and balances returning to zero.
    #[test]
    fn the_location_and_part_indexes_answer_as_the_ledger_does() {
        let parts = ["P0", "P1", "P2", "P3"];
        let locations = ["L0", "L1", "L2"];
        let mut state = LedgerState::default();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut draw = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut applied = 0;
        for sequence in 1..=3_000u64 {
            let (part, location) = (parts[draw(4)], locations[draw(3)]);
            let shipment = format!("S{}", draw(2));
            let internal = [
                Account::available(part, location),
                Account::reserved(part, location),
                Account::in_transit(part, location, &shipment),
            ];
            let from = match draw(4) {
                0 => Account::external(part, ExternalParty::Supplier),
                i => internal[i - 1].clone(),
            };
            let to = match draw(4) {
                0 => Account::external(part, ExternalParty::Customer),
                i => internal[i - 1].clone(),
            };
            let quantity = 1 + draw(3) as u64;
            // Internal accounts stay >= 0, as every write keeps them.
            if from == to || (from.is_internal() && state.account_balance(&from) < quantity as i64)
            {
                continue;
            }
            let entry = LedgerEntry {
                sequence,
                recorded_at: at(0),
                cause: EntryCause::Void {
                    reservation_id: "R".into(),
                },
                legs: transfer(from, to, quantity).unwrap(),
                shipment: None,
                actor: Actor::local("test"),
            };
            assert!(state.apply(&entry).is_empty());
            applied += 1;
            for location in locations {
                let searched: Vec<Balance> = parts
                    .iter()
                    .map(|part| state.balance(part, location))
                    .filter(|b| b.available + b.reserved + b.in_transit() > 0)
                    .collect();
                assert_eq!(
                    state.balances_at_location(location, None, usize::MAX),
                    searched,
                    "after entry {sequence} at {location}"
                );
            }
            for part in parts {
                let mut visited = Vec::new();
                state.visit_part_balances(part, &mut |b| visited.push(b.clone()));
                assert_eq!(
                    visited,
                    state.balances(Some(part), None),
                    "after entry {sequence} for {part}"
                );
            }
        }
        assert!(applied > 1_000, "only {applied} entries applied");
    }

    #[test]
    fn external_accounts_are_bounded_like_internal_ones() {
        let max = i64::try_from(MAX_QUANTITY).unwrap();
        let state = state_with(max);
        let mut staged = Staged::new(&state);
        let mut elsewhere = command(MovementKind::Receipt, 1);
        elsewhere.location_id = "M".into();
        let entry = movement_entry(
            &elsewhere,
            "movements[2]",
            &staged,
            2,
            at(1),
            &Actor::local("test"),
        )
        .unwrap()
        .unwrap();
        let err = staged.push(entry).unwrap_err();
        assert!(
            matches!(&err, DomainError::OutOfRange { field, reason }
                if field == "quantity" && reason.contains("supplier account of P")),
            "{err:?}"
        );
        let too_big = command(MovementKind::Receipt, max + 1);
        let err = movement_entry(
            &too_big,
            "movements[0]",
            &staged,
            2,
            at(1),
            &Actor::local("test"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, DomainError::OutOfRange { field, .. } if field == "movements[0].quantity"),
            "{err:?}"
        );
    }

    #[test]
    fn a_count_adjusts_the_difference_and_refuses_to_go_below_reserved() {
        let state = state_with(5);
        let count = |units| command(MovementKind::Count, units);
        assert_eq!(
            movement_entry(&count(5), "", &state, 2, at(1), &Actor::local("test")).unwrap(),
            None
        );
        let entry = movement_entry(&count(2), "", &state, 2, at(1), &Actor::local("test"))
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.legs,
            transfer(
                Account::available("P", "L"),
                Account::external("P", ExternalParty::Adjustment),
                3
            )
            .unwrap()
        );
        assert!(matches!(
            &entry.cause,
            EntryCause::Movement { kind: MovementKind::Adjustment, note, .. } if note == STOCK_COUNT_NOTE
        ));
        let mut staged = Staged::new(&state);
        let reserve = ReserveCommand {
            idempotency_key: "r".into(),
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 4,
            ttl_seconds: 30,
            priority: Priority::Critical,
            protected_quantity: 0,
            order_reference: String::new(),
            for_location_id: None,
        };
        let (entry, _) =
            reserve_entry(&reserve, "", &staged, 2, at(1), &Actor::local("test")).unwrap();
        staged.push(entry).unwrap();
        let err = movement_entry(
            &count(3),
            "movements[0]",
            &staged,
            3,
            at(2),
            &Actor::local("test"),
        )
        .unwrap_err();
        assert!(
            matches!(err, DomainError::FailedPrecondition(m) if m.contains("below the 4 units reserved"))
        );
        let entry = movement_entry(&count(9), "", &staged, 3, at(2), &Actor::local("test"))
            .unwrap()
            .unwrap();
        staged.push(entry).unwrap();
        assert_eq!(staged.account_balance(&Account::available("P", "L")), 5);
    }

    #[test]
    fn settled_reservations_cannot_be_settled_again() {
        let state = state_with(3);
        let reserve = ReserveCommand {
            idempotency_key: "r".into(),
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 2,
            ttl_seconds: 30,
            priority: Priority::Routine,
            protected_quantity: 1,
            order_reference: String::new(),
            for_location_id: None,
        };
        let (_, reservation) =
            reserve_entry(&reserve, "", &state, 2, at(0), &Actor::local("test")).unwrap();
        assert_eq!(reservation.reservation_id, reservation_id_for(2));
        assert_eq!(reservation.expires_at, at(30));
        let (_, voided) = settle_entry(
            &reservation,
            Settlement::Void,
            3,
            at(1),
            &Actor::local("test"),
        )
        .unwrap();
        assert_eq!(voided.state, ReservationState::Voided);
        let err = settle_entry(
            &voided,
            Settlement::Expire,
            4,
            at(40),
            &Actor::local("test"),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::FailedPrecondition(m) if m.contains("Voided")));
        let too_much = ReserveCommand {
            quantity: 3,
            ..reserve
        };
        assert!(reserve_entry(&too_much, "", &state, 2, at(0), &Actor::local("test")).is_err());
    }
}
