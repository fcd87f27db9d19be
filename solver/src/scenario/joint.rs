//! The joint scenario LP (Rockafellar-Uryasev CVaR), the exact MILP, and the one checked
//! conversion of LP values to integer stock followed by repair.

use super::evaluate::{group_losses, summarise};
use super::{Method, OptimizeOptions, Plan, PlanStatus, Prepared, ScenarioModel};
use crate::error::{Result, SolverError, invalid};
use crate::lp::{LinearProgram, LpStatus, Sense};
use crate::tail::cvar;
use std::time::Instant;

/// Builds the scenario LP. Columns 0..n are the stock per part-location (integer when
/// `integer_stock`); then, per scenario, emergency units per part-location with demand and
/// lateral units per lane; then the CVaR excess per scenario and the threshold t.
pub fn build_lp(model: &ScenarioModel, integer_stock: bool) -> Result<LinearProgram> {
    let prepared = model.prepare()?;
    Ok(build(&prepared, integer_stock))
}

/// Builds the LP from prepared data.
pub(crate) fn build(p: &Prepared, integer_stock: bool) -> LinearProgram {
    let m = p.model;
    let (n, scenarios) = (m.part_locations.len(), m.scenario_count());
    let share = 1.0 / scenarios as f64;
    let mut lp = LinearProgram::default();
    for (i, q) in m.part_locations.iter().enumerate() {
        lp.add_column(0.0, p.upper[i] as f64, q.holding_cost, integer_stock);
    }
    let has_lane: Vec<bool> = (0..n)
        .map(|i| m.lanes.iter().any(|l| l.from == i || l.to == i))
        .collect();
    let risk = m.cvar_weight > 0.0;
    let threshold =
        risk.then(|| lp.add_column(f64::NEG_INFINITY, f64::INFINITY, m.cvar_weight, false));
    let excess_cost = m.cvar_weight * share / (1.0 - m.cvar_alpha);
    // Columns counting units not served from each floored part-location's own shelf.
    let mut unserved: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for demand in &m.demand {
        let mut loss_terms: Vec<(usize, f64)> = Vec::new();
        let mut supply: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        let mut shelf: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for (l, lane) in m.lanes.iter().enumerate() {
            if demand[lane.to] == 0 {
                continue;
            }
            let y = lp.add_column(0.0, f64::INFINITY, share * p.lane_penalty[l], false);
            loss_terms.push((y, -p.lane_penalty[l]));
            supply[lane.to].push((y, 1.0));
            shelf[lane.from].push((y, 1.0));
        }
        for i in 0..n {
            add_location_rows(
                p,
                &mut lp,
                i,
                demand[i],
                has_lane[i],
                &mut supply[i],
                &mut shelf[i],
                &mut loss_terms,
                &mut unserved[i],
            );
        }
        if let Some(t) = threshold {
            let v = lp.add_column(0.0, f64::INFINITY, excess_cost, false);
            loss_terms.push((v, 1.0));
            loss_terms.push((t, 1.0));
            lp.add_row(loss_terms, Sense::GreaterEqual, 0.0);
        }
    }
    add_side_rows(p, &mut lp, unserved);
    lp
}

/// Rows of one part-location in one scenario. Without lanes: x + e >= D. With lanes: a
/// shelf row (own use + lateral out <= x) and a demand row (own use + lateral in + e >= D).
#[allow(clippy::too_many_arguments)]
fn add_location_rows(
    p: &Prepared,
    lp: &mut LinearProgram,
    i: usize,
    demand: u64,
    has_lane: bool,
    supply: &mut Vec<(usize, f64)>,
    shelf: &mut Vec<(usize, f64)>,
    loss_terms: &mut Vec<(usize, f64)>,
    unserved: &mut Vec<(usize, f64)>,
) {
    let share = 1.0 / p.model.scenario_count() as f64;
    let floored = p.model.part_locations[i].fill_rate_floor.is_some();
    if demand > 0 {
        let e = lp.add_column(0.0, f64::INFINITY, share * p.emergency_penalty[i], false);
        loss_terms.push((e, -p.emergency_penalty[i]));
        if !has_lane {
            lp.add_row(vec![(i, 1.0), (e, 1.0)], Sense::GreaterEqual, demand as f64);
            if floored {
                unserved.push((e, 1.0));
            }
            return;
        }
        let own = lp.add_column(0.0, f64::INFINITY, 0.0, false);
        supply.push((own, 1.0));
        supply.push((e, 1.0));
        shelf.push((own, 1.0));
        lp.add_row(std::mem::take(supply), Sense::GreaterEqual, demand as f64);
        if floored {
            // short >= D - x: the own-shelf shortage, whatever the recourse does.
            let short = lp.add_column(0.0, f64::INFINITY, 0.0, false);
            lp.add_row(
                vec![(short, 1.0), (i, 1.0)],
                Sense::GreaterEqual,
                demand as f64,
            );
            unserved.push((short, 1.0));
        }
    }
    if !shelf.is_empty() {
        let mut row = std::mem::take(shelf);
        row.push((i, -1.0));
        lp.add_row(row, Sense::LessEqual, 0.0);
    }
}

/// Budget, capacity and fill-floor rows.
fn add_side_rows(p: &Prepared, lp: &mut LinearProgram, unserved: Vec<Vec<(usize, f64)>>) {
    let m = p.model;
    if let Some(budget) = m.budget {
        let row = m
            .part_locations
            .iter()
            .enumerate()
            .map(|(i, q)| (i, q.unit_cost))
            .collect();
        lp.add_row(row, Sense::LessEqual, budget);
    }
    for (limit, members) in &p.capacity_rows {
        lp.add_row(
            members.iter().map(|&i| (i, 1.0)).collect(),
            Sense::LessEqual,
            *limit as f64,
        );
    }
    for (i, (q, terms)) in m.part_locations.iter().zip(unserved).enumerate() {
        if let Some(floor) = q.fill_rate_floor {
            // Units short of the own shelf, sum_k (D - x)+, may be at most (1 - floor) of
            // demand: exactly the own-shelf fill rate floor.
            lp.add_row(
                terms,
                Sense::LessEqual,
                (1.0 - floor) * p.total_demand[i] as f64,
            );
        }
    }
}

/// The one place LP values become integer stock: every stock value must be finite and
/// within [0, upper] (to 1e-6); it is rounded to the nearest integer.
pub fn stock_from_lp(values: &[f64], upper: &[u64]) -> Result<Vec<u64>> {
    if values.len() < upper.len() {
        return Err(invalid("values", "fewer LP values than part-locations"));
    }
    upper
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (&u, &v))| {
            if !v.is_finite() || v < -1e-6 || v > u as f64 + 1e-6 {
                return Err(invalid(
                    format!("lp.values[{i}]"),
                    format!("{v} is outside [0, {u}]"),
                ));
            }
            Ok(v.round().clamp(0.0, u as f64) as u64)
        })
        .collect()
}

/// Exact MILP (integer stock) with a MILP-capable backend.
pub(crate) fn solve_exact(p: &Prepared, options: &OptimizeOptions) -> Result<Plan> {
    let start = Instant::now();
    if !options.backend.supports_integers() {
        return Err(invalid(
            "backend",
            "the exact method needs microlp or highs",
        ));
    }
    let lp = build(p, true);
    let solution = lp.solve(options.backend, options.time_limit_seconds)?;
    let stock = stock_from_lp(&solution.values, &p.upper)?;
    let evaluation = super::evaluate::evaluate_prepared(p, &stock)?;
    let status = match solution.status {
        LpStatus::Optimal => PlanStatus::Optimal,
        LpStatus::TimeLimit => PlanStatus::TimeLimit,
    };
    // A proven MILP optimum is its own bound; an interrupted one proves nothing.
    let lower_bound = if status == PlanStatus::Optimal {
        solution.objective.min(evaluation.objective)
    } else {
        f64::NEG_INFINITY
    };
    Ok(plan(
        stock,
        evaluation,
        lower_bound,
        status,
        Method::Exact,
        Some(options),
        0,
        start,
    ))
}

/// Joint LP relaxation, then rounding and repair.
pub(crate) fn solve_joint(p: &Prepared, options: &OptimizeOptions) -> Result<Plan> {
    let start = Instant::now();
    let lp = build(p, false);
    let solution = lp.solve(options.backend, options.time_limit_seconds)?;
    let rounded = stock_from_lp(&solution.values, &p.upper)?;
    let deadline = options.time_limit_seconds - start.elapsed().as_secs_f64();
    let repaired = repair(p, rounded, deadline.max(0.0))?;
    let lower_bound = match solution.status {
        LpStatus::Optimal => solution.objective,
        LpStatus::TimeLimit => f64::NEG_INFINITY,
    };
    let evaluation = summarise(p, &repaired.stock, repaired.losses);
    let status = if repaired.timed_out || solution.status == LpStatus::TimeLimit {
        PlanStatus::TimeLimit
    } else if gap(evaluation.objective, lower_bound) <= options.gap_tolerance {
        PlanStatus::Optimal
    } else {
        PlanStatus::Feasible
    };
    Ok(plan(
        repaired.stock,
        evaluation,
        lower_bound,
        status,
        Method::Joint,
        Some(options),
        repaired.moves,
        start,
    ))
}

/// Relative gap between an objective and a lower bound.
pub(crate) fn gap(objective: f64, lower_bound: f64) -> f64 {
    ((objective - lower_bound) / objective.abs().max(1e-9)).max(0.0)
}

/// Assembles a plan.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan(
    stock: Vec<u64>,
    evaluation: super::Evaluation,
    lower_bound: f64,
    status: PlanStatus,
    method: Method,
    options: Option<&OptimizeOptions>,
    iterations: usize,
    start: Instant,
) -> Plan {
    Plan {
        gap: gap(evaluation.objective, lower_bound),
        stock,
        evaluation,
        lower_bound,
        status,
        method,
        backend: options
            .map(|o| o.backend)
            .filter(|_| method != Method::Decomposed),
        iterations,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The outcome of repair.
pub(crate) struct Repaired {
    pub stock: Vec<u64>,
    pub losses: Vec<f64>,
    pub moves: usize,
    pub timed_out: bool,
}

/// Local state for repair: stock, per-group losses, and their total per scenario.
struct Search<'a, 'p> {
    p: &'a Prepared<'p>,
    stock: Vec<u64>,
    group_loss: Vec<Vec<f64>>,
    total: Vec<f64>,
    floor_stock: Vec<u64>,
}

impl Search<'_, '_> {
    /// Objective with the losses `total`.
    fn objective_with(&self, stock: &[u64], total: &[f64]) -> f64 {
        let m = self.p.model;
        let holding: f64 = m
            .part_locations
            .iter()
            .zip(stock)
            .map(|(q, &s)| q.holding_cost * s as f64)
            .sum();
        let mean = total.iter().sum::<f64>() / total.len() as f64;
        holding + mean + m.cvar_weight * cvar(total, m.cvar_alpha).unwrap_or(mean)
    }

    /// Objective change and new group losses if part-location `i` moves by `delta`.
    fn try_move(&self, i: usize, delta: i64) -> Option<(f64, Vec<f64>)> {
        let next = self.stock[i].checked_add_signed(delta)?;
        if next > self.p.upper[i] || next < self.floor_stock[i] {
            return None;
        }
        let mut stock = self.stock.clone();
        stock[i] = next;
        let group = self.p.group_of[i];
        let new_loss = group_losses(self.p, group, &stock);
        let total: Vec<f64> = self
            .total
            .iter()
            .zip(&self.group_loss[group])
            .zip(&new_loss)
            .map(|((t, old), new)| t - old + new)
            .collect();
        let change =
            self.objective_with(&stock, &total) - self.objective_with(&self.stock, &self.total);
        Some((change, new_loss))
    }

    /// Applies a move found by `try_move`.
    fn apply(&mut self, i: usize, delta: i64, new_loss: Vec<f64>) {
        let group = self.p.group_of[i];
        for ((t, old), new) in self
            .total
            .iter_mut()
            .zip(&self.group_loss[group])
            .zip(&new_loss)
        {
            *t += new - old;
        }
        self.group_loss[group] = new_loss;
        self.stock[i] = self.stock[i].saturating_add_signed(delta);
    }

    /// Whether adding one unit at `i` keeps the budget and capacities.
    fn can_add(&self, i: usize) -> bool {
        let m = self.p.model;
        let spent: f64 = m
            .part_locations
            .iter()
            .zip(&self.stock)
            .map(|(q, &s)| q.unit_cost * s as f64)
            .sum();
        let budget_ok = m
            .budget
            .is_none_or(|b| spent + m.part_locations[i].unit_cost <= b * (1.0 + 1e-9) + 1e-9);
        budget_ok
            && self.p.capacity_rows.iter().all(|(limit, members)| {
                !members.contains(&i)
                    || members.iter().map(|&j| self.stock[j]).sum::<u64>() < *limit
            })
    }

    /// Part-locations whose removal would relieve a broken budget or capacity, if any.
    fn over_limit(&self) -> Option<Vec<usize>> {
        let m = self.p.model;
        let spent: f64 = m
            .part_locations
            .iter()
            .zip(&self.stock)
            .map(|(q, &s)| q.unit_cost * s as f64)
            .sum();
        if m.budget.is_some_and(|b| spent > b * (1.0 + 1e-9) + 1e-9) {
            return Some(
                (0..self.stock.len())
                    .filter(|&i| m.part_locations[i].unit_cost > 0.0)
                    .collect(),
            );
        }
        self.p
            .capacity_rows
            .iter()
            .find(|(limit, members)| members.iter().map(|&j| self.stock[j]).sum::<u64>() > *limit)
            .map(|(_, members)| members.clone())
    }
}

/// Smallest stock meeting each part-location's fill floor (0 without a floor).
pub(crate) fn floor_stock_of(p: &Prepared) -> Vec<u64> {
    p.model
        .part_locations
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let Some(floor) = q.fill_rate_floor else {
                return 0;
            };
            let total = p.total_demand[i];
            (0..=p.upper[i])
                .find(|&s| {
                    total == 0
                        || p.model.demand.iter().map(|row| row[i].min(s)).sum::<u64>() as f64
                            >= floor * total as f64 - 1e-9
                })
                .unwrap_or(p.upper[i])
        })
        .collect()
}

/// Makes `stock` feasible (floors first, then budget and capacity by the cheapest removals)
/// and improves it by single-unit moves until none helps or time runs out.
pub(crate) fn repair(p: &Prepared, stock: Vec<u64>, seconds: f64) -> Result<Repaired> {
    let start = Instant::now();
    let floor_stock = floor_stock_of(p);
    let stock: Vec<u64> = stock
        .iter()
        .zip(&floor_stock)
        .map(|(s, f)| (*s).max(*f))
        .collect();
    let group_loss: Vec<Vec<f64>> = (0..p.groups.len())
        .map(|g| group_losses(p, g, &stock))
        .collect();
    let mut total = vec![0.0; p.model.scenario_count()];
    for losses in &group_loss {
        total.iter_mut().zip(losses).for_each(|(t, l)| *t += l);
    }
    let mut search = Search {
        p,
        stock,
        group_loss,
        total,
        floor_stock,
    };
    let mut moves = 0;
    while let Some(candidates) = search.over_limit() {
        let cheapest = candidates
            .iter()
            .filter_map(|&i| {
                search
                    .try_move(i, -1)
                    .map(|(change, loss)| (i, change, loss))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, _, loss)) = cheapest else {
            return Err(SolverError::Infeasible(
                "fill floors cannot be met within the budget and capacities".into(),
            ));
        };
        search.apply(i, -1, loss);
        moves += 1;
    }
    let mut timed_out = false;
    loop {
        if start.elapsed().as_secs_f64() > seconds {
            timed_out = true;
            break;
        }
        let best = (0..search.stock.len())
            .flat_map(|i| [(i, 1i64), (i, -1i64)])
            .filter(|&(i, d)| d < 0 || search.can_add(i))
            .filter_map(|(i, d)| {
                search
                    .try_move(i, d)
                    .map(|(change, loss)| (i, d, change, loss))
            })
            .min_by(|a, b| a.2.total_cmp(&b.2));
        match best {
            Some((i, d, change, loss)) if change < -1e-9 => {
                search.apply(i, d, loss);
                moves += 1;
            }
            _ => break,
        }
    }
    Ok(Repaired {
        stock: search.stock,
        losses: search.total,
        moves,
        timed_out,
    })
}
