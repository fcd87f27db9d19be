//! Property test: random sequences of ledger requests (receipts, issues,
//! transfers, adjustments, scrap, reserve, post, void, expiry, duplicate and
//! conflicting keys, reopen) against each store backend (sled and
//! PostgreSQL, see `ledger_support::backend`) and an in-memory model. After
//! every step the store's replies, balances and reservation states must equal
//! the model's, and the audit must be clean. PostgreSQL runs 8 cases unless
//! `SPARES_TEST_POSTGRES_FULL=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use ledger_support::{Backend, Harness, MoveSpec, Op, ReserveSpec};
use proptest::prelude::*;

fn move_spec() -> impl Strategy<Value = MoveSpec> + Clone {
    let kind = prop_oneof![4 => Just(0u8), 2 => Just(1u8), 3 => Just(2u8), 3 => Just(3u8), 1 => Just(4u8), 1 => Just(5u8), 1 => Just(6u8)];
    let quantity = prop_oneof![12 => 1i64..5, 1 => -3i64..1];
    let shipment = proptest::option::weighted(0.9, 0usize..8);
    (kind, 0usize..2, 0usize..3, quantity, 0usize..3, shipment).prop_map(
        |(kind, part, location, quantity, to, shipment)| MoveSpec {
            kind,
            part,
            location,
            quantity,
            to,
            shipment,
        },
    )
}

fn reserve_spec() -> impl Strategy<Value = ReserveSpec> + Clone {
    let quantity = prop_oneof![12 => 1u64..4, 1 => Just(0u64)];
    let ttl = prop_oneof![12 => 5u32..60, 1 => Just(0u32)];
    (0usize..2, 0usize..3, quantity, any::<bool>(), 0u64..4, ttl).prop_map(
        |(part, location, quantity, critical, protected, ttl_seconds)| ReserveSpec {
            part,
            location,
            quantity,
            critical,
            protected,
            ttl_seconds,
        },
    )
}

fn batch<T: std::fmt::Debug>(
    item: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![4 => proptest::collection::vec(item.clone(), 1..2), 1 => proptest::collection::vec(item, 2..4)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => batch(move_spec()).prop_map(Op::Move),
        5 => batch(reserve_spec()).prop_map(Op::Reserve),
        2 => (0usize..16, proptest::option::of(0usize..3)).prop_map(|(pick, ship_to)| Op::Post { pick, ship_to }),
        2 => (0usize..16).prop_map(|pick| Op::Void { pick }),
        2 => (0i64..40).prop_map(|seconds| Op::Advance { seconds }),
        2 => Just(Op::Duplicate),
        1 => Just(Op::Conflict),
        1 => Just(Op::Reopen),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..80)
}

fn store_matches_the_model(backend: Backend, ops: &[Op]) {
    let mut harness = Harness::new(backend);
    harness.seed_stock(6);
    for (step, op) in ops.iter().enumerate() {
        harness.step(step, op);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(Backend::Sled.scaled(64, 64)))]

    #[test]
    fn sled_store_matches_the_model(ops in ops()) {
        store_matches_the_model(Backend::Sled, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(Backend::Postgres.scaled(64, 8)))]

    #[test]
    fn postgres_store_matches_the_model(ops in ops()) {
        if Backend::Postgres.available() {
            store_matches_the_model(Backend::Postgres, &ops);
        }
    }
}
