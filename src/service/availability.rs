//! Availability in the application layer: the routing engine built from the
//! current network (lazily, rebuilt after master-data changes), a stock view
//! over the ledger, and PromiseOrder's all-or-none reservation.

use super::Spares;
use crate::domain::DomainError;
use crate::domain::availability::{Availability, StockSnapshot, StockView};
use crate::domain::ledger::{Actor, Balance, Priority, Reservation, ReserveCommand};
use crate::domain::network::Qty;
use crate::domain::promise::{
    MAX_BATCH_LINES, OrderPromise, OrderQuery, PromiseOutcome, PromiseQuery,
};
use crate::domain::where_is::{MAX_WHERE_IS_BATCH_ROWS, WhereIsAnswer, WhereIsQuery};
use crate::store::StoreError;
use std::collections::{BTreeSet, HashMap};
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

/// The ledger read in place under a store's read lock
/// ([`crate::store::Store::read_ledger`]), with the engine's protection.
struct InPlace<'a> {
    ledger: &'a crate::domain::ledger::LedgerState,
    engine: &'a Availability,
}

impl StockView for InPlace<'_> {
    fn visit_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance)) {
        self.ledger.visit_part_balances(part_id, visit);
    }

    fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        self.engine.protected_quantity(part_id, location_id)
    }
}

/// The answers to a batch of independent lines, all read at one ledger
/// sequence: one result per line, in line order. A line's error is the error
/// a separate call would have returned, with its field prefixed `lines[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchAnswers<T> {
    /// The ledger sequence every line was read at (the last movement applied).
    pub sequence: u64,
    /// One result per line.
    pub lines: Vec<Result<T, DomainError>>,
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
        // Every location's calendar table, built off the request path: a
        // query that gets there first builds the one it needs itself (the
        // tables are once-cells), so nothing waits for this thread.
        let warm = engine.clone();
        let anchor = self.clock.now();
        let spawned = std::thread::Builder::new()
            .name("spares-calendars".into())
            .spawn(move || {
                let built = warm.router.prepare_calendars(anchor);
                tracing::debug!(built, "calendar tables prepared");
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the calendar thread; tables build on first use");
        }
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

    /// Ranked fulfilment options (holds nothing), with the ledger sequence
    /// they were computed at: the last movement applied when the balances
    /// they used were read. The stock is read in one read of the ledger
    /// ([`crate::store::Store::read_ledger`]), so the sequence stated is
    /// exact.
    ///
    /// Errors: those of [`Availability::promise`]; a storage failure.
    pub fn promise_with_sequence(
        &self,
        query: &PromiseQuery,
    ) -> Result<(PromiseOutcome, u64), StoreError> {
        // A DEBUG span: when that level is off for this target, the macro
        // returns a disabled span after one cached check, without building its
        // fields (they borrow the query; nothing is allocated either way).
        let span = tracing::debug_span!(
            "promise",
            part = %query.part_id,
            destination = %query.destination_location_id,
            quantity = query.quantity,
        );
        let _entered = span.enter();
        let engine = self.availability()?;
        let prepared = engine.prepare_promise(query)?;
        // One read of the ledger for the stock, and only for it: routes are
        // found after it ends, so a slow route search never holds a write.
        let mut gathered = None;
        let sequence = self.store().read_ledger(&mut |ledger| {
            let stock = InPlace {
                ledger,
                engine: &engine,
            };
            gathered = Some(engine.gather_promise(&prepared, &stock));
        })?;
        let gathered =
            gathered.ok_or_else(|| StoreError::Storage("the ledger read did not run".into()))??;
        Ok((engine.finish_promise(&prepared, gathered), sequence))
    }

    /// Promise for each line on its own, exactly as [`Spares::promise_with_sequence`] would
    /// answer it, all at one ledger sequence. Lines given as errors (a request
    /// line that did not convert, its field already prefixed) keep their error. Errors of the call:
    /// `OutOfRange` naming `lines` past [`MAX_BATCH_LINES`]; a storage failure.
    pub fn promise_batch(
        &self,
        lines: Vec<Result<PromiseQuery, DomainError>>,
    ) -> Result<BatchAnswers<PromiseOutcome>, StoreError> {
        check_batch_lines(lines.len())?;
        let _span = tracing::debug_span!("promise_batch", lines = lines.len()).entered();
        let engine = self.availability()?;
        let wanted = lines
            .iter()
            .flatten()
            .map(|q| (q.part_id.as_str(), q.exact_part_only));
        let snapshot = self.snapshot(&engine, wanted)?;
        let answers = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                line.and_then(|query| {
                    engine
                        .promise(&query, &snapshot)
                        .map_err(|e| e.within(&format!("lines[{i}]")))
                })
            })
            .collect();
        Ok(BatchAnswers {
            sequence: snapshot.sequence(),
            lines: answers,
        })
    }

    /// WhereIs for each line on its own, exactly as [`Spares::where_is`]
    /// would answer it, all at one ledger sequence. A line whose rows would
    /// take the answer past [`MAX_WHERE_IS_BATCH_ROWS`] is refused on its own
    /// (`OutOfRange` naming its `max_locations`). Errors of the call: as
    /// [`Spares::promise_batch`].
    pub fn where_is_batch(
        &self,
        lines: Vec<Result<WhereIsQuery, DomainError>>,
    ) -> Result<BatchAnswers<WhereIsAnswer>, StoreError> {
        check_batch_lines(lines.len())?;
        let _span = tracing::debug_span!("promise_batch", lines = lines.len()).entered();
        let engine = self.availability()?;
        let wanted = lines
            .iter()
            .flatten()
            .map(|q| (q.part_id.as_str(), q.exact_part_only));
        let snapshot = self.snapshot(&engine, wanted)?;
        let mut rows = 0usize;
        let answers = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                line.and_then(|query| {
                    let answer = engine.where_is(&query, &snapshot);
                    answer
                        .and_then(|answer| {
                        if rows + answer.locations.len() > MAX_WHERE_IS_BATCH_ROWS {
                            return Err(DomainError::OutOfRange {
                                field: "max_locations".into(),
                                reason: format!(
                                    "this line's {} rows would take the batch past {MAX_WHERE_IS_BATCH_ROWS} rows; \
                                     ask for fewer locations per line or only locations with stock",
                                    answer.locations.len()
                                ),
                            });
                        }
                        rows += answer.locations.len();
                        Ok(answer)
                    })
                        .map_err(|e| e.within(&format!("lines[{i}]")))
                })
            })
            .collect();
        Ok(BatchAnswers {
            sequence: snapshot.sequence(),
            lines: answers,
        })
    }

    /// Copies, under one read of the ledger, the balances of every part
    /// number the given (part, exact_part_only) lines may be supplied from.
    /// Unknown parts are skipped: their lines fail with `NotFound` on their own.
    fn snapshot<'a, 'q>(
        &self,
        engine: &'a Availability,
        lines: impl Iterator<Item = (&'q str, bool)>,
    ) -> Result<StockSnapshot<'a>, StoreError> {
        let mut parts = BTreeSet::new();
        for (part_id, exact_part_only) in lines {
            let candidates = engine
                .candidate_parts(part_id, exact_part_only)
                .unwrap_or_default();
            parts.extend(candidates.into_iter().map(|c| c.part_id));
        }
        let part_ids: Vec<&str> = parts.iter().map(String::as_str).collect();
        let mut balances: HashMap<String, Vec<Balance>> = HashMap::with_capacity(parts.len());
        let sequence = self
            .store()
            .visit_balances_at_one_sequence(&part_ids, &mut |balance| {
                balances
                    .entry(balance.part_id.clone())
                    .or_default()
                    .push(balance.clone());
            })?;
        Ok(StockSnapshot::new(engine, sequence, balances))
    }

    /// Promises every line consistently and, when asked, reserves every
    /// claimed unit or none. A reservation lost to a concurrent order is
    /// re-quoted up to [`PROMISE_ORDER_ATTEMPTS`] times.
    pub fn promise_order(
        &self,
        actor: &Actor,
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
            match self.reserve(actor, commands) {
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

/// Refuses a batch of more than [`MAX_BATCH_LINES`] lines.
fn check_batch_lines(len: usize) -> Result<(), DomainError> {
    if len > MAX_BATCH_LINES {
        return Err(DomainError::OutOfRange {
            field: "lines".into(),
            reason: format!("{len} lines; at most {MAX_BATCH_LINES} per call"),
        });
    }
    Ok(())
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
