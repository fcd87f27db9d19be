//! Changes other servers made, published to this server's watch streams.
//!
//! Servers sharing one PostgreSQL database each publish their own writes as
//! they make them. The others' writes reach this server through its ledger
//! follower (`Store::observe_other_writers`), as log entries already applied
//! to the balances it reads. They are turned into the same [`StockChanged`]
//! events a local write publishes, on a thread of their own: the
//! observer runs while the store may hold the ledger lock of every server,
//! and a reservation's event needs the reservation, read from the database.

use super::StockChanged;
use crate::domain::ledger::{Account, EntryCause, LedgerEntry, Reservation, ReservationState};
use crate::store::{OtherWritersObserver, Store};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::broadcast;

/// An observer for [`Store::observe_other_writers`] that publishes the
/// entries to `changes`. Nothing is done while nobody watches; the
/// publishing thread starts with the first entries somebody watches.
pub fn observer(
    store: Weak<dyn Store>,
    changes: broadcast::Sender<StockChanged>,
) -> OtherWritersObserver {
    let queue: Mutex<Option<mpsc::Sender<Vec<LedgerEntry>>>> = Mutex::new(None);
    Box::new(move |entries: &[LedgerEntry]| {
        if changes.receiver_count() == 0 {
            return;
        }
        let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.is_none() {
            *queue = start(store.clone(), changes.clone());
        }
        // The thread ends only when this observer (its sender) is dropped.
        if let Some(sender) = queue.as_ref()
            && sender.send(entries.to_vec()).is_err()
        {
            *queue = None;
        }
    })
}

/// Starts the publishing thread, or logs why it could not.
fn start(
    store: Weak<dyn Store>,
    changes: broadcast::Sender<StockChanged>,
) -> Option<mpsc::Sender<Vec<LedgerEntry>>> {
    let (sender, receiver) = mpsc::channel::<Vec<LedgerEntry>>();
    let started = std::thread::Builder::new()
        .name("spares-followed-changes".into())
        .spawn(move || {
            for entries in receiver {
                let Some(store) = store.upgrade() else {
                    return;
                };
                for entry in &entries {
                    for change in changes_of(store.as_ref(), entry) {
                        // No subscribers is not an error.
                        let _ = changes.send(change);
                    }
                }
            }
        });
    match started {
        Ok(_) => Some(sender),
        Err(error) => {
            tracing::warn!(%error, "cannot start publishing other servers' changes");
            None
        }
    }
}

/// The events a local write of `entry` would have published: for a
/// reservation's step, the change where its stock is held with the
/// reservation as the step left it, then the other part-locations the
/// entry touched (a posted transfer's destination); for a movement, each
/// part-location it touched.
fn changes_of(store: &dyn Store, entry: &LedgerEntry) -> Vec<StockChanged> {
    let mut touched: Vec<(&str, &str)> = Vec::new();
    for leg in &entry.legs {
        if let Account::Internal {
            part_id,
            location_id,
            ..
        } = &leg.account
            && !touched.contains(&(part_id.as_str(), location_id.as_str()))
        {
            touched.push((part_id.as_str(), location_id.as_str()));
        }
    }
    let mut changes = Vec::with_capacity(touched.len() + 1);
    if let Some(reservation) = reservation_step(store, &entry.cause) {
        touched.retain(|&pair| {
            pair != (
                reservation.part_id.as_str(),
                reservation.location_id.as_str(),
            )
        });
        changes.push(StockChanged {
            part_id: reservation.part_id.clone(),
            location_id: reservation.location_id.clone(),
            reservation: Some(Arc::new(reservation)),
        });
    }
    changes.extend(
        touched
            .into_iter()
            .map(|(part_id, location_id)| StockChanged {
                part_id: part_id.to_string(),
                location_id: location_id.to_string(),
                reservation: None,
            }),
    );
    changes
}

/// The reservation an entry's step made, as the step left it, read from the
/// store; `None` for a movement, or (logged) when it cannot be read: the
/// stock changes are published without it.
fn reservation_step(store: &dyn Store, cause: &EntryCause) -> Option<Reservation> {
    let (reservation_id, reserved) = match cause {
        EntryCause::Movement { .. } => return None,
        EntryCause::Reserve { reservation_id } => (reservation_id, true),
        EntryCause::Post { reservation_id }
        | EntryCause::Void { reservation_id }
        | EntryCause::Expire { reservation_id } => (reservation_id, false),
    };
    let mut reservation = match store.reservation(reservation_id) {
        Ok(Some(reservation)) => reservation,
        Ok(None) => {
            tracing::warn!(%reservation_id, "a followed entry names an unknown reservation");
            return None;
        }
        Err(error) => {
            tracing::warn!(%reservation_id, %error, "cannot read a followed reservation");
            return None;
        }
    };
    if reserved {
        // Read later, it may have been settled since: the event is of the
        // reservation as it was made.
        reservation.state = ReservationState::Pending;
        reservation.settled_at = None;
        reservation.ship_to_location_id = None;
        reservation.shipment_id = None;
    }
    Some(reservation)
}
