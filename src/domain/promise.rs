//! Promise and PromiseOrder: ranked, dated fulfilment options for a quantity of
//! a part at a destination, and consistent promises for many order lines.
//!
//! Rules (the README repeats them):
//! - Supply is every location's available stock of the part and of the part
//!   numbers that may replace it ([`Availability::candidate_parts`]), less
//!   protected units for routine demand, less units already claimed by earlier
//!   lines of the same order; plus inbound shipments with an expected arrival,
//!   ready at their destination at that arrival. Reserved units are never offered.
//! - Each supply lot is routed to the destination ([`Router::route`]) at the
//!   request's transit quantile. It is available at the destination at arrival
//!   if the destination is open then, else at its next opening. Stock already
//!   at the destination: pick-up is available at once if open (else at opening);
//!   delivery first takes the destination's handling time.
//! - Options are single-source (a lot that covers the quantity alone) and one
//!   split fill (lots taken greedily by availability time, then cost). Ranking:
//!   options meeting need_by first, then earliest promised time, then single
//!   before split, then cost, then location id.
//! - The probability of a source arriving by need_by uses the whole transit
//!   distributions ([`Router::probability_by`]); inbound arrival times are taken
//!   as certain. An option's probability is the product over its sources,
//!   treated as independent, except that sources leaving the same location at
//!   the same ready time share one route and are counted once.
//! - A reason is given only when no option at all can be given. When options
//!   exist but none meets need_by and every one relies on inbound stock,
//!   `late_reason` says so (`OnlyInboundAfterNeedBy`).

use super::availability::{Availability, StockView};
use super::error::DomainError;
use super::ledger::Priority;
use super::network::{LaneKind, LocationId, PartId, Qty, TransportMode};
use super::routing::Route;
use super::transit::TransitQuantile;
use jiff::Timestamp;
use petgraph::graph::NodeIndex;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Options returned when a request does not say how many.
pub const DEFAULT_PROMISE_OPTIONS: usize = 5;
/// Most options a request may ask for: more is never read by a person and only
/// grows the message.
pub const MAX_PROMISE_OPTIONS: usize = 50;
/// Most lines in one PromiseOrder: bounds the work (and the reservation batch)
/// of one request.
pub const MAX_ORDER_LINES: usize = 500;

/// Most lines in one WhereIsBatch or PromiseBatch: each line is a whole
/// WhereIs or Promise (about 0.1 ms of one core on the demo network), so 500
/// bound one call to tens of milliseconds, like a PromiseOrder of
/// [`MAX_ORDER_LINES`].
pub const MAX_BATCH_LINES: usize = 500;

/// Delivery to the destination, or pick-up there by the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FulfilmentMode {
    /// Delivered by the destination location (the default).
    #[default]
    Delivery,
    /// Collected at the destination's counter during opening hours.
    Pickup,
}

/// Why no date could be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoPromiseReason {
    /// No stock of the part or any replacement, on hand or inbound.
    NoStockAnywhere,
    /// All usable stock is inbound and arrives after need_by.
    OnlyInboundAfterNeedBy,
    /// Stock exists but pending reservations hold it.
    HeldByReservations,
    /// The part is superseded and neither it nor its successors are in stock.
    SupersededNoSuccessorStock,
    /// Only protected stock is left and the request is routine.
    ProtectedForCritical,
    /// Enough stock exists but no route reaches the destination.
    NoRoute,
    /// Some stock, not enough for the quantity.
    InsufficientQuantity,
}

/// A Promise request.
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseQuery {
    /// The part asked for.
    pub part_id: PartId,
    /// Units wanted (> 0).
    pub quantity: Qty,
    /// Where the customer gets the part.
    pub destination_location_id: LocationId,
    /// Deadline; without it every option meets it with probability 1.
    pub need_by: Option<Timestamp>,
    /// Delivery or pick-up.
    pub mode: FulfilmentMode,
    /// When the order is placed (the service passes its clock's now when unset).
    pub order_time: Timestamp,
    /// Transit quantile for promised times, in (0, 1); 0 means 0.9.
    pub transit_quantile: f64,
    /// Routine or critical (critical may take protected stock).
    pub priority: Priority,
    /// Only the asked part number.
    pub exact_part_only: bool,
    /// Options wanted; 0 means [`DEFAULT_PROMISE_OPTIONS`].
    pub max_options: usize,
}

/// One leg of a promised route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLeg {
    /// Origin.
    pub from_location_id: LocationId,
    /// Destination.
    pub to_location_id: LocationId,
    /// Mode of the lane.
    pub mode: TransportMode,
    /// Kind of the lane (replenishment, lateral or emergency).
    pub kind: LaneKind,
    /// Departure.
    pub departs_at: Timestamp,
    /// Arrival at the transit quantile.
    pub arrives_at: Timestamp,
}

/// Units from one source location (or one inbound shipment).
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseSource {
    /// Where the units are (for inbound: where they are arriving).
    pub location_id: LocationId,
    /// The part number supplied.
    pub part_id: PartId,
    /// Units.
    pub quantity: Qty,
    /// Set when the units are inbound stock.
    pub inbound_shipment_id: Option<String>,
    /// When they are on hand at the source (the order time, or the inbound arrival).
    pub ready_at: Timestamp,
    /// Route to the destination; empty when the source is the destination.
    pub legs: Vec<RouteLeg>,
    /// When they are available to the customer at the destination.
    pub available_at: Timestamp,
    /// Probability they are available by need_by.
    pub probability_by_need_by: f64,
    /// Freight cost.
    pub cost_usd: f64,
}

/// A way to fill the whole quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseOption {
    /// The sources.
    pub sources: Vec<PromiseSource>,
    /// The latest `available_at` over sources.
    pub promised_at: Timestamp,
    /// `promised_at <= need_by` (true without need_by).
    pub meets_need_by: bool,
    /// Available by the close of the destination's first working day after
    /// the order's local date there.
    pub next_business_day: bool,
    /// Probability every source is available by need_by.
    pub probability_by_need_by: f64,
    /// Freight cost.
    pub cost_usd: f64,
    /// More than one source.
    pub split: bool,
}

/// A Promise answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromiseOutcome {
    /// Ranked options, best first.
    pub options: Vec<PromiseOption>,
    /// Set only when `options` is empty.
    pub reason: Option<NoPromiseReason>,
    /// Set when options exist but none meets need_by because all rely on
    /// inbound stock arriving too late.
    pub late_reason: Option<NoPromiseReason>,
    /// Human-readable detail for the reason.
    pub reason_detail: String,
}

/// Units an order line takes from one supply lot; what the service reserves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    /// The part number.
    pub part_id: PartId,
    /// The location holding (or receiving) the units.
    pub location_id: LocationId,
    /// Set for inbound stock (not reservable until received).
    pub inbound_shipment_id: Option<String>,
    /// Units.
    pub quantity: Qty,
}

type ClaimKey = (PartId, LocationId, Option<String>);

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// Client's line id.
    pub line_id: String,
    /// The part.
    pub part_id: PartId,
    /// Units (> 0).
    pub quantity: Qty,
}

/// A PromiseOrder request: the fields of [`PromiseQuery`] shared by all lines.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderQuery {
    /// Lines, quoted in order.
    pub lines: Vec<OrderLine>,
    /// Where the customer gets the parts.
    pub destination_location_id: LocationId,
    /// Deadline.
    pub need_by: Option<Timestamp>,
    /// Delivery or pick-up.
    pub mode: FulfilmentMode,
    /// When the order is placed.
    pub order_time: Timestamp,
    /// Transit quantile; 0 means 0.9.
    pub transit_quantile: f64,
    /// Routine or critical.
    pub priority: Priority,
}

/// The promise for one line.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePromise {
    /// Client's line id.
    pub line_id: String,
    /// The chosen (best-ranked) option, if any.
    pub option: Option<PromiseOption>,
    /// Why there is none.
    pub reason: Option<NoPromiseReason>,
    /// Detail for the reason.
    pub reason_detail: String,
}

/// A PromiseOrder answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPromise {
    /// Per line, in request order.
    pub lines: Vec<LinePromise>,
    /// Every line has an option.
    pub complete: bool,
    /// Units taken per (part, location, shipment), summed over lines: reserve
    /// these all-or-none. No unit appears in two lines.
    pub claims: Vec<Claim>,
}

/// A quantity of one part at one place, ready at one time.
#[derive(Debug, Clone)]
struct Lot {
    part_id: PartId,
    part_rank: usize,
    node: NodeIndex,
    shipment: Option<String>,
    quantity: Qty,
    ready_at: Timestamp,
}

/// A lot with its route and times.
#[derive(Debug, Clone)]
struct Evaluated {
    lot: Lot,
    route: Arc<Route>,
    available_at: Timestamp,
    probability: f64,
    cost_per_unit_usd: f64,
}

/// What the supply looked like, for reason codes.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    on_hand: Qty,
    reserved: Qty,
    protected_blocked: Qty,
    claimed_blocked: Qty,
    inbound_undated: Qty,
    takeable: Qty,
    routable: Qty,
}

/// An option before it is turned into output: picks are (evaluated index, units).
#[derive(Debug, Clone)]
struct Plan {
    picks: Vec<(usize, Qty)>,
    promised_at: Timestamp,
    meets_need_by: bool,
    probability: f64,
    cost_usd: f64,
}

/// A Promise query checked against the network, ready to read stock for
/// ([`Availability::prepare_promise`]).
pub struct PreparedPromise<'q> {
    query: &'q PromiseQuery,
    resolved: Resolved,
    max_options: usize,
}

/// The stock a promise can draw on, read at one cut of the ledger
/// ([`Availability::gather_promise`]).
pub struct GatheredStock {
    lots: Vec<Lot>,
    tally: Tally,
}

/// The request fields shared by Promise and each PromiseOrder line, validated.
struct Resolved {
    destination: NodeIndex,
    quantile: TransitQuantile,
    need_by: Option<Timestamp>,
    mode: FulfilmentMode,
    order_time: Timestamp,
    priority: Priority,
    next_business_day_close: Option<Timestamp>,
}

impl Availability {
    /// Ranked options for a quantity of a part at a destination. Holds nothing.
    ///
    /// Errors: `InvalidArgument` for a zero quantity or a quantile outside (0, 1);
    /// `OutOfRange` for more than [`MAX_PROMISE_OPTIONS`] options; `NotFound`
    /// for an unknown part or destination.
    pub fn promise(
        &self,
        query: &PromiseQuery,
        stock: &dyn StockView,
    ) -> Result<PromiseOutcome, DomainError> {
        let prepared = self.prepare_promise(query)?;
        let gathered = self.gather_promise(&prepared, stock)?;
        Ok(self.finish_promise(&prepared, gathered))
    }

    /// The first of [`Availability::promise`]'s three steps: the query
    /// checked and resolved against the network, before any stock is read.
    /// The steps let a caller hold a read of the ledger for the second
    /// step only ([`Availability::gather_promise`]), not while routes are
    /// searched ([`Availability::finish_promise`]).
    ///
    /// Errors: those of [`Availability::promise`] but an unknown part.
    pub fn prepare_promise<'q>(
        &self,
        query: &'q PromiseQuery,
    ) -> Result<PreparedPromise<'q>, DomainError> {
        let resolved = self.resolve(
            &query.destination_location_id,
            query.transit_quantile,
            query.need_by,
            query.mode,
            query.order_time,
            query.priority,
        )?;
        let max_options = match query.max_options {
            0 => DEFAULT_PROMISE_OPTIONS,
            n if n > MAX_PROMISE_OPTIONS => {
                return Err(DomainError::OutOfRange {
                    field: "max_options".into(),
                    reason: format!("at most {MAX_PROMISE_OPTIONS}"),
                });
            }
            n => n,
        };
        if query.quantity == 0 {
            return Err(DomainError::invalid("quantity", "must be > 0"));
        }
        Ok(PreparedPromise {
            query,
            resolved,
            max_options,
        })
    }

    /// The second step: the stock the promise can draw on, read from
    /// `stock`. Errors with `NotFound` for an unknown part.
    pub fn gather_promise(
        &self,
        prepared: &PreparedPromise<'_>,
        stock: &dyn StockView,
    ) -> Result<GatheredStock, DomainError> {
        let query = prepared.query;
        let (lots, tally) = self.gather_lots(
            &query.part_id,
            query.exact_part_only,
            &prepared.resolved,
            stock,
            &HashMap::new(),
        )?;
        Ok(GatheredStock { lots, tally })
    }

    /// The last step: routes, options and the reason when there is none.
    pub fn finish_promise(
        &self,
        prepared: &PreparedPromise<'_>,
        gathered: GatheredStock,
    ) -> PromiseOutcome {
        let query = prepared.query;
        self.finish_line(
            &query.part_id,
            query.quantity,
            prepared.max_options,
            &prepared.resolved,
            gathered,
        )
    }

    /// Consistent promises for many lines: lines are quoted in order, each
    /// taking its best option, and units taken by one line are not offered to
    /// the next. The returned claims are what the service reserves, all or none.
    ///
    /// Errors: as [`Availability::promise`], with fields prefixed `lines[i]`;
    /// `InvalidArgument` for no lines; `OutOfRange` past [`MAX_ORDER_LINES`].
    pub fn promise_order(
        &self,
        query: &OrderQuery,
        stock: &dyn StockView,
    ) -> Result<OrderPromise, DomainError> {
        if query.lines.is_empty() {
            return Err(DomainError::invalid("lines", "at least one line is needed"));
        }
        if query.lines.len() > MAX_ORDER_LINES {
            return Err(DomainError::OutOfRange {
                field: "lines".into(),
                reason: format!("at most {MAX_ORDER_LINES} lines"),
            });
        }
        let resolved = self.resolve(
            &query.destination_location_id,
            query.transit_quantile,
            query.need_by,
            query.mode,
            query.order_time,
            query.priority,
        )?;
        let mut claimed: HashMap<ClaimKey, Qty> = HashMap::new();
        let mut lines = Vec::with_capacity(query.lines.len());
        for (i, line) in query.lines.iter().enumerate() {
            let outcome = self
                .promise_line(
                    &line.part_id,
                    line.quantity,
                    false,
                    1,
                    &resolved,
                    stock,
                    &claimed,
                )
                .map_err(|e| e.within(&format!("lines[{i}]")))?;
            let option = outcome.options.into_iter().next();
            for source in option.iter().flat_map(|o| o.sources.iter()) {
                let key = (
                    source.part_id.clone(),
                    source.location_id.clone(),
                    source.inbound_shipment_id.clone(),
                );
                *claimed.entry(key).or_default() += source.quantity;
            }
            lines.push(LinePromise {
                line_id: line.line_id.clone(),
                option,
                reason: outcome.reason,
                reason_detail: outcome.reason_detail,
            });
        }
        let claims: BTreeMap<ClaimKey, Qty> = claimed.into_iter().collect();
        Ok(OrderPromise {
            complete: lines.iter().all(|l| l.option.is_some()),
            lines,
            claims: claims
                .into_iter()
                .map(
                    |((part_id, location_id, inbound_shipment_id), quantity)| Claim {
                        part_id,
                        location_id,
                        inbound_shipment_id,
                        quantity,
                    },
                )
                .collect(),
        })
    }

    fn resolve(
        &self,
        destination_location_id: &str,
        transit_quantile: f64,
        need_by: Option<Timestamp>,
        mode: FulfilmentMode,
        order_time: Timestamp,
        priority: Priority,
    ) -> Result<Resolved, DomainError> {
        let destination = self
            .router
            .node(destination_location_id)
            .ok_or_else(|| DomainError::not_found("location", destination_location_id))?;
        let quantile = TransitQuantile::new(transit_quantile)?;
        let next_business_day_close = self
            .router
            .site(destination)
            .calendar
            .next_business_day_close(order_time);
        Ok(Resolved {
            destination,
            quantile,
            need_by,
            mode,
            order_time,
            priority,
            next_business_day_close,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn promise_line(
        &self,
        part_id: &str,
        quantity: Qty,
        exact_part_only: bool,
        max_options: usize,
        resolved: &Resolved,
        stock: &dyn StockView,
        claimed: &HashMap<ClaimKey, Qty>,
    ) -> Result<PromiseOutcome, DomainError> {
        if quantity == 0 {
            return Err(DomainError::invalid("quantity", "must be > 0"));
        }
        let (lots, tally) = self.gather_lots(part_id, exact_part_only, resolved, stock, claimed)?;
        Ok(self.finish_line(
            part_id,
            quantity,
            max_options,
            resolved,
            GatheredStock { lots, tally },
        ))
    }

    /// Routes the gathered lots and ranks the options of one line.
    fn finish_line(
        &self,
        part_id: &str,
        quantity: Qty,
        max_options: usize,
        resolved: &Resolved,
        gathered: GatheredStock,
    ) -> PromiseOutcome {
        let GatheredStock { lots, mut tally } = gathered;
        let evaluated = self.evaluate(lots, resolved);
        tally.routable = evaluated.iter().map(|e| e.lot.quantity).sum();
        let mut plans: Vec<Plan> = evaluated
            .iter()
            .enumerate()
            .filter(|(_, e)| e.lot.quantity >= quantity)
            .map(|(i, _)| plan(&evaluated, vec![(i, quantity)], resolved.need_by))
            .collect();
        if let Some(split) = split_plan(&evaluated, quantity, resolved.need_by) {
            plans.push(split);
        }
        plans.sort_by(|a, b| compare_plans(a, b, &evaluated, self));
        plans.truncate(max_options);
        let mut outcome = PromiseOutcome {
            options: plans
                .iter()
                .map(|p| self.materialise(p, &evaluated, resolved))
                .collect(),
            ..PromiseOutcome::default()
        };
        if outcome.options.is_empty() {
            let (reason, detail) = self.no_promise_reason(part_id, quantity, &tally, resolved);
            outcome.reason = Some(reason);
            outcome.reason_detail = detail;
        } else if resolved.need_by.is_some()
            && !outcome.options.iter().any(|o| o.meets_need_by)
            && evaluated.iter().all(|e| e.lot.shipment.is_some())
        {
            outcome.late_reason = Some(NoPromiseReason::OnlyInboundAfterNeedBy);
            outcome.reason_detail = "all usable stock is inbound and arrives after need_by".into();
        }
        outcome
    }

    fn gather_lots(
        &self,
        part_id: &str,
        exact_part_only: bool,
        resolved: &Resolved,
        stock: &dyn StockView,
        claimed: &HashMap<ClaimKey, Qty>,
    ) -> Result<(Vec<Lot>, Tally), DomainError> {
        let candidates = self.candidate_parts(part_id, exact_part_only)?;
        let mut lots = Vec::new();
        let mut tally = Tally::default();
        let claimed_units = |part: &str, location: &str, shipment: Option<&str>| -> Qty {
            if claimed.is_empty() {
                return 0;
            }
            let key = (
                part.to_string(),
                location.to_string(),
                shipment.map(str::to_string),
            );
            claimed.get(&key).copied().unwrap_or(0)
        };
        for (part_rank, candidate) in candidates.iter().enumerate() {
            stock.visit_balances(&candidate.part_id, &mut |balance| {
                let Some(node) = self.router.node(&balance.location_id) else {
                    return;
                };
                tally.on_hand += balance.on_hand();
                tally.reserved += balance.reserved;
                let protected = match resolved.priority {
                    Priority::Critical => 0,
                    Priority::Routine => stock
                        .protected_quantity(&candidate.part_id, &balance.location_id)
                        .min(balance.available),
                };
                tally.protected_blocked += protected;
                let free = balance.available - protected;
                let taken = claimed_units(&candidate.part_id, &balance.location_id, None);
                tally.claimed_blocked += taken.min(free);
                let lot = |shipment: Option<&str>, quantity: Qty, ready_at: Timestamp| Lot {
                    part_id: candidate.part_id.clone(),
                    part_rank,
                    node,
                    shipment: shipment.map(str::to_string),
                    quantity,
                    ready_at,
                };
                push_lot(
                    &mut lots,
                    &mut tally,
                    free.saturating_sub(taken),
                    |quantity| lot(None, quantity, resolved.order_time),
                );
                for inbound in &balance.inbound {
                    let Some(arrival) = inbound.expected_arrival else {
                        tally.inbound_undated += inbound.quantity;
                        continue;
                    };
                    let taken = claimed_units(
                        &candidate.part_id,
                        &balance.location_id,
                        Some(&inbound.shipment_id),
                    );
                    tally.claimed_blocked += taken.min(inbound.quantity);
                    push_lot(
                        &mut lots,
                        &mut tally,
                        inbound.quantity.saturating_sub(taken),
                        |quantity| {
                            lot(
                                Some(&inbound.shipment_id),
                                quantity,
                                arrival.max(resolved.order_time),
                            )
                        },
                    );
                }
            });
        }
        Ok((lots, tally))
    }

    /// Routes every lot; lots at the same place and time share one route.
    fn evaluate(&self, lots: Vec<Lot>, resolved: &Resolved) -> Vec<Evaluated> {
        type Routed = Option<(Arc<Route>, Timestamp, f64)>;
        let mut cache: Vec<((NodeIndex, Timestamp), Routed)> = Vec::new();
        let mut evaluated = Vec::with_capacity(lots.len());
        for lot in lots {
            let key = (lot.node, lot.ready_at);
            let routed = match cache.iter().find(|(k, _)| *k == key) {
                Some((_, routed)) => routed.clone(),
                None => {
                    let routed = self.route_lot(lot.node, lot.ready_at, resolved);
                    cache.push((key, routed.clone()));
                    routed
                }
            };
            if let Some((route, available_at, probability)) = routed {
                let cost_per_unit_usd = route
                    .legs
                    .iter()
                    .map(|leg| self.router.lane(leg.lane).cost_per_unit_usd)
                    .sum();
                evaluated.push(Evaluated {
                    lot,
                    route,
                    available_at,
                    probability,
                    cost_per_unit_usd,
                });
            }
        }
        evaluated
    }

    /// Route, availability time and probability by need_by for units at `node`.
    fn route_lot(
        &self,
        node: NodeIndex,
        ready_at: Timestamp,
        resolved: &Resolved,
    ) -> Option<(Arc<Route>, Timestamp, f64)> {
        let destination = &self.router.site(resolved.destination).calendar;
        let route =
            self.router
                .route_memoised(node, ready_at, resolved.destination, resolved.quantile)?;
        let arrival = if route.legs.is_empty() && resolved.mode == FulfilmentMode::Delivery {
            ready_at.checked_add(destination.handling()).ok()?
        } else {
            route.arrival(ready_at)
        };
        let available_at = destination.available_from(arrival)?;
        let probability = match resolved.need_by {
            None => 1.0,
            Some(_) if route.legs.is_empty() => {
                if resolved.need_by.is_some_and(|n| available_at <= n) {
                    1.0
                } else {
                    0.0
                }
            }
            Some(need_by) => self
                .router
                .probability_by(&route, resolved.destination, need_by),
        };
        Some((route, available_at, probability))
    }

    fn materialise(
        &self,
        plan: &Plan,
        evaluated: &[Evaluated],
        resolved: &Resolved,
    ) -> PromiseOption {
        let sources = plan
            .picks
            .iter()
            .map(|&(i, quantity)| {
                let e = &evaluated[i];
                PromiseSource {
                    location_id: self.router.site(e.lot.node).id.clone(),
                    part_id: e.lot.part_id.clone(),
                    quantity,
                    inbound_shipment_id: e.lot.shipment.clone(),
                    ready_at: e.lot.ready_at,
                    legs: e
                        .route
                        .legs
                        .iter()
                        .map(|leg| RouteLeg {
                            from_location_id: self.router.site(leg.from).id.clone(),
                            to_location_id: self.router.site(leg.to).id.clone(),
                            mode: self.router.lane(leg.lane).mode,
                            kind: self.router.lane(leg.lane).kind,
                            departs_at: leg.departs_at,
                            arrives_at: leg.arrives_at,
                        })
                        .collect(),
                    available_at: e.available_at,
                    probability_by_need_by: e.probability,
                    cost_usd: e.cost_per_unit_usd * quantity as f64,
                }
            })
            .collect();
        PromiseOption {
            sources,
            promised_at: plan.promised_at,
            meets_need_by: plan.meets_need_by,
            next_business_day: resolved
                .next_business_day_close
                .is_some_and(|close| plan.promised_at <= close),
            probability_by_need_by: plan.probability,
            cost_usd: plan.cost_usd,
            split: plan.picks.len() > 1,
        }
    }

    fn no_promise_reason(
        &self,
        part_id: &str,
        quantity: Qty,
        tally: &Tally,
        resolved: &Resolved,
    ) -> (NoPromiseReason, String) {
        let detail = format!(
            "need {quantity}; usable {}, routable {}, reserved {}, protected {}, \
             claimed by earlier lines {}, inbound without date {}",
            tally.takeable,
            tally.routable,
            tally.reserved,
            tally.protected_blocked,
            tally.claimed_blocked,
            tally.inbound_undated
        );
        let superseded = self.part(part_id).is_some_and(|p| p.successor.is_some());
        let reason = if tally.takeable >= quantity {
            NoPromiseReason::NoRoute
        } else if tally.on_hand == 0 && tally.takeable == 0 && tally.inbound_undated == 0 {
            if superseded {
                NoPromiseReason::SupersededNoSuccessorStock
            } else {
                NoPromiseReason::NoStockAnywhere
            }
        } else if resolved.priority == Priority::Routine
            && tally.takeable + tally.protected_blocked >= quantity
        {
            NoPromiseReason::ProtectedForCritical
        } else if tally.reserved > 0
            && tally.takeable + tally.protected_blocked + tally.reserved >= quantity
        {
            NoPromiseReason::HeldByReservations
        } else if tally.takeable > 0 && tally.routable == 0 {
            NoPromiseReason::NoRoute
        } else {
            NoPromiseReason::InsufficientQuantity
        };
        (reason, detail)
    }
}

/// Adds a lot of `quantity` units, made by `lot` only when there are any
/// (nothing is cloned for an empty one).
fn push_lot(lots: &mut Vec<Lot>, tally: &mut Tally, quantity: Qty, lot: impl FnOnce(Qty) -> Lot) {
    if quantity > 0 {
        tally.takeable += quantity;
        lots.push(lot(quantity));
    }
}

fn plan(evaluated: &[Evaluated], picks: Vec<(usize, Qty)>, need_by: Option<Timestamp>) -> Plan {
    let mut promised_at = Timestamp::MIN;
    let mut probability = 1.0;
    let mut cost_usd = 0.0;
    for (position, &(i, quantity)) in picks.iter().enumerate() {
        let e = &evaluated[i];
        promised_at = promised_at.max(e.available_at);
        // Lots at the same place and ready time travel together on one route, so
        // their arrivals are one event, not independent ones: count it once.
        let same_shipment_seen = picks[..position].iter().any(|&(j, _)| {
            evaluated[j].lot.node == e.lot.node && evaluated[j].lot.ready_at == e.lot.ready_at
        });
        if !same_shipment_seen {
            probability *= e.probability;
        }
        cost_usd += e.cost_per_unit_usd * quantity as f64;
    }
    Plan {
        meets_need_by: need_by.is_none_or(|n| promised_at <= n),
        picks,
        promised_at,
        probability,
        cost_usd,
    }
}

/// Greedy split: lots by availability time, then cost per unit, until covered.
/// `None` when the lots cannot cover the quantity or one lot covers it alone.
fn split_plan(evaluated: &[Evaluated], quantity: Qty, need_by: Option<Timestamp>) -> Option<Plan> {
    let mut order: Vec<usize> = (0..evaluated.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&evaluated[a], &evaluated[b]);
        ea.available_at
            .cmp(&eb.available_at)
            .then(ea.cost_per_unit_usd.total_cmp(&eb.cost_per_unit_usd))
            .then(ea.lot.part_rank.cmp(&eb.lot.part_rank))
            .then(ea.lot.node.cmp(&eb.lot.node))
    });
    let mut remaining = quantity;
    let mut picks = Vec::new();
    for i in order {
        if remaining == 0 {
            break;
        }
        let take = evaluated[i].lot.quantity.min(remaining);
        picks.push((i, take));
        remaining -= take;
    }
    if remaining > 0 || picks.len() < 2 {
        return None;
    }
    Some(plan(evaluated, picks, need_by))
}

fn compare_plans(a: &Plan, b: &Plan, evaluated: &[Evaluated], engine: &Availability) -> Ordering {
    let first = |p: &Plan| {
        p.picks
            .first()
            .map(|&(i, _)| (evaluated[i].lot.part_rank, evaluated[i].lot.node))
    };
    b.meets_need_by
        .cmp(&a.meets_need_by)
        .then(a.promised_at.cmp(&b.promised_at))
        .then(a.picks.len().cmp(&b.picks.len()))
        .then(a.cost_usd.total_cmp(&b.cost_usd))
        .then_with(|| match (first(a), first(b)) {
            (Some((rank_a, node_a)), Some((rank_b, node_b))) => {
                rank_a.cmp(&rank_b).then_with(|| {
                    engine
                        .router
                        .site(node_a)
                        .id
                        .cmp(&engine.router.site(node_b).id)
                })
            }
            _ => Ordering::Equal,
        })
}
