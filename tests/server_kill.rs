//! Crash test against the real server binary: a client records movements over
//! gRPC while the test SIGKILLs the `spares serve` process at a seed-chosen
//! moment (after a seeded number of acknowledged batches, with the next batch
//! in flight), restarts it on the same data directory, and goes on. At the
//! end every acknowledged movement replays with its original sequence (it is
//! there), every batch whose reply was lost is resent and either replays or
//! is applied now, the balances equal the sum of all movements exactly (none
//! is there twice), and the store audits clean when opened.
//!
//! Environment: `SPARES_KILL_CYCLES` (default 20) and `SPARES_KILL_SEED`
//! (replay a printed seed). A longer run:
//!
//! ```sh
//! SPARES_KILL_CYCLES=500 cargo test --release --test server_kill -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::{ServerProcess, spawn};
use common::{location, part, receipt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::cli::client::{Clients, connect};
use spares::pb;
use spares::store::{SledStore, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const PARTS: [&str; 4] = ["P0", "P1", "P2", "P3"];
const LOCATIONS: [&str; 2] = ["DEP", "STR"];

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn start(dir: &Path) -> ServerProcess {
    spawn(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
}

async fn setup(clients: &mut Clients) {
    clients
        .network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location("DEP", pb::LocationKind::FactoryDepot, "America/Chicago", ""),
                location("STR", pb::LocationKind::Store, "America/Chicago", "DEP"),
            ],
        })
        .await
        .unwrap();
    clients
        .network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: PARTS.iter().map(|p| part(p)).collect(),
        })
        .await
        .unwrap();
}

/// What the client knows: acknowledged movements with their sequences, and
/// batches sent whose reply never came.
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, (u64, pb::MovementRequest)>,
    unanswered: Vec<Vec<pb::MovementRequest>>,
}

impl Ledger {
    fn ack(&mut self, batch: &[pb::MovementRequest], reply: &pb::RecordMovementsResponse) {
        assert_eq!(reply.results.len(), batch.len());
        for (movement, result) in batch.iter().zip(&reply.results) {
            assert_eq!(movement.idempotency_key, result.idempotency_key);
            if let Some((sequence, _)) = self.acked.get(&movement.idempotency_key) {
                assert_eq!(*sequence, result.sequence, "a replay changed its sequence");
                assert!(result.replayed);
            }
            self.acked.insert(
                movement.idempotency_key.clone(),
                (result.sequence, movement.clone()),
            );
        }
    }
}

/// Resends every batch whose reply was lost: each either replays (it was
/// written before the kill) or is written now; either way it counts once.
async fn settle_unanswered(clients: &mut Clients, ledger: &mut Ledger) {
    for batch in std::mem::take(&mut ledger.unanswered) {
        let reply = clients
            .inventory
            .record_movements(pb::RecordMovementsRequest {
                movements: batch.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        ledger.ack(&batch, &reply);
    }
}

/// Every acknowledged key (or a sample of `keys`) replays with its sequence.
async fn check_replays<'a>(
    clients: &mut Clients,
    ledger: &Ledger,
    keys: impl Iterator<Item = &'a String>,
) {
    let batch: Vec<pb::MovementRequest> = keys.map(|k| ledger.acked[k].1.clone()).collect();
    for chunk in batch.chunks(1000) {
        let reply = clients
            .inventory
            .record_movements(pb::RecordMovementsRequest {
                movements: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        for (movement, result) in chunk.iter().zip(&reply.results) {
            assert!(
                result.replayed,
                "{} was not in the ledger",
                movement.idempotency_key
            );
            assert_eq!(result.sequence, ledger.acked[&movement.idempotency_key].0);
        }
    }
}

/// Sends batches until the server dies; returns how many were acknowledged.
async fn write_until_killed(
    clients: &mut Clients,
    ledger: &mut Ledger,
    rng: &mut StdRng,
    cycle: u64,
    kill_after: u64,
    server: &mut Option<ServerProcess>,
) {
    for call in 0.. {
        let size = [1, 1, 2, 5, 20, 100][rng.random_range(0..6)];
        let batch: Vec<pb::MovementRequest> = (0..size)
            .map(|i| {
                receipt(
                    &format!("c{cycle}-b{call}-{i}"),
                    PARTS[rng.random_range(0..PARTS.len())],
                    LOCATIONS[rng.random_range(0..LOCATIONS.len())],
                    rng.random_range(1..10),
                )
            })
            .collect();
        let request = pb::RecordMovementsRequest {
            movements: batch.clone(),
        };
        if call == kill_after {
            // The kill lands while this batch is on its way or being written.
            let sending = clients.inventory.record_movements(request);
            let victim = server.take().unwrap();
            let delay = Duration::from_micros(rng.random_range(0..3000));
            let killer = tokio::task::spawn_blocking(move || {
                std::thread::sleep(delay);
                victim.kill();
            });
            match sending.await {
                Ok(reply) => ledger.ack(&batch, &reply.into_inner()),
                Err(_) => ledger.unanswered.push(batch),
            }
            killer.await.unwrap();
            return;
        }
        let reply = clients.inventory.record_movements(request).await.unwrap();
        ledger.ack(&batch, &reply.into_inner());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_movements_survive_sigkill_once_and_only_once() {
    let seed = env_number("SPARES_KILL_SEED").unwrap_or_else(|| rand::rng().random());
    let cycles = env_number("SPARES_KILL_CYCLES").unwrap_or(20);
    println!("server_kill: seed {seed} (SPARES_KILL_SEED={seed} replays), {cycles} cycles");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();
    // Idempotency keys belong to the principal that wrote them, so every
    // restart is called with the first cycle's administrator key (each start
    // adds a key of its own to the directory; the first one stays valid).
    let mut admin: Option<String> = None;
    for cycle in 0..cycles {
        let mut server = Some(start(dir.path()));
        let process = server.as_ref().unwrap();
        let key = admin
            .get_or_insert_with(|| process.api_key.clone().unwrap())
            .clone();
        let target = spares::cli::client::Target::new(process.url.clone(), Some(key));
        let mut clients = connect(target).await.unwrap();
        if cycle == 0 {
            setup(&mut clients).await;
        }
        settle_unanswered(&mut clients, &mut ledger).await;
        let recent: Vec<String> = ledger
            .acked
            .keys()
            .filter(|k| k.starts_with(&format!("c{}-", cycle.saturating_sub(1))))
            .cloned()
            .collect();
        check_replays(&mut clients, &ledger, recent.iter()).await;
        let kill_after = rng.random_range(0..30);
        write_until_killed(
            &mut clients,
            &mut ledger,
            &mut rng,
            cycle,
            kill_after,
            &mut server,
        )
        .await;
    }
    let server = start(dir.path());
    let target = spares::cli::client::Target::new(server.url.clone(), admin);
    let mut clients = connect(target).await.unwrap();
    settle_unanswered(&mut clients, &mut ledger).await;
    check_replays(&mut clients, &ledger, ledger.acked.keys()).await;
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (_, movement) in ledger.acked.values() {
        *expected
            .entry((movement.part_id.clone(), movement.location_id.clone()))
            .or_default() += movement.quantity.unsigned_abs();
    }
    for ((part, location), units) in &expected {
        let stock = clients
            .inventory
            .get_stock(pb::GetStockRequest {
                part_id: part.clone(),
                location_id: location.clone(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            stock.positions[0].on_hand, *units,
            "seed {seed}: {part} at {location}"
        );
    }
    println!(
        "server_kill: {} movements acknowledged over {cycles} kills, each exactly once",
        ledger.acked.len()
    );
    server.signal(15);
    let status = server.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "SIGTERM should end the server with 0: {status:?}"
    );
    let store = SledStore::open(dir.path()).unwrap();
    let audit = store.audit().unwrap();
    assert!(
        audit.problems.is_empty(),
        "seed {seed}: {:?}",
        audit.problems
    );
    assert_eq!(audit.movements as usize, ledger.acked.len());
}
