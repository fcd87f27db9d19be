//! Converts the service network into a `spares_simulations::Model`.
//!
//! Conventions, documented once here:
//! - Transit times are calendar hours in the network and days in the model.
//!   A log-normal lane given by (p50, p90) keeps its shape: mu = ln p50,
//!   sigma = (ln p90 - ln p50) / z_0.9, then mean and standard deviation.
//! - Depots are supplied from the factory with [`FACTORY_LEAD_TIME_DAYS_MEAN`].
//! - Failure rates are per million operating hours; a Weibull shape k > 1
//!   keeps the mean life 1 / rate: scale = 1 / (rate * Gamma(1 + 1/k)).
//! - Part criticality maps to the share of a machine's output lost while it
//!   waits: critical 1.0, essential 0.5, routine 0.1.
//! - Policies are the plan in force; a part-location without one holds nothing.

use crate::domain::DomainError;
use crate::domain::network::{
    Criticality, LaneKind, LocationKind, Network, PartId, PolicyKind, TransitTime,
};
use spares_simulations as sim;
use std::collections::BTreeSet;

/// Mean factory-to-depot lead time, in days, when the network gives none.
pub const FACTORY_LEAD_TIME_DAYS_MEAN: f64 = 21.0;
/// Its standard deviation, in days.
pub const FACTORY_LEAD_TIME_DAYS_SD: f64 = 7.0;
/// Parts simulated when a request names none: the ones with the highest
/// expected downtime exposure. Bounds a default run on a 20,000-part network.
pub const DEFAULT_SIMULATED_PARTS: usize = 200;
/// z-score of the 90th percentile of a standard normal.
const Z_90: f64 = 1.281_551_565_544_600_4;

/// Converts a transit-time distribution in hours to the model's, in days.
pub fn transit_days(transit: &TransitTime) -> sim::TimeDistribution {
    match transit {
        TransitTime::Fixed { transit_hours } => sim::TimeDistribution::Deterministic {
            days: transit_hours / 24.0,
        },
        TransitTime::Lognormal {
            transit_hours_p50,
            transit_hours_p90,
        } => {
            let sigma = (transit_hours_p90.ln() - transit_hours_p50.ln()) / Z_90;
            let mean = transit_hours_p50 * (sigma * sigma / 2.0).exp();
            let sd = mean * ((sigma * sigma).exp() - 1.0).sqrt();
            if sd <= 0.0 {
                sim::TimeDistribution::Deterministic { days: mean / 24.0 }
            } else {
                sim::TimeDistribution::LogNormal {
                    mean_days: mean / 24.0,
                    std_dev_days: sd / 24.0,
                }
            }
        }
        TransitTime::Empirical {
            transit_hours_samples,
        } => {
            let lo = transit_hours_samples.first().copied().unwrap_or(0.0);
            let hi = transit_hours_samples.last().copied().unwrap_or(0.0);
            if hi > lo {
                sim::TimeDistribution::Uniform {
                    min_days: lo / 24.0,
                    max_days: hi / 24.0,
                }
            } else {
                sim::TimeDistribution::Deterministic { days: lo / 24.0 }
            }
        }
    }
}

/// Share of a machine's output lost while it waits for a part of this class.
pub fn criticality_share(criticality: Criticality) -> f64 {
    match criticality {
        Criticality::Critical => 1.0,
        Criticality::Essential => 0.5,
        Criticality::Routine => 0.1,
    }
}

/// Expected failures per day of each part across the installed base.
pub fn installed_base_demand_per_day(network: &Network) -> std::collections::BTreeMap<PartId, f64> {
    let mut rates = std::collections::BTreeMap::new();
    for fleet in network.fleets.values() {
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
            *rates.entry(part.part_id.clone()).or_insert(0.0) += rate;
        }
    }
    rates
}

/// The parts a run covers: those asked for, or the default selection by
/// downtime exposure (demand x unit downtime share x the model's cost per hour).
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
    let demand = installed_base_demand_per_day(network);
    let mut exposure: Vec<(f64, PartId)> = demand
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
            external_supply_days: (location.replenishment_source.is_none()).then_some(
                sim::TimeDistribution::LogNormal {
                    mean_days: FACTORY_LEAD_TIME_DAYS_MEAN,
                    std_dev_days: FACTORY_LEAD_TIME_DAYS_SD,
                },
            ),
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
        });
    }
    for policy in network.policies.values() {
        if !wanted.contains(policy.part_id.as_str()) {
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
    Ok(model)
}

/// The lanes the model uses: every lateral and emergency lane, and for each
/// location the one replenishment lane from its replenishment source (the
/// fastest by median when several modes serve it), as the supply tree says.
fn model_lanes(network: &Network) -> Vec<&crate::domain::network::Lane> {
    let mut supply: std::collections::BTreeMap<&str, &crate::domain::network::Lane> =
        std::collections::BTreeMap::new();
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
    for fleet in network.fleets.values() {
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

#[cfg(test)]
mod tests {
    use super::*;

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
