//! The real binary on PostgreSQL: `spares db upgrade --store URL` creates
//! the schema, and two `spares serve --store URL` processes on one database
//! answer gRPC calls: a reservation through one replica counts against the
//! other's (the last units go once), and a movement through one shows in
//! the other's stock once it has followed the ledger.
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ledger_support;

use common::process::serve_store;
use common::{receipt, small_network};
use ledger_support::{Backend, Place};
use spares::cli::client::connect;
use spares::pb;
use std::time::{Duration, Instant};

fn upgrade(url: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spares"))
        .args(["db", "upgrade", "--store", url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn reserve(key: &str, quantity: u64) -> pb::ReserveRequest {
    pb::ReserveRequest {
        idempotency_key: key.into(),
        part_id: "P1".into(),
        location_id: "STR".into(),
        quantity,
        ttl_seconds: 600,
        ..Default::default()
    }
}

async fn available(clients: &mut spares::cli::client::Clients) -> u64 {
    let stock = clients
        .inventory
        .get_stock(pb::GetStockRequest {
            part_id: "P1".into(),
            location_id: "STR".into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    stock.positions.iter().map(|p| p.available).sum()
}

/// The database work (a schema made and dropped) stays off the runtime: the
/// blocking client refuses to run inside one.
#[test]
fn two_servers_on_one_database_share_the_ledger() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let url = place.locator();
    assert!(upgrade(&url).contains("from version 0 to 4"));
    assert!(upgrade(&url).contains("nothing to do"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(share_the_ledger(&url));
}

async fn share_the_ledger(url: &str) {
    let first = serve_store(url);
    let mut a = connect(first.target()).await.unwrap();
    small_network(&mut a).await;
    a.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("m1", "P1", "STR", 3)],
        })
        .await
        .unwrap();
    // The second replica starts on the loaded database.
    let second = serve_store(url);
    let mut b = connect(second.target()).await.unwrap();
    assert_eq!(available(&mut b).await, 3);

    let held = b
        .availability
        .reserve(reserve("r1", 2))
        .await
        .unwrap()
        .into_inner();
    let refused = a.availability.reserve(reserve("r2", 2)).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let listed = a
        .availability
        .list_reservations(pb::ListReservationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed
        .reservations
        .iter()
        .map(|r| r.reservation_id.as_str())
        .collect();
    assert_eq!(ids, [held.reservation_id.as_str()]);

    // A movement through the first shows in the second's stock once it
    // has followed the ledger (a hang guard, not a speed goal).
    a.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("m2", "P1", "STR", 5)],
        })
        .await
        .unwrap();
    let written = Instant::now();
    while available(&mut b).await != 6 {
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "never followed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    second.kill();
}
