//! Converts the service network into a `spares_simulations::Model`.
//!
//! Conventions, documented once here (the proto comments and README repeat
//! them):
//! - Transit times are calendar hours in the network and days in the model.
//!   A log-normal lane given by (p50, p90) keeps its shape: mu = ln p50,
//!   sigma = (ln p90 - ln p50) / z_0.9, then mean and standard deviation.
//!   Empirical samples become a uniform distribution over [min, max].
//! - **Supplier lead time** (days, converted the same way) of a part into a
//!   location supplied from outside the network (no replenishment source, the
//!   factory depots): the part's `SupplierLeadTime` for that location if any,
//!   else the part's own `supplier_lead_time`, else the default, log-normal
//!   with mean [`FACTORY_LEAD_TIME_DAYS_MEAN`] and sd [`FACTORY_LEAD_TIME_DAYS_SD`].
//! - **Downtime cost** of an hour a machine waits for a part, highest
//!   precedence first: the part's own `downtime_cost_usd_per_hour`; the
//!   network's `CriticalityCost` of the part's class; the machine model's
//!   `downtime_cost_usd_per_hour` x the class's share of output lost
//!   (critical 1.0, essential 0.5, routine 0.1). Downtime *hours* are always
//!   waiting hours x that share.
//! - **Demand**: at each (part, location) exactly one source drives demand: a
//!   demand rate if one is given, else a demand history, else the installed
//!   base (failure rates per million operating hours; a Weibull shape k > 1
//!   keeps the mean life 1 / rate: scale = 1 / (rate * Gamma(1 + 1/k))). A
//!   rate or history has no machine of its own: when neither the part nor its
//!   class has a cost, its waits are priced by the machine model at that
//!   location with the most machines carrying the part (ties by id), and at
//!   zero where none does.
//! - Policies are the plan in force; a part-location without one holds nothing.
//! - **Warm-up** when a request gives none: the longest supply chain of the
//!   run's parts, each step at its 99th percentile (the supplier lead time
//!   into a top location plus every transit down to the farthest location
//!   below it), in whole days, at least [`MIN_WARMUP_DAYS`].

use crate::domain::DomainError;
use crate::domain::inputs::sorted_quantile;
use crate::domain::network::{
    Criticality, LaneKind, LeadTime, LocationId, LocationKind, Network, Part, PartId, Period,
    PolicyKind, TransitTime,
};
use serde::{Deserialize, Serialize};
use spares_simulations as sim;
use std::collections::{BTreeMap, BTreeSet};

/// Mean factory-to-depot lead time, in days, when the network gives none for a part.
pub const FACTORY_LEAD_TIME_DAYS_MEAN: f64 = 21.0;
/// Its standard deviation, in days.
pub const FACTORY_LEAD_TIME_DAYS_SD: f64 = 7.0;
/// Parts simulated when a request names none: the ones with the highest
/// expected downtime exposure. Bounds a default run on a 20,000-part network.
pub const DEFAULT_SIMULATED_PARTS: usize = 200;
/// z-score of the 90th percentile of a standard normal.
const Z_90: f64 = 1.281_551_565_544_600_4;
/// Days in the average month, for monthly demand histories.
const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// A log-normal given by median and 90th percentile (any unit), as the
/// model's mean and standard deviation in the same unit.
fn lognormal(p50: f64, p90: f64) -> sim::TimeDistribution {
    let sigma = (p90.ln() - p50.ln()) / Z_90;
    let mean = p50 * (sigma * sigma / 2.0).exp();
    let sd = mean * ((sigma * sigma).exp() - 1.0).sqrt();
    if sd <= 0.0 {
        sim::TimeDistribution::Deterministic { days: mean }
    } else {
        sim::TimeDistribution::LogNormal {
            mean_days: mean,
            std_dev_days: sd,
        }
    }
}

/// Sorted samples as a uniform distribution over [min, max].
fn uniform_over(samples: &[f64]) -> sim::TimeDistribution {
    let lo = samples.first().copied().unwrap_or(0.0);
    let hi = samples.last().copied().unwrap_or(0.0);
    if hi > lo {
        sim::TimeDistribution::Uniform {
            min_days: lo,
            max_days: hi,
        }
    } else {
        sim::TimeDistribution::Deterministic { days: lo }
    }
}

/// Converts a transit-time distribution in hours to the model's, in days.
pub fn transit_days(transit: &TransitTime) -> sim::TimeDistribution {
    match transit {
        TransitTime::Fixed { transit_hours } => sim::TimeDistribution::Deterministic {
            days: transit_hours / 24.0,
        },
        TransitTime::Lognormal {
            transit_hours_p50,
            transit_hours_p90,
        } => lognormal(transit_hours_p50 / 24.0, transit_hours_p90 / 24.0),
        TransitTime::Empirical {
            transit_hours_samples,
        } => {
            let days: Vec<f64> = transit_hours_samples.iter().map(|h| h / 24.0).collect();
            uniform_over(&days)
        }
    }
}

/// Converts a supplier lead time (days) to the model's distribution.
pub fn lead_time_days(lead: &LeadTime) -> sim::TimeDistribution {
    match lead {
        LeadTime::Fixed { lead_time_days } => sim::TimeDistribution::Deterministic {
            days: *lead_time_days,
        },
        LeadTime::Lognormal {
            lead_time_days_p50,
            lead_time_days_p90,
        } => lognormal(*lead_time_days_p50, *lead_time_days_p90),
        LeadTime::Empirical {
            lead_time_days_samples,
        } => uniform_over(lead_time_days_samples),
    }
}

/// The supplier lead time used when the network gives none for a part.
pub fn default_supplier_lead_time() -> sim::TimeDistribution {
    sim::TimeDistribution::LogNormal {
        mean_days: FACTORY_LEAD_TIME_DAYS_MEAN,
        std_dev_days: FACTORY_LEAD_TIME_DAYS_SD,
    }
}

/// The supplier lead time of `part_id` into `location_id` (a location supplied
/// from outside), by the rule in the module docs: override, part, default.
pub fn supplier_lead_time(
    network: &Network,
    part_id: &str,
    location_id: &str,
) -> sim::TimeDistribution {
    let key = (part_id.to_string(), location_id.to_string());
    if let Some(supply) = network.supplier_lead_times.get(&key) {
        return lead_time_days(&supply.lead_time);
    }
    network
        .parts
        .get(part_id)
        .and_then(|p| p.supplier_lead_time.as_ref())
        .map_or_else(default_supplier_lead_time, lead_time_days)
}

/// Share of a machine's output lost while it waits for a part of this class.
pub fn criticality_share(criticality: Criticality) -> f64 {
    match criticality {
        Criticality::Critical => 1.0,
        Criticality::Essential => 0.5,
        Criticality::Routine => 0.1,
    }
}

/// The cost of an hour a machine waits for `part` when the network sets one:
/// the part's own, else its class's. `None` means "the machine model's rate x
/// the class's share" (the last step of the rule in the module docs).
pub fn part_downtime_cost_per_hour(network: &Network, part: &Part) -> Option<f64> {
    part.downtime_cost_usd_per_hour.or_else(|| {
        network
            .criticality_costs
            .get(&part.criticality)
            .map(|c| c.downtime_cost_usd_per_hour)
    })
}

/// Where the demand of one part at one location comes from (see the rule in
/// the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandSource {
    /// A planner's demand rate.
    Rate,
    /// A demand history, bootstrapped.
    History,
    /// Failures of the installed base.
    InstalledBase,
}

/// The mean demand of one part at one location and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandEstimate {
    /// Mean units per day.
    pub units_per_day: f64,
    /// Variance over mean of units per period: the rate's; the history's
    /// per-period counts' (at least 1); 1 for the installed base (Poisson).
    pub variance_to_mean_ratio: f64,
    /// The source the rule picked.
    pub source: DemandSource,
}

fn period_days(period: Period) -> f64 {
    match period {
        Period::Day => 1.0,
        Period::Week => 7.0,
        Period::Month => DAYS_PER_MONTH,
    }
}

fn history_estimate(quantities: &[u64], period: Period) -> DemandEstimate {
    let n = quantities.len().max(1) as f64;
    let mean = quantities.iter().map(|&q| q as f64).sum::<f64>() / n;
    let variance = quantities
        .iter()
        .map(|&q| (q as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    DemandEstimate {
        units_per_day: mean / period_days(period),
        variance_to_mean_ratio: if mean > 0.0 {
            (variance / mean).max(1.0)
        } else {
            1.0
        },
        source: DemandSource::History,
    }
}

/// Whether a (part, location) pair is in service (neither is retired).
fn is_active(network: &Network, (part_id, location_id): &(PartId, LocationId)) -> bool {
    network.parts.contains_key(part_id) && network.locations.contains_key(location_id)
}

/// Fleets at stores in service; a retired store's machines leave every plan.
fn active_fleets(network: &Network) -> impl Iterator<Item = &crate::domain::network::Fleet> {
    network
        .fleets
        .values()
        .filter(|f| network.locations.contains_key(&f.store_location_id))
}

/// Expected failures per day of each part at each store across its fleets.
pub fn installed_base_rates(network: &Network) -> BTreeMap<(PartId, LocationId), f64> {
    let mut rates = BTreeMap::new();
    for fleet in active_fleets(network) {
        let Some(model) = network.machine_models.get(&fleet.machine_model_id) else {
            continue;
        };
        for part in &model.parts {
            let per_hour = part.failures_per_million_operating_hours / 1e6;
            let rate = f64::from(fleet.machine_count)
                * f64::from(part.units_per_machine)
                * part.attach_rate
                * per_hour
                * fleet.usage_hours_per_day;
            let key = (part.part_id.clone(), fleet.store_location_id.clone());
            *rates.entry(key).or_insert(0.0) += rate;
        }
    }
    rates
}

/// Mean demand per day of every (part, location) with demand, by the rule in
/// the module docs (rate, else history, else installed base).
pub fn demand_per_day(network: &Network) -> BTreeMap<(PartId, LocationId), DemandEstimate> {
    let mut out: BTreeMap<(PartId, LocationId), DemandEstimate> = BTreeMap::new();
    for (key, rate) in &installed_base_rates(network) {
        out.insert(
            key.clone(),
            DemandEstimate {
                units_per_day: *rate,
                variance_to_mean_ratio: 1.0,
                source: DemandSource::InstalledBase,
            },
        );
    }
    for (key, series) in network.demand.iter().filter(|(k, _)| is_active(network, k)) {
        out.insert(
            key.clone(),
            history_estimate(&series.quantities, series.period),
        );
    }
    for (key, rate) in network
        .demand_rates
        .iter()
        .filter(|(k, _)| is_active(network, k))
    {
        out.insert(
            key.clone(),
            DemandEstimate {
                units_per_day: rate.failures_per_day,
                variance_to_mean_ratio: rate.variance_to_mean_ratio,
                source: DemandSource::Rate,
            },
        );
    }
    out
}

/// Expected failures per day of each part across the network, by the demand rule.
pub fn part_demand_per_day(network: &Network) -> BTreeMap<PartId, f64> {
    let mut rates = BTreeMap::new();
    for ((part_id, _), estimate) in demand_per_day(network) {
        *rates.entry(part_id).or_insert(0.0) += estimate.units_per_day;
    }
    rates
}

/// The machine model that prices waits of a rate or history source: the one
/// at `location` with the most machines carrying `part_id` (ties by id).
pub fn pricing_machine_model(network: &Network, part_id: &str, location: &str) -> Option<String> {
    if !network.locations.contains_key(location) {
        return None;
    }
    // Fleets are keyed by (store, model): the store's fleets are one range.
    let first = (location.to_string(), String::new());
    network
        .fleets
        .range(first..)
        .take_while(|((store, _), _)| store == location)
        .map(|(_, fleet)| fleet)
        .filter(|f| {
            network
                .machine_models
                .get(&f.machine_model_id)
                .is_some_and(|m| m.parts.iter().any(|p| p.part_id == part_id))
        })
        .max_by(|a, b| {
            a.machine_count
                .cmp(&b.machine_count)
                .then_with(|| b.machine_model_id.cmp(&a.machine_model_id))
        })
        .map(|f| f.machine_model_id.clone())
}

/// The parts a run covers: those asked for, or the default selection by
/// downtime exposure (demand x the share of output lost, by the demand rule).
pub fn select_parts(network: &Network, asked: &[PartId]) -> Result<Vec<PartId>, DomainError> {
    if !asked.is_empty() {
        for (i, part) in asked.iter().enumerate() {
            if !network.parts.contains_key(part) {
                return Err(DomainError::not_found(
                    "part",
                    format!("{part} (part_ids[{i}])"),
                ));
            }
        }
        let unique: BTreeSet<PartId> = asked.iter().cloned().collect();
        return Ok(unique.into_iter().collect());
    }
    let mut exposure: Vec<(f64, PartId)> = part_demand_per_day(network)
        .into_iter()
        .filter_map(|(part_id, rate)| {
            let part = network.parts.get(&part_id)?;
            Some((rate * criticality_share(part.criticality), part_id))
        })
        .filter(|(e, _)| *e > 0.0)
        .collect();
    exposure.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(exposure
        .into_iter()
        .take(DEFAULT_SIMULATED_PARTS)
        .map(|(_, p)| p)
        .collect())
}

/// Builds the simulation model of `parts` over the whole network.
pub fn build_model(network: &Network, parts: &[PartId]) -> Result<sim::Model, DomainError> {
    let wanted: BTreeSet<&str> = parts.iter().map(String::as_str).collect();
    let mut model = sim::Model::default();
    for location in network.locations.values() {
        model.locations.push(sim::Location {
            id: location.id.clone(),
            name: location.name.clone(),
            echelon: match location.kind {
                LocationKind::FactoryDepot => sim::Echelon::Depot,
                LocationKind::RegionalWarehouse => sim::Echelon::Regional,
                LocationKind::Store => sim::Echelon::Store,
            },
            external_supply_days: (location.replenishment_source.is_none())
                .then(default_supplier_lead_time),
        });
    }
    for lane in model_lanes(network) {
        model.lanes.push(sim::Lane {
            from: lane.from.clone(),
            to: lane.to.clone(),
            kind: match lane.kind {
                LaneKind::Replenishment => sim::LaneKind::Replenishment,
                LaneKind::Lateral => sim::LaneKind::Lateral,
                LaneKind::Emergency => sim::LaneKind::Emergency,
            },
            transit_days: transit_days(&lane.transit),
            cost_per_shipment: lane.cost_per_unit_usd,
        });
    }
    for part_id in parts {
        let part = network
            .parts
            .get(part_id)
            .ok_or_else(|| DomainError::not_found("part", part_id.clone()))?;
        model.parts.push(sim::Part {
            id: part.id.clone(),
            name: part.description.clone(),
            unit_cost: part.unit_cost_usd,
            criticality: criticality_share(part.criticality),
            repair: None,
            supplier_lead_time_days: part.supplier_lead_time.as_ref().map(lead_time_days),
            downtime_cost_per_hour: part_downtime_cost_per_hour(network, part),
        });
    }
    for (key, policy) in &network.policies {
        if !wanted.contains(policy.part_id.as_str()) || !is_active(network, key) {
            continue;
        }
        model.policies.push(sim::StockingPolicy {
            part: policy.part_id.clone(),
            location: policy.location_id.clone(),
            policy: sim_policy(
                policy.kind,
                policy.order_up_to,
                policy.reorder_point,
                policy.order_quantity,
            ),
        });
    }
    add_installed_base(network, &wanted, &mut model);
    add_planning_inputs(network, &wanted, &mut model);
    Ok(model)
}

/// Supplier lead-time overrides, demand rates and demand histories of the
/// wanted parts. The model's compile step applies the demand rule (rate, else
/// history, else installed base), so every source is passed as it is.
fn add_planning_inputs(network: &Network, wanted: &BTreeSet<&str>, model: &mut sim::Model) {
    for (key, supply) in &network.supplier_lead_times {
        if wanted.contains(supply.part_id.as_str()) && is_active(network, key) {
            model.supplier_lead_times.push(sim::SupplierLeadTime {
                part: supply.part_id.clone(),
                location: supply.location_id.clone(),
                lead_time_days: lead_time_days(&supply.lead_time),
            });
        }
    }
    for (key, rate) in &network.demand_rates {
        if wanted.contains(rate.part_id.as_str()) && is_active(network, key) {
            model.demand_rates.push(sim::DemandRate {
                part: rate.part_id.clone(),
                location: rate.location_id.clone(),
                units_per_day: rate.failures_per_day,
                variance_to_mean_ratio: rate.variance_to_mean_ratio,
                machine_model: pricing_machine_model(network, &rate.part_id, &rate.location_id),
            });
        }
    }
    for (key, series) in &network.demand {
        let replaced = network.demand_rates.contains_key(key);
        if !wanted.contains(series.part_id.as_str()) || replaced || !is_active(network, key) {
            continue;
        }
        model.demand_histories.push(sim::DemandHistory {
            part: series.part_id.clone(),
            location: series.location_id.clone(),
            period_days: period_days(series.period),
            quantities: series
                .quantities
                .iter()
                .map(|&q| u32::try_from(q).unwrap_or(u32::MAX))
                .collect(),
            machine_model: pricing_machine_model(network, &series.part_id, &series.location_id),
            demand_multiplier: 1.0,
            jitter: true,
        });
    }
}

/// The lanes the model uses: every lateral and emergency lane, and for each
/// location the one replenishment lane from its replenishment source (the
/// fastest by median when several modes serve it), as the supply tree says.
fn model_lanes(network: &Network) -> Vec<&crate::domain::network::Lane> {
    let mut supply: BTreeMap<&str, &crate::domain::network::Lane> = BTreeMap::new();
    let mut lanes = Vec::new();
    for lane in network.lanes.values() {
        if lane.kind != LaneKind::Replenishment {
            lanes.push(lane);
            continue;
        }
        let source = network
            .locations
            .get(&lane.to)
            .and_then(|l| l.replenishment_source.as_deref());
        if source != Some(lane.from.as_str()) {
            continue;
        }
        let faster = supply
            .get(lane.to.as_str())
            .is_none_or(|best| lane.transit.median_hours() < best.transit.median_hours());
        if faster {
            supply.insert(lane.to.as_str(), lane);
        }
    }
    lanes.extend(supply.into_values());
    lanes
}

/// Converts a policy's levels to the model's policy.
pub fn sim_policy(
    kind: PolicyKind,
    order_up_to: u64,
    reorder_point: u64,
    quantity: u64,
) -> sim::Policy {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match kind {
        PolicyKind::BaseStock => sim::Policy::BaseStock {
            level: u32::try_from(order_up_to).unwrap_or(u32::MAX),
        },
        PolicyKind::MinMax => sim::Policy::MinMax {
            reorder_point: clamp(reorder_point),
            order_up_to: clamp(order_up_to),
        },
        PolicyKind::ReorderPointQuantity => sim::Policy::ReorderPointQuantity {
            reorder_point: clamp(reorder_point),
            quantity: u32::try_from(quantity).unwrap_or(u32::MAX).max(1),
        },
    }
}

fn add_installed_base(network: &Network, wanted: &BTreeSet<&str>, model: &mut sim::Model) {
    let mut used_models = BTreeSet::new();
    for fleet in active_fleets(network) {
        used_models.insert(fleet.machine_model_id.clone());
        model.fleets.push(sim::Fleet {
            id: format!("{}/{}", fleet.store_location_id, fleet.machine_model_id),
            location: fleet.store_location_id.clone(),
            machine_model: fleet.machine_model_id.clone(),
            machines: fleet.machine_count,
            usage_hours_per_day: fleet.usage_hours_per_day,
            age_operating_hours: fleet.average_age_hours,
        });
    }
    for machine in network.machine_models.values() {
        if !used_models.contains(&machine.id) {
            continue;
        }
        model.machine_models.push(sim::MachineModel {
            id: machine.id.clone(),
            downtime_cost_per_hour: machine.downtime_cost_usd_per_hour,
        });
        for part in machine
            .parts
            .iter()
            .filter(|p| wanted.contains(p.part_id.as_str()))
        {
            let rate_per_hour = part.failures_per_million_operating_hours / 1e6;
            let life = if (part.weibull_shape - 1.0).abs() < 1e-9 || rate_per_hour <= 0.0 {
                sim::Life::Exponential {
                    failures_per_operating_hour: rate_per_hour,
                }
            } else {
                let gamma = statrs::function::gamma::gamma(1.0 + 1.0 / part.weibull_shape);
                sim::Life::Weibull {
                    shape: part.weibull_shape,
                    scale_operating_hours: 1.0 / (rate_per_hour * gamma),
                }
            };
            model.failure_models.push(sim::FailureModel {
                part: part.part_id.clone(),
                machine_model: machine.id.clone(),
                units_per_machine: part.units_per_machine,
                attach_rate: part.attach_rate,
                life,
            });
        }
    }
}

/// Shortest warm-up, in days, whatever the network: a month lets stores and
/// short pipelines settle.
pub const MIN_WARMUP_DAYS: u32 = 30;
/// z-score of the 99th percentile of a standard normal.
const Z_99: f64 = 2.326_347_874_040_841;

/// The 99th percentile of a log-normal given by median and 90th percentile.
fn lognormal_p99(p50: f64, p90: f64) -> f64 {
    let sigma = (p90.ln() - p50.ln()) / Z_90;
    (p50.ln() + Z_99 * sigma).exp()
}

/// The 99th percentile of a transit time, in days.
pub fn transit_p99_days(transit: &TransitTime) -> f64 {
    match transit {
        TransitTime::Fixed { transit_hours } => transit_hours / 24.0,
        TransitTime::Lognormal {
            transit_hours_p50,
            transit_hours_p90,
        } => lognormal_p99(*transit_hours_p50, *transit_hours_p90) / 24.0,
        TransitTime::Empirical {
            transit_hours_samples,
        } => sorted_quantile(transit_hours_samples, 0.99) / 24.0,
    }
}

/// The 99th percentile of the supplier lead time of `part_id` into
/// `location_id`, in days, by the same rule as [`supplier_lead_time`].
pub fn supplier_lead_time_p99_days(network: &Network, part_id: &str, location_id: &str) -> f64 {
    let key = (part_id.to_string(), location_id.to_string());
    let own = network
        .supplier_lead_times
        .get(&key)
        .map(|s| &s.lead_time)
        .or_else(|| network.parts.get(part_id)?.supplier_lead_time.as_ref());
    match own {
        Some(LeadTime::Fixed { lead_time_days }) => *lead_time_days,
        Some(LeadTime::Lognormal {
            lead_time_days_p50,
            lead_time_days_p90,
        }) => lognormal_p99(*lead_time_days_p50, *lead_time_days_p90),
        Some(LeadTime::Empirical {
            lead_time_days_samples,
        }) => sorted_quantile(lead_time_days_samples, 0.99),
        None => {
            // The default's mean and sd as a log-normal's mu and sigma.
            let cv2 = (FACTORY_LEAD_TIME_DAYS_SD / FACTORY_LEAD_TIME_DAYS_MEAN).powi(2);
            let sigma = cv2.ln_1p().sqrt();
            let mu = FACTORY_LEAD_TIME_DAYS_MEAN.ln() - sigma * sigma / 2.0;
            (mu + Z_99 * sigma).exp()
        }
    }
}

/// The longest supply chain of a run, at the 99th percentile of each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplyChain {
    /// The part whose chain it is.
    pub part_id: PartId,
    /// Locations from the one supplied from outside down to the farthest.
    pub locations: Vec<LocationId>,
    /// Supplier lead time plus every transit, each at its 99th percentile.
    pub p99_days: f64,
}

/// Per location: (the top of its supply tree, the p99 transit days from it
/// down to the location along the lanes the model uses, the path top first).
fn chains_to_tops(network: &Network) -> Vec<(LocationId, f64, Vec<LocationId>)> {
    let supply: BTreeMap<&str, &crate::domain::network::Lane> = model_lanes(network)
        .into_iter()
        .filter(|l| l.kind == LaneKind::Replenishment)
        .map(|l| (l.to.as_str(), l))
        .collect();
    let mut out = Vec::new();
    for location in network.locations.values() {
        let (mut path, mut days) = (vec![location.id.clone()], 0.0);
        let mut current = location;
        while let Some(source) = current.replenishment_source.as_deref() {
            let Some(parent) = network.locations.get(source) else {
                break;
            };
            if path.len() > network.locations.len() {
                break; // Cycles are rejected on write; this guards a corrupt store.
            }
            days += supply
                .get(current.id.as_str())
                .map_or(0.0, |lane| transit_p99_days(&lane.transit));
            path.push(parent.id.clone());
            current = parent;
        }
        path.reverse();
        out.push((current.id.clone(), days, path));
    }
    out
}

/// The longest supply chain over `parts`: the supplier lead time into a top
/// location plus the transits down to the farthest location below it, each at
/// its 99th percentile. `None` for no parts or no locations.
pub fn longest_supply_chain(network: &Network, parts: &[PartId]) -> Option<SupplyChain> {
    let chains = chains_to_tops(network);
    let mut best: Option<SupplyChain> = None;
    for part_id in parts {
        for (top, transit_days, path) in &chains {
            let p99_days = supplier_lead_time_p99_days(network, part_id, top) + transit_days;
            if best.as_ref().is_none_or(|b| p99_days > b.p99_days) {
                best = Some(SupplyChain {
                    part_id: part_id.clone(),
                    locations: path.clone(),
                    p99_days,
                });
            }
        }
    }
    best
}

/// The warm-up a run takes when the request gives none: the longest supply
/// chain of its parts at p99, in whole days, at least [`MIN_WARMUP_DAYS`].
pub fn derived_warmup_days(network: &Network, parts: &[PartId]) -> (u32, Option<SupplyChain>) {
    let chain = longest_supply_chain(network, parts);
    let days = chain.as_ref().map_or(0.0, |c| c.p99_days.ceil());
    let days = if days.is_finite() && days < f64::from(u32::MAX) {
        (days as u32).max(MIN_WARMUP_DAYS)
    } else {
        MIN_WARMUP_DAYS
    };
    (days, chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::network::{CriticalityCost, Interchangeability};

    fn part(cost: Option<f64>) -> Part {
        Part {
            id: "P".into(),
            description: String::new(),
            unit_cost_usd: 1.0,
            criticality: Criticality::Essential,
            repairable: false,
            successor: None,
            interchangeability: Interchangeability::ForwardOnly,
            supplier_lead_time: None,
            downtime_cost_usd_per_hour: cost,
        }
    }

    #[test]
    fn downtime_cost_precedence_is_part_then_class_then_machine() {
        let mut network = Network::default();
        assert_eq!(part_downtime_cost_per_hour(&network, &part(None)), None);
        network.criticality_costs.insert(
            Criticality::Essential,
            CriticalityCost {
                criticality: Criticality::Essential,
                downtime_cost_usd_per_hour: 100.0,
            },
        );
        assert_eq!(
            part_downtime_cost_per_hour(&network, &part(None)),
            Some(100.0)
        );
        assert_eq!(
            part_downtime_cost_per_hour(&network, &part(Some(7.0))),
            Some(7.0)
        );
    }

    #[test]
    fn a_rate_is_priced_by_the_store_s_largest_fleet_carrying_the_part() {
        use crate::domain::network::{Fleet, MachineModel, ModelPart};
        let mut network = Network::default();
        for (id, cost, carries) in [
            ("BIG", 50.0, true),
            ("RICH", 900.0, true),
            ("OTHER", 1.0, false),
        ] {
            let parts = carries
                .then(|| ModelPart {
                    part_id: "P".into(),
                    units_per_machine: 1,
                    attach_rate: 1.0,
                    failures_per_million_operating_hours: 10.0,
                    weibull_shape: 1.0,
                })
                .into_iter()
                .collect();
            network.machine_models.insert(
                id.into(),
                MachineModel {
                    id: id.into(),
                    name: id.into(),
                    downtime_cost_usd_per_hour: cost,
                    parts,
                },
            );
        }
        for (store, model, count) in [
            ("S", "BIG", 9),
            ("S", "RICH", 3),
            ("S", "OTHER", 50),
            ("T", "RICH", 99),
        ] {
            network.fleets.insert(
                (store.into(), model.into()),
                Fleet {
                    store_location_id: store.into(),
                    machine_model_id: model.into(),
                    machine_count: count,
                    usage_hours_per_day: 8.0,
                    average_age_hours: 0.0,
                },
            );
        }
        // Only active locations count; S and T are both known here.
        for id in ["S", "T"] {
            network.locations.insert(
                id.into(),
                crate::domain::network::Location {
                    id: id.into(),
                    name: id.into(),
                    kind: LocationKind::Store,
                    latitude_deg: 0.0,
                    longitude_deg: 0.0,
                    time_zone: "UTC".into(),
                    calendar: crate::domain::network::BusinessCalendar::weekdays_8_to_17(),
                    order_cutoff_local: jiff::civil::Time::midnight(),
                    handling_minutes: 0,
                    replenishment_source: None,
                    country_code: String::new(),
                },
            );
        }
        assert_eq!(
            pricing_machine_model(&network, "P", "S").as_deref(),
            Some("BIG")
        );
        assert_eq!(
            pricing_machine_model(&network, "P", "T").as_deref(),
            Some("RICH")
        );
        assert_eq!(pricing_machine_model(&network, "Q", "S"), None);
        network.locations.remove("T");
        assert_eq!(
            pricing_machine_model(&network, "P", "T"),
            None,
            "retired store"
        );
    }

    #[test]
    fn lead_times_in_days_keep_their_median_and_p90() {
        let d = lead_time_days(&LeadTime::Lognormal {
            lead_time_days_p50: 30.0,
            lead_time_days_p90: 60.0,
        });
        let sim::TimeDistribution::LogNormal {
            mean_days,
            std_dev_days,
        } = d
        else {
            panic!("{d:?}")
        };
        let s2 = (1.0 + (std_dev_days / mean_days).powi(2)).ln();
        let mu = mean_days.ln() - s2 / 2.0;
        assert!((mu.exp() - 30.0).abs() < 1e-9);
        assert!(((mu + Z_90 * s2.sqrt()).exp() - 60.0).abs() < 1e-9);
    }

    #[test]
    fn lognormal_lane_keeps_its_median_and_p90() {
        let d = transit_days(&TransitTime::Lognormal {
            transit_hours_p50: 24.0,
            transit_hours_p90: 48.0,
        });
        let sim::TimeDistribution::LogNormal {
            mean_days,
            std_dev_days,
        } = d
        else {
            panic!("{d:?}")
        };
        // Recover mu and sigma from mean and sd, then the median and p90.
        let s2 = (1.0 + (std_dev_days / mean_days).powi(2)).ln();
        let mu = mean_days.ln() - s2 / 2.0;
        assert!((mu.exp() - 1.0).abs() < 1e-9, "median {}", mu.exp());
        assert!(((mu + Z_90 * s2.sqrt()).exp() - 2.0).abs() < 1e-9);
    }
}
