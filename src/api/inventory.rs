//! `InventoryService`: record movements, read stock, watch changes.

use super::convert::{self, convert_batch};
use super::util::{blocking, page_size, paginate};
use crate::auth::Principal;
use crate::domain::DomainError;
use crate::domain::ledger::Balance;
use crate::pb;
use crate::pb::inventory_service_server::InventoryService;
use crate::service::{Spares, StockChanged};
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The gRPC face of the stock ledger.
pub struct InventoryApi {
    spares: Arc<Spares>,
}

impl InventoryApi {
    /// Serves the ledger of `spares`.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }

    /// One page of a location's stock, read from the ledger's location index:
    /// the page token is the last `part<US>location` key returned (the same
    /// tokens as every GetStock page), and a page costs its own size however
    /// many parts the ledger holds or how far into the location it starts.
    fn stock_at_location(
        &self,
        location_id: &str,
        page: Option<&pb::PageRequest>,
        to_pb: impl Fn(Balance) -> pb::StockPosition,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let size = page_size(page, self.spares.limits())?;
        let token = page.map_or("", |p| p.page_token.as_str());
        let after_part = (!token.is_empty()).then(|| token.split('\u{1f}').next().unwrap_or(token));
        let mut balances =
            self.spares
                .stock_at_location(location_id, after_part, size.saturating_add(1))?;
        let more = balances.len() > size;
        balances.truncate(size);
        let next_page_token = match balances.last() {
            Some(last) if more => format!("{}\u{1f}{}", last.part_id, last.location_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::GetStockResponse {
            positions: balances.into_iter().map(to_pb).collect(),
            next_page_token,
        }))
    }
}

/// A boxed stream of stock events.
pub type StockEventStream = Pin<Box<dyn Stream<Item = Result<pb::StockEvent, Status>> + Send>>;

fn empty_to_none(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// The stock position of one part-location as a protobuf message.
pub fn position(
    spares: &Spares,
    part_id: &str,
    location_id: &str,
) -> Result<pb::StockPosition, Status> {
    let balance = spares.store().balance(part_id, location_id)?;
    let protected = spares.protected_quantity(part_id, location_id);
    Ok(convert::stock_to_pb(
        &balance,
        protected,
        spares.clock().now(),
    ))
}

/// Streams stock positions for changes matching the filters. A bounded buffer
/// sits between the change feed and the client; when the client reads too
/// slowly the feed overflows and the stream says `Lagged` with the count lost.
///
/// With `reservations_for`, a change made by a reservation is followed by a
/// `ReservationChange` event when that principal sees the reservation
/// ([`super::scope::sees`]: a dealer for its own stores, planners and
/// administrators for all); without it (WatchStock) no reservation event is
/// sent. Stock changes themselves go to every subscriber whose filters match.
pub fn watch(
    spares: Arc<Spares>,
    part_ids: Vec<String>,
    location_ids: Vec<String>,
    reservations_for: Option<Arc<Principal>>,
) -> StockEventStream {
    let parts: HashSet<String> = part_ids.into_iter().collect();
    let locations: HashSet<String> = location_ids.into_iter().collect();
    let mut changes = spares.subscribe();
    let mut closing = spares.closing();
    let (tx, rx) = mpsc::channel(spares.limits().watch_buffer.max(1));
    tokio::spawn(async move {
        let stream = crate::metrics::WatchStreamGuard::open("stock");
        loop {
            let received = tokio::select! {
                received = changes.recv() => received,
                _ = closing.wait_for(|closed| *closed) => break,
            };
            let (event, reservation) = match received {
                Ok(StockChanged {
                    part_id,
                    location_id,
                    reservation,
                }) => {
                    if (!parts.is_empty() && !parts.contains(&part_id))
                        || (!locations.is_empty() && !locations.contains(&location_id))
                    {
                        continue;
                    }
                    let seen = reservation.filter(|r| {
                        reservations_for
                            .as_deref()
                            .is_some_and(|principal| super::scope::sees(principal, r))
                    });
                    let event = position(&spares, &part_id, &location_id).map(|p| pb::StockEvent {
                        event: Some(pb::stock_event::Event::Changed(p)),
                    });
                    (event, seen)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    stream.lagged(missed);
                    let event = Ok(pb::StockEvent {
                        event: Some(pb::stock_event::Event::Lagged(pb::Lagged {
                            missed_events: missed,
                        })),
                    });
                    (event, None)
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if tx.send(event).await.is_err() {
                break; // The client went away.
            }
            if let Some(reservation) = reservation {
                let event = pb::StockEvent {
                    event: Some(pb::stock_event::Event::Reservation(
                        convert::reservation_change_to_pb(&reservation),
                    )),
                };
                if tx.send(Ok(event)).await.is_err() {
                    break;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn record_movements(
        &self,
        request: Request<pb::RecordMovementsRequest>,
    ) -> Result<Response<pb::RecordMovementsResponse>, Status> {
        let principal = super::gate::caller(&request)?;
        super::audit::note_keys(
            &request,
            request
                .get_ref()
                .movements
                .iter()
                .map(|m| m.idempotency_key.as_str()),
        );
        let movements = &request.get_ref().movements;
        if movements.is_empty() {
            return Err(
                DomainError::invalid("movements", "at least one movement is required").into(),
            );
        }
        let commands = convert_batch("movements", movements, convert::movement_from_pb)?;
        // A warehouse moves stock only at its own locations (a transfer it
        // ships may go anywhere; the receiving side records the receipt).
        for (i, command) in commands.iter().enumerate() {
            // The field name is written only for a refusal.
            if !principal.acts_at_location(&command.location_id) {
                super::scope::require_location(
                    &principal,
                    &format!("movements[{i}].location_id"),
                    &command.location_id,
                )?;
            }
        }
        let actor = principal.actor();
        let outcomes =
            blocking(&self.spares, move |s| s.record_movements(&actor, commands)).await?;
        Ok(Response::new(pb::RecordMovementsResponse {
            results: outcomes
                .iter()
                .map(convert::movement_outcome_to_pb)
                .collect(),
        }))
    }

    async fn get_stock(
        &self,
        request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let request = request.into_inner();
        let (part, location) = (
            empty_to_none(&request.part_id),
            empty_to_none(&request.location_id),
        );
        if part.is_none() && location.is_none() {
            return Err(
                DomainError::invalid("part_id", "give a part_id, a location_id or both").into(),
            );
        }
        let now = self.spares.clock().now();
        // Protection is read once per page, not once per position.
        let protection = self.spares.protection();
        let to_pb = |b: Balance| {
            let protected = protection.quantity(&b.part_id, &b.location_id);
            convert::stock_into_pb(b, protected, now)
        };
        if let (None, Some(location)) = (part, location) {
            return self.stock_at_location(location, request.page.as_ref(), to_pb);
        }
        let balances = self.spares.stock(part, location)?;
        // Positions are built for the page only, not for the balances before it.
        let items = balances
            .iter()
            .map(|b| (format!("{}\u{1f}{}", b.part_id, b.location_id), b));
        let (page, next_page_token) = paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::GetStockResponse {
            positions: page.into_iter().cloned().map(to_pb).collect(),
            next_page_token,
        }))
    }

    async fn list_movements(
        &self,
        request: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        let principal = super::gate::caller(&request)?;
        super::scope::require_movement_reader(&principal, &request.get_ref().location_id)?;
        let filter = super::trail::movement_filter(request.get_ref(), self.spares.limits())?;
        let (entries, next) = blocking(&self.spares, move |s| s.store().movements(&filter)).await?;
        Ok(Response::new(pb::ListMovementsResponse {
            movements: entries
                .iter()
                .map(super::trail::movement_entry_to_pb)
                .collect(),
            next_page_token: super::trail::next_token(next),
        }))
    }

    type WatchStockStream = StockEventStream;

    async fn watch_stock(
        &self,
        request: Request<pb::WatchStockRequest>,
    ) -> Result<Response<Self::WatchStockStream>, Status> {
        let request = request.into_inner();
        Ok(Response::new(watch(
            self.spares.clone(),
            request.part_ids,
            request.location_ids,
            None,
        )))
    }
}
