//! Promise at scale, in process: 2,000 locations x 100,000 parts where every
//! stock location can reach every store within 3 legs, and p50/p99/p99.9 of
//! one `Availability::promise` over 100,000 random queries, printed with the
//! load average.
//!
//! The network (seeded, built here):
//! - 4 depots, 40 regional warehouses (10 per depot), 1,956 stores (48 or 49
//!   per regional) in 4 time zones; weekdays 8-17, order cut-off 16:00.
//! - Lanes (about 4.7 per location): every depot -> every regional (its own
//!   depot's lane is replenishment, the others lateral); every regional <->
//!   every other regional (lateral); regional -> each of its stores
//!   (replenishment) and back (lateral); the store's depot -> the store
//!   (emergency courier); each store -> the next store of its regional
//!   (lateral, a ring). So a depot reaches a store in 2 legs, a regional in
//!   2, a store in 3 (store -> its regional -> the store's regional -> store).
//! - Stock per part: at one depot, at 0-4 random regionals and 0-3 random
//!   stores, 1-6 units each, 0-1 reserved; 10% of balances also have an
//!   inbound shipment arriving within the week.
//! - Queries: a random part, a random store as destination, quantity 1-3,
//!   order time uniform over a week, need-by 2 days after the order, routine,
//!   delivery, quantile 0.9, 5 options.
//!
//! Stock is read through a `StockSnapshot` (balances by part in memory, the
//! engine's protection index), the view the service's batch calls use; the
//! single-call service path reads the ledger's in-memory index the same way.
//!
//! `cargo bench --bench promise_scale` runs the full size; under
//! `cargo test --benches` (no `--bench` argument) it shrinks to 200 locations,
//! 2,000 parts and 2,000 queries so CI only checks that it runs.

#[path = "support/cpu.rs"]
mod cpu;
mod support;
use cpu::cpu_seconds;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::domain::availability::{Availability, StockSnapshot};
use spares::domain::ledger::{Balance, InboundShipment, Priority};
use spares::domain::network::{
    Criticality, Interchangeability, LaneKind, LocationKind, Network, Part, TransitTime,
    TransportMode,
};
use spares::domain::promise::{FulfilmentMode, PromiseQuery};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{lane, location};

/// Seed of every draw.
const SEED: u64 = 2_000;
const ZONES: [&str; 4] = [
    "America/Chicago",
    "America/New_York",
    "Europe/Amsterdam",
    "Asia/Singapore",
];
/// Wednesday 9 July 2025 00:00Z: the start of the week of order times.
const WEEK_START_S: i64 = 1_751_932_800;
const WEEK_S: i64 = 7 * 86_400;

/// The size of one run.
struct Shape {
    depots: usize,
    regionals_per_depot: usize,
    stores: usize,
    parts: usize,
    queries: usize,
}

fn add_lane(network: &mut Network, from: &str, to: &str, kind: LaneKind, transit: TransitTime) {
    let mode = match kind {
        LaneKind::Emergency => TransportMode::Courier,
        _ => TransportMode::Road,
    };
    let lane = lane(from, to, kind, mode, transit);
    network.lanes.insert(lane.key(), lane);
}

/// The network and the ids the stock and queries draw from.
struct Built {
    network: Network,
    depots: Vec<String>,
    regionals: Vec<String>,
    stores: Vec<String>,
    parts: Vec<String>,
}

fn build_network(shape: &Shape, rng: &mut StdRng) -> Built {
    let mut network = Network::default();
    let mut depots = Vec::new();
    let mut regionals = Vec::new();
    for d in 0..shape.depots {
        let id = format!("DEP-{d}");
        let zone = ZONES[d % ZONES.len()];
        let loc = location(id.clone(), LocationKind::FactoryDepot, zone, 40.0, d as f64);
        network.locations.insert(id.clone(), loc);
        depots.push(id);
    }
    let regional_count = shape.depots * shape.regionals_per_depot;
    for r in 0..regional_count {
        let depot = &depots[r / shape.regionals_per_depot];
        let id = format!("REG-{r:02}");
        let zone = ZONES[(r / shape.regionals_per_depot) % ZONES.len()];
        let mut loc = location(
            id.clone(),
            LocationKind::RegionalWarehouse,
            zone,
            41.0,
            r as f64,
        );
        loc.replenishment_source = Some(depot.clone());
        network.locations.insert(id.clone(), loc);
        regionals.push(id);
    }
    for (d, depot) in depots.iter().enumerate() {
        for (r, regional) in regionals.iter().enumerate() {
            let own = r / shape.regionals_per_depot == d;
            let kind = if own {
                LaneKind::Replenishment
            } else {
                LaneKind::Lateral
            };
            let p50 = rng.random_range(10.0..30.0);
            let transit = TransitTime::Lognormal {
                transit_hours_p50: p50,
                transit_hours_p90: p50 * 1.5,
            };
            add_lane(&mut network, depot, regional, kind, transit);
        }
    }
    for a in &regionals {
        for b in &regionals {
            if a != b {
                let p50 = rng.random_range(8.0..24.0);
                let transit = TransitTime::Lognormal {
                    transit_hours_p50: p50,
                    transit_hours_p90: p50 * 1.4,
                };
                add_lane(&mut network, a, b, LaneKind::Lateral, transit);
            }
        }
    }
    let mut stores = Vec::new();
    let per_regional = shape.stores.div_ceil(regional_count);
    for s in 0..shape.stores {
        let r = (s / per_regional).min(regional_count - 1);
        let regional = regionals[r].clone();
        let depot = depots[r / shape.regionals_per_depot].clone();
        let id = format!("STR-{s:04}");
        let zone = ZONES[(r / shape.regionals_per_depot) % ZONES.len()];
        let mut loc = location(id.clone(), LocationKind::Store, zone, 42.0, s as f64 * 0.01);
        loc.replenishment_source = Some(regional.clone());
        network.locations.insert(id.clone(), loc);
        let road = TransitTime::Fixed {
            transit_hours: rng.random_range(2.0..8.0),
        };
        add_lane(
            &mut network,
            &regional,
            &id,
            LaneKind::Replenishment,
            road.clone(),
        );
        add_lane(&mut network, &id, &regional, LaneKind::Lateral, road);
        let courier = TransitTime::Empirical {
            transit_hours_samples: vec![10.0, 14.0, 18.0, 30.0],
        };
        add_lane(&mut network, &depot, &id, LaneKind::Emergency, courier);
        stores.push((r, id));
    }
    // Each store -> the next store of its regional (a ring per regional).
    for window in 0..stores.len() {
        let (r, from) = &stores[window];
        let next = stores
            .get(window + 1)
            .filter(|(r2, _)| r2 == r)
            .or_else(|| stores.iter().find(|(r2, _)| r2 == r));
        if let Some((_, to)) = next
            && to != from
        {
            let hop = TransitTime::Fixed { transit_hours: 1.5 };
            add_lane(&mut network, from, to, LaneKind::Lateral, hop);
        }
    }
    let mut parts = Vec::with_capacity(shape.parts);
    for p in 0..shape.parts {
        let part = Part {
            id: format!("P-{p:06}"),
            description: "part".into(),
            unit_cost_usd: 100.0,
            criticality: Criticality::Routine,
            repairable: false,
            successor: None,
            interchangeability: Interchangeability::ForwardOnly,
            supplier_lead_time: None,
            downtime_cost_usd_per_hour: None,
        };
        parts.push(part.id.clone());
        network.parts.insert(part.id.clone(), part);
    }
    Built {
        network,
        depots,
        regionals,
        stores: stores.into_iter().map(|(_, id)| id).collect(),
        parts,
    }
}

/// Stock per part at one depot, 0-4 regionals and 0-3 stores; 10% of
/// balances with an inbound shipment. Balances of a part are in location
/// order, as the ledger gives them.
fn build_stock(built: &Built, rng: &mut StdRng) -> (HashMap<String, Vec<Balance>>, usize) {
    let mut balances = HashMap::with_capacity(built.parts.len());
    let mut count = 0;
    for (p, part) in built.parts.iter().enumerate() {
        let mut at: Vec<&String> = vec![&built.depots[rng.random_range(0..built.depots.len())]];
        for _ in 0..rng.random_range(0..=4) {
            at.push(&built.regionals[rng.random_range(0..built.regionals.len())]);
        }
        for _ in 0..rng.random_range(0..=3) {
            at.push(&built.stores[rng.random_range(0..built.stores.len())]);
        }
        at.sort();
        at.dedup();
        let mut rows = Vec::with_capacity(at.len());
        for (i, location) in at.into_iter().enumerate() {
            let mut balance = Balance {
                part_id: part.clone(),
                location_id: location.clone(),
                available: rng.random_range(1..=6),
                reserved: rng.random_range(0..=1),
                inbound: Vec::new(),
            };
            if rng.random_bool(0.1) {
                let arrival = WEEK_START_S + rng.random_range(0..WEEK_S);
                balance.inbound.push(InboundShipment {
                    shipment_id: format!("SH-{p}-{i}"),
                    from_location_id: built.depots[0].clone(),
                    quantity: rng.random_range(1..=4),
                    expected_arrival: Timestamp::from_second(arrival).ok(),
                });
            }
            rows.push(balance);
        }
        count += rows.len();
        balances.insert(part.clone(), rows);
    }
    (balances, count)
}

fn queries(built: &Built, count: usize, rng: &mut StdRng) -> Vec<PromiseQuery> {
    (0..count)
        .map(|_| {
            let order_s = WEEK_START_S + rng.random_range(0..WEEK_S);
            let order_time = Timestamp::from_second(order_s).unwrap_or(Timestamp::UNIX_EPOCH);
            PromiseQuery {
                part_id: built.parts[rng.random_range(0..built.parts.len())].clone(),
                quantity: rng.random_range(1..=3),
                destination_location_id: built.stores[rng.random_range(0..built.stores.len())]
                    .clone(),
                need_by: Timestamp::from_second(order_s + 2 * 86_400).ok(),
                mode: FulfilmentMode::Delivery,
                order_time,
                transit_quantile: 0.9,
                priority: Priority::Routine,
                exact_part_only: false,
                max_options: 5,
            }
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank].as_nanos() as f64 / 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let shape = if full {
        Shape {
            depots: 4,
            regionals_per_depot: 10,
            stores: 1_956,
            parts: 100_000,
            queries: 100_000,
        }
    } else {
        Shape {
            depots: 2,
            regionals_per_depot: 4,
            stores: 190,
            parts: 2_000,
            queries: 2_000,
        }
    };
    let mut rng = StdRng::seed_from_u64(SEED);
    let started = Instant::now();
    let built = build_network(&shape, &mut rng);
    let (balances, balance_count) = build_stock(&built, &mut rng);
    let engine = match Availability::new(&built.network) {
        Ok(engine) => engine,
        Err(e) => panic!("the network is invalid: {e}"),
    };
    // What the service does on a background thread at a network change:
    // every location's calendar table, around the first order time.
    let prepared_started = Instant::now();
    let prepared = engine
        .router
        .prepare_calendars(Timestamp::from_second(WEEK_START_S).unwrap_or(Timestamp::UNIX_EPOCH));
    let prepared_in = prepared_started.elapsed();
    let stock = StockSnapshot::new(&engine, 0, balances);
    let queries = queries(&built, shape.queries, &mut rng);
    let locations = built.network.locations.len();
    let lanes = built.network.lanes.len();
    println!(
        "network: {locations} locations, {lanes} lanes ({:.2} per location), {} parts, \
         {balance_count} balances; built in {:.1?} ({prepared} calendar tables in \
         {prepared_in:.1?}); mode {}; seed {SEED}",
        lanes as f64 / locations as f64,
        built.parts.len(),
        started.elapsed(),
        if full { "full" } else { "test (shrunk)" },
    );
    // A short warm-up so first-touch page faults are not counted.
    for query in queries.iter().take(1_000) {
        let _ = engine.promise(query, &stock);
    }
    let load_before = load_average();
    let mut latencies = Vec::with_capacity(queries.len());
    let (mut with_options, mut errors, mut meets) = (0usize, 0usize, 0usize);
    let cpu_before = cpu_seconds();
    let run_started = Instant::now();
    for query in &queries {
        let sent = Instant::now();
        let outcome = engine.promise(query, &stock);
        latencies.push(sent.elapsed());
        match outcome {
            Ok(outcome) => {
                with_options += usize::from(!outcome.options.is_empty());
                meets += usize::from(outcome.options.first().is_some_and(|o| o.meets_need_by));
            }
            Err(_) => errors += 1,
        }
    }
    let total = run_started.elapsed();
    let cpu_per_query_us = match (cpu_before, cpu_seconds()) {
        (Some(before), Some(after)) => {
            format!("{:.1} us", (after - before) * 1e6 / queries.len() as f64)
        }
        _ => "unknown".into(),
    };
    latencies.sort_unstable();
    println!(
        "{} promises in {:.2?} ({:.0}/s on one thread; CPU per query {cpu_per_query_us} on \
         average, which a busy machine does not inflate as it does wall time): \
         {with_options} with options, {meets} meeting need-by, {errors} errors",
        queries.len(),
        total,
        queries.len() as f64 / total.as_secs_f64()
    );
    println!("| queries | p50 us | p99 us | p99.9 us | max us | load average before | after |");
    println!("|---:|---:|---:|---:|---:|---|---|");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {load_before} | {} |",
        latencies.len(),
        quantile_us(&latencies, 0.5),
        quantile_us(&latencies, 0.99),
        quantile_us(&latencies, 0.999),
        quantile_us(&latencies, 1.0),
        load_average()
    );
    assert_eq!(errors, 0, "every query names a known part and store");
}
