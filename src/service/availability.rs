//! Availability in the application layer: the routing engine built from the
//! current network (lazily, rebuilt after master-data changes), a stock view
//! over the ledger, and PromiseOrder's all-or-none reservation.

use super::Spares;
use crate::domain::DomainError;
use crate::domain::availability::{Availability, StockView};
use crate::domain::ledger::{Balance, Priority, Reservation, ReserveCommand};
use crate::domain::network::Qty;
use crate::domain::promise::{OrderPromise, OrderQuery, PromiseOutcome, PromiseQuery};
use crate::domain::where_is::{WhereIsAnswer, WhereIsQuery};
use crate::store::StoreError;
use std::sync::Arc;

/// How many times PromiseOrder re-quotes when a concurrent reservation took
/// the stock between quoting and reserving, before answering `ABORTED`.
pub const PROMISE_ORDER_ATTEMPTS: usize = 3;

/// Reading stock for the promise engine from the ledger and the policy in
/// force (the engine's protection index, built with it for the same network
/// version, so a lookup allocates nothing).
struct LedgerView<'a> {
    spares: &'a Spares,
    engine: &'a Availability,
}

impl StockView for LedgerView<'_> {
    fn visit_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance)) {
        // A store read failure leaves the part without visible stock; the
        // promise then says there is none rather than inventing any.
        let _ = self.spares.store().visit_part_balances(part_id, visit);
    }

    fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        self.engine.protected_quantity(part_id, location_id)
    }
}

/// Reservation options of a PromiseOrder.
#[derive(Debug, Clone)]
pub struct OrderReservation {
    /// Client key; each claim is reserved under `<key>:<n>`.
    pub idempotency_key: String,
    /// Time to live (0 = default).
    pub ttl_seconds: u32,
    /// Order reference stored on each reservation.
    pub order_reference: String,
}

impl Spares {
    /// The routing and promise engine for the current network.
    pub fn availability(&self) -> Result<Arc<Availability>, DomainError> {
        let network = self.network();
        let mut cached = self
            .availability_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((built_for, engine)) = cached.as_ref()
            && Arc::ptr_eq(built_for, &network)
        {
            return Ok(engine.clone());
        }
        let engine = Arc::new(Availability::new(&network)?);
        *cached = Some((network, engine.clone()));
        Ok(engine)
    }

    /// Where a part and its interchangeable part numbers are.
    pub fn where_is(&self, query: &WhereIsQuery) -> Result<WhereIsAnswer, DomainError> {
        let engine = self.availability()?;
        engine.where_is(query, &self.view(&engine))
    }

    fn view<'a>(&'a self, engine: &'a Availability) -> LedgerView<'a> {
        LedgerView {
            spares: self,
            engine,
        }
    }

    /// Ranked fulfilment options; holds nothing.
    pub fn promise(&self, query: &PromiseQuery) -> Result<PromiseOutcome, DomainError> {
        let engine = self.availability()?;
        engine.promise(query, &self.view(&engine))
    }

    /// Promises every line consistently and, when asked, reserves every
    /// claimed unit or none. A reservation lost to a concurrent order is
    /// re-quoted up to [`PROMISE_ORDER_ATTEMPTS`] times.
    pub fn promise_order(
        &self,
        query: &OrderQuery,
        reserve: Option<&OrderReservation>,
    ) -> Result<(OrderPromise, Vec<Reservation>), StoreError> {
        let engine = self.availability()?;
        let Some(reserve) = reserve else {
            return Ok((
                engine.promise_order(query, &self.view(&engine))?,
                Vec::new(),
            ));
        };
        let mut last_refusal = String::new();
        for _ in 0..PROMISE_ORDER_ATTEMPTS {
            let promise = engine.promise_order(query, &self.view(&engine))?;
            if !promise.complete {
                return Ok((promise, Vec::new()));
            }
            let commands = reserve_commands(
                &promise,
                query.priority,
                reserve,
                &query.destination_location_id,
            )?;
            match self.reserve(commands) {
                Ok(reservations) => return Ok((promise, reservations)),
                Err(StoreError::Rejected(DomainError::FailedPrecondition(reason))) => {
                    last_refusal = reason
                }
                Err(other) => return Err(other),
            }
        }
        Err(DomainError::Aborted(format!(
            "stock moved under the order {} times in a row; last refusal: {last_refusal}",
            PROMISE_ORDER_ATTEMPTS
        ))
        .into())
    }
}

/// One reserve command per claim, each held for the order's destination;
/// inbound stock cannot be reserved until it is received.
fn reserve_commands(
    promise: &OrderPromise,
    priority: Priority,
    reserve: &OrderReservation,
    destination: &str,
) -> Result<Vec<ReserveCommand>, DomainError> {
    promise
        .claims
        .iter()
        .enumerate()
        .map(|(n, claim)| {
            if let Some(shipment) = &claim.inbound_shipment_id {
                return Err(DomainError::FailedPrecondition(format!(
                    "the order relies on inbound shipment {shipment} of {} to {}; only stock on hand can be reserved",
                    claim.part_id, claim.location_id
                )));
            }
            Ok(ReserveCommand {
                idempotency_key: format!("{}:{n}", reserve.idempotency_key),
                part_id: claim.part_id.clone(),
                location_id: claim.location_id.clone(),
                quantity: claim.quantity,
                ttl_seconds: reserve.ttl_seconds,
                priority,
                protected_quantity: 0,
                order_reference: reserve.order_reference.clone(),
                for_location_id: Some(destination.to_string()),
            })
        })
        .collect()
}
