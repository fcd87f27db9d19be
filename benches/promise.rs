//! Speed of WhereIs, Promise and PromiseOrder on a synthetic network of 315
//! locations (3 depots, 12 regional warehouses, 300 stores) with stock at 20
//! locations. Run as a test (no `--bench` argument) it shrinks to a small
//! network so CI only checks that it runs. Ratios are quoted against the
//! baseline of one `dispatch` (cut-off) computation measured in the same run.

mod support;
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use spares::domain::availability::{Availability, MemoryStock};
use spares::domain::calendar::Departures;
use spares::domain::ledger::{Balance, InboundShipment, Priority};
use spares::domain::network::{
    Lane, LaneKind, LocationKind, Network, Part, TransitTime, TransportMode,
};
use spares::domain::promise::{FulfilmentMode, OrderLine, OrderQuery, PromiseQuery};
use spares::domain::transit::TransitQuantile;
use spares::domain::where_is::WhereIsQuery;
use std::hint::black_box;
use support::{lane, location};

/// Network shape: depots, regionals per depot, stores per regional.
struct Shape {
    depots: usize,
    regionals_per_depot: usize,
    stores_per_regional: usize,
}

const ZONES: [&str; 3] = ["Europe/Amsterdam", "America/Chicago", "Asia/Singapore"];

fn add_lane(network: &mut Network, lane: Lane) {
    network.lanes.insert(lane.key(), lane);
}

/// Builds the network; returns it with the store ids.
fn synthetic_network(shape: &Shape) -> (Network, Vec<String>) {
    let mut network = Network::default();
    let mut stores = Vec::new();
    for d in 0..shape.depots {
        let zone = ZONES[d % ZONES.len()];
        let depot = format!("DEP-{d}");
        let base_lat = 40.0 + d as f64;
        let base_lon = -90.0 + 60.0 * d as f64;
        let loc = location(
            depot.clone(),
            LocationKind::FactoryDepot,
            zone,
            base_lat,
            base_lon,
        );
        network.locations.insert(depot.clone(), loc);
        for r in 0..shape.regionals_per_depot {
            let regional = format!("REG-{d}-{r}");
            let mut loc = location(
                regional.clone(),
                LocationKind::RegionalWarehouse,
                zone,
                base_lat + r as f64,
                base_lon + r as f64,
            );
            loc.replenishment_source = Some(depot.clone());
            network.locations.insert(regional.clone(), loc);
            let lognormal = TransitTime::Lognormal {
                transit_hours_p50: 12.0 + r as f64,
                transit_hours_p90: 20.0 + r as f64,
            };
            add_lane(
                &mut network,
                lane(
                    &depot,
                    &regional,
                    LaneKind::Replenishment,
                    TransportMode::Road,
                    lognormal,
                ),
            );
            let mut previous: Option<String> = None;
            for s in 0..shape.stores_per_regional {
                let store = format!("STR-{d}-{r}-{s}");
                let mut loc = location(
                    store.clone(),
                    LocationKind::Store,
                    zone,
                    base_lat + r as f64 + 0.05 * s as f64,
                    base_lon + r as f64 - 0.05 * s as f64,
                );
                loc.replenishment_source = Some(regional.clone());
                network.locations.insert(store.clone(), loc);
                let road = TransitTime::Fixed {
                    transit_hours: 2.0 + (s % 5) as f64,
                };
                add_lane(
                    &mut network,
                    lane(
                        &regional,
                        &store,
                        LaneKind::Replenishment,
                        TransportMode::Road,
                        road,
                    ),
                );
                let courier = TransitTime::Empirical {
                    transit_hours_samples: vec![10.0, 14.0, 18.0, 30.0],
                };
                add_lane(
                    &mut network,
                    lane(
                        &depot,
                        &store,
                        LaneKind::Emergency,
                        TransportMode::Courier,
                        courier,
                    ),
                );
                if let Some(previous) = previous {
                    let hop = TransitTime::Fixed { transit_hours: 1.5 };
                    for (a, b) in [(&previous, &store), (&store, &previous)] {
                        add_lane(
                            &mut network,
                            lane(a, b, LaneKind::Lateral, TransportMode::Road, hop.clone()),
                        );
                    }
                }
                previous = Some(store.clone());
                stores.push(store);
            }
        }
    }
    let part = Part {
        id: "P".into(),
        description: "bearing".into(),
        unit_cost_usd: 100.0,
        criticality: spares::domain::network::Criticality::Critical,
        repairable: false,
        successor: None,
        interchangeability: spares::domain::network::Interchangeability::ForwardOnly,
        supplier_lead_time: None,
        downtime_cost_usd_per_hour: None,
    };
    network.parts.insert(part.id.clone(), part);
    (network, stores)
}

/// Stock at every depot and regional and at a few stores (20 locations at full size).
fn synthetic_stock(network: &Network, stores: &[String]) -> MemoryStock {
    let mut stock = MemoryStock::default();
    let upper = network
        .locations
        .values()
        .filter(|l| l.kind != LocationKind::Store);
    let sample_stores = stores.iter().step_by((stores.len() / 5).max(1)).take(5);
    for (i, id) in upper.map(|l| &l.id).chain(sample_stores).enumerate() {
        let mut balance = Balance {
            part_id: "P".into(),
            location_id: id.clone(),
            available: 1 + (i as u64 % 3),
            reserved: i as u64 % 2,
            inbound: Vec::new(),
        };
        if i % 4 == 0 {
            balance.inbound.push(InboundShipment {
                shipment_id: format!("SH-{i}"),
                from_location_id: id.clone(),
                quantity: 2,
                expected_arrival: Some(
                    Timestamp::from_second(1_752_200_000 + 3600 * i as i64)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                ),
            });
        }
        stock.put(balance);
    }
    stock
}

fn benches(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let shape = if full {
        Shape {
            depots: 3,
            regionals_per_depot: 4,
            stores_per_regional: 25,
        }
    } else {
        Shape {
            depots: 1,
            regionals_per_depot: 2,
            stores_per_regional: 3,
        }
    };
    let (network, stores) = synthetic_network(&shape);
    let stock = synthetic_stock(&network, &stores);
    let engine = match Availability::new(&network) {
        Ok(engine) => engine,
        Err(e) => panic!("synthetic network is invalid: {e}"),
    };
    let destination = stores[stores.len() / 2].clone();
    // Wednesday 9 July 2025 12:00Z.
    let order_time = Timestamp::from_second(1_752_062_400).unwrap_or(Timestamp::UNIX_EPOCH);
    println!(
        "network: {} locations, {} lanes, stock at {} locations",
        network.locations.len(),
        network.lanes.len(),
        stock.balances.get("P").map_or(0, |b| b.len())
    );

    let router = &engine.router;
    // The destination's own depot, so the route takes two legs (or the emergency lane).
    let per_depot = shape.regionals_per_depot * shape.stores_per_regional;
    let depot_id = format!("DEP-{}", (stores.len() / 2) / per_depot.max(1));
    let (Some(depot), Some(to)) = (router.node(&depot_id), router.node(&destination)) else {
        panic!("synthetic ids missing");
    };
    let calendar = &router.site(depot).calendar;
    c.bench_function("baseline: one dispatch (cut-off) computation", |b| {
        b.iter(|| calendar.dispatch(black_box(order_time), &Departures::AtCutoff))
    });
    let quantile = TransitQuantile::new(0.9).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "route {depot_id} -> {destination}: {:?}",
        router
            .route(depot, order_time, to, quantile)
            .map(|r| r.legs.len())
    );
    c.bench_function("route depot -> store", |b| {
        b.iter(|| router.route(black_box(depot), order_time, to, quantile))
    });
    let query = PromiseQuery {
        part_id: "P".into(),
        quantity: 3,
        destination_location_id: destination.clone(),
        need_by: Some(Timestamp::from_second(1_752_062_400 + 3 * 86_400).unwrap_or(order_time)),
        mode: FulfilmentMode::Delivery,
        order_time,
        transit_quantile: 0.9,
        priority: Priority::Routine,
        exact_part_only: false,
        max_options: 5,
    };
    match engine.promise(&query, &stock) {
        Ok(outcome) => println!(
            "promise: {} options, best at {:?}, reason {:?}",
            outcome.options.len(),
            outcome.options.first().map(|o| o.promised_at),
            outcome.reason
        ),
        Err(e) => panic!("promise failed: {e}"),
    }
    c.bench_function("promise (3 units, need_by, probabilities)", |b| {
        b.iter(|| engine.promise(black_box(&query), &stock))
    });
    let order = OrderQuery {
        lines: (0..5)
            .map(|i| OrderLine {
                line_id: format!("l{i}"),
                part_id: "P".into(),
                quantity: 1,
            })
            .collect(),
        destination_location_id: destination.clone(),
        need_by: query.need_by,
        mode: FulfilmentMode::Delivery,
        order_time,
        transit_quantile: 0.9,
        priority: Priority::Routine,
    };
    c.bench_function("promise_order (5 lines)", |b| {
        b.iter(|| engine.promise_order(black_box(&order), &stock))
    });
    let where_is = WhereIsQuery {
        part_id: "P".into(),
        near_location_id: Some(destination.clone()),
        exact_part_only: false,
        only_with_stock: true,
        max_locations: 0,
    };
    c.bench_function("where_is (only with stock, nearest first)", |b| {
        b.iter(|| engine.where_is(black_box(&where_is), &stock))
    });
    c.bench_function("build Availability from the network", |b| {
        b.iter(|| Availability::new(black_box(&network)))
    });
}

criterion_group! {
    name = promise_benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = benches
}
criterion_main!(promise_benches);
