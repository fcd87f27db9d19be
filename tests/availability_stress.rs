//! Concurrent Reserve / PromiseOrder / Confirm / Release and expiries against
//! one ledger, driven by a printed seed (replay with SPARES_STRESS_SEED).
//! Afterwards the ledger audits clean, every part-location's reserved units
//! equal its pending reservations, and no unit was handed out twice: posted
//! plus held plus free stock never exceeds what was received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::demo::{DemoConfig, build_demo};
use spares::domain::ledger::{
    MovementKind, PostCommand, Priority, ReservationFilter, ReservationState, ReserveCommand,
    VoidCommand,
};
use spares::domain::promise::{FulfilmentMode, OrderLine, OrderQuery};
use spares::service::Spares;
use spares::service::availability::OrderReservation;
use spares::store::sled_store::SledStore;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const THREADS: u64 = 4;
const OPS_PER_THREAD: usize = 150;

fn seed() -> u64 {
    std::env::var("SPARES_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_122)
}

#[test]
fn concurrent_reservations_promises_and_expiries_never_oversell() {
    let seed = seed();
    println!("availability stress seed {seed} (replay: SPARES_STRESS_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let start: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let spares = Arc::new(Spares::new(store, clock.clone(), Limits::default()).unwrap());
    let demo = build_demo(
        &DemoConfig {
            seed,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        start,
    )
    .unwrap();
    spares.load_master_data(&demo.bundle()).unwrap();
    spares
        .load_movements(
            &spares::domain::ledger::Actor::local("test"),
            &demo.movements,
        )
        .unwrap();
    let received: BTreeMap<String, i64> = demo
        .movements
        .iter()
        .filter(|m| m.kind == MovementKind::Receipt)
        .fold(BTreeMap::new(), |mut acc, m| {
            *acc.entry(m.part_id.clone()).or_default() += m.quantity;
            acc
        });
    let stocked: Vec<(String, String)> = spares
        .store()
        .balances(None, None)
        .unwrap()
        .into_iter()
        .filter(|b| b.available > 0)
        .map(|b| (b.part_id, b.location_id))
        .take(30)
        .collect();
    let stores: Vec<String> = demo
        .locations
        .iter()
        .filter(|l| l.id.starts_with("STR"))
        .map(|l| l.id.clone())
        .collect();
    assert!(!stocked.is_empty() && !stores.is_empty());
    let pending_ids = Arc::new(Mutex::new(Vec::<String>::new()));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (spares, clock, stocked, stores, pending_ids) = (
                spares.clone(),
                clock.clone(),
                stocked.clone(),
                stores.clone(),
                pending_ids.clone(),
            );
            std::thread::spawn(move || {
                let mut rng =
                    SmallRng::seed_from_u64(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for op in 0..OPS_PER_THREAD {
                    let key = format!("t{t}-op{op}");
                    match rng.random_range(0..10) {
                        0..=2 => {
                            let (part, location) = &stocked[rng.random_range(0..stocked.len())];
                            let command = ReserveCommand {
                                idempotency_key: key,
                                part_id: part.clone(),
                                location_id: location.clone(),
                                quantity: rng.random_range(1..=3),
                                ttl_seconds: rng.random_range(30..=300),
                                priority: if rng.random_bool(0.3) {
                                    Priority::Critical
                                } else {
                                    Priority::Routine
                                },
                                protected_quantity: 0,
                                order_reference: String::new(),
                                for_location_id: None,
                            };
                            if let Ok(r) = spares.reserve(
                                &spares::domain::ledger::Actor::local("test"),
                                vec![command],
                            ) {
                                pending_ids
                                    .lock()
                                    .unwrap()
                                    .extend(r.into_iter().map(|r| r.reservation_id));
                            }
                        }
                        3..=4 => {
                            let lines = (0..2)
                                .map(|i| OrderLine {
                                    line_id: format!("{i}"),
                                    part_id: stocked[rng.random_range(0..stocked.len())].0.clone(),
                                    quantity: rng.random_range(1..=2),
                                })
                                .collect();
                            let query = OrderQuery {
                                lines,
                                destination_location_id: stores[rng.random_range(0..stores.len())]
                                    .clone(),
                                need_by: None,
                                mode: FulfilmentMode::Delivery,
                                order_time: spares::clock::Clock::now(clock.as_ref()),
                                transit_quantile: 0.9,
                                priority: Priority::Routine,
                            };
                            let reserve = OrderReservation {
                                idempotency_key: key,
                                ttl_seconds: 120,
                                order_reference: String::new(),
                            };
                            if let Ok((promise, reservations)) = spares.promise_order(
                                &spares::domain::ledger::Actor::local("test"),
                                &query,
                                Some(&reserve),
                            ) {
                                if promise.complete && !reservations.is_empty() {
                                    let claimed: u64 =
                                        promise.claims.iter().map(|c| c.quantity).sum();
                                    let held: u64 = reservations.iter().map(|r| r.quantity).sum();
                                    assert_eq!(
                                        claimed, held,
                                        "every claimed unit is reserved, once"
                                    );
                                }
                                pending_ids
                                    .lock()
                                    .unwrap()
                                    .extend(reservations.into_iter().map(|r| r.reservation_id));
                            }
                        }
                        5..=8 => {
                            let id = {
                                let mut ids = pending_ids.lock().unwrap();
                                if ids.is_empty() {
                                    continue;
                                }
                                let i = rng.random_range(0..ids.len());
                                ids.swap_remove(i)
                            };
                            // Either may lose to an expiry: that is FailedPrecondition, never a second settlement.
                            let _ = if rng.random_bool(0.5) {
                                spares.confirm(
                                    &spares::domain::ledger::Actor::local("test"),
                                    PostCommand {
                                        reservation_id: id,
                                        idempotency_key: key,
                                        ship_to_location_id: None,
                                        expected_arrival: None,
                                    },
                                )
                            } else {
                                spares.release(
                                    &spares::domain::ledger::Actor::local("test"),
                                    VoidCommand {
                                        reservation_id: id,
                                        idempotency_key: key,
                                    },
                                )
                            };
                        }
                        _ => {
                            clock.advance_seconds(60);
                            spares.expire_due().unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker panicked");
    }

    let audit = spares.store().audit().unwrap();
    assert!(
        audit.problems.is_empty(),
        "seed {seed}: {:?}",
        audit.problems
    );
    let all = spares
        .store()
        .reservations(&ReservationFilter::default())
        .unwrap();
    assert!(
        all.len() > 50,
        "the workload made {} reservations",
        all.len()
    );
    let mut pending: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut posted: BTreeMap<String, u64> = BTreeMap::new();
    for r in &all {
        match r.state {
            ReservationState::Pending => {
                *pending
                    .entry((r.part_id.clone(), r.location_id.clone()))
                    .or_default() += r.quantity
            }
            ReservationState::Posted => *posted.entry(r.part_id.clone()).or_default() += r.quantity,
            ReservationState::Voided | ReservationState::Expired => assert!(r.settled_at.is_some()),
        }
    }
    for balance in spares.store().balances(None, None).unwrap() {
        let key = (balance.part_id.clone(), balance.location_id.clone());
        assert_eq!(
            balance.reserved,
            pending.get(&key).copied().unwrap_or(0),
            "seed {seed}: {key:?}"
        );
    }
    for (part, units) in &received {
        let on_hand: u64 = spares
            .store()
            .balances(Some(part), None)
            .unwrap()
            .iter()
            .map(|b| b.on_hand() + b.in_transit())
            .sum();
        let out = posted.get(part).copied().unwrap_or(0);
        assert_eq!(
            on_hand + out,
            u64::try_from(*units).unwrap(),
            "seed {seed}: part {part} units are conserved"
        );
    }
}
