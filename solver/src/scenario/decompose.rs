//! Lagrangian decomposition of the scenario model over per-part candidate curves.
//!
//! Parts are coupled only through the budget, location capacities and the network-wide
//! CVaR. CVaR_alpha(L) = max { sum_k q_k L_k : q in Q } (Q: 0 <= q_k <= 1/((1-alpha)N),
//! sum q = 1), so for any q in Q, budget multiplier mu >= 0 and capacity multipliers nu >= 0,
//!
//!   g(q, mu, nu) = sum_parts min_candidates [ holding + sum_k (1/N + lambda q_k) L_k
//!                  + mu cost + nu . units ] - mu B - nu . capacity
//!
//! is a lower bound on the best integer objective. Each part (a group joined by lanes) is
//! priced by enumerating its integer stock levels, in parallel. The loop moves q towards the
//! worst-tail weights of the current plan (Frank-Wolfe averaging), sets mu by bisection so
//! the budget holds, and moves nu by a subgradient step. Every iteration yields a feasible
//! integer plan (after capacity repair); the best is polished by single-unit moves. The gap
//! between the best plan and the best bound is reported.

use super::evaluate::{group_losses, summarise};
use super::joint::{plan, repair};
use super::{MAX_GROUP_CANDIDATES, Method, OptimizeOptions, Plan, PlanStatus, Prepared};
use crate::error::{Result, SolverError};
use crate::tail::{cvar, tail_weights};
use rayon::prelude::*;
use std::borrow::Cow;
use std::time::Instant;

/// One integer stock choice for a block.
pub(crate) struct Candidate<'a> {
    /// Units per member.
    pub stock: Vec<u64>,
    /// Money tied up.
    pub investment: f64,
    /// Holding cost per scenario period.
    pub holding: f64,
    /// Units this candidate places in each capacity row.
    pub row_units: Vec<u64>,
    /// Downtime cost in each scenario.
    pub losses: Cow<'a, [f64]>,
}

/// A group of part-locations priced together, and its candidates.
pub(crate) struct Block<'a> {
    /// Part-locations of the block.
    pub members: Vec<usize>,
    /// Its integer choices.
    pub candidates: Vec<Candidate<'a>>,
}

/// What couples the blocks: the budget, capacity rows and the network-wide CVaR.
pub(crate) struct Coupling<'x> {
    /// Capacity limit per row (units).
    pub limits: &'x [f64],
    /// Most money, if limited.
    pub budget: Option<f64>,
    /// CVaR level.
    pub cvar_alpha: f64,
    /// CVaR weight.
    pub cvar_weight: f64,
    /// Number of equiprobable scenarios.
    pub scenarios: usize,
}

/// Where the Lagrangian loop ended.
pub(crate) struct Outcome {
    /// Best feasible choice (candidate index per block), if any was found.
    pub choice: Option<Vec<usize>>,
    /// Best Lagrangian lower bound.
    pub lower_bound: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Stopped by the time limit.
    pub timed_out: bool,
}

/// Builds every group's candidates (floor-feasible, up to the useful upper bound).
fn blocks<'a>(p: &'a Prepared, floor: &[u64]) -> Result<Vec<Block<'a>>> {
    p.groups
        .par_iter()
        .map(|members| block(p, members, floor))
        .collect()
}

/// One group's candidates.
fn block<'a>(p: &'a Prepared, members: &[usize], floor: &[u64]) -> Result<Block<'a>> {
    let count = members.iter().try_fold(1usize, |acc, &i| {
        acc.checked_mul((p.upper[i] - floor[i] + 1) as usize)
    });
    let count = count.unwrap_or(usize::MAX);
    if members.len() > 1 && count > MAX_GROUP_CANDIDATES {
        return Err(SolverError::OutOfRange {
            field: format!("lanes (part {})", p.model.part_locations[members[0]].part),
            value: count as f64,
            limit: MAX_GROUP_CANDIDATES as f64,
            reason: "a group joined by lanes is priced by enumerating its stock combinations"
                .into(),
        });
    }
    let mut candidates = Vec::new();
    let mut levels: Vec<u64> = members.iter().map(|&i| floor[i]).collect();
    let mut scratch = vec![0u64; p.model.part_locations.len()];
    loop {
        for (&i, &s) in members.iter().zip(&levels) {
            scratch[i] = s;
        }
        candidates.push(candidate(p, members, &levels, &scratch));
        // Odometer over the members' ranges.
        let mut position = 0;
        loop {
            if position == members.len() {
                return Ok(Block {
                    members: members.to_vec(),
                    candidates,
                });
            }
            let i = members[position];
            if levels[position] < p.upper[i] {
                levels[position] += 1;
                break;
            }
            levels[position] = floor[i];
            position += 1;
        }
    }
}

/// Costs, capacity use and scenario losses of one candidate.
fn candidate<'a>(
    p: &'a Prepared,
    members: &[usize],
    levels: &[u64],
    scratch: &[u64],
) -> Candidate<'a> {
    let m = p.model;
    let investment = members
        .iter()
        .zip(levels)
        .map(|(&i, &s)| m.part_locations[i].unit_cost * s as f64)
        .sum();
    let holding = members
        .iter()
        .zip(levels)
        .map(|(&i, &s)| m.part_locations[i].holding_cost * s as f64)
        .sum();
    let row_units = p
        .capacity_rows
        .iter()
        .map(|(_, row)| {
            members
                .iter()
                .zip(levels)
                .filter(|(i, _)| row.contains(i))
                .map(|(_, s)| *s)
                .sum()
        })
        .collect();
    let losses = group_losses(p, p.group_of[members[0]], scratch);
    Candidate {
        stock: levels.to_vec(),
        investment,
        holding,
        row_units,
        losses: Cow::Owned(losses),
    }
}

/// The multipliers of one iteration.
struct Prices<'a> {
    weighted: &'a [Vec<f64>],
    budget: f64,
    capacity: &'a [f64],
}

impl Prices<'_> {
    /// Reduced cost of candidate `c` of block `b`.
    fn cost(&self, blocks: &[Block], b: usize, c: usize) -> f64 {
        let candidate = &blocks[b].candidates[c];
        let capacity: f64 = candidate
            .row_units
            .iter()
            .zip(self.capacity)
            .map(|(u, nu)| *u as f64 * nu)
            .sum();
        candidate.holding + self.weighted[b][c] + self.budget * candidate.investment + capacity
    }

    /// Best candidate per block and the Lagrangian value (without the constant terms).
    fn choose(&self, blocks: &[Block]) -> (Vec<usize>, f64) {
        let mut value = 0.0;
        let choice = (0..blocks.len())
            .map(|b| {
                let (c, v) = (0..blocks[b].candidates.len())
                    .map(|c| (c, self.cost(blocks, b, c)))
                    .min_by(|x, y| x.1.total_cmp(&y.1))
                    .unwrap_or((0, 0.0));
                value += v;
                c
            })
            .collect();
        (choice, value)
    }
}

/// Money spent by a choice.
pub(crate) fn spent(blocks: &[Block], choice: &[usize]) -> f64 {
    blocks
        .iter()
        .zip(choice)
        .map(|(b, &c)| b.candidates[c].investment)
        .sum()
}

/// Units per capacity row of a choice.
fn row_use(blocks: &[Block], choice: &[usize], rows: usize) -> Vec<u64> {
    let mut used = vec![0u64; rows];
    for (b, &c) in blocks.iter().zip(choice) {
        used.iter_mut()
            .zip(&b.candidates[c].row_units)
            .for_each(|(u, x)| *u += x);
    }
    used
}

/// Lagrangian decomposition; see the module docs.
pub(crate) fn solve_decomposed(p: &Prepared, options: &OptimizeOptions) -> Result<Plan> {
    let start = Instant::now();
    let m = p.model;
    let floor = super::joint::floor_stock_of(p);
    let blocks = blocks(p, &floor)?;
    let limits: Vec<f64> = p.capacity_rows.iter().map(|(l, _)| *l as f64).collect();
    let coupling = Coupling {
        limits: &limits,
        budget: m.budget,
        cvar_alpha: m.cvar_alpha,
        cvar_weight: m.cvar_weight,
        scenarios: m.scenario_count(),
    };
    let outcome = lagrangian(&blocks, &coupling, options, start)?;
    let Some(choice) = outcome.choice else {
        return Err(SolverError::Infeasible(
            "no stock plan meets the budget, capacities and fill floors".into(),
        ));
    };
    let stock = stock_of(&blocks, &choice, m.part_locations.len());
    let remaining = (options.time_limit_seconds - start.elapsed().as_secs_f64()).max(0.0);
    let polished = repair(p, stock, remaining)?;
    let evaluation = summarise(p, &polished.stock, polished.losses);
    let status = status(
        evaluation.objective,
        outcome.lower_bound,
        options,
        outcome.timed_out || polished.timed_out,
    );
    Ok(plan(
        polished.stock,
        evaluation,
        outcome.lower_bound,
        status,
        Method::Decomposed,
        Some(options),
        outcome.iterations,
        start,
    ))
}

/// Optimal within the tolerance, else stopped by time, else merely feasible.
pub(crate) fn status(
    objective: f64,
    lower_bound: f64,
    options: &OptimizeOptions,
    timed_out: bool,
) -> PlanStatus {
    if super::joint::gap(objective, lower_bound) <= options.gap_tolerance {
        PlanStatus::Optimal
    } else if timed_out {
        PlanStatus::TimeLimit
    } else {
        PlanStatus::Feasible
    }
}

/// Units per part-location of a choice.
pub(crate) fn stock_of(blocks: &[Block], choice: &[usize], part_locations: usize) -> Vec<u64> {
    let mut stock = vec![0u64; part_locations];
    for (b, &c) in blocks.iter().zip(choice) {
        for (&i, &s) in b.members.iter().zip(&b.candidates[c].stock) {
            stock[i] = s;
        }
    }
    stock
}

/// The Lagrangian loop over priced blocks; see the module docs. Stops at the gap
/// tolerance, the iteration limit, or 80% of the time limit (counted from `start`).
pub(crate) fn lagrangian(
    blocks: &[Block],
    coupling: &Coupling,
    options: &OptimizeOptions,
    start: Instant,
) -> Result<Outcome> {
    let scenarios = coupling.scenarios;
    let limits = coupling.limits;
    let mut q = vec![1.0 / scenarios as f64; scenarios];
    let mut nu = vec![0.0; limits.len()];
    let mut lower_bound = f64::NEG_INFINITY;
    let mut best: Option<(Vec<usize>, f64)> = None;
    let mut iterations = 0;
    let mut timed_out = false;
    while iterations < options.max_iterations {
        iterations += 1;
        let weights: Vec<f64> = q
            .iter()
            .map(|qk| 1.0 / scenarios as f64 + coupling.cvar_weight * qk)
            .collect();
        let weighted: Vec<Vec<f64>> = blocks
            .par_iter()
            .map(|b| {
                b.candidates
                    .iter()
                    .map(|c| c.losses.iter().zip(&weights).map(|(l, w)| l * w).sum())
                    .collect()
            })
            .collect();
        let (choice, bound) = price_budget(blocks, &weighted, &nu, limits, coupling.budget);
        lower_bound = lower_bound.max(bound);
        let used = row_use(blocks, &choice, limits.len());
        let lagrangian_losses = total_losses(blocks, &choice, scenarios);
        let within_budget = coupling
            .budget
            .is_none_or(|b| spent(blocks, &choice) <= b * (1.0 + 1e-12) + 1e-9);
        if let Some(feasible) =
            repair_capacity(blocks, &weighted, choice, limits).filter(|_| within_budget)
        {
            let losses = total_losses(blocks, &feasible, scenarios);
            let objective = objective(coupling, blocks, &feasible, &losses);
            if best.as_ref().is_none_or(|(_, o)| objective < *o) {
                best = Some((feasible, objective));
            }
        }
        let upper = best.as_ref().map_or(f64::INFINITY, |(_, o)| *o);
        if super::joint::gap(upper, lower_bound) <= options.gap_tolerance {
            break;
        }
        if start.elapsed().as_secs_f64() > options.time_limit_seconds * 0.8 {
            timed_out = true;
            break;
        }
        let target = tail_weights(&lagrangian_losses, coupling.cvar_alpha)?;
        let step = 2.0 / (iterations as f64 + 2.0);
        q.iter_mut()
            .zip(&target)
            .for_each(|(qk, tk)| *qk += step * (tk - *qk));
        update_capacity_prices(&mut nu, &used, limits, upper - bound);
    }
    Ok(Outcome {
        choice: best.map(|(c, _)| c),
        lower_bound,
        iterations,
        timed_out,
    })
}

/// Chooses candidates with the budget multiplier set by bisection so the budget holds;
/// returns the budget-feasible choice and the best Lagrangian bound seen.
fn price_budget(
    blocks: &[Block],
    weighted: &[Vec<f64>],
    nu: &[f64],
    limits: &[f64],
    budget: Option<f64>,
) -> (Vec<usize>, f64) {
    let constant: f64 = nu.iter().zip(limits).map(|(n, l)| n * l).sum();
    let at = |mu: f64| {
        let prices = Prices {
            weighted,
            budget: mu,
            capacity: nu,
        };
        let (choice, value) = prices.choose(blocks);
        let bound = value - mu * budget.unwrap_or(0.0) - constant;
        (choice, bound)
    };
    let (choice, bound) = at(0.0);
    let Some(limit) = budget else {
        return (choice, bound);
    };
    if spent(blocks, &choice) <= limit * (1.0 + 1e-12) + 1e-9 {
        return (choice, bound);
    }
    let (mut low, mut high) = (0.0, 1.0);
    let mut best_bound = bound;
    let mut high_choice = loop {
        let (c, b) = at(high);
        best_bound = best_bound.max(b);
        if spent(blocks, &c) <= limit * (1.0 + 1e-12) + 1e-9 || high > 1e12 {
            break c;
        }
        low = high;
        high *= 4.0;
    };
    for _ in 0..40 {
        let middle = 0.5 * (low + high);
        let (c, b) = at(middle);
        best_bound = best_bound.max(b);
        if spent(blocks, &c) <= limit * (1.0 + 1e-12) + 1e-9 {
            high = middle;
            high_choice = c;
        } else {
            low = middle;
        }
    }
    (high_choice, best_bound)
}

/// Lowers stock in over-full capacity rows by the cheapest switches (reduced cost per unit
/// freed); `None` if a row cannot be met.
fn repair_capacity(
    blocks: &[Block],
    weighted: &[Vec<f64>],
    mut choice: Vec<usize>,
    limits: &[f64],
) -> Option<Vec<usize>> {
    let zero = vec![0.0; limits.len()];
    let prices = Prices {
        weighted,
        budget: 0.0,
        capacity: &zero,
    };
    for (r, limit) in limits.iter().enumerate() {
        while row_use(blocks, &choice, limits.len())[r] as f64 > *limit {
            let mut best: Option<(usize, usize, f64)> = None;
            for (b, block) in blocks.iter().enumerate() {
                let current = &block.candidates[choice[b]];
                for (c, other) in block.candidates.iter().enumerate() {
                    if other.row_units[r] >= current.row_units[r]
                        || other.investment > current.investment + 1e-9
                    {
                        continue;
                    }
                    let freed = (current.row_units[r] - other.row_units[r]) as f64;
                    let rate =
                        (prices.cost(blocks, b, c) - prices.cost(blocks, b, choice[b])) / freed;
                    if best.is_none_or(|(_, _, x)| rate < x) {
                        best = Some((b, c, rate));
                    }
                }
            }
            let (b, c, _) = best?;
            choice[b] = c;
        }
    }
    Some(choice)
}

/// Moves capacity multipliers by a Polyak subgradient step.
fn update_capacity_prices(nu: &mut [f64], used: &[u64], limits: &[f64], estimated_gap: f64) {
    let slope: Vec<f64> = used
        .iter()
        .zip(limits)
        .map(|(u, l)| *u as f64 - l)
        .collect();
    let norm: f64 = slope.iter().map(|s| s * s).sum();
    if norm == 0.0 || !estimated_gap.is_finite() {
        return;
    }
    let step = 0.5 * estimated_gap.max(0.0) / norm;
    nu.iter_mut()
        .zip(&slope)
        .for_each(|(n, s)| *n = (*n + step * s).max(0.0));
}

/// Per-scenario total downtime cost of a choice.
pub(crate) fn total_losses(blocks: &[Block], choice: &[usize], scenarios: usize) -> Vec<f64> {
    let mut total = vec![0.0; scenarios];
    for (b, &c) in blocks.iter().zip(choice) {
        total
            .iter_mut()
            .zip(b.candidates[c].losses.iter())
            .for_each(|(t, l)| *t += l);
    }
    total
}

/// Objective of a choice.
pub(crate) fn objective(
    coupling: &Coupling,
    blocks: &[Block],
    choice: &[usize],
    losses: &[f64],
) -> f64 {
    let holding: f64 = blocks
        .iter()
        .zip(choice)
        .map(|(b, &c)| b.candidates[c].holding)
        .sum();
    let mean = losses.iter().sum::<f64>() / losses.len() as f64;
    holding + mean + coupling.cvar_weight * cvar(losses, coupling.cvar_alpha).unwrap_or(mean)
}

/// A choice over blocks coupled only by the budget and the network-wide CVaR, after the
/// Lagrangian loop and the polishing search.
pub(crate) struct Solved {
    /// Candidate index per block.
    pub choice: Vec<usize>,
    /// Summed losses of the choice in each scenario.
    pub losses: Vec<f64>,
    /// Best Lagrangian lower bound.
    pub lower_bound: f64,
    /// Lagrangian iterations run.
    pub iterations: usize,
    /// Stopped by the time limit (in the loop or the polish).
    pub timed_out: bool,
}

/// Solves `blocks` under `coupling` (no capacity rows): the Lagrangian decomposition, then
/// the polishing search in the time left. `infeasible` says why when no feasible choice
/// exists (the cheapest candidates together exceed the budget).
pub(crate) fn solve_blocks(
    blocks: &[Block],
    coupling: &Coupling,
    options: &OptimizeOptions,
    start: Instant,
    infeasible: &str,
) -> Result<Solved> {
    let outcome = lagrangian(blocks, coupling, options, start)?;
    let Some(choice) = outcome.choice else {
        return Err(SolverError::Infeasible(infeasible.into()));
    };
    let remaining = (options.time_limit_seconds - start.elapsed().as_secs_f64()).max(0.0);
    let (choice, polish_timed_out) = super::curves::polish(blocks, coupling, choice, remaining);
    let losses = total_losses(blocks, &choice, coupling.scenarios);
    Ok(Solved {
        choice,
        losses,
        lower_bound: outcome.lower_bound,
        iterations: outcome.iterations,
        timed_out: outcome.timed_out || polish_timed_out,
    })
}
