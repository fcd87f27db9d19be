//! Scope: what the authorisation table cannot say because it depends on the
//! request's content. A dealer reserves, confirms and releases only for its
//! own stores and sees only the reservations held for them; another
//! dealer's reservation is NOT_FOUND with the very message an unknown id
//! gets, so a dealer cannot learn which ids exist. A warehouse records
//! movements only at its own locations.

use crate::auth::{Principal, Role};
use crate::domain::DomainError;
use crate::domain::ledger::Reservation;
use tonic::{Code, Status};

/// Refuses unless `principal` may reserve for `location_id` (administrators
/// anywhere, dealers at their stores).
///
/// # Errors
/// `PERMISSION_DENIED` naming the field and the principal's stores.
pub fn require_store(principal: &Principal, field: &str, location_id: &str) -> Result<(), Status> {
    if principal.acts_for_store(location_id) {
        return Ok(());
    }
    let message = match principal.role {
        Role::Dealer => format!(
            "{field}: dealer {} reserves only for its stores ({}), not {}",
            principal.id,
            principal.stores.join(", "),
            crate::domain::error::quote(location_id)
        ),
        role => format!("{field}: role {role} may not reserve stock"),
    };
    Err(super::status::status(Code::PermissionDenied, message))
}

/// Refuses unless `principal` may record a movement at `location_id`
/// (administrators anywhere, warehouses at their locations).
///
/// # Errors
/// `PERMISSION_DENIED` naming the field and the principal's locations.
pub fn require_location(
    principal: &Principal,
    field: &str,
    location_id: &str,
) -> Result<(), Status> {
    if principal.acts_at_location(location_id) {
        return Ok(());
    }
    Err(super::status::status(
        Code::PermissionDenied,
        format!(
            "{field}: {} {} records movements only at its locations ({}), not {}",
            principal.role,
            principal.id,
            principal.locations.join(", "),
            crate::domain::error::quote(location_id)
        ),
    ))
}

/// Refuses unless `principal` may read the movement log filtered to
/// `location_id` (empty: every location): administrators and planners read
/// all of it, a warehouse only with one of its own locations named (a
/// transfer shows at both ends, so it sees the shipments it sends and
/// receives).
///
/// # Errors
/// `PERMISSION_DENIED` naming `location_id` and the principal's locations.
pub fn require_movement_reader(principal: &Principal, location_id: &str) -> Result<(), Status> {
    if principal.reads_everything() {
        return Ok(());
    }
    if principal.role == Role::Warehouse && principal.locations.iter().any(|l| l == location_id) {
        return Ok(());
    }
    let asked = if location_id.is_empty() {
        "name one".to_string()
    } else {
        format!("not {}", crate::domain::error::quote(location_id))
    };
    Err(super::status::status(
        Code::PermissionDenied,
        format!(
            "location_id: {} {} reads movements only at its locations ({}); {asked}",
            principal.role,
            principal.id,
            principal.locations.join(", ")
        ),
    ))
}

/// Whether `principal` sees `reservation`: administrators and planners all
/// of them, dealers those held for their stores.
pub fn sees(principal: &Principal, reservation: &Reservation) -> bool {
    principal.reads_everything() || principal.acts_for_store(reservation.held_for())
}

/// `reservation` if `principal` sees it, else exactly the error an unknown
/// id gets.
///
/// # Errors
/// `NOT_FOUND` for a reservation the principal does not see.
pub fn visible(
    principal: &Principal,
    reservation: Reservation,
) -> Result<Reservation, DomainError> {
    if sees(principal, &reservation) {
        Ok(reservation)
    } else {
        Err(DomainError::not_found(
            "reservation",
            reservation.reservation_id,
        ))
    }
}
