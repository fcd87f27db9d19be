//! The simulation's own input types: network, parts, policies, installed base and demand.
//!
//! These are plain data. The service converts its network into them; `validate` checks them
//! and `compile` turns them into indexed form for the engine. All times are in days unless a
//! name says hours; all stock quantities are integers.

use serde::{Deserialize, Serialize};

/// Everything the engine needs to simulate one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Depots, regional warehouses and stores.
    pub locations: Vec<Location>,
    /// Replenishment (the supply tree), lateral and emergency lanes.
    pub lanes: Vec<Lane>,
    /// The parts simulated; each part's network is simulated independently.
    pub parts: Vec<Part>,
    /// Stocking policy per (part, location). A missing pair means base stock 0.
    pub policies: Vec<StockingPolicy>,
    /// Machine models with their downtime cost.
    pub machine_models: Vec<MachineModel>,
    /// Installed base: fleets of machines at stores.
    pub fleets: Vec<Fleet>,
    /// Failure models per (part, machine model).
    pub failure_models: Vec<FailureModel>,
    /// Periods in which a fleet's failure rates jump.
    pub shocks: Vec<CommonCauseShock>,
    /// Demand histories; a history for a (part, location) replaces the installed-base demand
    /// of that part at that location.
    pub demand_histories: Vec<DemandHistory>,
    /// Demand rates (a planner's forecast). At each (part, location) demand comes from exactly
    /// one source: its rate if it has one, else its history, else the installed base.
    #[serde(default)]
    pub demand_rates: Vec<DemandRate>,
    /// Supplier lead times of one part into one location supplied from outside, overriding
    /// the part's [`Part::supplier_lead_time_days`] and the location's
    /// [`Location::external_supply_days`] there.
    #[serde(default)]
    pub supplier_lead_times: Vec<SupplierLeadTime>,
    /// Periods in which a location is out of service.
    pub outages: Vec<Outage>,
    /// Which fulfilment steps are allowed after the store's own shelf.
    pub fulfilment: FulfilmentRules,
}

/// The level of a location in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Echelon {
    /// Factory depot: top of the supply tree.
    Depot,
    /// Regional warehouse.
    Regional,
    /// Store (dealer or branch): where machines fail and customers wait.
    Store,
}

/// A stocking point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Stable id; random streams are keyed by it.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Level in the network.
    pub echelon: Echelon,
    /// Lead time from an outside supplier, for locations supplied from outside the network
    /// (usually the depot). `None` means supplied only through a replenishment lane.
    pub external_supply_days: Option<TimeDistribution>,
}

/// What a lane is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaneKind {
    /// The supply tree: `from` replenishes `to`.
    Replenishment,
    /// Peer to peer: `from` may lend stock to `to` for a waiting customer.
    Lateral,
    /// Skip-level: `from` (a warehouse or depot) may ship straight to a customer at `to`.
    Emergency,
}

/// A directed transport lane between two locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// Shipping location id.
    pub from: String,
    /// Receiving location id.
    pub to: String,
    /// What the lane is used for.
    pub kind: LaneKind,
    /// Transit time distribution.
    pub transit_days: TimeDistribution,
    /// Cost of one shipment on this lane.
    pub cost_per_shipment: f64,
}

/// A non-negative random duration in days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TimeDistribution {
    /// Always the same.
    Deterministic {
        /// The duration.
        days: f64,
    },
    /// Exponential with the given mean.
    Exponential {
        /// Mean duration.
        mean_days: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound.
        min_days: f64,
        /// Upper bound.
        max_days: f64,
    },
    /// Log-normal with the given mean and standard deviation.
    LogNormal {
        /// Mean duration.
        mean_days: f64,
        /// Standard deviation of the duration.
        std_dev_days: f64,
    },
}

impl TimeDistribution {
    /// The mean duration in days.
    pub fn mean_days(&self) -> f64 {
        match *self {
            TimeDistribution::Deterministic { days } => days,
            TimeDistribution::Exponential { mean_days } => mean_days,
            TimeDistribution::Uniform { min_days, max_days } => 0.5 * (min_days + max_days),
            TimeDistribution::LogNormal { mean_days, .. } => mean_days,
        }
    }

    /// The same distribution with every duration multiplied by `factor`. Sampling draws the
    /// same underlying random numbers, so scaled runs keep common random numbers.
    pub fn scaled(&self, factor: f64) -> TimeDistribution {
        match *self {
            TimeDistribution::Deterministic { days } => TimeDistribution::Deterministic {
                days: days * factor,
            },
            TimeDistribution::Exponential { mean_days } => TimeDistribution::Exponential {
                mean_days: mean_days * factor,
            },
            TimeDistribution::Uniform { min_days, max_days } => TimeDistribution::Uniform {
                min_days: min_days * factor,
                max_days: max_days * factor,
            },
            TimeDistribution::LogNormal {
                mean_days,
                std_dev_days,
            } => TimeDistribution::LogNormal {
                mean_days: mean_days * factor,
                std_dev_days: std_dev_days * factor,
            },
        }
    }
}

/// A spare part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Stable id; random streams are keyed by it.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Cost of one unit.
    pub unit_cost: f64,
    /// Share of a machine's output lost while it waits for this part, in [0, 1]:
    /// 1 means the machine is down, 0 means a nice-to-have.
    pub criticality: f64,
    /// `Some` for a repairable part (METRIC-style repair pipeline), `None` for a consumable.
    pub repair: Option<RepairSpec>,
    /// Lead time from the outside supplier of this part into every location supplied from
    /// outside; `None` takes each location's [`Location::external_supply_days`]. A
    /// [`SupplierLeadTime`] for one location overrides it there.
    #[serde(default)]
    pub supplier_lead_time_days: Option<TimeDistribution>,
    /// What one hour of a machine waiting for this part costs. `Some` prices every wait for
    /// the part (no criticality share on top); `None` prices it at the machine model's
    /// `downtime_cost_per_hour` x `criticality`. Downtime hours are `criticality` x waiting
    /// hours either way.
    #[serde(default)]
    pub downtime_cost_per_hour: Option<f64>,
}

/// The supplier lead time of one part into one location supplied from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierLeadTime {
    /// Part id.
    pub part: String,
    /// Location id (one with outside supply).
    pub location: String,
    /// Days from order to receipt.
    pub lead_time_days: TimeDistribution,
}

/// A demand rate of one part at one location: Poisson when the variance-to-mean ratio is 1;
/// above 1, negative binomial, drawn as a compound Poisson process whose batch sizes are
/// logarithmic (so the count over ANY window is negative binomial with that ratio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandRate {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
    /// Mean units per day.
    pub units_per_day: f64,
    /// Variance over mean of the units in any window, >= 1.
    pub variance_to_mean_ratio: f64,
    /// Machine model whose downtime cost prices a wait, if known.
    pub machine_model: Option<String>,
}

/// How failed units of a repairable part come back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairSpec {
    /// Probability that a store repairs a failed unit itself (METRIC's r_j).
    pub local_repair_probability: f64,
    /// Time for a local repair at a store.
    pub local_repair_days: TimeDistribution,
    /// Depot turnaround for units not repaired locally; the repaired unit joins depot stock.
    pub depot_repair_days: TimeDistribution,
}

/// The stocking policy of one part at one location (continuous review).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockingPolicy {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
    /// The rule.
    pub policy: Policy,
}

/// Continuous-review replenishment rules on the inventory position
/// (on hand + on order - backorders).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Policy {
    /// One-for-one (S-1, S): order whenever the position drops below `level`.
    BaseStock {
        /// Base stock S.
        level: u32,
    },
    /// (s, S): when the position is at or below `reorder_point`, order up to `order_up_to`.
    MinMax {
        /// s, at least -1.
        reorder_point: i64,
        /// S, greater than s.
        order_up_to: i64,
    },
    /// (R, Q): when the position is at or below `reorder_point`, order multiples of `quantity`
    /// until it is above.
    ReorderPointQuantity {
        /// R, at least -1.
        reorder_point: i64,
        /// Q, at least 1.
        quantity: u32,
    },
}

impl Policy {
    /// Stock on hand at time zero: the order-up-to level of the rule.
    pub fn initial_stock(&self) -> i64 {
        match *self {
            Policy::BaseStock { level } => i64::from(level),
            Policy::MinMax { order_up_to, .. } => order_up_to.max(0),
            Policy::ReorderPointQuantity {
                reorder_point,
                quantity,
            } => (reorder_point + i64::from(quantity)).max(0),
        }
    }

    /// Units to order when the inventory position is `position`.
    pub fn order_quantity(&self, position: i64) -> i64 {
        match *self {
            Policy::BaseStock { level } => (i64::from(level) - position).max(0),
            Policy::MinMax {
                reorder_point,
                order_up_to,
            } => {
                if position <= reorder_point {
                    order_up_to - position
                } else {
                    0
                }
            }
            Policy::ReorderPointQuantity {
                reorder_point,
                quantity,
            } => {
                if position <= reorder_point {
                    let quantity = i64::from(quantity);
                    let batches = (reorder_point - position) / quantity + 1;
                    batches * quantity
                } else {
                    0
                }
            }
        }
    }
}

/// A machine model of the installed base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineModel {
    /// Stable id.
    pub id: String,
    /// What one hour of a machine of this model being down costs.
    pub downtime_cost_per_hour: f64,
}

/// Machines of one model served by one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// Stable id; random streams are keyed by it, so adding a fleet shifts no other draws.
    pub id: String,
    /// Store id.
    pub location: String,
    /// Machine model id.
    pub machine_model: String,
    /// Number of machines.
    pub machines: u32,
    /// Operating hours per calendar day.
    pub usage_hours_per_day: f64,
    /// Operating age of every installed unit at time zero (matters for Weibull wear-out).
    pub age_operating_hours: f64,
}

/// How one part fails on one machine model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureModel {
    /// Part id.
    pub part: String,
    /// Machine model id.
    pub machine_model: String,
    /// Installed units of the part per machine.
    pub units_per_machine: u32,
    /// Probability that a failure needs this part (thins the failure process).
    pub attach_rate: f64,
    /// Life distribution of one installed unit.
    pub life: Life,
}

/// Life of one installed unit, in operating hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Life {
    /// Constant failure rate.
    Exponential {
        /// Failures per unit per operating hour.
        failures_per_operating_hour: f64,
    },
    /// Weibull wear-out: a renewal process per installed unit, starting at the fleet's age.
    Weibull {
        /// Shape k (> 1 is wear-out).
        shape: f64,
        /// Scale in operating hours.
        scale_operating_hours: f64,
    },
}

/// A period in which a fleet's failure rates are multiplied (common-cause shock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommonCauseShock {
    /// Fleet id.
    pub fleet: String,
    /// First day of the shock.
    pub start_day: f64,
    /// Day the shock ends.
    pub end_day: f64,
    /// Multiplier on every failure rate of the fleet during the shock.
    pub failure_rate_multiplier: f64,
}

/// Demand history of one part at one store, resampled by bootstrap (Willemain, Smart and
/// Schwarz 2004): occurrence by a two-state Markov chain fitted to the series, sizes resampled
/// from the non-zero history with jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandHistory {
    /// Part id.
    pub part: String,
    /// Store id.
    pub location: String,
    /// Length of one period of the series in days.
    pub period_days: f64,
    /// Units demanded per period, oldest first.
    pub quantities: Vec<u32>,
    /// Machine model whose downtime cost prices a wait, if known.
    pub machine_model: Option<String>,
    /// Multiplier on demand sizes (what-if scenarios); 1 for the history as it is.
    #[serde(default = "one")]
    pub demand_multiplier: f64,
    /// Apply Willemain's jitter to resampled sizes (it can add values not seen in the history,
    /// and raises the mean of size-1 histories).
    #[serde(default = "yes")]
    pub jitter: bool,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// A location out of service: it ships nothing and serves nobody between the two days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// Location id.
    pub location: String,
    /// First day out of service.
    pub start_day: f64,
    /// Day service resumes.
    pub end_day: f64,
}

/// Which fulfilment steps follow the store's own shelf. Backorder is always the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentRules {
    /// Lend from the nearest store with stock over a lateral lane.
    pub lateral: bool,
    /// Ship from the nearest warehouse or depot with stock over an emergency lane.
    pub emergency: bool,
}

impl Default for FulfilmentRules {
    fn default() -> Self {
        FulfilmentRules {
            lateral: true,
            emergency: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_point_quantity_orders_whole_batches_above_the_reorder_point() {
        let policy = Policy::ReorderPointQuantity {
            reorder_point: 2,
            quantity: 3,
        };
        assert_eq!(policy.order_quantity(3), 0);
        assert_eq!(policy.order_quantity(2), 3);
        assert_eq!(policy.order_quantity(-1), 6);
    }

    #[test]
    fn min_max_orders_up_to_the_maximum() {
        let policy = Policy::MinMax {
            reorder_point: 1,
            order_up_to: 5,
        };
        assert_eq!(policy.order_quantity(2), 0);
        assert_eq!(policy.order_quantity(1), 4);
        assert_eq!(policy.order_quantity(-2), 7);
    }

    #[test]
    fn base_stock_is_one_for_one() {
        let policy = Policy::BaseStock { level: 4 };
        assert_eq!(policy.order_quantity(3), 1);
        assert_eq!(policy.order_quantity(4), 0);
    }
}
