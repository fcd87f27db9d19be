//! A seeded generator of test networks for planning, with its parameters fixed here (and
//! repeated in the README): the network the consequence planner is compared on, so that a
//! comparison is not made on the demo alone.
//!
//! - 1 depot, 4 regional warehouses, 40 stores (10 per regional), 200 parts
//!   ([`TestNetworkShape::standard`]; tests use smaller shapes with the same distributions).
//! - Supplier lead time of each part into the depot: uniform on 30-90 days, fixed.
//! - Transits, fixed per lane: depot -> regional uniform on 3-7 days, regional -> store
//!   uniform on 1-2 days.
//! - Demand: at each store, a Poisson rate per part drawn log-uniform on 0.001-0.1 per day,
//!   times the store's size factor (uniform on 0.5-2, one per store).
//! - Criticality: 15% critical, 35% essential, 50% routine, with downtime costs of
//!   500 / 100 / 10 USD per hour (network class costs).
//! - Unit cost: log-uniform on 20-2,000 USD.
//! - Emergency shipments to every store from its regional (1 day, 200 USD) and from the
//!   depot (2 days, 500 USD).
//! - No stock is in force: every policy is absent (base stock 0).
//!
//! The draws come from one `StdRng` seeded with the network seed, in a fixed order, so a
//! seed names one network forever (do not reorder the draws).

use crate::domain::inputs::{CriticalityCost, DemandRate, LeadTime};
use crate::domain::network::{
    BusinessCalendar, Criticality, Interchangeability, Lane, LaneKind, Location, LocationKind,
    Network, Part, TransitTime, TransportMode,
};
use jiff::civil::Time;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Supplier lead time range, days.
pub const SUPPLIER_LEAD_TIME_DAYS: (f64, f64) = (30.0, 90.0);
/// Depot -> regional transit range, days.
pub const DEPOT_TO_REGIONAL_DAYS: (f64, f64) = (3.0, 7.0);
/// Regional -> store transit range, days.
pub const REGIONAL_TO_STORE_DAYS: (f64, f64) = (1.0, 2.0);
/// Per-store demand rate range (log-uniform), failures per day.
pub const DEMAND_PER_DAY: (f64, f64) = (0.001, 0.1);
/// Store size factor range (uniform).
pub const STORE_SIZE_FACTOR: (f64, f64) = (0.5, 2.0);
/// Shares of critical and essential parts; the rest are routine.
pub const CRITICAL_SHARE: f64 = 0.15;
/// Share of essential parts.
pub const ESSENTIAL_SHARE: f64 = 0.35;
/// Downtime cost per hour of a critical, essential and routine part.
pub const DOWNTIME_COST_USD_PER_HOUR: [f64; 3] = [500.0, 100.0, 10.0];
/// Unit cost range (log-uniform), USD.
pub const UNIT_COST_USD: (f64, f64) = (20.0, 2_000.0);
/// Emergency shipment from the store's regional: days and USD per unit.
pub const EMERGENCY_FROM_REGIONAL: (f64, f64) = (1.0, 200.0);
/// Emergency shipment from the depot: days and USD per unit.
pub const EMERGENCY_FROM_DEPOT: (f64, f64) = (2.0, 500.0);

/// How many regionals, stores and parts a test network has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestNetworkShape {
    /// Regional warehouses under the one depot.
    pub regionals: usize,
    /// Stores under each regional.
    pub stores_per_regional: usize,
    /// Parts.
    pub parts: usize,
}

impl TestNetworkShape {
    /// The network: 4 regionals, 10 stores each, 200 parts.
    pub fn standard() -> Self {
        Self {
            regionals: 4,
            stores_per_regional: 10,
            parts: 200,
        }
    }
}

/// The depot's id.
pub const DEPOT_ID: &str = "DEPOT";

fn location(id: String, kind: LocationKind, source: Option<String>) -> Location {
    Location {
        name: id.clone(),
        id,
        kind,
        latitude_deg: 0.0,
        longitude_deg: 0.0,
        time_zone: "UTC".into(),
        calendar: BusinessCalendar::weekdays_8_to_17(),
        order_cutoff_local: Time::constant(16, 0, 0, 0),
        handling_minutes: 0,
        replenishment_source: source,
        country_code: "US".into(),
    }
}

fn lane(from: &str, to: &str, kind: LaneKind, days: f64, cost: f64) -> Lane {
    Lane {
        from: from.into(),
        to: to.into(),
        mode: TransportMode::Road,
        kind,
        transit: TransitTime::Fixed {
            transit_hours: days * 24.0,
        },
        schedule: None,
        cost_per_unit_usd: cost,
    }
}

fn log_uniform(rng: &mut StdRng, (low, high): (f64, f64)) -> f64 {
    (low.ln() + (high.ln() - low.ln()) * rng.random::<f64>()).exp()
}

fn uniform(rng: &mut StdRng, (low, high): (f64, f64)) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// The test network of `shape` drawn from `seed`.
pub fn generate(seed: u64, shape: TestNetworkShape) -> Network {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut network = Network::default();
    let add = |network: &mut Network, l: Location| {
        network.locations.insert(l.id.clone(), l);
    };
    add(
        &mut network,
        location(DEPOT_ID.into(), LocationKind::FactoryDepot, None),
    );
    let mut stores: Vec<(String, f64)> = Vec::new();
    for r in 0..shape.regionals {
        let regional = format!("R{r:02}");
        add(
            &mut network,
            location(
                regional.clone(),
                LocationKind::RegionalWarehouse,
                Some(DEPOT_ID.into()),
            ),
        );
        let days = uniform(&mut rng, DEPOT_TO_REGIONAL_DAYS);
        let l = lane(DEPOT_ID, &regional, LaneKind::Replenishment, days, 0.0);
        network.lanes.insert(l.key(), l);
        for s in 0..shape.stores_per_regional {
            let store = format!("S{r:02}{s:02}");
            add(
                &mut network,
                location(store.clone(), LocationKind::Store, Some(regional.clone())),
            );
            let days = uniform(&mut rng, REGIONAL_TO_STORE_DAYS);
            let size = uniform(&mut rng, STORE_SIZE_FACTOR);
            let (e_days, e_cost) = EMERGENCY_FROM_REGIONAL;
            let (d_days, d_cost) = EMERGENCY_FROM_DEPOT;
            for l in [
                lane(&regional, &store, LaneKind::Replenishment, days, 0.0),
                lane(&regional, &store, LaneKind::Emergency, e_days, e_cost),
                lane(DEPOT_ID, &store, LaneKind::Emergency, d_days, d_cost),
            ] {
                network.lanes.insert(l.key(), l);
            }
            stores.push((store, size));
        }
    }
    for (criticality, cost) in [
        Criticality::Critical,
        Criticality::Essential,
        Criticality::Routine,
    ]
    .into_iter()
    .zip(DOWNTIME_COST_USD_PER_HOUR)
    {
        network.criticality_costs.insert(
            criticality,
            CriticalityCost {
                criticality,
                downtime_cost_usd_per_hour: cost,
            },
        );
    }
    for p in 0..shape.parts {
        let id = format!("P{p:04}");
        let class = rng.random::<f64>();
        let criticality = if class < CRITICAL_SHARE {
            Criticality::Critical
        } else if class < CRITICAL_SHARE + ESSENTIAL_SHARE {
            Criticality::Essential
        } else {
            Criticality::Routine
        };
        let part = Part {
            id: id.clone(),
            description: format!("test part {p}"),
            unit_cost_usd: log_uniform(&mut rng, UNIT_COST_USD),
            criticality,
            repairable: false,
            successor: None,
            interchangeability: Interchangeability::ForwardOnly,
            supplier_lead_time: Some(LeadTime::Fixed {
                lead_time_days: uniform(&mut rng, SUPPLIER_LEAD_TIME_DAYS),
            }),
            downtime_cost_usd_per_hour: None,
        };
        network.parts.insert(id.clone(), part);
        for (store, size) in &stores {
            let rate = DemandRate {
                part_id: id.clone(),
                location_id: store.clone(),
                failures_per_day: log_uniform(&mut rng, DEMAND_PER_DAY) * size,
                variance_to_mean_ratio: 1.0,
            };
            network.demand_rates.insert(rate.key(), rate);
        }
    }
    network
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_network_has_the_documented_shape_and_ranges() {
        let network = generate(1, TestNetworkShape::standard());
        assert_eq!(network.locations.len(), 1 + 4 + 40);
        assert_eq!(network.parts.len(), 200);
        assert_eq!(network.demand_rates.len(), 200 * 40);
        let critical = network
            .parts
            .values()
            .filter(|p| p.criticality == Criticality::Critical)
            .count();
        // 15% of 200 = 30, binomial sd about 5.
        assert!((10..=50).contains(&critical), "{critical} critical parts");
        for part in network.parts.values() {
            assert!((20.0..=2_000.0).contains(&part.unit_cost_usd));
            let Some(LeadTime::Fixed { lead_time_days }) = part.supplier_lead_time else {
                panic!("fixed supplier lead time expected");
            };
            assert!((30.0..=90.0).contains(&lead_time_days));
        }
        for rate in network.demand_rates.values() {
            assert!((0.0005..=0.2).contains(&rate.failures_per_day));
        }
        // Two emergency lanes into every store.
        let emergency = network
            .lanes
            .values()
            .filter(|l| l.kind == LaneKind::Emergency)
            .count();
        assert_eq!(emergency, 80);
        // A seed names one network.
        assert_eq!(network, generate(1, TestNetworkShape::standard()));
        assert_ne!(network, generate(2, TestNetworkShape::standard()));
    }
}
