//! The quantity bound and checked arithmetic of the ledger, driven with extreme
//! values: random movements, counts and reservations whose quantities cluster at
//! 0, 1, `MAX_QUANTITY` and `i64::MAX`, against each store backend (sled,
//! and PostgreSQL with 6 cases unless `SPARES_TEST_POSTGRES_FULL=1`). Every write is
//! either refused with a typed error (never a panic) or leaves every account
//! within `MAX_QUANTITY`; the audit is clean after every step and the store
//! reopens (the audit on open accepts everything that was acknowledged).
//!
//! Regression for issue 12, found 1: a receipt of `i64::MAX` at one store and
//! receipts of 1 at two others were all accepted, wrapped the external supplier
//! balance, and the ledger then refused to open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod ledger_support;

use ledger_support::{Backend, Place, assert_audit_clean, at, movement, reserve_command};
use proptest::prelude::*;
use spares::domain::DomainError;
use spares::domain::ledger::{MAX_QUANTITY, MovementKind};
use spares::store::{Store, StoreError};

const MAX: i64 = MAX_QUANTITY as i64;

fn out_of_range_field(error: &StoreError) -> Option<&str> {
    match error {
        StoreError::Rejected(DomainError::OutOfRange { field, .. }) => Some(field),
        _ => None,
    }
}

on_both_backends!(overflowing_receipts_are_refused_naming_the_field_and_the_ledger_reopens);

fn overflowing_receipts_are_refused_naming_the_field_and_the_ledger_reopens(backend: Backend) {
    let place = Place::new(backend);
    let store = place.open();
    // The reproduction: i64::MAX at one store is now past the bound.
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("a", MovementKind::Receipt, "P", "S1", i64::MAX)],
            at(0),
        )
        .unwrap_err();
    assert_eq!(
        out_of_range_field(&err),
        Some("movements[0].quantity"),
        "{err}"
    );
    // The largest accepted receipt, then one more unit anywhere: the supplier
    // account of P would pass -MAX_QUANTITY, so the second is refused.
    store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("b", MovementKind::Receipt, "P", "S1", MAX)],
            at(1),
        )
        .unwrap();
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[
                movement("c0", MovementKind::Receipt, "Q", "S2", 1),
                movement("c", MovementKind::Receipt, "P", "S2", 1),
            ],
            at(2),
        )
        .unwrap_err();
    assert_eq!(
        out_of_range_field(&err),
        Some("movements[1].quantity"),
        "{err}"
    );
    assert!(err.to_string().contains("supplier account of P"), "{err}");
    assert!(
        !err.to_string().contains("External"),
        "no debug output: {err}"
    );
    // Adding to an available balance already at the bound is out of range too,
    // not "would go below zero".
    let err = store
        .record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &[movement("d", MovementKind::Adjustment, "P", "S1", 1)],
            at(3),
        )
        .unwrap_err();
    assert_eq!(
        out_of_range_field(&err),
        Some("movements[0].quantity"),
        "{err}"
    );
    assert_audit_clean(&*store);
    drop(store);
    let store = place.open();
    assert_eq!(store.balance("P", "S1").unwrap().available, MAX_QUANTITY);
    assert_eq!(store.balance("Q", "S2").unwrap().available, 0);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    Move {
        kind: MovementKind,
        part: usize,
        location: usize,
        quantity: i64,
    },
    Reserve {
        part: usize,
        location: usize,
        quantity: u64,
    },
    Reopen,
}

fn extreme_quantity() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(1),
        Just(-1),
        Just(MAX),
        Just(-MAX),
        Just(MAX - 1),
        Just(MAX + 1),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MIN + 1),
        (MAX / 2 - 2)..(MAX / 2 + 2),
        any::<i64>(),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        Just(MovementKind::Receipt),
        Just(MovementKind::Issue),
        Just(MovementKind::Adjustment),
        Just(MovementKind::Scrap),
        Just(MovementKind::Count),
    ];
    prop_oneof![
        8 => (kind, 0usize..2, 0usize..2, extreme_quantity()).prop_map(
            |(kind, part, location, quantity)| Step::Move { kind, part, location, quantity }
        ),
        2 => (0usize..2, 0usize..2, extreme_quantity()).prop_map(|(part, location, q)| {
            Step::Reserve { part, location, quantity: q.unsigned_abs() }
        }),
        1 => Just(Step::Reopen),
    ]
}

/// Every account of every part within the bound, and the audit clean.
fn check_bounded(store: &dyn Store) {
    assert_audit_clean(store);
    for balance in store.balances(None, None).unwrap() {
        assert!(balance.available <= MAX_QUANTITY, "{balance:?}");
        assert!(balance.reserved <= MAX_QUANTITY, "{balance:?}");
    }
}

fn run(backend: Backend, steps: &[Step]) {
    let place = Place::new(backend);
    let mut store = place.open();
    let parts = ["P0", "P1"];
    let locations = ["L0", "L1"];
    for (i, step) in steps.iter().enumerate() {
        let now = at(i as i64);
        let result = match step {
            Step::Move {
                kind,
                part,
                location,
                quantity,
            } => store
                .record_movements(
                    &spares::domain::ledger::Actor::local("test"),
                    &[movement(
                        &format!("m{i}"),
                        *kind,
                        parts[*part],
                        locations[*location],
                        *quantity,
                    )],
                    now,
                )
                .map(|_| ()),
            Step::Reserve {
                part,
                location,
                quantity,
            } => store
                .reserve(
                    &spares::domain::ledger::Actor::local("test"),
                    &[reserve_command(
                        &format!("r{i}"),
                        parts[*part],
                        locations[*location],
                        *quantity,
                    )],
                    now,
                )
                .map(|_| ()),
            Step::Reopen => {
                drop(store);
                store = place.open();
                Ok(())
            }
        };
        if let Err(error) = result {
            // Refusals are typed rejections, never storage failures or corruption.
            assert!(
                matches!(error, StoreError::Rejected(_)),
                "step {i} {step:?}: {error}"
            );
        }
        check_bounded(&*store);
    }
    drop(store);
    let store = place.open();
    check_bounded(&*store);
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: Backend::Sled.scaled(24, 24), ..ProptestConfig::default() })]

    #[test]
    fn sled_extreme_quantities_never_break_the_bound_or_the_audit(steps in steps()) {
        run(Backend::Sled, &steps);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: Backend::Postgres.scaled(24, 6), ..ProptestConfig::default() })]

    #[test]
    fn postgres_extreme_quantities_never_break_the_bound_or_the_audit(steps in steps()) {
        if Backend::Postgres.available() {
            run(Backend::Postgres, &steps);
        }
    }
}
