//! Three real `spares serve --store URL` processes on one PostgreSQL
//! database, driven over gRPC as a load balancer's clients would drive them.
//!
//! - **The last units go once.** Round after round, a few units of a part
//!   arrive through one replica, then twelve clients (four per replica)
//!   each reserve one unit at the same moment: exactly as many are
//!   acknowledged as there were units, the others are refused with
//!   `FAILED_PRECONDITION`, and every acknowledged reservation is listed by
//!   every replica. At the end each replica's stock reconciles with the
//!   receipts and the acknowledged reservations: 0 oversold.
//! - **A movement through one replica reaches another's promises.** A
//!   receipt through replica i, then replica j's `PromiseBatch` polled
//!   until it can promise the new unit; the time from the write's
//!   acknowledgement is printed as p50/p99/max with the load average (not
//!   asserted: a 30 s hang guard only). The promise states the ledger
//!   sequence it read, and it reflects the receipt exactly when that
//!   sequence has reached the receipt's.
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`. `SPARES_TEST_POSTGRES_FULL=1` runs more
//! rounds and samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ledger_support;

use common::process::{ServerProcess, serve_store};
use common::{receipt, small_network};
use ledger_support::{Backend, Place};
use spares::cli::client::{AuthChannel, Clients, connect};
use spares::pb;
use spares::pb::availability_service_client::AvailabilityServiceClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPLICAS: usize = 3;
const CLIENTS_PER_REPLICA: usize = 4;
/// A bound against a hang, not a speed goal: a replica polls the log every
/// second even if every notification were lost.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// The part the clients race for, and where.
const RACED_PART: &str = "P1";
/// The part the lag samples receive.
const LAG_PART: &str = "P2";
const STORE: &str = "STR";

/// The database work (a schema made and dropped) stays off the runtime: the
/// blocking client refuses to run inside one.
#[test]
fn three_servers_race_for_the_last_units_and_follow_each_other() {
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
        .block_on(async {
            let servers = start(&url).await;
            race(&servers).await;
            follow(&servers).await;
            for server in servers {
                server.kill();
            }
        });
}

/// Starts the replicas. The network is loaded through the first before the
/// others start, so no test step waits for their poll of the master data.
async fn start(url: &str) -> Vec<ServerProcess> {
    let first = serve_store(url);
    small_network(&mut connect(first.target()).await.unwrap()).await;
    let mut servers = vec![first];
    servers.extend((1..REPLICAS).map(|_| serve_store(url)));
    servers
}

/// One client per replica.
async fn clients(servers: &[ServerProcess]) -> Vec<Clients> {
    let mut clients = Vec::with_capacity(servers.len());
    for server in servers {
        clients.push(connect(server.target()).await.unwrap());
    }
    clients
}

async fn record(clients: &mut Clients, key: &str, part: &str, quantity: i64) -> u64 {
    let mut response = clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt(key, part, STORE, quantity)],
        })
        .await
        .unwrap()
        .into_inner();
    let result = response.results.remove(0);
    assert!(!result.replayed && result.sequence > 0, "{result:?}");
    result.sequence
}

/// Every pending reservation of the raced part a replica lists (all pages):
/// id -> quantity.
async fn pending(clients: &mut Clients) -> BTreeMap<String, u64> {
    let mut listed = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .availability
            .list_reservations(pb::ListReservationsRequest {
                page: Some(pb::PageRequest {
                    page_size: 0,
                    page_token,
                }),
                part_id: RACED_PART.into(),
                location_id: STORE.into(),
                state: pb::ReservationState::Pending as i32,
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(
            page.reservations
                .into_iter()
                .map(|r| (r.reservation_id, r.quantity)),
        );
        if page.next_page_token.is_empty() {
            return listed;
        }
        page_token = page.next_page_token;
    }
}

async fn stock(clients: &mut Clients, part: &str) -> pb::StockPosition {
    let mut stock = clients
        .inventory
        .get_stock(pb::GetStockRequest {
            part_id: part.into(),
            location_id: STORE.into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stock.positions.len(), 1, "{stock:?}");
    stock.positions.remove(0)
}

/// Twelve clients reserve one unit each at the same moment; returns the
/// acknowledged reservation ids, after checking every refusal is
/// `FAILED_PRECONDITION`.
async fn one_race(racers: &[AvailabilityServiceClient<AuthChannel>], round: usize) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .iter()
        .enumerate()
        .map(|(client, racer)| {
            let (mut racer, barrier) = (racer.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let request = pb::ReserveRequest {
                    idempotency_key: format!("r{round}-c{client}"),
                    part_id: RACED_PART.into(),
                    location_id: STORE.into(),
                    quantity: 1,
                    ttl_seconds: 3600,
                    ..Default::default()
                };
                barrier.wait().await;
                racer.reserve(request).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(reservation) => won.push(reservation.into_inner().reservation_id),
            Err(status) => assert_eq!(
                status.code(),
                tonic::Code::FailedPrecondition,
                "round {round}: {status:?}"
            ),
        }
    }
    won
}

async fn race(servers: &[ServerProcess]) {
    let mut replicas = clients(servers).await;
    // Each racer has a connection of its own, four to each replica.
    let mut racers = Vec::new();
    for client in 0..REPLICAS * CLIENTS_PER_REPLICA {
        let target = servers[client % REPLICAS].target();
        racers.push(connect(target).await.unwrap().availability);
    }
    let rounds = Backend::Postgres.scaled(100, 30) as usize;
    let mut received = 0u64;
    let mut acknowledged = Vec::new();
    for round in 0..rounds {
        // Every earlier unit is reserved, so exactly these are available.
        let units = 1 + round % 3;
        let writer = &mut replicas[round % REPLICAS];
        record(writer, &format!("seed-{round}"), RACED_PART, units as i64).await;
        received += units as u64;
        let won = one_race(&racers, round).await;
        assert_eq!(
            won.len(),
            units,
            "round {round}: {} reservations acknowledged for {units} units",
            won.len()
        );
        for (replica, clients) in replicas.iter_mut().enumerate() {
            let listed = pending(clients).await;
            for id in &won {
                assert!(
                    listed.contains_key(id),
                    "round {round}: acknowledged {id} not listed by replica {replica}"
                );
            }
        }
        acknowledged.extend(won);
    }
    let reserved = acknowledged.len() as u64;
    for (replica, clients) in replicas.iter_mut().enumerate() {
        let listed = pending(clients).await;
        let mut expected: Vec<&String> = acknowledged.iter().collect();
        expected.sort();
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            expected,
            "replica {replica} lists exactly the acknowledged reservations"
        );
        assert_eq!(listed.values().sum::<u64>(), reserved);
        // Balances are read from the replica's memory, which follows the
        // ledger: wait until it has the last reservation.
        let since = Instant::now();
        let mut position = stock(clients, RACED_PART).await;
        while position.reserved != reserved {
            assert!(
                since.elapsed() < HANG_GUARD,
                "replica {replica} never followed: {position:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            position = stock(clients, RACED_PART).await;
        }
        assert_eq!(
            (position.on_hand, position.reserved, position.available),
            (received, reserved, 0),
            "replica {replica}: stock against receipts and acknowledged reservations"
        );
    }
    println!(
        "{rounds} rounds, {} clients through {REPLICAS} serve processes: {received} units received, \
         {reserved} reservations acknowledged, each listed by every replica, 0 oversold",
        racers.len()
    );
}

/// A one-line PromiseBatch: `quantity` of the lag part picked up where it is.
fn promise_line(quantity: u64) -> pb::PromiseRequest {
    pb::PromiseRequest {
        part_id: LAG_PART.into(),
        quantity,
        destination_location_id: STORE.into(),
        mode: pb::FulfilmentMode::Pickup as i32,
        ..Default::default()
    }
}

/// Whether replica `clients` can promise `quantity`, and the ledger
/// sequence its answer was read at.
async fn promise(clients: &mut Clients, quantity: u64) -> (bool, u64) {
    let batch = clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: vec![promise_line(quantity)],
        })
        .await
        .unwrap()
        .into_inner();
    match &batch.lines[0].result {
        Some(pb::promise_batch_line::Result::Answer(answer)) => {
            (!answer.options.is_empty(), batch.ledger_sequence)
        }
        other => panic!("no answer: {other:?}"),
    }
}

async fn follow(servers: &[ServerProcess]) {
    let mut replicas = clients(servers).await;
    let samples = Backend::Postgres.scaled(200, 50) as usize;
    let mut lags = Vec::with_capacity(samples);
    let mut round_trips = Vec::new();
    let mut at_first_poll = 0usize;
    for sample in 0..samples {
        let (from, to) = (sample % REPLICAS, (sample + 1) % REPLICAS);
        let quantity = sample as u64 + 1;
        let sequence = record(&mut replicas[from], &format!("lag-{sample}"), LAG_PART, 1).await;
        let written = Instant::now();
        let mut first = true;
        loop {
            let asked = Instant::now();
            let (promised, read_at) = promise(&mut replicas[to], quantity).await;
            round_trips.push(asked.elapsed());
            // The stated sequence tells exactly whether the receipt is in:
            // before it the replica holds one unit too few.
            assert_eq!(
                promised,
                read_at >= sequence,
                "sample {sample}: replica {to} read at sequence {read_at}, the receipt is {sequence}"
            );
            if promised {
                lags.push(written.elapsed());
                at_first_poll += usize::from(first);
                break;
            }
            assert!(
                written.elapsed() < HANG_GUARD,
                "sample {sample}: replica {to} never followed replica {from}"
            );
            first = false;
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        // The plain Promise reads the same memory: it promises the unit too.
        let answer = replicas[to]
            .availability
            .promise(promise_line(quantity))
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.options.is_empty(), "sample {sample}: {answer:?}");
    }
    for (replica, clients) in replicas.iter_mut().enumerate() {
        let position = stock(clients, LAG_PART).await;
        assert_eq!(position.available, samples as u64, "replica {replica}");
    }
    lags.sort();
    round_trips.sort();
    let quantile =
        |sorted: &[Duration], q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    // The lag is measured in steps of a poll: one PromiseBatch round trip
    // (and a 0.5 ms pause when the answer did not have the unit yet).
    println!(
        "promise lag between serve processes over {samples} writes (from the write's acknowledgement \
         to a promise on another replica that has it): p50 {:?}, p99 {:?}, max {:?}; \
         {at_first_poll} of {samples} visible at the first poll, a poll's round trip p50 {:?} over {} polls \
         (load average {})",
        quantile(&lags, 0.5),
        quantile(&lags, 0.99),
        lags[lags.len() - 1],
        quantile(&round_trips, 0.5),
        round_trips.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
