//! What a simulation returns: measures per part, per location, per part-location and for the
//! whole network, downtime risk over replications, and per-replication samples.

use serde::{Deserialize, Serialize};

use crate::stats::{Estimate, TailSummary};

/// The result of [`crate::simulate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The seed every stream was derived from.
    pub seed: u64,
    /// Replications run.
    pub replications: u32,
    /// Simulated days per replication, warm-up included.
    pub horizon_days: f64,
    /// Unmeasured days at the start.
    pub warm_up_days: f64,
    /// Weeks in the measured window (the last may be partial).
    pub weeks: usize,
    /// Network-wide results.
    pub network: LevelReport,
    /// One entry per part, in model order.
    pub parts: Vec<PartReport>,
    /// One entry per location, in model order.
    pub locations: Vec<LocationReport>,
    /// One entry per (part, location) with demand, a policy, or on a path that demand uses.
    pub part_locations: Vec<PartLocationReport>,
    /// Network totals of every replication, in replication order.
    pub replication_totals: Vec<ReplicationTotals>,
    /// Per-replication samples per part-location, when asked for.
    pub scenario_samples: Option<ScenarioSamples>,
}

/// Measures plus downtime risk of one level of aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    /// Means with confidence intervals.
    pub measures: Measures,
    /// Downtime distributions over replications.
    pub downtime: DowntimeRisk,
}

/// Results of one part over all locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartReport {
    /// Part id.
    pub part: String,
    /// Measures and risk.
    pub report: LevelReport,
}

/// Results of one location over all parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationReport {
    /// Location id.
    pub location: String,
    /// Measures and risk.
    pub report: LevelReport,
}

/// Results of one part at one location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartLocationReport {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
    /// Means with confidence intervals.
    pub measures: Measures,
}

/// Means over replications of the measured window, each with a 95% interval.
///
/// Fill rate, waits and availability are `None` where they are undefined (no demand, or no
/// machines), never NaN. Backorders count customers waiting at stores, except in a
/// location's own report, where a warehouse's backorders are its children's unfilled orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Units demanded in the window.
    pub demand_units: Estimate,
    /// Share of demand served at once from the store's own shelf.
    pub first_time_fill_rate: Option<Estimate>,
    /// Share of machine time not lost for want of a part (weighted by part criticality).
    pub availability: Option<Estimate>,
    /// Time-average number of units backordered.
    pub expected_backorders: Estimate,
    /// Mean customer wait in days (zero for first-time fills).
    pub mean_wait_days: Option<Estimate>,
    /// P(customer wait <= t) at the configured thresholds.
    pub wait_time_distribution: Vec<WaitPoint>,
    /// Machine downtime hours in the window.
    pub downtime_hours: Estimate,
    /// Downtime cost in the window.
    pub downtime_cost: Estimate,
    /// Lateral shipments to customers.
    pub lateral_shipments: Estimate,
    /// Cost of lateral shipments.
    pub lateral_cost: Estimate,
    /// Emergency shipments to customers.
    pub emergency_shipments: Estimate,
    /// Cost of emergency shipments.
    pub emergency_cost: Estimate,
    /// Demand in the first mean replenishment lead time after the warm-up.
    pub lead_time_demand_units: Estimate,
}

/// One point of the customer wait-time distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WaitPoint {
    /// Threshold t in days.
    pub wait_days_at_most: f64,
    /// P(wait <= t); `None` without demand.
    pub probability: Option<Estimate>,
}

/// Downtime over replications: the window total and the worst week, in hours and cost.
/// `None` only when there are no replications to summarise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DowntimeRisk {
    /// Total downtime hours in the window.
    pub total_hours: Option<TailSummary>,
    /// Downtime hours of the worst week.
    pub worst_week_hours: Option<TailSummary>,
    /// Total downtime cost in the window.
    pub total_cost: Option<TailSummary>,
    /// Downtime cost of the worst week.
    pub worst_week_cost: Option<TailSummary>,
}

/// Totals of one replication (network-wide, or for one part inside a comparison).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplicationTotals {
    /// Replication number, from 0.
    pub replication: u32,
    /// Units demanded.
    pub demand_units: f64,
    /// Units served at once from the store's shelf.
    pub first_time_fills: f64,
    /// Customer backorder unit-days.
    pub backorder_unit_days: f64,
    /// Downtime hours.
    pub downtime_hours: f64,
    /// Downtime cost.
    pub downtime_cost: f64,
    /// Downtime hours of the worst week.
    pub worst_week_downtime_hours: f64,
    /// Downtime cost of the worst week.
    pub worst_week_downtime_cost: f64,
    /// Lateral shipments.
    pub lateral_shipments: f64,
    /// Lateral shipment cost.
    pub lateral_cost: f64,
    /// Emergency shipments.
    pub emergency_shipments: f64,
    /// Emergency shipment cost.
    pub emergency_cost: f64,
}

/// Per-replication samples that the solver can use as equiprobable scenarios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSamples {
    /// The part-locations sampled, in the order used by every replication's row.
    pub part_locations: Vec<PartLocationKey>,
    /// One row per replication, in replication order; each row follows `part_locations`.
    pub replications: Vec<Vec<PartLocationSample>>,
}

/// A (part, location) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLocationKey {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
}

/// One replication's outcome at one part-location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PartLocationSample {
    /// Units demanded in the window.
    pub demand_units: u64,
    /// Units of that demand served from the location's own shelf at once.
    #[serde(default)]
    pub first_time_fills: u64,
    /// Units demanded in the first mean replenishment lead time after the warm-up.
    pub lead_time_demand_units: u64,
    /// Backorder unit-days in the window.
    pub backorder_unit_days: f64,
    /// Downtime hours realised.
    pub downtime_hours: f64,
    /// Downtime cost realised.
    pub downtime_cost: f64,
    /// Cost of the lateral and emergency shipments that served this location.
    #[serde(default)]
    pub expediting_cost: f64,
}
