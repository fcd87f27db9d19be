//! Moving a ledger between backends with the backup format: a sled store
//! with movements, a shipment in transit, reservations (pending, posted,
//! voided) and idempotency keys is backed up and restored into a fresh
//! PostgreSQL schema; that copy is backed up and restored into a fresh sled
//! directory. After each hop the balances and the reservations equal the
//! original's, the ledger audits clean, and replaying every idempotency key
//! with its original payload returns the original outcome without writing
//! (the log does not grow).
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use ledger_support::{
    Backend, Place, assert_audit_clean, at, movement, receive, reserve_command, ship,
};
use spares::domain::audit::MovementFilter;
use spares::domain::ledger::{
    Actor, Balance, MovementCommand, MovementKind, MovementOutcome, PostCommand, Reservation,
    ReservationFilter, ReservationState, ReserveCommand, VoidCommand,
};
use spares::service::backup::{restore_backup, write_backup};
use spares::store::Store;

/// Everything written to the source store, with what it answered.
struct Written {
    actor: Actor,
    movements: Vec<(MovementCommand, MovementOutcome)>,
    reserves: Vec<(ReserveCommand, Reservation)>,
    posts: Vec<(PostCommand, Reservation)>,
    voids: Vec<(VoidCommand, Reservation)>,
}

/// Fills `store`: receipts at two locations, an issue, a transfer shipped
/// and half received (the rest stays in transit), and six reservations of
/// which two are posted (one as a transfer), two voided and two left pending.
fn fill(store: &dyn Store) -> Written {
    let actor = Actor::principal("mover", "warehouse");
    let mut written = Written {
        actor: actor.clone(),
        movements: Vec::new(),
        reserves: Vec::new(),
        posts: Vec::new(),
        voids: Vec::new(),
    };
    let commands = vec![
        movement("m-receipt-a1", MovementKind::Receipt, "P1", "A", 40),
        movement("m-receipt-b1", MovementKind::Receipt, "P1", "B", 12),
        movement("m-receipt-a2", MovementKind::Receipt, "P2", "A", 9),
        movement("m-issue-a1", MovementKind::Issue, "P1", "A", 3),
        ship("m-ship-a-c", "P1", "A", "C", 6, Some("S-1")),
        receive("m-receive-c", "P1", "C", 2, "S-1"),
    ];
    for (step, command) in commands.into_iter().enumerate() {
        let outcome = store
            .record_movements(&actor, std::slice::from_ref(&command), at(step as i64))
            .unwrap()
            .remove(0);
        written.movements.push((command, outcome));
    }
    for (index, (part, location, quantity)) in [
        ("P1", "A", 4),
        ("P1", "A", 2),
        ("P1", "B", 5),
        ("P2", "A", 3),
        ("P1", "B", 1),
        ("P2", "A", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let command = reserve_command(&format!("r-{index}"), part, location, quantity);
        let reservation = store
            .reserve(&actor, std::slice::from_ref(&command), at(10))
            .unwrap()
            .remove(0);
        written.reserves.push((command, reservation));
    }
    let id = |index: usize| written.reserves[index].1.reservation_id.clone();
    let posts = [
        PostCommand {
            reservation_id: id(0),
            idempotency_key: "post-0".into(),
            ship_to_location_id: None,
            expected_arrival: None,
        },
        PostCommand {
            reservation_id: id(2),
            idempotency_key: "post-2".into(),
            ship_to_location_id: Some("C".into()),
            expected_arrival: Some(at(86_400)),
        },
    ];
    for command in posts {
        let posted = store.post_reservation(&actor, &command, at(20)).unwrap();
        assert_eq!(posted.state, ReservationState::Posted);
        written.posts.push((command, posted));
    }
    for index in [1, 3] {
        let command = VoidCommand {
            reservation_id: id(index),
            idempotency_key: format!("void-{index}"),
        };
        let voided = store.void_reservation(&actor, &command, at(30)).unwrap();
        assert_eq!(voided.state, ReservationState::Voided);
        written.voids.push((command, voided));
    }
    written
}

/// What the comparison looks at: every balance, every reservation, and the
/// log's length.
#[derive(Debug, PartialEq)]
struct View {
    balances: Vec<Balance>,
    reservations: Vec<Reservation>,
    last_sequence: u64,
}

fn view(store: &dyn Store) -> View {
    let (log, _) = store
        .movements(&MovementFilter {
            limit: 10_000,
            ..MovementFilter::default()
        })
        .unwrap();
    View {
        balances: store.balances(None, None).unwrap(),
        reservations: store.reservations(&ReservationFilter::default()).unwrap(),
        last_sequence: log.last().map_or(0, |e| e.sequence),
    }
}

/// Replays every key with its original payload: each returns the original
/// outcome (marked as a replay), and nothing is written.
fn assert_replays(store: &dyn Store, written: &Written, hop: &str) {
    let before = view(store);
    let actor = &written.actor;
    for (command, original) in &written.movements {
        let replayed = store
            .record_movements(actor, std::slice::from_ref(command), at(1_000))
            .unwrap()
            .remove(0);
        assert!(
            replayed.replayed,
            "{hop}: {} not a replay",
            command.idempotency_key
        );
        assert_eq!(
            MovementOutcome {
                replayed: false,
                ..replayed
            },
            *original,
            "{hop}: {}",
            command.idempotency_key
        );
    }
    for (command, original) in &written.reserves {
        let replayed = store
            .reserve(actor, std::slice::from_ref(command), at(1_000))
            .unwrap()
            .remove(0);
        // The replay answers the reservation as it is now (settled or not).
        assert_eq!(replayed.reservation_id, original.reservation_id, "{hop}");
        assert_eq!(replayed.created_at, original.created_at, "{hop}");
    }
    for (command, original) in &written.posts {
        let replayed = store.post_reservation(actor, command, at(1_000)).unwrap();
        assert_eq!(replayed, *original, "{hop}: {}", command.idempotency_key);
    }
    for (command, original) in &written.voids {
        let replayed = store.void_reservation(actor, command, at(1_000)).unwrap();
        assert_eq!(replayed, *original, "{hop}: {}", command.idempotency_key);
    }
    assert_eq!(view(store), before, "{hop}: a replay wrote something");
}

/// Backs `from` up and restores the file into `to` (empty); returns the cut.
fn hop(from: &dyn Store, to: &dyn Store) -> u64 {
    let mut file = Vec::new();
    let summary = write_backup(from, &mut file, at(2_000)).unwrap();
    let (cut, items) = restore_backup(to, &file[..]).unwrap();
    assert_eq!(cut, summary.last_sequence);
    assert!(items > 0);
    cut
}

#[test]
fn a_ledger_moves_from_sled_to_postgres_and_back() {
    if !Backend::Postgres.available() {
        return;
    }
    let sled = Place::new(Backend::Sled);
    let source = sled.open();
    let written = fill(source.as_ref());
    let original = view(source.as_ref());
    assert_audit_clean(source.as_ref());
    let states: Vec<ReservationState> = original.reservations.iter().map(|r| r.state).collect();
    for state in [
        ReservationState::Pending,
        ReservationState::Posted,
        ReservationState::Voided,
    ] {
        assert_eq!(
            states.iter().filter(|s| **s == state).count(),
            2,
            "{state:?}"
        );
    }
    assert!(original.balances.iter().any(|b| !b.inbound.is_empty()));

    let pg = Place::new(Backend::Postgres);
    let on_postgres = pg.open();
    assert_eq!(
        hop(source.as_ref(), on_postgres.as_ref()),
        original.last_sequence
    );
    assert_eq!(view(on_postgres.as_ref()), original, "sled -> PostgreSQL");
    assert_audit_clean(on_postgres.as_ref());
    // Reopened, the copy replays its log from the database alone.
    drop(on_postgres);
    let on_postgres = pg.open();
    assert_eq!(view(on_postgres.as_ref()), original, "PostgreSQL reopened");
    assert_replays(on_postgres.as_ref(), &written, "on PostgreSQL");

    let back = Place::new(Backend::Sled);
    let on_sled = back.open();
    assert_eq!(
        hop(on_postgres.as_ref(), on_sled.as_ref()),
        original.last_sequence
    );
    assert_eq!(view(on_sled.as_ref()), original, "PostgreSQL -> sled");
    assert_audit_clean(on_sled.as_ref());
    assert_replays(on_sled.as_ref(), &written, "back on sled");
    println!(
        "moved {} log entries, {} balances, {} reservations, {} keys: sled -> PostgreSQL -> sled",
        original.last_sequence,
        original.balances.len(),
        original.reservations.len(),
        written.movements.len()
            + written.reserves.len()
            + written.posts.len()
            + written.voids.len()
    );
}
