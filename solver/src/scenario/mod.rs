//! Consequence-based sizing: a scenario LP (sample average approximation) that chooses stock
//! per part-location to minimise holding cost + expected downtime cost + lambda CVaR_alpha of
//! downtime cost, with lateral and emergency recourse, a budget, location capacity and fill
//! rate floors.
//!
//! A scenario is one replenishment cycle: `demand[k][i]` units are demanded at part-location
//! `i` while its stock is out for resupply. Demand is served from the location's own shelf,
//! by lateral shipment from a peer's shelf of the same part (lane cost + downtime cost per
//! hour x lane delay), or by emergency shipment (emergency cost + downtime cost per hour x
//! emergency delay); the cheapest mix is used, and no unit passes through a second location. The "downtime cost" of a
//! scenario is the sum of those consequences. Scenarios are equiprobable.
//!
//! The same decomposition also solves [`CurveModel`]: per-part-location consequence curves
//! simulated over the whole horizon, which is what the service trains on by default.
//!
//! Three methods (see `ARCHITECTURE.md` notes in [`Method`]): an exact MILP for tiny models,
//! the joint LP with a checked rounding-and-repair step for moderate ones, and a Lagrangian
//! decomposition over per-part candidate curves for large ones. Each reports a lower bound
//! and its optimality gap.

mod curves;
mod decompose;
mod evaluate;
mod joint;
mod vectors;

pub use curves::{CurveItem, CurveModel, optimize_curves};

pub use evaluate::{Evaluation, evaluate};

/// Per-scenario downtime cost of one lane group under `stock` (for explanations).
pub(crate) fn evaluate_group(p: &Prepared, group: usize, stock: &[u64]) -> Vec<f64> {
    evaluate::group_losses(p, group, stock)
}
pub use joint::{build_lp, stock_from_lp};
pub use vectors::{VectorBlock, VectorCandidate, VectorModel, VectorPlan, optimize_vectors};

use crate::error::{Result, SolverError, invalid, non_negative, open_unit, positive};
use crate::lp::Backend;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Most part-location x scenario cells one model may hold (memory: the decomposition keeps
/// one loss per candidate level and scenario).
pub const MAX_CELLS: usize = 20_000_000;
/// Most stock combinations enumerated for one group of part-locations joined by lanes.
pub const MAX_GROUP_CANDIDATES: usize = 4096;
/// Largest model (part-locations x scenarios) `Method::Auto` sends to the joint LP.
pub const AUTO_JOINT_CELLS: usize = 100_000;
/// Largest model `Method::Auto` solves as an exact MILP.
pub const AUTO_EXACT_CELLS: usize = 400;

/// One part at one location: costs, consequences and service floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartLocation {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
    /// Money tied up per unit (counts against the budget).
    pub unit_cost: f64,
    /// Holding cost per unit per scenario period.
    pub holding_cost: f64,
    /// Cost of one hour of downtime for one unit short.
    pub downtime_cost_per_hour: f64,
    /// Hours an emergency shipment takes.
    pub emergency_delay_hours: f64,
    /// Cost per unit of an emergency shipment.
    pub emergency_cost_per_unit: f64,
    /// Least share of demand served from this location's own shelf, if any (critical parts).
    pub fill_rate_floor: Option<f64>,
    /// Most units this part-location may hold, if limited.
    pub max_stock: Option<u64>,
}

/// A lateral lane between two part-locations of the same part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateralLane {
    /// Index of the part-location that ships.
    pub from: usize,
    /// Index of the part-location that receives.
    pub to: usize,
    /// Hours the lateral shipment takes.
    pub delay_hours: f64,
    /// Cost per unit shipped.
    pub cost_per_unit: f64,
}

/// Most units a location may hold over all parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationCapacity {
    /// Location id (as in [`PartLocation::location`]).
    pub location: String,
    /// Most units.
    pub max_units: u64,
}

/// The consequence-sizing model as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioModel {
    /// Part-locations to size.
    pub part_locations: Vec<PartLocation>,
    /// Lateral lanes (same part only).
    pub lanes: Vec<LateralLane>,
    /// Capacity limits.
    pub capacities: Vec<LocationCapacity>,
    /// `demand[k][i]`: units demanded at part-location `i` in scenario `k`.
    pub demand: Vec<Vec<u64>>,
    /// Most money to tie up in stock, if limited.
    pub budget: Option<f64>,
    /// CVaR confidence level, e.g. 0.95.
    pub cvar_alpha: f64,
    /// Weight lambda of the CVaR term (0 = risk neutral).
    pub cvar_weight: f64,
}

/// How to solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Exact MILP for tiny models, joint LP for moderate ones, decomposition for large ones.
    Auto,
    /// MILP with integer stock (microlp or highs): exact, for small models only.
    Exact,
    /// The joint LP relaxation, then checked rounding and repair to integers.
    Joint,
    /// Lagrangian decomposition: a multiplier on the budget, capacity multipliers, and
    /// scenario weights for the CVaR term; each part (group joined by lanes) is priced
    /// independently over its integer candidate stock levels. No LP backend is needed.
    Decomposed,
}

impl FromStr for Method {
    type Err = SolverError;
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "exact" => Ok(Self::Exact),
            "joint" => Ok(Self::Joint),
            "decomposed" => Ok(Self::Decomposed),
            other => Err(invalid("method", format!("unknown method `{other}`"))),
        }
    }
}

/// Solve settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizeOptions {
    /// LP backend for the exact and joint methods.
    pub backend: Backend,
    /// Wall-clock limit for the whole solve.
    pub time_limit_seconds: f64,
    /// Method.
    pub method: Method,
    /// Relative gap at which the decomposition stops.
    pub gap_tolerance: f64,
    /// Most decomposition iterations.
    pub max_iterations: usize,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Clarabel,
            time_limit_seconds: 60.0,
            method: Method::Auto,
            gap_tolerance: 1e-3,
            max_iterations: 200,
        }
    }
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanStatus {
    /// Proven optimal (exact MILP) or within the gap tolerance of the lower bound.
    Optimal,
    /// Stopped by the time limit; the plan is feasible and the gap is reported.
    TimeLimit,
    /// Stopped by the iteration limit or by the end of repair; the gap is reported.
    Feasible,
}

/// The recommended integer stock with its evaluation and proof of quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Units per part-location.
    pub stock: Vec<u64>,
    /// Exact evaluation of `stock` on the scenarios.
    pub evaluation: Evaluation,
    /// A lower bound on the best integer objective.
    pub lower_bound: f64,
    /// (objective - lower bound) / max(|objective|, 1e-9).
    pub gap: f64,
    /// How the solve ended.
    pub status: PlanStatus,
    /// Method actually used.
    pub method: Method,
    /// Backend used, if an LP was solved.
    pub backend: Option<Backend>,
    /// Iterations (decomposition) or repair moves (joint).
    pub iterations: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Derived per-model data shared by all methods.
pub(crate) struct Prepared<'a> {
    pub model: &'a ScenarioModel,
    /// Consequence per unit covered by emergency shipment, per part-location.
    pub emergency_penalty: Vec<f64>,
    /// Consequence per unit on each lane.
    pub lane_penalty: Vec<f64>,
    /// Largest useful stock per part-location.
    pub upper: Vec<u64>,
    /// Groups of part-locations joined by lanes (singletons when no lanes).
    pub groups: Vec<Vec<usize>>,
    /// Group of each part-location.
    pub group_of: Vec<usize>,
    /// Capacity rows: (limit, member part-locations).
    pub capacity_rows: Vec<(u64, Vec<usize>)>,
    /// Total demand per part-location over all scenarios (for fill floors).
    pub total_demand: Vec<u64>,
}

impl ScenarioModel {
    /// Number of scenarios.
    pub fn scenario_count(&self) -> usize {
        self.demand.len()
    }

    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        let n = self.part_locations.len();
        if n == 0 {
            return Err(invalid("part_locations", "must not be empty"));
        }
        if self.demand.is_empty() {
            return Err(invalid("demand", "needs at least one scenario"));
        }
        let cells = n.saturating_mul(self.demand.len());
        if cells > MAX_CELLS {
            return Err(SolverError::OutOfRange {
                field: "demand".into(),
                value: cells as f64,
                limit: MAX_CELLS as f64,
                reason: "part-locations x scenarios bounds memory".into(),
            });
        }
        for (k, row) in self.demand.iter().enumerate() {
            if row.len() != n {
                return Err(invalid(
                    format!("demand[{k}]"),
                    format!("needs {n} entries, has {}", row.len()),
                ));
            }
        }
        for (i, p) in self.part_locations.iter().enumerate() {
            validate_part_location(i, p)?;
        }
        for (l, lane) in self.lanes.iter().enumerate() {
            self.validate_lane(l, lane)?;
        }
        if let Some(budget) = self.budget {
            non_negative("budget", budget)?;
        }
        open_unit("cvar_alpha", self.cvar_alpha)?;
        non_negative("cvar_weight", self.cvar_weight)?;
        Ok(())
    }

    /// Checks one lane.
    fn validate_lane(&self, l: usize, lane: &LateralLane) -> Result<()> {
        let n = self.part_locations.len();
        if lane.from >= n || lane.to >= n || lane.from == lane.to {
            return Err(invalid(
                format!("lanes[{l}]"),
                "must join two different part-locations",
            ));
        }
        if self.part_locations[lane.from].part != self.part_locations[lane.to].part {
            return Err(invalid(
                format!("lanes[{l}]"),
                "must join locations of the same part",
            ));
        }
        non_negative(&format!("lanes[{l}].delay_hours"), lane.delay_hours)?;
        non_negative(&format!("lanes[{l}].cost_per_unit"), lane.cost_per_unit)?;
        Ok(())
    }

    /// Validates and derives the shared data.
    pub(crate) fn prepare(&self) -> Result<Prepared<'_>> {
        self.validate()?;
        let n = self.part_locations.len();
        let emergency_penalty = self
            .part_locations
            .iter()
            .map(|p| p.emergency_cost_per_unit + p.downtime_cost_per_hour * p.emergency_delay_hours)
            .collect();
        let lane_penalty = self
            .lanes
            .iter()
            .map(|l| {
                l.cost_per_unit + self.part_locations[l.to].downtime_cost_per_hour * l.delay_hours
            })
            .collect();
        let (groups, group_of) = self.groups();
        let upper = self.upper_bounds(&groups, &group_of);
        let capacity_rows = self.capacity_rows()?;
        let mut total_demand = vec![0u64; n];
        for row in &self.demand {
            for (i, d) in row.iter().enumerate() {
                total_demand[i] = total_demand[i].saturating_add(*d);
            }
        }
        Ok(Prepared {
            model: self,
            emergency_penalty,
            lane_penalty,
            upper,
            groups,
            group_of,
            capacity_rows,
            total_demand,
        })
    }

    /// Connected components of the lane graph.
    fn groups(&self) -> (Vec<Vec<usize>>, Vec<usize>) {
        let n = self.part_locations.len();
        let mut root: Vec<usize> = (0..n).collect();
        fn find(root: &mut [usize], mut i: usize) -> usize {
            while root[i] != i {
                root[i] = root[root[i]];
                i = root[i];
            }
            i
        }
        for lane in &self.lanes {
            let (a, b) = (find(&mut root, lane.from), find(&mut root, lane.to));
            root[a.max(b)] = a.min(b);
        }
        let mut group_of = vec![0; n];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut index_of_root = vec![usize::MAX; n];
        for (i, group) in group_of.iter_mut().enumerate() {
            let r = find(&mut root, i);
            if index_of_root[r] == usize::MAX {
                index_of_root[r] = groups.len();
                groups.push(Vec::new());
            }
            *group = index_of_root[r];
            groups[index_of_root[r]].push(i);
        }
        (groups, group_of)
    }

    /// Stock above the largest demand it could ever serve is useless: the bound is the
    /// largest scenario demand of the part-location, or of its whole group if it ships
    /// laterally, capped by `max_stock`.
    fn upper_bounds(&self, groups: &[Vec<usize>], group_of: &[usize]) -> Vec<u64> {
        let n = self.part_locations.len();
        let ships: Vec<bool> = (0..n)
            .map(|i| self.lanes.iter().any(|l| l.from == i))
            .collect();
        (0..n)
            .map(|i| {
                let members: Vec<usize> = if ships[i] {
                    groups[group_of[i]].clone()
                } else {
                    vec![i]
                };
                let most = self
                    .demand
                    .iter()
                    .map(|row| members.iter().map(|&m| row[m]).sum::<u64>())
                    .max()
                    .unwrap_or(0);
                most.min(self.part_locations[i].max_stock.unwrap_or(u64::MAX))
            })
            .collect()
    }

    /// Capacity rows with their member part-locations.
    fn capacity_rows(&self) -> Result<Vec<(u64, Vec<usize>)>> {
        self.capacities
            .iter()
            .enumerate()
            .map(|(c, cap)| {
                let members: Vec<usize> = (0..self.part_locations.len())
                    .filter(|&i| self.part_locations[i].location == cap.location)
                    .collect();
                if members.is_empty() {
                    return Err(invalid(
                        format!("capacities[{c}].location"),
                        format!("no part-location at `{}`", cap.location),
                    ));
                }
                Ok((cap.max_units, members))
            })
            .collect()
    }
}

/// Checks one part-location.
fn validate_part_location(i: usize, p: &PartLocation) -> Result<()> {
    let field = |name: &str| format!("part_locations[{i}].{name}");
    non_negative(&field("unit_cost"), p.unit_cost)?;
    non_negative(&field("holding_cost"), p.holding_cost)?;
    non_negative(&field("downtime_cost_per_hour"), p.downtime_cost_per_hour)?;
    non_negative(&field("emergency_delay_hours"), p.emergency_delay_hours)?;
    non_negative(&field("emergency_cost_per_unit"), p.emergency_cost_per_unit)?;
    if let Some(floor) = p.fill_rate_floor {
        positive(&field("fill_rate_floor"), floor)?;
        if floor > 1.0 {
            return Err(invalid(field("fill_rate_floor"), "must be at most 1"));
        }
    }
    Ok(())
}

/// Solves the model. Errors: `InvalidInput`/`OutOfRange` for a bad model, `Infeasible` when
/// no integer stock meets the budget, capacities and floors, `TimeLimit` when the limit
/// passed before any plan was found, backend errors for the LP methods.
pub fn optimize(model: &ScenarioModel, options: &OptimizeOptions) -> Result<Plan> {
    positive("time_limit_seconds", options.time_limit_seconds)?;
    let prepared = model.prepare()?;
    let cells = model.part_locations.len() * model.scenario_count();
    let method = match options.method {
        Method::Auto if cells <= AUTO_EXACT_CELLS && options.backend.supports_integers() => {
            Method::Exact
        }
        Method::Auto if cells <= AUTO_JOINT_CELLS => Method::Joint,
        Method::Auto => Method::Decomposed,
        chosen => chosen,
    };
    match method {
        Method::Exact => joint::solve_exact(&prepared, options),
        Method::Joint => joint::solve_joint(&prepared, options),
        _ => decompose::solve_decomposed(&prepared, options),
    }
}

#[cfg(test)]
mod tests;
