//! Store-level tests of the ledger: idempotency, validation, reservations,
//! concurrent reservations, reopen, corruption detection and master data,
//! each on both store backends (sled and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod ledger_support;

use ledger_support::{
    Backend, Place, assert_audit_clean, at, movement, receive, reserve_command, ship,
};
use spares::domain::DomainError;
use spares::domain::ledger::{
    MovementKind, PostCommand, Priority, ReservationState, ReserveCommand, VoidCommand,
};
use spares::domain::network::{Policy, PolicyKind};
use spares::store::{NetworkRecord, Store, StoreError};
use std::sync::{Arc, Barrier};

on_both_backends!(
    same_key_and_payload_returns_the_original_outcome_and_applies_once,
    a_retried_batch_replays_stored_keys_even_when_they_could_not_run_again,
    same_key_with_a_different_payload_is_a_conflict_naming_the_field,
    invalid_movements_name_the_field_and_not_enough_stock_says_how_much,
    transfers_move_through_in_transit_owned_by_the_destination,
    reservations_respect_protection_expire_once_and_post_in_transit,
    thirty_two_threads_racing_for_ten_units_get_exactly_ten,
    open_refuses_a_ledger_whose_balances_disagree_with_the_log,
    master_data_and_records_round_trip_through_reopen
);

fn open(backend: Backend) -> (Place, Box<dyn Store>) {
    let place = Place::new(backend);
    let store = place.open();
    (place, store)
}

fn receipt(store: &dyn Store, key: &str, part: &str, location: &str, quantity: i64) {
    store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement(
                key,
                MovementKind::Receipt,
                part,
                location,
                quantity,
            )],
            at(0),
        )
        .unwrap();
}

fn same_key_and_payload_returns_the_original_outcome_and_applies_once(backend: Backend) {
    let (_place, store) = open(backend);
    let command = movement("k1", MovementKind::Receipt, "P", "L", 5);
    let first = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&command),
            at(0),
        )
        .unwrap();
    let again = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&command),
            at(10),
        )
        .unwrap();
    assert!(!first[0].replayed);
    assert!(again[0].replayed);
    assert_eq!(again[0].sequence, first[0].sequence);
    assert_eq!(again[0].recorded_at, first[0].recorded_at);
    assert_eq!(store.balance("P", "L").unwrap().available, 5);
    // Within one batch too: the duplicate is the first one's result.
    let batch = [
        movement("k2", MovementKind::Receipt, "P", "L", 1),
        movement("k2", MovementKind::Receipt, "P", "L", 1),
    ];
    let outcomes = store
        .record_movements(&spares::domain::ledger::Actor::local("test"), &batch, at(0))
        .unwrap();
    assert_eq!((outcomes[0].replayed, outcomes[1].replayed), (false, true));
    assert_eq!(outcomes[0].sequence, outcomes[1].sequence);
    assert_eq!(store.balance("P", "L").unwrap().available, 6);
    assert_eq!(assert_audit_clean(&*store), 2);
}

fn a_retried_batch_replays_stored_keys_even_when_they_could_not_run_again(backend: Backend) {
    let (_place, store) = open(backend);
    receipt(&*store, "r1", "P", "L", 5);
    let issue = movement("i1", MovementKind::Issue, "P", "L", 5);
    let first = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&issue),
            at(1),
        )
        .unwrap();
    // The stock is gone, so the issue could not be recorded again; the retry
    // must still answer with the stored outcome, next to a fresh movement.
    let batch = [
        movement("r2", MovementKind::Receipt, "P", "L", 2),
        issue,
        movement("r2", MovementKind::Receipt, "P", "L", 2),
    ];
    let outcomes = store
        .record_movements(&spares::domain::ledger::Actor::local("test"), &batch, at(2))
        .unwrap();
    let replayed: Vec<bool> = outcomes.iter().map(|o| o.replayed).collect();
    assert_eq!(replayed, [false, true, true]);
    assert_eq!(outcomes[1].sequence, first[0].sequence);
    assert_eq!(outcomes[1].recorded_at, at(1));
    assert_eq!(outcomes[2].sequence, outcomes[0].sequence);
    assert_eq!(store.balance("P", "L").unwrap().available, 2);
    assert_eq!(assert_audit_clean(&*store), 3);
}

fn same_key_with_a_different_payload_is_a_conflict_naming_the_field(backend: Backend) {
    let (_place, store) = open(backend);
    receipt(&*store, "k1", "P", "L", 5);
    let changed = movement("k1", MovementKind::Receipt, "P", "L", 6);
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("k9", MovementKind::Receipt, "P", "L", 1), changed],
            at(0),
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(DomainError::IdempotencyConflict { field, key }) if field == "movements[1].idempotency_key" && key == "k1"),
        "{err:?}"
    );
    // The batch is all or nothing: k9 was not applied.
    assert_eq!(store.balance("P", "L").unwrap().available, 5);

    let reserve = reserve_command("r1", "P", "L", 2);
    let reservation = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&reserve),
            at(0),
        )
        .unwrap()
        .remove(0);
    let replay = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&reserve),
            at(1),
        )
        .unwrap()
        .remove(0);
    assert_eq!(replay, reservation);
    let err = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            &[ReserveCommand {
                quantity: 3,
                ..reserve.clone()
            }],
            at(1),
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(DomainError::IdempotencyConflict { field, .. }) if field == "idempotency_key"),
        "{err:?}"
    );

    let post = PostCommand {
        reservation_id: reservation.reservation_id.clone(),
        idempotency_key: "c1".into(),
        ship_to_location_id: None,
        expected_arrival: None,
    };
    let posted = store
        .post_reservation(&spares::domain::ledger::Actor::local("test"), &post, at(2))
        .unwrap();
    assert_eq!(posted.state, ReservationState::Posted);
    // A confirm retried after success returns the same reservation.
    assert_eq!(
        store
            .post_reservation(&spares::domain::ledger::Actor::local("test"), &post, at(3))
            .unwrap(),
        posted
    );
    let other = PostCommand {
        ship_to_location_id: Some("M".into()),
        ..post.clone()
    };
    let err = store
        .post_reservation(&spares::domain::ledger::Actor::local("test"), &other, at(3))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(DomainError::IdempotencyConflict { field, .. }) if field == "idempotency_key"),
        "{err:?}"
    );
    // A different key on a settled reservation names its state.
    let void = VoidCommand {
        reservation_id: reservation.reservation_id.clone(),
        idempotency_key: "v1".into(),
    };
    let err = store
        .void_reservation(&spares::domain::ledger::Actor::local("test"), &void, at(3))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(DomainError::FailedPrecondition(m)) if m.contains("Posted")),
        "{err:?}"
    );
    // Keys are scoped per operation: "k1" is free for a reservation.
    store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            &[reserve_command("k1", "P", "L", 1)],
            at(4),
        )
        .unwrap();
    let balance = store.balance("P", "L").unwrap();
    assert_eq!((balance.available, balance.reserved), (2, 1));
    assert_audit_clean(&*store);
}

fn invalid_movements_name_the_field_and_not_enough_stock_says_how_much(backend: Backend) {
    let (_place, store) = open(backend);
    receipt(&*store, "k0", "P", "L", 3);
    let cases = [
        (
            movement("a", MovementKind::Issue, "P", "L", 0),
            "movements[0].quantity",
        ),
        (
            movement("b", MovementKind::Receipt, "P", "L", -2),
            "movements[0].quantity",
        ),
        (
            movement("c", MovementKind::Adjustment, "P", "L", 0),
            "movements[0].quantity",
        ),
        (
            ship("d", "P", "L", "L", 1, None),
            "movements[0].to_location_id",
        ),
        (
            movement("e", MovementKind::TransferShip, "P", "L", 1),
            "movements[0].to_location_id",
        ),
        (
            movement("f", MovementKind::TransferReceive, "P", "L", 1),
            "movements[0].shipment_id",
        ),
    ];
    for (command, expected) in cases {
        let err = store
            .record_movements(
                &spares::domain::ledger::Actor::local("test"),
                &[command],
                at(0),
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Rejected(DomainError::InvalidArgument { field, .. }) if field == expected),
            "{expected}: {err:?}"
        );
    }
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("g", MovementKind::Issue, "P", "L", 5)],
            at(0),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not enough available stock of P at L: have 3, need 5"
    );
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("h", MovementKind::Adjustment, "P", "L", -4)],
            at(0),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Rejected(DomainError::FailedPrecondition(_))
    ));
    store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("i", MovementKind::Adjustment, "P", "L", -1)],
            at(0),
        )
        .unwrap();
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[receive("j", "P", "M", 1, "nope")],
            at(0),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Rejected(DomainError::NotFound {
                entity: "shipment",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(store.balance("P", "L").unwrap().available, 2);
    assert_audit_clean(&*store);
}

fn transfers_move_through_in_transit_owned_by_the_destination(backend: Backend) {
    let (place, store) = open(backend);
    receipt(&*store, "k0", "P", "A", 5);
    let shipped = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[ship("s1", "P", "A", "B", 3, None)],
            at(1),
        )
        .unwrap()
        .remove(0);
    let shipment = shipped.shipment_id.unwrap();
    let at_b = store.balance("P", "B").unwrap();
    assert_eq!((at_b.available, at_b.in_transit()), (0, 3));
    assert_eq!(at_b.inbound[0].from_location_id, "A");
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[receive("r0", "P", "C", 1, &shipment)],
            at(2),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Rejected(DomainError::FailedPrecondition(_))
    ));
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[receive("r1", "P", "B", 4, &shipment)],
            at(2),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Rejected(DomainError::FailedPrecondition(_))
    ));
    store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[receive("r2", "P", "B", 2, &shipment)],
            at(2),
        )
        .unwrap();
    drop(store);
    let store = place.open();
    let at_b = store.balance("P", "B").unwrap();
    assert_eq!((at_b.available, at_b.in_transit()), (2, 1));
    assert_eq!(store.balance("P", "A").unwrap().on_hand(), 2);
    assert_eq!(store.balances(Some("P"), None).unwrap().len(), 2);
    assert_eq!(store.balances(None, Some("B")).unwrap().len(), 1);
    assert_audit_clean(&*store);
}

fn reservations_respect_protection_expire_once_and_post_in_transit(backend: Backend) {
    let (_place, store) = open(backend);
    receipt(&*store, "k0", "P", "L", 4);
    let routine = ReserveCommand {
        protected_quantity: 2,
        ..reserve_command("r1", "P", "L", 3)
    };
    let err = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            std::slice::from_ref(&routine),
            at(0),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not enough available stock of P at L: have 2, need 3"
    );
    let critical = ReserveCommand {
        priority: Priority::Critical,
        ..routine
    };
    let held = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            &[critical],
            at(0),
        )
        .unwrap()
        .remove(0);
    assert_eq!(held.expires_at, at(60));
    // All or none: the second line cannot be met, so the first is not held either.
    let err = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            &[
                reserve_command("r2", "P", "L", 1),
                reserve_command("r3", "P", "L", 1),
            ],
            at(0),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Rejected(DomainError::FailedPrecondition(_))
        ),
        "{err:?}"
    );
    assert_eq!(store.balance("P", "L").unwrap().available, 1);
    assert!(store.expire_reservations(at(59)).unwrap().is_empty());
    let expired = store.expire_reservations(at(60)).unwrap();
    assert_eq!(expired.len(), 1);
    assert!(store.expire_reservations(at(61)).unwrap().is_empty());
    let post = PostCommand {
        reservation_id: held.reservation_id.clone(),
        idempotency_key: "c".into(),
        ship_to_location_id: None,
        expected_arrival: None,
    };
    let err = store
        .post_reservation(&spares::domain::ledger::Actor::local("test"), &post, at(61))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected(DomainError::FailedPrecondition(m)) if m.contains("Expired")),
        "{err:?}"
    );
    let next = store
        .reserve(
            &spares::domain::ledger::Actor::local("test"),
            &[reserve_command("r4", "P", "L", 2)],
            at(70),
        )
        .unwrap()
        .remove(0);
    assert!(next.reservation_id > held.reservation_id);
    let ship = PostCommand {
        reservation_id: next.reservation_id.clone(),
        idempotency_key: "c2".into(),
        ship_to_location_id: Some("M".into()),
        expected_arrival: None,
    };
    let posted = store
        .post_reservation(&spares::domain::ledger::Actor::local("test"), &ship, at(71))
        .unwrap();
    assert_eq!(store.balance("P", "M").unwrap().in_transit(), 2);
    assert_eq!(
        store.balance("P", "M").unwrap().inbound[0].shipment_id,
        posted.shipment_id.unwrap()
    );
    assert_eq!(store.balance("P", "L").unwrap().on_hand(), 2);
    assert_audit_clean(&*store);
}

fn thirty_two_threads_racing_for_ten_units_get_exactly_ten(backend: Backend) {
    let (_place, store) = open(backend);
    let store: Arc<dyn Store> = Arc::from(store);
    for round in 0..50 {
        let location = format!("L{round}");
        receipt(&*store, &format!("seed-{round}"), "P", &location, 10);
        let barrier = Arc::new(Barrier::new(32));
        let handles: Vec<_> = (0..32)
            .map(|thread| {
                let (store, barrier, location) =
                    (Arc::clone(&store), Arc::clone(&barrier), location.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.reserve(
                        &spares::domain::ledger::Actor::local("test"),
                        &[reserve_command(
                            &format!("r{round}-{thread}"),
                            "P",
                            &location,
                            1,
                        )],
                        at(0),
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 10, "round {round}");
        for result in &results {
            if let Err(e) = result {
                assert!(
                    matches!(e, StoreError::Rejected(DomainError::FailedPrecondition(_))),
                    "{e:?}"
                );
            }
        }
        let balance = store.balance("P", &location).unwrap();
        assert_eq!((balance.available, balance.reserved), (0, 10));
    }
    assert_audit_clean(&*store);
}

fn open_refuses_a_ledger_whose_balances_disagree_with_the_log(backend: Backend) {
    let place = Place::new(backend);
    {
        let store = place.open();
        receipt(&*store, "k0", "P", "L", 5);
    }
    match backend {
        Backend::Sled => {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let db = sled::open(place.dir()).unwrap();
            let balances = db.open_tree("ledger/balances").unwrap();
            let (key, _) = balances.iter().next().unwrap().unwrap();
            balances.insert(key, &7i64.to_be_bytes()[..]).unwrap();
            db.flush().unwrap();
            drop(db);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Backend::Postgres => {
            let changed = place
                .sql()
                .execute(
                    "UPDATE balances SET balance = 7 WHERE account = \
                     (SELECT account FROM balances WHERE internal LIMIT 1)",
                    &[],
                )
                .unwrap();
            assert_eq!(changed, 1);
        }
    }
    let Err(err) = place.try_open() else {
        panic!("opened a damaged ledger")
    };
    assert!(
        matches!(&err, StoreError::Corruption(m) if m.contains("persisted balance")),
        "{err:?}"
    );
}

fn master_data_and_records_round_trip_through_reopen(backend: Backend) {
    let place = Place::new(backend);
    let policy = Policy {
        part_id: "P".into(),
        location_id: "L".into(),
        kind: PolicyKind::BaseStock,
        order_up_to: 4,
        reorder_point: 3,
        order_quantity: 1,
        protected_quantity: 1,
        source: "test".into(),
    };
    {
        let store = place.open();
        store
            .save_network_records(&[NetworkRecord::Policy(policy.clone())])
            .unwrap();
        store.put_record("jobs", "j2", b"two").unwrap();
        store.put_record("jobs", "j1", b"one").unwrap();
    }
    let store = place.open();
    let network = store.load_network().unwrap();
    assert_eq!(
        network.policies.get(&("P".to_string(), "L".to_string())),
        Some(&policy)
    );
    let records = store.records("jobs").unwrap();
    assert_eq!(
        records,
        vec![
            ("j1".to_string(), b"one".to_vec()),
            ("j2".to_string(), b"two".to_vec())
        ]
    );
}
