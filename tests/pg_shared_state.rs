//! Replicas on one PostgreSQL database serve the same master data and the
//! same API keys: what one server changes (a part, a policy plan, a key
//! created or revoked) the others reload when the store's change counters
//! move (`Spares::refresh_shared_state`, polled by `follow_shared_state`),
//! and a master-data write checks against the latest data, never undoing
//! another server's write. On sled (one process) there is nothing to
//! follow.
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use ledger_support::{Backend, Place};
use spares::auth::Role;
use spares::clock::SystemClock;
use spares::config::Limits;
use spares::domain::network::{Criticality, Interchangeability, Part};
use spares::service::keys::NewApiKey;
use spares::service::{Refreshed, Spares};
use spares::store::{PgStore, SledStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn part(id: &str) -> Part {
    Part {
        id: id.into(),
        description: id.into(),
        unit_cost_usd: 100.0,
        criticality: Criticality::Critical,
        repairable: false,
        successor: None,
        interchangeability: Interchangeability::TwoWay,
        supplier_lead_time: None,
        downtime_cost_usd_per_hour: None,
    }
}

fn replica(place: &Place) -> Arc<Spares> {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&place.locator()).unwrap());
    Arc::new(Spares::new(store, Arc::new(SystemClock), Limits::default()).unwrap())
}

fn admin_key(spares: &Spares) -> (String, String) {
    let (record, key) = spares
        .create_api_key(NewApiKey {
            role: Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
            name: "shared".into(),
            created_by: "test".into(),
        })
        .unwrap();
    (record.key_id, key)
}

#[test]
fn a_change_through_one_replica_is_reloaded_by_the_others() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let (a, b) = (replica(&place), replica(&place));
    assert_eq!(b.refresh_shared_state().unwrap(), Refreshed::default());

    // Master data: a part added through A is unknown to B until it refreshes.
    a.upsert_parts(vec![part("P-A")]).unwrap();
    assert!(!b.network().parts.contains_key("P-A"));
    let refreshed = b.refresh_shared_state().unwrap();
    assert!(refreshed.network && !refreshed.api_keys, "{refreshed:?}");
    assert!(b.network().parts.contains_key("P-A"));
    // Nothing moved since: nothing is reloaded, the same snapshot is kept.
    let before = b.network();
    assert_eq!(b.refresh_shared_state().unwrap(), Refreshed::default());
    assert!(Arc::ptr_eq(&before, &b.network()));

    // API keys: made through A, it authenticates on B after B refreshes;
    // revoked through A, it stops authenticating on B.
    let (key_id, key) = admin_key(&a);
    assert!(a.key_ring().verify(&key).is_some());
    assert!(b.key_ring().verify(&key).is_none());
    let refreshed = b.refresh_shared_state().unwrap();
    assert!(refreshed.api_keys && !refreshed.network, "{refreshed:?}");
    assert!(b.key_ring().verify(&key).is_some());
    a.revoke_api_key(&key_id).unwrap();
    assert!(b.key_ring().verify(&key).is_some(), "B has not looked yet");
    assert!(b.refresh_shared_state().unwrap().api_keys);
    assert!(b.key_ring().verify(&key).is_none(), "revoked through A");
}

#[test]
fn a_write_on_a_stale_replica_keeps_the_other_replicas_write() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let (a, b) = (replica(&place), replica(&place));
    a.upsert_parts(vec![part("P-A")]).unwrap();
    // B has not refreshed; its write reloads first and builds on A's.
    b.upsert_parts(vec![part("P-B")]).unwrap();
    for id in ["P-A", "P-B"] {
        assert!(b.network().parts.contains_key(id), "{id} on B");
    }
    // A third replica opened now, and A after a refresh, agree with B.
    let c = replica(&place);
    a.refresh_shared_state().unwrap();
    for spares in [&a, &c] {
        let mut ids: Vec<_> = spares.network().parts.keys().cloned().collect();
        ids.sort();
        assert_eq!(ids, ["P-A", "P-B"]);
    }
}

#[test]
fn the_follower_thread_reloads_within_its_poll() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let (a, b) = (replica(&place), replica(&place));
    b.follow_shared_state(Duration::from_millis(20)).unwrap();
    let (_, key) = admin_key(&a);
    a.upsert_parts(vec![part("P-A")]).unwrap();
    let written = Instant::now();
    while !(b.network().parts.contains_key("P-A") && b.key_ring().verify(&key).is_some()) {
        // A hang guard, not a speed goal.
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "never reloaded"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_store_one_process_opens_has_nothing_to_follow() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    assert!(store.change_counters().unwrap().is_empty());
    let spares = Spares::new(store, Arc::new(SystemClock), Limits::default()).unwrap();
    spares.upsert_parts(vec![part("P")]).unwrap();
    assert_eq!(spares.refresh_shared_state().unwrap(), Refreshed::default());
    assert!(spares.network().parts.contains_key("P"));
}
