//! The stock ledger's data types and its pure posting rules.
//!
//! Stock moves only as double-entry movements between accounts
//! `(part, location, bucket)` and the external supplier, customer, scrap and
//! adjustment accounts. On hand = available + reserved. For every part the
//! balances of all accounts sum to zero, and every internal bucket stays >= 0.

use super::network::{LocationId, PartId, Qty};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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
}

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
    /// On hand = available + reserved.
    pub fn on_hand(&self) -> Qty {
        self.available + self.reserved
    }

    /// Units in transit to this location.
    pub fn in_transit(&self) -> Qty {
        self.inbound.iter().map(|s| s.quantity).sum()
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
