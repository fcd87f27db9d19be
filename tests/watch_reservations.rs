//! Reservation events on WatchAvailability are scoped like reservations:
//! two dealers and a planner watch; dealer A reserves at its store and then
//! releases; an administrator then records a receipt (a marker every stream
//! must carry). Each stream is read up to the marker, so "B got no
//! reservation event" is decided by order, not by waiting: A and the
//! planner see Reserved and Released events (after the stock change each
//! caused), B sees the same stock changes and no reservation event, and
//! WatchStock never carries one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, receipt};
use spares::auth::Role;
use spares::config::Limits;
use spares::demo::DemoConfig;
use spares::pb;
use spares::pb::stock_event::Event;
use std::time::Duration;
use tokio_stream::StreamExt;

/// What a stream carried, in order, up to and including the marker change
/// (`part` at `location`, where only the marker moves stock).
async fn read_to_marker(
    stream: &mut tonic::Streaming<pb::StockEvent>,
    part: &str,
    location: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        // A hang guard, not a timing assertion: the marker always comes.
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the marker arrives")
            .expect("the stream stays open")
            .expect("no error");
        match event.event {
            Some(Event::Changed(p)) => {
                let marker = p.part_id == part && p.location_id == location;
                seen.push(format!("changed {}@{}", p.part_id, p.location_id));
                if marker {
                    return seen;
                }
            }
            Some(Event::Reservation(r)) => {
                let kind = pb::ReservationChangeKind::try_from(r.kind).unwrap();
                seen.push(format!(
                    "{kind:?} {} {}@{} for {}",
                    r.reservation_id, r.part_id, r.location_id, r.held_for_location_id
                ));
            }
            Some(Event::Lagged(l)) => panic!("lagged {}", l.missed_events),
            None => panic!("an empty event"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_events_reach_only_the_dealer_whose_store_it_is() {
    let server = TestServer::with_demo(
        DemoConfig {
            seed: 5,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        Limits::default(),
    )
    .await;
    let [(store_a, part_a), (store_b, part_b)] = server.two_stocked_stores();
    let mut a = server
        .clients_as(Some(&server.key(Role::Dealer, &[&store_a], &[])))
        .await;
    let mut b = server
        .clients_as(Some(&server.key(Role::Dealer, &[&store_b], &[])))
        .await;
    let mut planner = server
        .clients_as(Some(&server.key(Role::Planner, &[], &[])))
        .await;
    let mut admin = server.clients().await;

    let watch = || pb::WatchAvailabilityRequest {
        part_ids: vec![],
        location_ids: vec![],
    };
    let mut stream_a = a
        .availability
        .watch_availability(watch())
        .await
        .unwrap()
        .into_inner();
    let mut stream_b = b
        .availability
        .watch_availability(watch())
        .await
        .unwrap()
        .into_inner();
    let mut stream_planner = planner
        .availability
        .watch_availability(watch())
        .await
        .unwrap()
        .into_inner();
    let mut stream_stock = admin
        .inventory
        .watch_stock(pb::WatchStockRequest::default())
        .await
        .unwrap()
        .into_inner();

    let held = a
        .availability
        .reserve(pb::ReserveRequest {
            idempotency_key: "watch-a-1".into(),
            part_id: part_a.clone(),
            location_id: store_a.clone(),
            quantity: 1,
            ttl_seconds: 600,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = held.reservation_id;
    a.availability
        .release_reservation(pb::ReleaseReservationRequest {
            reservation_id: id.clone(),
            idempotency_key: "watch-a-1-release".into(),
        })
        .await
        .unwrap();
    // The marker: a receipt of B's part at B's store.
    admin
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("watch-marker", &part_b, &store_b, 1)],
        })
        .await
        .unwrap();

    let change = format!("changed {part_a}@{store_a}");
    let marker = format!("changed {part_b}@{store_b}");
    let reserved = format!("Reserved {id} {part_a}@{store_a} for {store_a}");
    let released = format!("Released {id} {part_a}@{store_a} for {store_a}");
    let with_events = vec![
        change.clone(),
        reserved,
        change.clone(),
        released,
        marker.clone(),
    ];
    let stock_only = vec![change.clone(), change, marker];

    let seen_a = read_to_marker(&mut stream_a, &part_b, &store_b).await;
    assert_eq!(
        seen_a, with_events,
        "dealer A: its own reservation's events"
    );
    let seen_planner = read_to_marker(&mut stream_planner, &part_b, &store_b).await;
    assert_eq!(seen_planner, with_events, "planners see every reservation");
    let seen_b = read_to_marker(&mut stream_b, &part_b, &store_b).await;
    assert_eq!(
        seen_b, stock_only,
        "dealer B: the stock changes, no reservation event"
    );
    let seen_stock = read_to_marker(&mut stream_stock, &part_b, &store_b).await;
    assert_eq!(
        seen_stock, stock_only,
        "WatchStock carries no reservation event"
    );
    server.stop().await;
}
