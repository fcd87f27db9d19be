//! `AvailabilityService`: reservations (the ledger's two-phase primitive) and,
//! once the routing core is wired in, WhereIs / Promise / PromiseOrder.

use super::convert;
use super::inventory::{StockEventStream, watch};
use super::util::{blocking, page_size};
use crate::domain::DomainError;
use crate::domain::ledger::{PostCommand, ReservationFilter, ReserveCommand, VoidCommand};
use crate::pb;
use crate::pb::availability_service_server::AvailabilityService;
use crate::service::Spares;
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

fn required(field: &str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    Ok(())
}

#[tonic::async_trait]
impl AvailabilityService for AvailabilityApi {
    async fn where_is(
        &self,
        _request: Request<pb::WhereIsRequest>,
    ) -> Result<Response<pb::WhereIsResponse>, Status> {
        Err(Status::unimplemented(
            "WhereIs arrives with the availability issue",
        ))
    }

    async fn promise(
        &self,
        _request: Request<pb::PromiseRequest>,
    ) -> Result<Response<pb::PromiseResponse>, Status> {
        Err(Status::unimplemented(
            "Promise arrives with the availability issue",
        ))
    }

    async fn promise_order(
        &self,
        _request: Request<pb::PromiseOrderRequest>,
    ) -> Result<Response<pb::PromiseOrderResponse>, Status> {
        Err(Status::unimplemented(
            "PromiseOrder arrives with the availability issue",
        ))
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let r = request.into_inner();
        required("idempotency_key", &r.idempotency_key)?;
        required("part_id", &r.part_id)?;
        required("location_id", &r.location_id)?;
        let command = ReserveCommand {
            idempotency_key: r.idempotency_key,
            part_id: r.part_id,
            location_id: r.location_id,
            quantity: r.quantity,
            ttl_seconds: r.ttl_seconds,
            priority: convert::priority_from_pb(r.priority)?,
            protected_quantity: 0,
            order_reference: r.order_reference,
        };
        let mut reservations = blocking(&self.spares, move |s| s.reserve(vec![command])).await?;
        let reservation = reservations
            .pop()
            .ok_or_else(|| Status::internal("the ledger returned no reservation"))?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn confirm_reservation(
        &self,
        request: Request<pb::ConfirmReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let r = request.into_inner();
        required("reservation_id", &r.reservation_id)?;
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
        let reservation = blocking(&self.spares, move |s| s.confirm(command)).await?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let r = request.into_inner();
        required("reservation_id", &r.reservation_id)?;
        required("idempotency_key", &r.idempotency_key)?;
        let command = VoidCommand {
            reservation_id: r.reservation_id,
            idempotency_key: r.idempotency_key,
        };
        let reservation = blocking(&self.spares, move |s| s.release(command)).await?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let id = request.into_inner().reservation_id;
        required("reservation_id", &id)?;
        let reservation = self.spares.reservation(&id)?;
        Ok(Response::new(convert::reservation_to_pb(&reservation)))
    }

    async fn list_reservations(
        &self,
        request: Request<pb::ListReservationsRequest>,
    ) -> Result<Response<pb::ListReservationsResponse>, Status> {
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
        let r = request.into_inner();
        Ok(Response::new(watch(
            self.spares.clone(),
            r.part_ids,
            r.location_ids,
        )))
    }
}
