//! The demo network: valid against every network check, reproducible from its
//! seed, shaped as documented, and its stock movements never overdraw a location.

use jiff::Timestamp;
use spares::demo::{DemoConfig, DemoError, DemoNetwork, build_demo, example_calls};
use spares::domain::ledger::MovementKind;
use spares::domain::network::{Criticality, LaneKind, LocationKind};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

fn now() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().expect("a valid timestamp")
}

fn small(seed: u64) -> DemoConfig {
    DemoConfig {
        seed,
        parts: 1_500,
        stores: 40,
        ..DemoConfig::default()
    }
}

#[test]
fn default_demo_is_valid_and_shaped_as_documented() {
    let started = Instant::now();
    let demo = build_demo(&DemoConfig::default(), now()).unwrap();
    let elapsed = started.elapsed();
    let receipts = demo
        .movements
        .iter()
        .filter(|m| m.kind == MovementKind::Receipt)
        .count();
    println!(
        "default demo built in {elapsed:?}: {} locations, {} lanes, {} parts, {} models, {} fleets, \
         {} demand series, {} policies, {} movements ({receipts} receipts)",
        demo.locations.len(),
        demo.lanes.len(),
        demo.parts.len(),
        demo.machine_models.len(),
        demo.fleets.len(),
        demo.demand.len(),
        demo.policies.len(),
        demo.movements.len(),
    );
    let network = demo.network().unwrap();
    assert_eq!(
        network.locations.len(),
        demo.locations.len(),
        "ids are unique"
    );
    assert_eq!(
        network.lanes.len(),
        demo.lanes.len(),
        "lane keys are unique"
    );
    assert_eq!(
        network.policies.len(),
        demo.policies.len(),
        "one policy per part-location"
    );

    let count = |kind| demo.locations.iter().filter(|l| l.kind == kind).count();
    assert_eq!(count(LocationKind::FactoryDepot), 3);
    assert_eq!(count(LocationKind::RegionalWarehouse), 12);
    assert_eq!(count(LocationKind::Store), 300);
    assert_eq!(demo.parts.len(), 20_000);
    assert!(
        (50_000..=150_000).contains(&receipts),
        "{receipts} receipts"
    );
    let superseded = demo.parts.iter().filter(|p| p.successor.is_some()).count();
    assert!(
        (400..=800).contains(&superseded),
        "{superseded} superseded parts"
    );
    assert_eq!(demo.machine_models.len(), 8);
    for model in &demo.machine_models {
        assert!((50..=300).contains(&model.parts.len()), "{}", model.id);
    }
    let critical = demo
        .parts
        .iter()
        .filter(|p| p.criticality == Criticality::Critical)
        .count();
    assert!(
        (1_600..=2_400).contains(&critical),
        "{critical} critical parts"
    );
}

#[test]
fn same_seed_same_demo_different_seed_different_demo() {
    let a = build_demo(&small(11), now()).unwrap();
    let b = build_demo(&small(11), now()).unwrap();
    assert_eq!(a, b);
    let c = build_demo(&small(12), now()).unwrap();
    assert_ne!(a.parts, c.parts);
    assert_ne!(a.movements, c.movements);
    assert_eq!(
        a.locations.iter().map(|l| &l.id).collect::<Vec<_>>(),
        c.locations.iter().map(|l| &l.id).collect::<Vec<_>>(),
        "the geography is fixed; the seed drives everything else"
    );
}

#[test]
fn supply_tree_lanes_and_calendars() {
    let demo = build_demo(&small(3), now()).unwrap();
    let by_id: HashMap<&str, _> = demo.locations.iter().map(|l| (l.id.as_str(), l)).collect();
    for location in &demo.locations {
        let source = location
            .replenishment_source
            .as_deref()
            .map(|s| by_id[s].kind);
        let expected = match location.kind {
            LocationKind::FactoryDepot => None,
            LocationKind::RegionalWarehouse => Some(LocationKind::FactoryDepot),
            LocationKind::Store => Some(LocationKind::RegionalWarehouse),
        };
        assert_eq!(source, expected, "{}", location.id);
        if let Some(source) = location.replenishment_source.as_deref() {
            assert!(
                demo.lanes.iter().any(|l| l.from == source
                    && l.to == location.id
                    && l.kind == LaneKind::Replenishment),
                "{} has a replenishment lane",
                location.id
            );
        }
        let years: HashSet<i16> = location
            .calendar
            .holidays
            .iter()
            .map(|d| d.year())
            .collect();
        assert_eq!(years, HashSet::from([2026, 2027]), "{}", location.id);
        assert!(
            location
                .calendar
                .holidays
                .iter()
                .any(|d| d.month() == 12 && d.day() == 25)
        );
    }
    let stores = demo
        .locations
        .iter()
        .filter(|l| l.kind == LocationKind::Store)
        .count();
    let emergency = demo
        .lanes
        .iter()
        .filter(|l| l.kind == LaneKind::Emergency)
        .count();
    assert_eq!(emergency, stores, "one emergency lane per store");
    for lane in &demo.lanes {
        let hours = lane.transit.median_hours();
        assert!(hours > 0.0 && hours < 30.0 * 24.0, "{lane:?}");
    }
}

/// Replays the movements against per-location balances: nothing is overdrawn and
/// every transfer arrives after `now` along a lane.
fn replay(demo: &DemoNetwork) {
    let mut available: HashMap<(&str, &str), i64> = HashMap::new();
    let mut keys = HashSet::new();
    for m in &demo.movements {
        assert!(keys.insert(m.idempotency_key.as_str()), "unique keys");
        assert!(
            m.idempotency_key
                .starts_with(&format!("demo-{}-", demo.seed))
        );
        assert!(m.quantity > 0);
        let balance = available.entry((&m.part_id, &m.location_id)).or_insert(0);
        match m.kind {
            MovementKind::Receipt => *balance += m.quantity,
            MovementKind::TransferShip => {
                *balance -= m.quantity;
                assert!(*balance >= 0, "{m:?} overdraws");
                assert!(m.expected_arrival.expect("transfers have an arrival") > now());
                let to = m
                    .to_location_id
                    .as_deref()
                    .expect("transfers have a destination");
                assert!(
                    demo.lanes
                        .iter()
                        .any(|l| l.from == m.location_id && l.to == to)
                );
            }
            other => panic!("unexpected movement kind {other:?}"),
        }
    }
}

#[test]
fn seeded_stock_never_overdraws_and_transfers_are_in_transit() {
    let demo = build_demo(&small(5), now()).unwrap();
    replay(&demo);
    let transfers = demo
        .movements
        .iter()
        .filter(|m| m.kind == MovementKind::TransferShip)
        .count();
    assert!(transfers > 0);
    let on_hand: u64 = demo.stock_on_hand().iter().map(|s| s.on_hand).sum();
    assert!(on_hand > 0);
}

#[test]
fn demand_history_is_intermittent() {
    let demo = build_demo(&small(9), now()).unwrap();
    assert!(!demo.demand.is_empty());
    let slow = demo
        .demand
        .iter()
        .filter(|s| (s.quantities.iter().sum::<u64>() as f64 / s.quantities.len() as f64) < 1.0)
        .count();
    assert!(
        slow * 2 > demo.demand.len(),
        "most series average under one unit a month"
    );
    for series in &demo.demand {
        assert_eq!(series.quantities.len(), 24);
        assert_eq!(series.first_period_start, jiff::civil::date(2024, 11, 1));
    }
}

#[test]
fn example_calls_use_real_ids() {
    let demo = build_demo(&small(1), now()).unwrap();
    let text = example_calls(&demo, "127.0.0.1:50051");
    let (part, store) = demo.showcase().unwrap();
    assert!(demo.parts.iter().any(|p| p.id == part));
    assert!(
        demo.locations
            .iter()
            .any(|l| l.id == store && l.kind == LocationKind::Store)
    );
    assert!(
        text.contains(&format!("spares where {part} --near {store}")),
        "{text}"
    );
    assert!(text.contains("grpcurl -plaintext 127.0.0.1:50051 list"));
    assert!(text.contains(&format!("\"near_location_id\":\"{store}\"")));
}

#[test]
fn config_out_of_range_is_refused() {
    let too_many = DemoConfig {
        stores: 5_000,
        ..DemoConfig::default()
    };
    assert!(matches!(
        build_demo(&too_many, now()),
        Err(DemoError::Config {
            field: "stores",
            ..
        })
    ));
    let no_depot = DemoConfig {
        depots: 0,
        ..DemoConfig::default()
    };
    assert!(matches!(
        build_demo(&no_depot, now()),
        Err(DemoError::Config {
            field: "depots",
            ..
        })
    ));
}

#[test]
fn one_depot_ships_across_the_ocean() {
    let config = DemoConfig {
        depots: 1,
        regionals: 4,
        stores: 12,
        parts: 300,
        seed: 2,
    };
    let demo = build_demo(&config, now()).unwrap();
    assert!(demo.lanes.iter().any(|l| l.kind == LaneKind::Replenishment
        && l.mode == spares::domain::network::TransportMode::Sea));
    replay(&demo);
}
