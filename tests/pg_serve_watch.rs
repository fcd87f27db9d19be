//! Watch streams on one `spares serve` replica carry the changes made
//! through another on the same PostgreSQL database: a reservation made and
//! released through replica A, and a receipt through A, reach the
//! WatchAvailability and WatchStock streams of a client of replica B, each
//! stock change showing the balance after it. B's own writes reach them
//! once, not a second time when B's ledger follower reads them back.
//!
//! A change through A reaches B's streams once B has read it from the log,
//! so the test waits for each before the next write through B (the order
//! of A's changes against B's own made meanwhile is not fixed). The streams
//! are read up to a marker receipt through A, after everything else, so
//! "exactly these events, in this order" is decided by order, not by
//! waiting. Skips (and says so) without a PostgreSQL
//! server; see `ledger_support::backend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ledger_support;

use common::process::serve_store;
use common::{receipt, small_network};
use ledger_support::{Backend, Place};
use spares::cli::client::{Clients, connect};
use spares::pb;
use spares::pb::stock_event::Event;
use std::time::Duration;
use tokio_stream::StreamExt;

/// A bound against a hang, not a speed goal: a replica polls the log every
/// second even if every notification were lost.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The database work (a schema made and dropped) stays off the runtime: the
/// blocking client refuses to run inside one.
#[test]
fn a_replicas_watch_streams_carry_another_replicas_changes() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let url = place.locator();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(watch_across_replicas(&url));
}

/// What a stream carried, in order, up to and including the first change of
/// `part` at STR; each change shows (on hand, reserved, available).
async fn read_to(stream: &mut tonic::Streaming<pb::StockEvent>, part: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(HANG_GUARD, stream.next())
            .await
            .expect("the marker arrives")
            .expect("the stream stays open")
            .expect("no error");
        match event.event {
            Some(Event::Changed(p)) => {
                seen.push(format!(
                    "changed {}@{} {}/{}/{}",
                    p.part_id, p.location_id, p.on_hand, p.reserved, p.available
                ));
                if p.part_id == part && p.location_id == "STR" {
                    return seen;
                }
            }
            Some(Event::Reservation(r)) => {
                let kind = pb::ReservationChangeKind::try_from(r.kind).unwrap();
                seen.push(format!(
                    "{kind:?} {} {}@{} x{}",
                    r.reservation_id, r.part_id, r.location_id, r.quantity
                ));
            }
            Some(Event::Lagged(l)) => panic!("lagged {}", l.missed_events),
            None => panic!("an empty event"),
        }
    }
}

async fn reserve(clients: &mut Clients, key: &str, quantity: u64) -> String {
    clients
        .availability
        .reserve(pb::ReserveRequest {
            idempotency_key: key.into(),
            part_id: "P1".into(),
            location_id: "STR".into(),
            quantity,
            ttl_seconds: 600,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reservation_id
}

async fn receive(clients: &mut Clients, key: &str, part: &str, quantity: i64) {
    clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt(key, part, "STR", quantity)],
        })
        .await
        .unwrap();
}

async fn watch_across_replicas(url: &str) {
    // B starts on the loaded network (no wait for its poll of master data).
    let first = serve_store(url);
    let mut a = connect(first.target()).await.unwrap();
    small_network(&mut a).await;
    receive(&mut a, "m1", "P1", 5).await;
    let second = serve_store(url);
    let mut b = connect(second.target()).await.unwrap();
    let mut availability = b
        .availability
        .watch_availability(pb::WatchAvailabilityRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut stock = b
        .inventory
        .watch_stock(pb::WatchStockRequest::default())
        .await
        .unwrap()
        .into_inner();

    // Through A: a reservation, then (once B's stream has it) its release.
    let held = reserve(&mut a, "r-a", 2).await;
    let changes = read_to_reservation(&mut availability, &held).await;
    assert_eq!(
        changes,
        [
            "changed P1@STR 5/2/3".to_string(),
            format!("Reserved {held} P1@STR x2")
        ]
    );
    a.availability
        .release_reservation(pb::ReleaseReservationRequest {
            reservation_id: held.clone(),
            idempotency_key: "v-a".into(),
        })
        .await
        .unwrap();
    let changes = read_to_reservation(&mut availability, &held).await;
    assert_eq!(
        changes,
        [
            "changed P1@STR 5/0/5".to_string(),
            format!("Released {held} P1@STR x2")
        ]
    );
    // Through B itself (its follower reads the write back from the log and
    // must not publish it again), then the marker through A.
    let own = reserve(&mut b, "r-b", 1).await;
    receive(&mut a, "marker", "P3", 1).await;
    let rest = read_to(&mut availability, "P3").await;
    assert_eq!(
        rest,
        [
            "changed P1@STR 5/1/4".to_string(),
            format!("Reserved {own} P1@STR x1"),
            "changed P3@STR 1/0/1".to_string(),
        ]
    );
    // WatchStock carries the same stock changes and no reservation event.
    let stock_changes = read_to(&mut stock, "P3").await;
    assert_eq!(
        stock_changes,
        [
            "changed P1@STR 5/2/3",
            "changed P1@STR 5/0/5",
            "changed P1@STR 5/1/4",
            "changed P3@STR 1/0/1",
        ]
    );
    first.kill();
    second.kill();
}

/// What the availability stream carried up to and including the event of
/// reservation `id`.
async fn read_to_reservation(
    stream: &mut tonic::Streaming<pb::StockEvent>,
    id: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(HANG_GUARD, stream.next())
            .await
            .expect("the reservation event arrives")
            .expect("the stream stays open")
            .expect("no error");
        match event.event {
            Some(Event::Changed(p)) => seen.push(format!(
                "changed {}@{} {}/{}/{}",
                p.part_id, p.location_id, p.on_hand, p.reserved, p.available
            )),
            Some(Event::Reservation(r)) => {
                let kind = pb::ReservationChangeKind::try_from(r.kind).unwrap();
                seen.push(format!(
                    "{kind:?} {} {}@{} x{}",
                    r.reservation_id, r.part_id, r.location_id, r.quantity
                ));
                if r.reservation_id == id {
                    return seen;
                }
            }
            Some(Event::Lagged(l)) => panic!("lagged {}", l.missed_events),
            None => panic!("an empty event"),
        }
    }
}
