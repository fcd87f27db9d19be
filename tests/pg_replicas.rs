//! Several `PgStore`s on one database, as several `spares serve` replicas
//! behind a load balancer would be: clients racing through different
//! replicas for the last units of a part never oversell (the reservation is
//! decided in the database, under the ledger's head lock), every
//! acknowledged reservation is there for every replica, and a replica that
//! follows the ledger (`PgStore::follow`) sees another's movements in its
//! balances, with the lag printed as p50/p99.
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`. `SPARES_TEST_POSTGRES_FULL=1` runs more rounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use ledger_support::{Backend, Place, assert_audit_clean, at, movement, reserve_command};
use spares::domain::DomainError;
use spares::domain::ledger::{Actor, MovementKind, ReservationState};
use spares::store::{PgStore, Store, StoreError};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const REPLICAS: usize = 3;
const CLIENTS_PER_REPLICA: usize = 4;

fn replicas(place: &Place) -> Vec<Arc<PgStore>> {
    (0..REPLICAS)
        .map(|_| Arc::new(PgStore::open(&place.locator()).unwrap()))
        .collect()
}

#[test]
fn replicas_racing_for_the_last_units_never_oversell() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let replicas = replicas(&place);
    let rounds = Backend::Postgres.scaled(100, 20) as usize;
    let mut reserved_total = 0;
    for round in 0..rounds {
        let location = format!("L{round}");
        let units = 1 + round % 3;
        replicas[round % REPLICAS]
            .record_movements(
                &Actor::local("test"),
                &[movement(
                    &format!("seed-{round}"),
                    MovementKind::Receipt,
                    "P",
                    &location,
                    units as i64,
                )],
                at(0),
            )
            .unwrap();
        let clients = REPLICAS * CLIENTS_PER_REPLICA;
        let barrier = Arc::new(Barrier::new(clients));
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let store = Arc::clone(&replicas[client % REPLICAS]);
                let (barrier, location) = (Arc::clone(&barrier), location.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.reserve(
                        &Actor::principal(format!("client-{client}"), "dealer"),
                        &[reserve_command(&format!("r{round}"), "P", &location, 1)],
                        at(0),
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let mut won = Vec::new();
        for result in results {
            match result {
                Ok(mut reservations) => won.push(reservations.remove(0)),
                Err(e) => assert!(
                    matches!(e, StoreError::Rejected(DomainError::FailedPrecondition(_))),
                    "round {round}: {e:?}"
                ),
            }
        }
        assert_eq!(won.len(), units, "round {round}: oversold or undersold");
        reserved_total += won.len();
        for replica in &replicas {
            replica.catch_up().unwrap();
            let balance = replica.balance("P", &location).unwrap();
            assert_eq!((balance.available, balance.reserved), (0, units as u64));
            for reservation in &won {
                let stored = replica.reservation(&reservation.reservation_id).unwrap();
                assert_eq!(
                    stored.map(|r| r.state),
                    Some(ReservationState::Pending),
                    "round {round}: acknowledged {} missing",
                    reservation.reservation_id
                );
            }
        }
    }
    for replica in &replicas {
        assert_audit_clean(&**replica);
    }
    println!(
        "{rounds} rounds, {} clients through {REPLICAS} replicas: {reserved_total} units reserved, 0 oversold",
        REPLICAS * CLIENTS_PER_REPLICA
    );
}

#[test]
fn a_following_replica_sees_another_replicas_movements() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let writer = PgStore::open(&place.locator()).unwrap();
    let follower = Arc::new(PgStore::open(&place.locator()).unwrap());
    follower.follow(Duration::from_millis(500)).unwrap();
    let writes = Backend::Postgres.scaled(200, 50) as usize;
    let mut lags = Vec::with_capacity(writes);
    for i in 0..writes {
        writer
            .record_movements(
                &Actor::local("test"),
                &[movement(
                    &format!("m{i}"),
                    MovementKind::Receipt,
                    "P",
                    "L",
                    1,
                )],
                at(0),
            )
            .unwrap();
        let written = Instant::now();
        // A bound against a hang, not a speed goal: the follower polls
        // every 500 ms even if every notification were lost.
        while follower.balance("P", "L").unwrap().available < (i + 1) as u64 {
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "write {i} never reached the follower"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
        lags.push(written.elapsed());
    }
    lags.sort();
    let quantile = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    println!(
        "follower lag over {writes} writes: p50 {:?}, p99 {:?}, max {:?} (load average {})",
        quantile(0.5),
        quantile(0.99),
        lags[lags.len() - 1],
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    assert_eq!(follower.balance("P", "L").unwrap().available, writes as u64);
    assert_audit_clean(&*follower);
}

/// What a server's watch streams learn of other servers' writes: a store
/// that follows the ledger tells its observer of every entry another
/// replica wrote, once and in sequence order, and of none of its own, while
/// both write at once (its follower often reads its own commits back
/// before the writer has applied them).
#[test]
fn a_replica_is_told_of_each_other_replicas_entry_once_and_never_of_its_own() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let observed = Arc::new(PgStore::open(&place.locator()).unwrap());
    observed.follow(Duration::from_millis(500)).unwrap();
    let other = PgStore::open(&place.locator()).unwrap();
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&told);
    observed.observe_other_writers(Box::new(move |entries| {
        sink.lock()
            .unwrap()
            .extend(entries.iter().map(|entry| entry.sequence));
    }));
    let writes = Backend::Postgres.scaled(300, 100) as usize;
    let write = |store: &PgStore, name: &str| -> Vec<u64> {
        (0..writes)
            .map(|i| {
                store
                    .record_movements(
                        &Actor::local("test"),
                        &[movement(
                            &format!("{name}-{i}"),
                            MovementKind::Receipt,
                            "P",
                            name,
                            1,
                        )],
                        at(0),
                    )
                    .unwrap()
                    .remove(0)
                    .sequence
            })
            .collect()
    };
    let (own, others) = std::thread::scope(|scope| {
        let own = scope.spawn(|| write(&observed, "own"));
        let others = scope.spawn(|| write(&other, "other"));
        (own.join().unwrap(), others.join().unwrap())
    });
    // The observer is called once the entries are applied: wait for the
    // last of them (a hang guard, not a speed goal).
    let since = Instant::now();
    while told.lock().unwrap().len() < others.len() {
        assert!(since.elapsed() < Duration::from_secs(10), "never told");
        std::thread::sleep(Duration::from_millis(1));
    }
    let told = told.lock().unwrap().clone();
    assert_eq!(
        told, others,
        "told of exactly the other's entries, in order"
    );
    assert!(own.iter().all(|sequence| !told.contains(sequence)));
    assert_eq!(
        observed.balance("P", "own").unwrap().available,
        writes as u64
    );
    assert_eq!(
        observed.balance("P", "other").unwrap().available,
        writes as u64
    );
}
