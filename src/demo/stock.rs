//! Demand rates from the installed base, demand history, base-stock policies and
//! the seeded stock (receipts plus a few transfers in transit).

use super::DemoError;
use super::geography::Sites;
use crate::domain::ledger::{MovementCommand, MovementKind};
use crate::domain::network::{
    Criticality, DemandSeries, Fleet, Lane, LaneKind, LocationKind, MachineModel, Part, Period,
    Policy, PolicyKind,
};
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal, Poisson};
use std::collections::{BTreeMap, HashMap};

/// Months of demand history per series.
pub const HISTORY_MONTHS: usize = 24;
/// Series of history kept: enough for the forecast feature, small enough to load fast.
pub const DEMAND_SERIES_LIMIT: usize = 3_000;
/// In-transit transfers seeded after the receipts.
pub const TRANSFERS_IN_TRANSIT: usize = 40;
/// Stores stock a part only when it sells at least this many a month...
const STORE_MIN_RATE: f64 = 1.5;
/// ... or this many if it is critical: stores carry a few fast or critical parts.
const STORE_MIN_RATE_CRITICAL: f64 = 0.4;
/// Average days per month, to turn monthly rates into daily ones.
const DAYS_PER_MONTH: f64 = 30.4;
/// Supplier lead time to a depot, days; repairables come back from repair sooner.
const DEPOT_LEAD_DAYS: f64 = 30.0;
const DEPOT_REPAIR_DAYS: f64 = 21.0;

/// Expected demand per month, by location and part.
pub struct Rates {
    /// Per location index (stores only are non-empty): part index -> units per month.
    pub store: Vec<BTreeMap<usize, f64>>,
    /// Per location index: dense units per month for every part (depots and regionals).
    pub upstream: Vec<Vec<f64>>,
}

/// Install-base demand at each store (machines x units x attach x failure rate x
/// hours), background demand for parts on no model spread over the regions by
/// machine count, rolled up the supply tree.
pub fn rates(
    rng: &mut StdRng,
    sites: &Sites,
    parts: &[Part],
    models: &[MachineModel],
    fleets: &[Fleet],
) -> Result<Rates, DemoError> {
    let part_index: HashMap<&str, usize> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let location_index: HashMap<&str, usize> = sites
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id.as_str(), i))
        .collect();
    let model_index: HashMap<&str, &MachineModel> =
        models.iter().map(|m| (m.id.as_str(), m)).collect();
    let n = sites.locations.len();
    let mut store = vec![BTreeMap::new(); n];
    let mut machines = vec![0f64; n];
    for fleet in fleets {
        let (Some(&s), Some(model)) = (
            location_index.get(fleet.store_location_id.as_str()),
            model_index.get(fleet.machine_model_id.as_str()),
        ) else {
            continue;
        };
        let hours_per_month =
            f64::from(fleet.machine_count) * fleet.usage_hours_per_day * DAYS_PER_MONTH;
        machines[s] += f64::from(fleet.machine_count);
        for model_part in &model.parts {
            if let Some(&p) = part_index.get(model_part.part_id.as_str()) {
                let rate = hours_per_month
                    * f64::from(model_part.units_per_machine)
                    * model_part.attach_rate
                    * model_part.failures_per_million_operating_hours
                    / 1e6;
                *store[s].entry(p).or_insert(0.0) += rate;
            }
        }
    }
    let mut upstream = vec![Vec::new(); n];
    for (i, location) in sites.locations.iter().enumerate() {
        if location.kind != LocationKind::Store {
            upstream[i] = vec![0.0; parts.len()];
        }
    }
    let mut regional_machines = vec![0f64; n];
    for s in sites.stores() {
        let r = sites.store_regional[s - sites.stores().start];
        regional_machines[r] += machines[s];
        for (&p, &rate) in &store[s] {
            upstream[r][p] += rate;
        }
    }
    let total_machines: f64 = regional_machines.iter().sum::<f64>().max(1.0);
    let on_models: std::collections::HashSet<usize> =
        store.iter().flat_map(|m| m.keys().copied()).collect();
    let background = LogNormal::new(0.3f64.ln(), 1.3).map_err(|e| DemoError::Config {
        field: "seed",
        reason: e.to_string(),
    })?;
    for (p, part) in parts.iter().enumerate() {
        if on_models.contains(&p) || part.successor.is_some() {
            continue;
        }
        let network_rate = background.sample(rng).min(30.0);
        for r in sites.depots..sites.depots + sites.regionals {
            upstream[r][p] += network_rate * regional_machines[r] / total_machines;
        }
    }
    for r in sites.depots..sites.depots + sites.regionals {
        let depot = sites.store_depot(r);
        let regional = std::mem::take(&mut upstream[r]);
        for (total, rate) in upstream[depot].iter_mut().zip(&regional) {
            *total += rate;
        }
        upstream[r] = regional;
    }
    Ok(Rates { store, upstream })
}

/// Monthly history for a random sample of the part-stores with demand: Poisson
/// order counts, each order for 1 unit (80%) or 2 to 4 (20%), so series are
/// intermittent and sometimes lumpy.
pub fn demand(
    rng: &mut StdRng,
    sites: &Sites,
    parts: &[Part],
    rates: &Rates,
    now: Timestamp,
) -> Result<Vec<DemandSeries>, DemoError> {
    let entries: Vec<(usize, usize, f64)> = sites
        .stores()
        .flat_map(|s| rates.store[s].iter().map(move |(&p, &r)| (s, p, r)))
        .filter(|(_, _, r)| *r > 0.0)
        .collect();
    let mut chosen: Vec<usize> =
        rand::seq::index::sample(rng, entries.len(), entries.len().min(DEMAND_SERIES_LIMIT))
            .into_vec();
    chosen.sort_unstable();
    let time = |e: jiff::Error| DemoError::Time(e.to_string());
    let this_month = now.to_zoned(TimeZone::UTC).date().first_of_month();
    let first = this_month
        .checked_sub((HISTORY_MONTHS as i64).months())
        .map_err(time)?;
    let mut series = Vec::with_capacity(chosen.len());
    for i in chosen {
        let (s, p, rate) = entries[i];
        let orders = Poisson::new(rate).map_err(|e| DemoError::Config {
            field: "seed",
            reason: e.to_string(),
        })?;
        let quantities = (0..HISTORY_MONTHS)
            .map(|_| {
                let count = orders.sample(rng) as u64;
                (0..count)
                    .map(|_| {
                        if rng.random_bool(0.8) {
                            1
                        } else {
                            rng.random_range(2..=4)
                        }
                    })
                    .sum()
            })
            .collect();
        series.push(DemandSeries {
            part_id: parts[p].id.clone(),
            location_id: sites.locations[s].id.clone(),
            period: Period::Month,
            first_period_start: first,
            quantities,
        });
    }
    Ok(series)
}

/// Smallest base stock S with fill rate P(X <= S - 1) >= `target` for lead-time
/// demand X ~ Poisson(`mean`) (Palm's theorem). Always at least 1.
pub fn poisson_base_stock(mean: f64, target: f64) -> u64 {
    let mean = mean.clamp(0.0, 500.0);
    let mut probability = (-mean).exp();
    let mut cumulative = probability;
    let mut k = 0u64;
    while cumulative < target && k < 5_000 {
        k += 1;
        probability *= mean / k as f64;
        cumulative += probability;
    }
    k + 1
}

fn fill_target(criticality: Criticality) -> f64 {
    match criticality {
        Criticality::Critical => 0.95,
        Criticality::Essential => 0.90,
        Criticality::Routine => 0.80,
    }
}

/// Median replenishment transit into each location, in days.
fn inbound_days(sites: &Sites, lanes: &[Lane]) -> Vec<f64> {
    let mut days = vec![DEPOT_LEAD_DAYS; sites.locations.len()];
    let index: HashMap<&str, usize> = sites
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id.as_str(), i))
        .collect();
    for lane in lanes.iter().filter(|l| l.kind == LaneKind::Replenishment) {
        if let Some(&to) = index.get(lane.to.as_str()) {
            // One day on top for handling and waiting for the cut-off.
            days[to] = lane.transit.median_hours() / 24.0 + 1.0;
        }
    }
    days
}

fn policy(part: &Part, location: &str, order_up_to: u64, protected_quantity: u64) -> Policy {
    Policy {
        part_id: part.id.clone(),
        location_id: location.to_string(),
        kind: PolicyKind::BaseStock,
        order_up_to,
        reorder_point: order_up_to - 1,
        order_quantity: 1,
        protected_quantity,
        source: format!(
            "demo: Poisson base stock, fill target {}",
            fill_target(part.criticality)
        ),
    }
}

/// Base-stock policies: depots hold most parts, regionals the faster movers
/// (at least one a month, or 0.3 if critical), stores the fast or critical ones
/// (1.5 a month, or 0.4 if critical). A fifth of upstream stock is protected for
/// critical demand.
pub fn policies(
    rng: &mut StdRng,
    sites: &Sites,
    parts: &[Part],
    lanes: &[Lane],
    rates: &Rates,
) -> Vec<Policy> {
    let lead_days = inbound_days(sites, lanes);
    let mut policies = Vec::new();
    for (i, location) in sites.locations.iter().enumerate() {
        match location.kind {
            LocationKind::Store => {
                for (&p, &rate) in &rates.store[i] {
                    let critical = parts[p].criticality == Criticality::Critical;
                    if rate >= STORE_MIN_RATE || (critical && rate >= STORE_MIN_RATE_CRITICAL) {
                        let mean = rate / DAYS_PER_MONTH * lead_days[i];
                        let s = poisson_base_stock(mean, fill_target(parts[p].criticality));
                        policies.push(policy(&parts[p], &location.id, s, 0));
                    }
                }
            }
            LocationKind::RegionalWarehouse | LocationKind::FactoryDepot => {
                let depot = location.kind == LocationKind::FactoryDepot;
                for (p, part) in parts.iter().enumerate() {
                    let rate = rates.upstream[i][p];
                    let critical = part.criticality == Criticality::Critical;
                    let days = match (depot, part.repairable) {
                        (true, true) => DEPOT_REPAIR_DAYS,
                        (true, false) => DEPOT_LEAD_DAYS,
                        _ => lead_days[i],
                    };
                    let mean = rate / DAYS_PER_MONTH * days;
                    let stocked = if depot {
                        // Superseded parts are run down: only some depots still hold a few.
                        match part.successor {
                            Some(_) => rng.random_bool(0.3),
                            None => mean >= 0.05 || critical || rng.random_bool(0.5),
                        }
                    } else {
                        rate >= 1.0 || (critical && rate >= 0.3)
                    };
                    if stocked {
                        let s = poisson_base_stock(mean, fill_target(part.criticality));
                        policies.push(policy(part, &location.id, s, s / 5));
                    }
                }
            }
        }
    }
    policies
}

/// Receipts that bring most policies to their order-up-to level (30% sit
/// somewhere below it, some at zero), then a few transfers in transit down the
/// tree arriving after `now`. Keys are `demo-<seed>-<n>`.
pub fn movements(
    rng: &mut StdRng,
    seed: u64,
    sites: &Sites,
    lanes: &[Lane],
    policies: &[Policy],
    now: Timestamp,
) -> Result<Vec<MovementCommand>, DemoError> {
    let mut movements = Vec::new();
    let mut on_hand: HashMap<(&str, &str), u64> = HashMap::new();
    for policy in policies {
        let quantity = if rng.random_bool(0.7) {
            policy.order_up_to
        } else {
            rng.random_range(0..=policy.order_up_to)
        };
        if quantity == 0 {
            continue;
        }
        on_hand.insert((&policy.part_id, &policy.location_id), quantity);
        movements.push(MovementCommand {
            idempotency_key: format!("demo-{seed}-{}", movements.len() + 1),
            kind: MovementKind::Receipt,
            part_id: policy.part_id.clone(),
            location_id: policy.location_id.clone(),
            quantity: i64::try_from(quantity).unwrap_or(i64::MAX),
            to_location_id: None,
            shipment_id: None,
            expected_arrival: None,
            note: "demo seed stock".to_string(),
        });
    }
    transfers(
        rng,
        seed,
        sites,
        lanes,
        policies,
        now,
        &mut on_hand,
        &mut movements,
    )?;
    Ok(movements)
}

/// Ships one or two units down a replenishment lane for randomly picked
/// policies below the depots, from stock the receipts put at the source.
#[allow(clippy::too_many_arguments)]
fn transfers<'a>(
    rng: &mut StdRng,
    seed: u64,
    sites: &'a Sites,
    lanes: &'a [Lane],
    policies: &'a [Policy],
    now: Timestamp,
    on_hand: &mut HashMap<(&'a str, &'a str), u64>,
    movements: &mut Vec<MovementCommand>,
) -> Result<(), DemoError> {
    let replenishment: HashMap<(&str, &str), &Lane> = lanes
        .iter()
        .filter(|l| l.kind == LaneKind::Replenishment)
        .map(|l| ((l.from.as_str(), l.to.as_str()), l))
        .collect();
    let sources: HashMap<&str, &str> = sites
        .locations
        .iter()
        .filter_map(|l| Some((l.id.as_str(), l.replenishment_source.as_deref()?)))
        .collect();
    let downstream: Vec<&Policy> = policies
        .iter()
        .filter(|p| sources.contains_key(p.location_id.as_str()))
        .collect();
    let mut shipped = 0;
    // Bounded attempts: a pick fails when the source holds none of the part.
    for _ in 0..TRANSFERS_IN_TRANSIT * 20 {
        if shipped == TRANSFERS_IN_TRANSIT || downstream.is_empty() {
            break;
        }
        let target = downstream[rng.random_range(0..downstream.len())];
        let destination = target.location_id.as_str();
        let Some(&source) = sources.get(destination) else {
            continue;
        };
        let (Some(lane), Some(available)) = (
            replenishment.get(&(source, destination)),
            on_hand.get_mut(&(target.part_id.as_str(), source)),
        ) else {
            continue;
        };
        if *available == 0 {
            continue;
        }
        let quantity = if *available >= 4 { 2 } else { 1 };
        *available -= quantity;
        let seconds = (lane.transit.median_hours() * 3600.0).round() as i64;
        let arrival = now
            .checked_add(SignedDuration::from_secs(seconds))
            .map_err(|e| DemoError::Time(e.to_string()))?;
        shipped += 1;
        movements.push(MovementCommand {
            idempotency_key: format!("demo-{seed}-{}", movements.len() + 1),
            kind: MovementKind::TransferShip,
            part_id: target.part_id.clone(),
            location_id: source.to_string(),
            quantity: i64::try_from(quantity).unwrap_or(i64::MAX),
            to_location_id: Some(target.location_id.clone()),
            shipment_id: Some(format!("SHP-demo-{seed}-{shipped}")),
            expected_arrival: Some(arrival),
            note: "demo replenishment in transit".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_base_stock_meets_the_fill_target() {
        // Mean 2: P(X <= 3) = 0.857, P(X <= 4) = 0.947, P(X <= 5) = 0.983.
        assert_eq!(poisson_base_stock(2.0, 0.85), 4);
        assert_eq!(poisson_base_stock(2.0, 0.95), 6);
        assert_eq!(poisson_base_stock(0.0, 0.95), 1);
    }
}
