//! Online backup and restore. A demo server is kept busy (receipts, issues,
//! reservations confirmed, released and left pending) while `spares backup
//! --server` copies it: the restored copy audits clean and holds exactly the
//! writes up to the backup's cut, none after. Then, with the writers stopped,
//! a second backup is restored and served: it answers a fixed set of queries
//! (stock, reservations, where-is, promises, jobs, idempotent replays)
//! exactly as the original does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::api::convert::movement_from_pb;
use spares::cli::client::Clients;
use spares::config::Limits;
use spares::demo::{DemoConfig, build_demo};
use spares::pb;
use spares::store::{SledStore, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

async fn demo_server() -> (TestServer, Vec<(String, String)>) {
    let server = TestServer::start().await;
    let now: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    let config = DemoConfig {
        seed: 5,
        parts: 40,
        stores: 12,
        ..DemoConfig::default()
    };
    let demo = build_demo(&config, now).unwrap();
    let stocked: Vec<(String, String)> = demo
        .stock_on_hand()
        .into_iter()
        .map(|s| (s.part_id, s.location_id))
        .collect();
    let spares = server.spares.clone();
    tokio::task::spawn_blocking(move || {
        spares.load_master_data(&demo.bundle()).unwrap();
        spares
            .load_movements(
                &spares::domain::ledger::Actor::local("test"),
                &demo.movements,
            )
            .unwrap();
    })
    .await
    .unwrap();
    (server, stocked)
}

/// What the busy clients had acknowledged.
#[derive(Default)]
struct Acked {
    movements: Vec<(u64, pb::MovementRequest)>,
    reserves: Vec<(pb::ReserveRequest, pb::Reservation)>,
}

async fn busy_writer(
    mut clients: Clients,
    stocked: Vec<(String, String)>,
    seed: u64,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut call = 0;
    while !stop.load(Ordering::Relaxed) {
        call += 1;
        let (part, location) = stocked[rng.random_range(0..stocked.len())].clone();
        let key = format!("w{seed}-{call}");
        if rng.random_bool(0.6) {
            let kind = if rng.random_bool(0.7) {
                pb::MovementKind::Receipt
            } else {
                pb::MovementKind::Issue
            };
            let movement = pb::MovementRequest {
                idempotency_key: key,
                kind: kind as i32,
                part_id: part,
                location_id: location,
                quantity: rng.random_range(1..4),
                ..Default::default()
            };
            let reply = clients
                .inventory
                .record_movements(pb::RecordMovementsRequest {
                    movements: vec![movement.clone()],
                })
                .await;
            if let Ok(reply) = reply {
                let sequence = reply.into_inner().results[0].sequence;
                acked.lock().await.movements.push((sequence, movement));
            }
            continue;
        }
        let request = pb::ReserveRequest {
            idempotency_key: key.clone(),
            part_id: part,
            location_id: location,
            quantity: 1,
            ttl_seconds: 3600,
            priority: pb::Priority::Critical as i32,
            order_reference: format!("order {call}"),
            hold_until: None,
        };
        let Ok(reservation) = clients.availability.reserve(request.clone()).await else {
            continue;
        };
        let reservation = reservation.into_inner();
        acked
            .lock()
            .await
            .reserves
            .push((request, reservation.clone()));
        let id = reservation.reservation_id;
        match rng.random_range(0..3) {
            0 => {
                let _ = clients
                    .availability
                    .confirm_reservation(pb::ConfirmReservationRequest {
                        reservation_id: id,
                        idempotency_key: format!("{key}-post"),
                        ..Default::default()
                    })
                    .await;
            }
            1 => {
                let _ = clients
                    .availability
                    .release_reservation(pb::ReleaseReservationRequest {
                        reservation_id: id,
                        idempotency_key: format!("{key}-void"),
                    })
                    .await;
            }
            _ => {}
        }
    }
}

fn read_cut(file: &std::path::Path) -> u64 {
    let reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    spares::backup::read_backup(reader).unwrap().last_sequence
}

/// The copy taken while writers ran holds every acknowledged write up to its
/// cut and none after, and audits clean (reservations settled after the cut
/// are pending in it, or the reserved buckets would not match).
async fn check_busy_copy(file: &std::path::Path, acked: &Acked, admin_key: &str) {
    let cut = read_cut(file);
    let dir = tempfile::tempdir().unwrap();
    let file = file.to_path_buf();
    let data = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || spares::cli::backup::restore(&file, &data).unwrap())
        .await
        .unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let audit = store.audit().unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    let now = Timestamp::now();
    // Keys are scoped per principal: replay as the one that wrote them.
    let writer = spares::domain::ledger::Actor::principal(
        format!(
            "apikey:{}",
            spares::auth::keys::key_id_of(admin_key).unwrap()
        ),
        "admin",
    );
    let (mut before, mut after) = (0, 0);
    for (sequence, movement) in &acked.movements {
        let command = movement_from_pb(movement).unwrap();
        let outcome = store
            .record_movements(&writer, &[command], now)
            .unwrap()
            .remove(0);
        if *sequence <= cut {
            assert!(outcome.replayed, "{} is missing", movement.idempotency_key);
            assert_eq!(outcome.sequence, *sequence);
            before += 1;
        } else {
            assert!(
                !outcome.replayed,
                "{} is past the cut",
                movement.idempotency_key
            );
            after += 1;
        }
    }
    for (request, reservation) in &acked.reserves {
        let made: u64 = reservation.reservation_id[1..].parse().unwrap();
        let found = store.reservation(&reservation.reservation_id).unwrap();
        assert_eq!(found.is_some(), made <= cut, "{request:?}");
    }
    println!(
        "backup_restore: busy copy cut at {cut}: {before} acknowledged movements before it, {after} after"
    );
    assert!(before > 0);
}

async fn pages<T>(mut fetch: impl AsyncFnMut(String) -> (Vec<T>, String)) -> Vec<T> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await;
        out.extend(items);
        if next.is_empty() {
            return out;
        }
        token = next;
    }
}

/// The answers to a fixed set of queries, as debug text.
async fn answers(
    clients: &mut Clients,
    stocked: &[(String, String)],
    acked: &Acked,
    job: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let parts: std::collections::BTreeSet<&String> = stocked.iter().map(|(p, _)| p).collect();
    for part in &parts {
        let stock = pages(async |token| {
            let r = clients
                .inventory
                .get_stock(pb::GetStockRequest {
                    part_id: (*part).clone(),
                    location_id: String::new(),
                    page: Some(pb::PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                })
                .await
                .unwrap()
                .into_inner();
            (r.positions, r.next_page_token)
        })
        .await;
        out.push(format!("{stock:?}"));
        let r = clients
            .availability
            .where_is(pb::WhereIsRequest {
                part_id: (*part).clone(),
                ..Default::default()
            })
            .await;
        out.push(format!(
            "{:?}",
            r.map(|r| r.into_inner()).map_err(|s| s.code())
        ));
    }
    for (part, location) in stocked.iter().take(30) {
        let r = clients
            .availability
            .promise(pb::PromiseRequest {
                part_id: part.clone(),
                quantity: 1,
                destination_location_id: location.clone(),
                order_time: Some(prost_types::Timestamp {
                    seconds: 1_795_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await;
        out.push(format!(
            "{:?}",
            r.map(|r| r.into_inner()).map_err(|s| s.code())
        ));
    }
    let reservations = pages(async |token| {
        let r = clients
            .availability
            .list_reservations(pb::ListReservationsRequest {
                page: Some(pb::PageRequest {
                    page_size: 1000,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (r.reservations, r.next_page_token)
    })
    .await;
    out.push(format!("{reservations:?}"));
    for (_, movement) in acked.movements.iter().step_by(7) {
        let r = clients
            .inventory
            .record_movements(pb::RecordMovementsRequest {
                movements: vec![movement.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.results[0].replayed);
        out.push(format!("{r:?}"));
    }
    for (request, _) in acked.reserves.iter().step_by(5) {
        let r = clients
            .availability
            .reserve(request.clone())
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{r:?}"));
    }
    let job = clients
        .planning
        .get_job(pb::GetJobRequest { job_id: job.into() })
        .await
        .unwrap()
        .into_inner();
    out.push(format!(
        "{} {} {} {}",
        job.state,
        job.seed,
        job.summary,
        job.result_json.len()
    ));
    out
}

async fn finished_job(clients: &mut Clients) -> String {
    let job = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                replications: 20,
                horizon_days: 60,
                seed: 9,
                ..Default::default()
            }),
            scenarios: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let mut stream = clients
        .planning
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(update) = stream.message().await.unwrap() {
        if update.state == pb::JobState::Succeeded as i32 {
            break;
        }
    }
    job.job_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_busy_server_restores_to_identical_answers() {
    let (server, stocked) = demo_server().await;
    let mut clients = server.clients().await;
    let job = finished_job(&mut clients).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut writers = Vec::new();
    for seed in 0..2 {
        writers.push(tokio::spawn(busy_writer(
            server.clients().await,
            stocked.clone(),
            seed,
            stop.clone(),
            acked.clone(),
        )));
    }
    // Let the writers get going, then back up while they write.
    while acked.lock().await.movements.len() < 40 {
        tokio::task::yield_now().await;
    }
    let files = tempfile::tempdir().unwrap();
    let busy = files.path().join("busy.jsonl");
    let report = spares::cli::backup::backup(&busy, Some(&server.target()), None)
        .await
        .unwrap();
    println!("backup_restore: {}", report.trim());
    while acked.lock().await.movements.len() < 120 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner();
    check_busy_copy(&busy, &acked, &server.admin_key).await;

    // Quiet: back up again, restore, serve the copy, compare answers.
    let quiet = files.path().join("quiet.jsonl");
    spares::cli::backup::backup(&quiet, Some(&server.target()), None)
        .await
        .unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let (file, data) = (quiet.clone(), copy_dir.path().to_path_buf());
    tokio::task::spawn_blocking(move || spares::cli::backup::restore(&file, &data).unwrap())
        .await
        .unwrap();
    let copy = TestServer::start_in(copy_dir, Limits::default()).await;
    // The original administrator key (restored with the backup): idempotency
    // keys are scoped per principal, so replays dedupe only for the principal
    // that wrote them.
    let mut copy_clients = copy.clients_as(Some(&server.admin_key)).await;
    let original = answers(&mut clients, &stocked, &acked, &job).await;
    let restored = answers(&mut copy_clients, &stocked, &acked, &job).await;
    assert_eq!(original.len(), restored.len());
    for (i, (a, b)) in original.iter().zip(&restored).enumerate() {
        assert_eq!(a, b, "answer {i} differs");
    }
    println!("backup_restore: {} answers identical", original.len());
    copy.stop().await;
    server.stop().await;
}
