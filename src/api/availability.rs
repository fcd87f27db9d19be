//! `AvailabilityService`: WhereIs, Promise and PromiseOrder over the live
//! ledger and the routing core, and reservations (the ledger's two-phase primitive).

use super::convert;
use super::gate::caller;
use super::inventory::{StockEventStream, watch};
use super::scope;
use super::util::{blocking, page_size};
use crate::domain::DomainError;
use crate::domain::availability::PartRelation;
use crate::domain::ledger::{Balance, PostCommand, ReservationFilter, ReserveCommand, VoidCommand};
use crate::domain::promise::{
    FulfilmentMode, NoPromiseReason, OrderLine, OrderQuery, PromiseOption, PromiseOutcome,
    PromiseQuery,
};
use crate::domain::where_is::{WhereIsAnswer, WhereIsQuery};
use crate::pb;
use crate::pb::availability_service_server::AvailabilityService;
use crate::service::Spares;
use crate::service::availability::OrderReservation;
use jiff::Timestamp;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC face of availability and reservations.
pub struct AvailabilityApi {
    spares: Arc<Spares>,
}

impl AvailabilityApi {
    /// Serves availability for `spares`.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }
}

impl AvailabilityApi {
    /// Refuses a reservation the caller does not see exactly as an unknown
    /// id is refused (before any idempotency check, so a reused key tells
    /// nothing either).
    async fn check_sees(&self, principal: &crate::auth::Principal, id: &str) -> Result<(), Status> {
        if principal.reads_everything() {
            return Ok(());
        }
        let id = id.to_string();
        let reservation = blocking(&self.spares, move |s| s.reservation(&id)).await?;
        scope::visible(principal, reservation)?;
        Ok(())
    }

    /// The order time of a request: as given, or now.
    fn order_time(&self, ts: Option<&prost_types::Timestamp>) -> Result<Timestamp, DomainError> {
        Ok(convert::opt_timestamp("order_time", ts)?.unwrap_or_else(|| self.spares.clock().now()))
    }
}

fn mode_from_pb(value: i32) -> Result<FulfilmentMode, DomainError> {
    match pb::FulfilmentMode::try_from(value) {
        Ok(pb::FulfilmentMode::Unspecified | pb::FulfilmentMode::Delivery) => {
            Ok(FulfilmentMode::Delivery)
        }
        Ok(pb::FulfilmentMode::Pickup) => Ok(FulfilmentMode::Pickup),
        Err(_) => Err(DomainError::invalid(
            "mode",
            format!("unknown fulfilment mode {value}"),
        )),
    }
}

fn reason_to_pb(reason: Option<NoPromiseReason>) -> i32 {
    use pb::NoPromiseReason as R;
    (match reason {
        None => R::Unspecified,
        Some(NoPromiseReason::NoStockAnywhere) => R::NoStockAnywhere,
        Some(NoPromiseReason::OnlyInboundAfterNeedBy) => R::OnlyInboundAfterNeedBy,
        Some(NoPromiseReason::HeldByReservations) => R::HeldByReservations,
        Some(NoPromiseReason::SupersededNoSuccessorStock) => R::SupersededNoSuccessorStock,
        Some(NoPromiseReason::ProtectedForCritical) => R::ProtectedForCritical,
        Some(NoPromiseReason::NoRoute) => R::NoRoute,
        Some(NoPromiseReason::InsufficientQuantity) => R::InsufficientQuantity,
    }) as i32
}

/// Moves the option's strings into the message (no copy of any id).
fn option_to_pb(o: PromiseOption) -> pb::PromiseOption {
    pb::PromiseOption {
        sources: o
            .sources
            .into_iter()
            .map(|s| pb::PromiseSource {
                location_id: s.location_id,
                part_id: s.part_id,
                quantity: s.quantity,
                inbound_shipment_id: s.inbound_shipment_id.unwrap_or_default(),
                ready_at: Some(convert::timestamp_to_pb(s.ready_at)),
                legs: s
                    .legs
                    .into_iter()
                    .map(|l| pb::RouteLeg {
                        from_location_id: l.from_location_id,
                        to_location_id: l.to_location_id,
                        mode: convert::mode_to_pb(l.mode),
                        kind: convert::lane_kind_to_pb(l.kind),
                        departs_at: Some(convert::timestamp_to_pb(l.departs_at)),
                        arrives_at: Some(convert::timestamp_to_pb(l.arrives_at)),
                    })
                    .collect(),
                available_at: Some(convert::timestamp_to_pb(s.available_at)),
                probability_by_need_by: s.probability_by_need_by,
                cost_usd: s.cost_usd,
            })
            .collect(),
        promised_at: Some(convert::timestamp_to_pb(o.promised_at)),
        meets_need_by: o.meets_need_by,
        next_business_day: o.next_business_day,
        probability_by_need_by: o.probability_by_need_by,
        cost_usd: o.cost_usd,
        split: o.split,
    }
}

fn relation_to_pb(relation: PartRelation) -> i32 {
    (match relation {
        PartRelation::Same => pb::PartRelation::Same,
        PartRelation::Successor => pb::PartRelation::Successor,
        PartRelation::Predecessor => pb::PartRelation::Predecessor,
    }) as i32
}

fn where_is_to_pb(answer: &WhereIsAnswer, now: Timestamp) -> pb::WhereIsResponse {
    pb::WhereIsResponse {
        locations: answer
            .locations
            .iter()
            .map(|l| {
                let balance = Balance {
                    part_id: l.part_id.clone(),
                    location_id: l.location_id.clone(),
                    available: l.available,
                    reserved: l.reserved,
                    inbound: l.inbound.clone(),
                };
                pb::LocationAvailability {
                    stock: Some(convert::stock_to_pb(&balance, l.protected, now)),
                    relation: relation_to_pb(l.relation),
                    location_name: l.location_name.clone(),
                    location_kind: convert::location_kind_to_pb(l.location_kind) as i32,
                    distance_km: l.distance_km.unwrap_or(0.0),
                }
            })
            .collect(),
        part_ids: answer.part_ids.clone(),
        as_of: Some(convert::timestamp_to_pb(now)),
    }
}

fn required(field: &str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    Ok(())
}

/// A WhereIs request as a query (the same for a single call and a batch line).
fn where_is_query(r: pb::WhereIsRequest) -> Result<WhereIsQuery, DomainError> {
    required("part_id", &r.part_id)?;
    Ok(WhereIsQuery {
        part_id: r.part_id,
        near_location_id: (!r.near_location_id.is_empty()).then_some(r.near_location_id),
        exact_part_only: r.exact_part_only,
        only_with_stock: r.only_with_stock,
        max_locations: r.max_locations as usize,
    })
}

/// A Promise request as a query; an unset order time is `now`.
fn promise_query(r: pb::PromiseRequest, now: Timestamp) -> Result<PromiseQuery, DomainError> {
    required("part_id", &r.part_id)?;
    required("destination_location_id", &r.destination_location_id)?;
    Ok(PromiseQuery {
        part_id: r.part_id,
        quantity: r.quantity,
        destination_location_id: r.destination_location_id,
        need_by: convert::opt_timestamp("need_by", r.need_by.as_ref())?,
        mode: mode_from_pb(r.mode)?,
        order_time: convert::opt_timestamp("order_time", r.order_time.as_ref())?.unwrap_or(now),
        transit_quantile: r.transit_quantile,
        priority: convert::priority_from_pb(r.priority)?,
        exact_part_only: r.exact_part_only,
        max_options: r.max_options as usize,
    })
}

fn promise_to_pb(outcome: PromiseOutcome, now: Timestamp, sequence: u64) -> pb::PromiseResponse {
    pb::PromiseResponse {
        reason: reason_to_pb(outcome.reason.or(outcome.late_reason)),
        options: outcome.options.into_iter().map(option_to_pb).collect(),
        reason_detail: outcome.reason_detail,
        as_of: Some(convert::timestamp_to_pb(now)),
        ledger_sequence: sequence,
    }
}

/// The error of batch line `i`: the status a separate call would have ended
/// with, and the field at fault. An unknown part is the line's `part_id`; an
/// unknown location is its `location_field`.
fn line_error(error: &DomainError, i: usize, location_field: &str) -> pb::LineError {
    let field = match error {
        DomainError::InvalidArgument { field, .. } | DomainError::OutOfRange { field, .. } => {
            field.clone()
        }
        DomainError::NotFound { entity: "part", .. } => format!("lines[{i}].part_id"),
        DomainError::NotFound {
            entity: "location", ..
        } => format!("lines[{i}].{location_field}"),
        _ => String::new(),
    };
    let status = super::status::domain_status(error);
    let message = if field.is_empty() || status.message().contains(&field) {
        status.message().to_string()
    } else {
        format!("{field}: {}", status.message())
    };
    pb::LineError {
        code: status.code() as i32,
        message,
        field,
    }
}

#[tonic::async_trait]
impl AvailabilityService for AvailabilityApi {
    async fn where_is(
        &self,
        request: Request<pb::WhereIsRequest>,
    ) -> Result<Response<pb::WhereIsResponse>, Status> {
        let query = where_is_query(request.into_inner())?;
        let answer = self.spares.where_is(&query)?;
        let now = self.spares.clock().now();
        Ok(Response::new(where_is_to_pb(&answer, now)))
    }

    async fn promise(
        &self,
        request: Request<pb::PromiseRequest>,
    ) -> Result<Response<pb::PromiseResponse>, Status> {
        let now = self.spares.clock().now();
        let query = promise_query(request.into_inner(), now)?;
        let (outcome, sequence) = self.spares.promise_with_sequence(&query)?;
        Ok(Response::new(promise_to_pb(
            outcome,
            self.spares.clock().now(),
            sequence,
        )))
    }

    async fn where_is_batch(
        &self,
        request: Request<pb::WhereIsBatchRequest>,
    ) -> Result<Response<pb::WhereIsBatchResponse>, Status> {
        let lines = request.into_inner().lines;
        let queries = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| where_is_query(line).map_err(|e| e.within(&format!("lines[{i}]"))))
            .collect();
        let answers = blocking(&self.spares, move |s| s.where_is_batch(queries)).await?;
        let now = self.spares.clock().now();
        let lines = answers
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| pb::WhereIsBatchLine {
                result: Some(match line {
                    Ok(answer) => {
                        pb::where_is_batch_line::Result::Answer(where_is_to_pb(answer, now))
                    }
                    Err(error) => pb::where_is_batch_line::Result::Error(line_error(
                        error,
                        i,
                        "near_location_id",
                    )),
                }),
            })
            .collect();
        Ok(Response::new(pb::WhereIsBatchResponse {
            lines,
            ledger_sequence: answers.sequence,
            as_of: Some(convert::timestamp_to_pb(now)),
        }))
    }

    async fn promise_batch(
        &self,
        request: Request<pb::PromiseBatchRequest>,
    ) -> Result<Response<pb::PromiseBatchResponse>, Status> {
        let lines = request.into_inner().lines;
        // One instant for the whole batch: lines without an order time are
        // all placed at it, as the answer's `as_of` says.
        let now = self.spares.clock().now();
        let queries = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| promise_query(line, now).map_err(|e| e.within(&format!("lines[{i}]"))))
            .collect();
        let answers = blocking(&self.spares, move |s| s.promise_batch(queries)).await?;
        let sequence = answers.sequence;
        let lines = answers
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| pb::PromiseBatchLine {
                result: Some(match line {
                    Ok(outcome) => pb::promise_batch_line::Result::Answer(promise_to_pb(
                        outcome, now, sequence,
                    )),
                    Err(error) => pb::promise_batch_line::Result::Error(line_error(
                        &error,
                        i,
                        "destination_location_id",
                    )),
                }),
            })
            .collect();
        Ok(Response::new(pb::PromiseBatchResponse {
            lines,
            ledger_sequence: sequence,
            as_of: Some(convert::timestamp_to_pb(now)),
        }))
    }

    async fn promise_order(
        &self,
        request: Request<pb::PromiseOrderRequest>,
    ) -> Result<Response<pb::PromiseOrderResponse>, Status> {
        let principal = caller(&request)?;
        if request.get_ref().reserve {
            super::audit::note_keys(&request, [request.get_ref().idempotency_key.as_str()]);
        }
        let r = request.into_inner();
        required("destination_location_id", &r.destination_location_id)?;
        if r.reserve {
            // Reserving is a ledger write: dealers for their own stores and
            // administrators only; ordering apps and planners only ask.
            scope::require_store(
                &principal,
                "destination_location_id",
                &r.destination_location_id,
            )?;
            required("idempotency_key", &r.idempotency_key)?;
        }
        let query = OrderQuery {
            lines: r
                .lines
                .iter()
                .map(|l| OrderLine {
                    line_id: l.line_id.clone(),
                    part_id: l.part_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            destination_location_id: r.destination_location_id,
            need_by: convert::opt_timestamp("need_by", r.need_by.as_ref())?,
            mode: mode_from_pb(r.mode)?,
            order_time: self.order_time(r.order_time.as_ref())?,
            transit_quantile: r.transit_quantile,
            priority: convert::priority_from_pb(r.priority)?,
        };
        let reserve = r.reserve.then(|| OrderReservation {
            idempotency_key: r.idempotency_key.clone(),
            ttl_seconds: r.reservation_ttl_seconds,
            order_reference: r.idempotency_key.clone(),
        });
        let actor = principal.actor();
        let (promise, reservations) = blocking(&self.spares, move |s| {
            s.promise_order(&actor, &query, reserve.as_ref())
        })
        .await?;
        Ok(Response::new(pb::PromiseOrderResponse {
            lines: promise
                .lines
                .into_iter()
                .map(|l| pb::LinePromise {
                    line_id: l.line_id,
                    option: l.option.map(option_to_pb),
                    reason: reason_to_pb(l.reason),
                    reason_detail: l.reason_detail,
                })
                .collect(),
            complete: promise.complete && (!r.reserve || !reservations.is_empty()),
            reservations: reservations
                .iter()
                .map(convert::reservation_to_pb)
                .collect(),
            as_of: Some(convert::timestamp_to_pb(self.spares.clock().now())),
        }))
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let principal = caller(&request)?;
        super::audit::note_keys(&request, [request.get_ref().idempotency_key.as_str()]);
        let r = request.into_inner();
        required("idempotency_key", &r.idempotency_key)?;
        required("part_id", &r.part_id)?;
        required("location_id", &r.location_id)?;
        scope::require_store(&principal, "location_id", &r.location_id)?;
        let command = ReserveCommand {
            idempotency_key: r.idempotency_key,
            part_id: r.part_id,
            location_id: r.location_id,
            quantity: r.quantity,
            ttl_seconds: hold_seconds(
                r.ttl_seconds,
                convert::opt_timestamp("hold_until", r.hold_until.as_ref())?,
                self.spares.clock().now(),
            )?,
            priority: convert::priority_from_pb(r.priority)?,
            protected_quantity: 0,
            order_reference: r.order_reference,
            for_location_id: None,
        };
        let actor = principal.actor();
        let mut reservations =
            blocking(&self.spares, move |s| s.reserve(&actor, vec![command])).await?;
        let reservation = reservations
            .pop()
            .ok_or_else(|| Status::internal("the ledger returned no reservation"))?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn confirm_reservation(
        &self,
        request: Request<pb::ConfirmReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let principal = caller(&request)?;
        super::audit::note_keys(&request, [request.get_ref().idempotency_key.as_str()]);
        let r = request.into_inner();
        required("reservation_id", &r.reservation_id)?;
        self.check_sees(&principal, &r.reservation_id).await?;
        required("idempotency_key", &r.idempotency_key)?;
        let command = PostCommand {
            reservation_id: r.reservation_id,
            idempotency_key: r.idempotency_key,
            ship_to_location_id: (!r.ship_to_location_id.is_empty())
                .then_some(r.ship_to_location_id),
            expected_arrival: convert::opt_timestamp(
                "expected_arrival",
                r.expected_arrival.as_ref(),
            )?,
        };
        let actor = principal.actor();
        let reservation = blocking(&self.spares, move |s| s.confirm(&actor, command)).await?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let principal = caller(&request)?;
        super::audit::note_keys(&request, [request.get_ref().idempotency_key.as_str()]);
        let r = request.into_inner();
        required("reservation_id", &r.reservation_id)?;
        self.check_sees(&principal, &r.reservation_id).await?;
        required("idempotency_key", &r.idempotency_key)?;
        let command = VoidCommand {
            reservation_id: r.reservation_id,
            idempotency_key: r.idempotency_key,
        };
        let actor = principal.actor();
        let reservation = blocking(&self.spares, move |s| s.release(&actor, command)).await?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let principal = caller(&request)?;
        let id = request.into_inner().reservation_id;
        required("reservation_id", &id)?;
        let reservation = scope::visible(&principal, self.spares.reservation(&id)?)?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn list_reservations(
        &self,
        request: Request<pb::ListReservationsRequest>,
    ) -> Result<Response<pb::ListReservationsResponse>, Status> {
        let principal = caller(&request)?;
        let r = request.into_inner();
        let limit = page_size(r.page.as_ref(), self.spares.limits())?;
        let token = r
            .page
            .as_ref()
            .map(|p| p.page_token.clone())
            .unwrap_or_default();
        let filter = ReservationFilter {
            part_id: (!r.part_id.is_empty()).then_some(r.part_id),
            location_id: (!r.location_id.is_empty()).then_some(r.location_id),
            state: convert::reservation_state_filter(r.state)?,
            // A dealer lists only the reservations held for its stores.
            held_for: (!principal.reads_everything()).then(|| principal.stores.clone()),
            after_id: (!token.is_empty()).then_some(token),
            limit: limit + 1,
        };
        let mut reservations = self.spares.reservations(&filter)?;
        let more = reservations.len() > limit;
        reservations.truncate(limit);
        let next_page_token = if more {
            reservations
                .last()
                .map(|r| r.reservation_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListReservationsResponse {
            reservations: reservations
                .iter()
                .map(convert::reservation_to_pb)
                .collect(),
            next_page_token,
        }))
    }

    type WatchAvailabilityStream = StockEventStream;

    async fn watch_availability(
        &self,
        request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        let principal = super::gate::caller(&request)?;
        let r = request.into_inner();
        Ok(Response::new(watch(
            self.spares.clone(),
            r.part_ids,
            r.location_ids,
            Some(principal),
        )))
    }
}

/// How long a Reserve request holds its stock: `ttl_seconds`, or the whole
/// seconds from `now` until `hold_until` (rounded up). The service applies
/// the default and the cap to the result.
///
/// # Errors
/// `InvalidArgument` when both are given or `hold_until` is not after `now`.
fn hold_seconds(
    ttl_seconds: u32,
    hold_until: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Result<u32, DomainError> {
    let Some(until) = hold_until else {
        return Ok(ttl_seconds);
    };
    if ttl_seconds != 0 {
        return Err(DomainError::invalid(
            "hold_until",
            "give ttl_seconds or hold_until, not both",
        ));
    }
    let nanos = until.as_nanosecond() - now.as_nanosecond();
    if nanos <= 0 {
        return Err(DomainError::invalid(
            "hold_until",
            format!("{until} is not after the server's time {now}"),
        ));
    }
    let seconds = (nanos + 999_999_999) / 1_000_000_000;
    Ok(u32::try_from(seconds).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod hold_tests {
    use super::hold_seconds;

    #[test]
    fn a_hold_until_becomes_whole_seconds_from_now() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let until = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
        assert_eq!(hold_seconds(300, None, now).unwrap(), 300);
        assert_eq!(
            hold_seconds(0, until("2026-11-30T12:00:10.2Z"), now).unwrap(),
            11
        );
        assert!(hold_seconds(0, until("2026-11-30T12:00:00Z"), now).is_err());
        assert!(hold_seconds(60, until("2026-11-30T13:00:00Z"), now).is_err());
        assert_eq!(
            hold_seconds(0, until("2300-01-01T00:00:00Z"), now).unwrap(),
            u32::MAX
        );
    }
}
