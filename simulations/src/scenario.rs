//! What-if scenarios: named changes to a base model, simulated against it with common random
//! numbers, reported as paired differences.

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model::{
    CommonCauseShock, Fleet, LaneKind, Life, Model, Outage, Policy, StockingPolicy,
    SupplierLeadTime,
};
use crate::report::{ReplicationTotals, Report};
use crate::stats::{Estimate, MeanAccumulator};

/// A named set of changes to a base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name shown in reports.
    pub name: String,
    /// Changes, applied in order.
    pub changes: Vec<Change>,
}

/// One change to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A location ships and serves nothing between two days.
    LocationOutOfService {
        /// Location id.
        location: String,
        /// First day out of service.
        start_day: f64,
        /// Day service resumes.
        end_day: f64,
    },
    /// Multiply transit times of the lanes that match every given filter.
    LeadTimeMultiplier {
        /// Only lanes from this location.
        from: Option<String>,
        /// Only lanes to this location.
        to: Option<String>,
        /// Only lanes of this kind.
        kind: Option<LaneKind>,
        /// The multiplier, >= 0.
        multiplier: f64,
    },
    /// Multiply outside-supplier lead times (of one location, or all): the locations' own, the
    /// parts' and the per-(part, location) overrides.
    SupplierLeadTimeMultiplier {
        /// Only this location.
        location: Option<String>,
        /// The multiplier, >= 0.
        multiplier: f64,
    },
    /// Multiply failure rates (of one part and/or machine model, or all).
    FailureRateMultiplier {
        /// Only this part.
        part: Option<String>,
        /// Only this machine model.
        machine_model: Option<String>,
        /// The multiplier, > 0.
        multiplier: f64,
    },
    /// Multiply demand drawn from histories and demand rates (of one part and/or location, or
    /// all).
    DemandMultiplier {
        /// Only this part.
        part: Option<String>,
        /// Only this location.
        location: Option<String>,
        /// The multiplier, >= 0.
        multiplier: f64,
    },
    /// Add a fleet; its id keys new random streams, so other entities' draws do not move.
    AddFleet(Fleet),
    /// Add a common-cause shock: a period in which a fleet's failure rates jump.
    AddShock(CommonCauseShock),
    /// Set the stocking policy of one part at one location.
    SetPolicy {
        /// Part id.
        part: String,
        /// Location id.
        location: String,
        /// The new policy.
        policy: Policy,
    },
}

fn check_multiplier(change: &str, value: f64, positive: bool) -> Result<(), SimError> {
    let valid = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    if valid {
        Ok(())
    } else {
        Err(SimError::invalid(
            change,
            "multiplier",
            value,
            "must be finite and not negative",
        ))
    }
}

fn matches(filter: &Option<String>, id: &str) -> bool {
    filter.as_deref().is_none_or(|wanted| wanted == id)
}

impl Scenario {
    /// The base model with this scenario's changes applied. Pure: `base` is not touched.
    ///
    /// # Errors
    /// [`SimError::InvalidValue`] for a bad multiplier. References to unknown ids surface
    /// when the changed model is validated by [`crate::simulate`].
    pub fn apply(&self, base: &Model) -> Result<Model, SimError> {
        let mut model = base.clone();
        for change in &self.changes {
            apply_change(&mut model, change)?;
        }
        Ok(model)
    }
}

/// Scales every supplier lead time into `location` (or everywhere). A part's own lead time
/// applies at every location with outside supply, so for one location it is scaled by
/// adding an override there, leaving the other locations as they were.
fn scale_supplier_lead_times(model: &mut Model, location: &Option<String>, multiplier: f64) {
    let mut added = Vec::new();
    for node in model
        .locations
        .iter_mut()
        .filter(|l| matches(location, &l.id))
    {
        node.external_supply_days = node.external_supply_days.map(|d| d.scaled(multiplier));
        let Some(id) = location.as_ref() else {
            continue;
        };
        if node.external_supply_days.is_none() {
            continue;
        }
        for part in &model.parts {
            let overridden = model
                .supplier_lead_times
                .iter()
                .any(|s| s.part == part.id && &s.location == id);
            if let (Some(own), false) = (part.supplier_lead_time_days, overridden) {
                added.push(SupplierLeadTime {
                    part: part.id.clone(),
                    location: id.clone(),
                    lead_time_days: own,
                });
            }
        }
    }
    for supply in &mut model.supplier_lead_times {
        if matches(location, &supply.location) {
            supply.lead_time_days = supply.lead_time_days.scaled(multiplier);
        }
    }
    for supply in &mut added {
        supply.lead_time_days = supply.lead_time_days.scaled(multiplier);
    }
    model.supplier_lead_times.extend(added);
    if location.is_none() {
        for part in &mut model.parts {
            part.supplier_lead_time_days =
                part.supplier_lead_time_days.map(|d| d.scaled(multiplier));
        }
    }
}

fn apply_change(model: &mut Model, change: &Change) -> Result<(), SimError> {
    match change {
        Change::LocationOutOfService {
            location,
            start_day,
            end_day,
        } => model.outages.push(Outage {
            location: location.clone(),
            start_day: *start_day,
            end_day: *end_day,
        }),
        Change::LeadTimeMultiplier {
            from,
            to,
            kind,
            multiplier,
        } => {
            check_multiplier("lead-time change", *multiplier, false)?;
            for lane in &mut model.lanes {
                if matches(from, &lane.from)
                    && matches(to, &lane.to)
                    && kind.is_none_or(|k| k == lane.kind)
                {
                    lane.transit_days = lane.transit_days.scaled(*multiplier);
                }
            }
        }
        Change::SupplierLeadTimeMultiplier {
            location,
            multiplier,
        } => {
            check_multiplier("supplier lead-time change", *multiplier, false)?;
            scale_supplier_lead_times(model, location, *multiplier);
        }
        Change::FailureRateMultiplier {
            part,
            machine_model,
            multiplier,
        } => {
            check_multiplier("failure-rate change", *multiplier, true)?;
            for failure in &mut model.failure_models {
                if matches(part, &failure.part) && matches(machine_model, &failure.machine_model) {
                    failure.life = scaled_life(failure.life, *multiplier);
                }
            }
        }
        Change::DemandMultiplier {
            part,
            location,
            multiplier,
        } => {
            check_multiplier("demand change", *multiplier, false)?;
            for history in &mut model.demand_histories {
                if matches(part, &history.part) && matches(location, &history.location) {
                    history.demand_multiplier *= *multiplier;
                }
            }
            for rate in &mut model.demand_rates {
                if matches(part, &rate.part) && matches(location, &rate.location) {
                    rate.units_per_day *= *multiplier;
                }
            }
        }
        Change::AddFleet(fleet) => model.fleets.push(fleet.clone()),
        Change::AddShock(shock) => model.shocks.push(shock.clone()),
        Change::SetPolicy {
            part,
            location,
            policy,
        } => {
            model
                .policies
                .retain(|p| !(p.part == *part && p.location == *location));
            model.policies.push(StockingPolicy {
                part: part.clone(),
                location: location.clone(),
                policy: *policy,
            });
        }
    }
    Ok(())
}

/// Multiplies the hazard: the exponential rate directly, the Weibull scale by m^(-1/k).
fn scaled_life(life: Life, multiplier: f64) -> Life {
    match life {
        Life::Exponential {
            failures_per_operating_hour,
        } => Life::Exponential {
            failures_per_operating_hour: failures_per_operating_hour * multiplier,
        },
        Life::Weibull {
            shape,
            scale_operating_hours,
        } => Life::Weibull {
            shape,
            scale_operating_hours: scale_operating_hours * multiplier.powf(-1.0 / shape),
        },
    }
}

/// Scenario minus baseline, paired by replication (common random numbers), each with a 95%
/// interval of the mean difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// Units demanded.
    pub demand_units: Estimate,
    /// First-time fill rate, over replications where both runs had demand.
    pub first_time_fill_rate: Option<Estimate>,
    /// Expected customer backorders.
    pub expected_backorders: Estimate,
    /// Downtime hours in the window.
    pub downtime_hours: Estimate,
    /// Downtime cost in the window.
    pub downtime_cost: Estimate,
    /// Downtime hours of the worst week.
    pub worst_week_downtime_hours: Estimate,
    /// Downtime cost of the worst week.
    pub worst_week_downtime_cost: Estimate,
    /// Lateral shipment cost.
    pub lateral_cost: Estimate,
    /// Emergency shipment cost.
    pub emergency_cost: Estimate,
}

/// The paired difference for one part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartDifference {
    /// Part id.
    pub part: String,
    /// Scenario minus baseline.
    pub difference: Difference,
}

/// The result of [`crate::compare`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// The base model's report.
    pub baseline: Report,
    /// The changed model's report.
    pub changed: Report,
    /// Network-wide paired differences.
    pub network: Difference,
    /// Paired differences per part present in both models, in base-model order.
    pub parts: Vec<PartDifference>,
}

/// Paired differences of two equally long series of replication totals.
pub(crate) fn difference(
    base: &[ReplicationTotals],
    changed: &[ReplicationTotals],
    window_days: f64,
) -> Difference {
    let paired = |value: fn(&ReplicationTotals) -> f64| {
        let mut accumulator = MeanAccumulator::default();
        for (b, c) in base.iter().zip(changed) {
            accumulator.push(value(c) - value(b));
        }
        accumulator.estimate()
    };
    let mut fill = MeanAccumulator::default();
    let mut any_fill = false;
    for (b, c) in base.iter().zip(changed) {
        if b.demand_units > 0.0 && c.demand_units > 0.0 {
            any_fill = true;
            fill.push(c.first_time_fills / c.demand_units - b.first_time_fills / b.demand_units);
        }
    }
    let backorders = paired(|t| t.backorder_unit_days);
    Difference {
        demand_units: paired(|t| t.demand_units),
        first_time_fill_rate: any_fill.then(|| fill.estimate()),
        expected_backorders: Estimate {
            mean: backorders.mean / window_days,
            half_width_95: backorders.half_width_95.map(|h| h / window_days),
        },
        downtime_hours: paired(|t| t.downtime_hours),
        downtime_cost: paired(|t| t.downtime_cost),
        worst_week_downtime_hours: paired(|t| t.worst_week_downtime_hours),
        worst_week_downtime_cost: paired(|t| t.worst_week_downtime_cost),
        lateral_cost: paired(|t| t.lateral_cost),
        emergency_cost: paired(|t| t.emergency_cost),
    }
}
