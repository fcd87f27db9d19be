//! Consequence sizing over per-part-location candidate curves from simulation.
//!
//! The scenario LP of [`super::ScenarioModel`] models one replenishment cycle with recourse
//! written into the LP. A simulation can instead give each part-location its whole
//! consequence curve: `losses[j][k]`, the downtime cost over the horizon of replication `k`
//! when the part-location holds `levels[j]` units (common random numbers across levels; the
//! levels need not be contiguous, so a busy part-location can be simulated on a coarser grid
//! at high levels). Part-locations
//! are then coupled only through the budget and the network-wide CVaR, which is the
//! structure the Lagrangian decomposition prices exactly: each part-location is one block
//! whose candidates are its levels. The result carries the Lagrangian lower bound and the
//! optimality gap, then a local search (single-block switches within the budget) polishes
//! the plan.

use super::decompose::{Block, Candidate, Coupling, objective, solve_blocks, spent, total_losses};
use super::evaluate::Evaluation;
use super::{MAX_CELLS, Method, OptimizeOptions, Plan};
use crate::error::{Result, SolverError, invalid, non_negative, open_unit, positive};
use crate::tail::cvar_with_scratch;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;

/// One part-location with its simulated consequence curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveItem {
    /// Part id.
    pub part: String,
    /// Location id.
    pub location: String,
    /// Money tied up per unit (counts against the budget).
    pub unit_cost: f64,
    /// Holding cost per unit over the scenario period.
    pub holding_cost: f64,
    /// Fewest units allowed (a service floor); at most the last level.
    pub min_stock: u64,
    /// The candidate levels, strictly increasing. Levels past the last are not candidates
    /// (the simulation stopped where more stock could not pay).
    pub levels: Vec<u64>,
    /// `losses[j][k]`: downtime cost in scenario `k` when holding `levels[j]` units.
    pub losses: Vec<Vec<f64>>,
}

/// The curve model as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveModel {
    /// Part-locations to size.
    pub items: Vec<CurveItem>,
    /// Number of equiprobable scenarios (the length of every loss row).
    pub scenarios: usize,
    /// Most money to tie up in stock, if limited.
    pub budget: Option<f64>,
    /// CVaR confidence level, e.g. 0.95.
    pub cvar_alpha: f64,
    /// Weight lambda of the CVaR term (0 = risk neutral).
    pub cvar_weight: f64,
}

impl CurveModel {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.items.is_empty() {
            return Err(invalid("items", "must not be empty"));
        }
        if self.scenarios == 0 {
            return Err(invalid("scenarios", "needs at least one scenario"));
        }
        let cells: usize = self
            .items
            .iter()
            .map(|i| i.losses.len().saturating_mul(self.scenarios))
            .fold(0usize, usize::saturating_add);
        if cells > MAX_CELLS {
            return Err(SolverError::OutOfRange {
                field: "items".into(),
                value: cells as f64,
                limit: MAX_CELLS as f64,
                reason: "levels x scenarios bounds memory".into(),
            });
        }
        for (i, item) in self.items.iter().enumerate() {
            let field = |name: &str| format!("items[{i}].{name}");
            non_negative(&field("unit_cost"), item.unit_cost)?;
            non_negative(&field("holding_cost"), item.holding_cost)?;
            if item.losses.is_empty() || item.losses.len() != item.levels.len() {
                return Err(invalid(
                    field("losses"),
                    format!(
                        "needs one row per level ({} levels, {} rows), and at least one",
                        item.levels.len(),
                        item.losses.len()
                    ),
                ));
            }
            if item.levels.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(field("levels"), "must be strictly increasing"));
            }
            let last = item.levels[item.levels.len() - 1];
            if item.min_stock > last {
                return Err(invalid(
                    field("min_stock"),
                    format!("{} is past the last level {last}", item.min_stock),
                ));
            }
            for (s, row) in item.losses.iter().enumerate() {
                if row.len() != self.scenarios {
                    return Err(invalid(
                        format!("items[{i}].losses[{s}]"),
                        format!("needs {} entries, has {}", self.scenarios, row.len()),
                    ));
                }
                if let Some(k) = row.iter().position(|l| !l.is_finite() || *l < 0.0) {
                    return Err(invalid(
                        format!("items[{i}].losses[{s}][{k}]"),
                        "must be finite and not negative",
                    ));
                }
            }
        }
        if let Some(budget) = self.budget {
            non_negative("budget", budget)?;
        }
        open_unit("cvar_alpha", self.cvar_alpha)?;
        non_negative("cvar_weight", self.cvar_weight)?;
        Ok(())
    }

    /// Exact evaluation of `stock` (units per item): holding, mean and CVaR of the summed
    /// scenario losses, budget violation. Errors if a level is past an item's curve.
    pub fn evaluate(&self, stock: &[u64]) -> Result<Evaluation> {
        self.validate()?;
        if stock.len() != self.items.len() {
            return Err(invalid(
                "stock",
                format!("needs {} entries, has {}", self.items.len(), stock.len()),
            ));
        }
        let mut losses = vec![0.0; self.scenarios];
        for (i, (item, &s)) in self.items.iter().zip(stock).enumerate() {
            let row = item.row(s).ok_or_else(|| {
                invalid(
                    format!("stock[{i}]"),
                    format!("{s} is not one of the item's levels"),
                )
            })?;
            losses.iter_mut().zip(row).for_each(|(t, l)| *t += l);
        }
        Ok(self.summarise(stock, losses))
    }

    fn summarise(&self, stock: &[u64], losses: Vec<f64>) -> Evaluation {
        let investment: f64 = self
            .items
            .iter()
            .zip(stock)
            .map(|(i, &s)| i.unit_cost * s as f64)
            .sum();
        let holding_cost: f64 = self
            .items
            .iter()
            .zip(stock)
            .map(|(i, &s)| i.holding_cost * s as f64)
            .sum();
        let expected = losses.iter().sum::<f64>() / losses.len() as f64;
        let tail = crate::tail::cvar(&losses, self.cvar_alpha).unwrap_or(expected);
        let mut violations = Vec::new();
        if let Some(budget) = self.budget
            && investment > budget * (1.0 + 1e-9) + 1e-9
        {
            violations.push(format!("budget: {investment:.2} > {budget:.2}"));
        }
        for (i, (item, &s)) in self.items.iter().zip(stock).enumerate() {
            if s < item.min_stock {
                violations.push(format!("min_stock at items[{i}]: {s} < {}", item.min_stock));
            }
        }
        Evaluation {
            investment,
            holding_cost,
            expected_downtime_cost: expected,
            cvar_downtime_cost: tail,
            objective: holding_cost + expected + self.cvar_weight * tail,
            fill_rates: Vec::new(),
            violations,
            scenario_losses: losses,
        }
    }

    /// One block per item, its candidates the levels from `min_stock` on.
    fn blocks(&self) -> Vec<Block<'_>> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| Block {
                members: vec![i],
                candidates: item
                    .levels
                    .iter()
                    .zip(&item.losses)
                    .filter(|(s, _)| **s >= item.min_stock)
                    .map(|(&s, row)| Candidate {
                        stock: vec![s],
                        investment: item.unit_cost * s as f64,
                        holding: item.holding_cost * s as f64,
                        row_units: Vec::new(),
                        losses: Cow::Borrowed(row),
                    })
                    .collect(),
            })
            .collect()
    }
}

impl CurveItem {
    /// The loss row of level `s`, if `s` is one of the levels.
    pub fn row(&self, s: u64) -> Option<&[f64]> {
        self.levels
            .binary_search(&s)
            .ok()
            .map(|j| self.losses[j].as_slice())
    }
}

/// Solves the curve model by Lagrangian decomposition and a polishing search. Errors:
/// `InvalidInput`/`OutOfRange` for a bad model, `Infeasible` when the floors alone exceed
/// the budget.
pub fn optimize_curves(model: &CurveModel, options: &OptimizeOptions) -> Result<Plan> {
    let start = Instant::now();
    positive("time_limit_seconds", options.time_limit_seconds)?;
    model.validate()?;
    let blocks = model.blocks();
    let coupling = Coupling {
        limits: &[],
        budget: model.budget,
        cvar_alpha: model.cvar_alpha,
        cvar_weight: model.cvar_weight,
        scenarios: model.scenarios,
    };
    let solved = solve_blocks(
        &blocks,
        &coupling,
        options,
        start,
        "the service floors alone cost more than the budget",
    )?;
    let stock = super::decompose::stock_of(&blocks, &solved.choice, model.items.len());
    let evaluation = model.summarise(&stock, solved.losses);
    let status = super::decompose::status(
        evaluation.objective,
        solved.lower_bound,
        options,
        solved.timed_out,
    );
    Ok(super::joint::plan(
        stock,
        evaluation,
        solved.lower_bound,
        status,
        Method::Decomposed,
        Some(options),
        solved.iterations,
        start,
    ))
}

/// Pairs of moves tried per round once no single switch helps: the best `PAIR_SHORTLIST`
/// raises by gain per dollar against the `PAIR_SHORTLIST` cheapest cuts per dollar freed.
const PAIR_SHORTLIST: usize = 24;

/// Local search state: a choice, its summed losses, money and holding.
struct Search<'b, 'c, 'x> {
    blocks: &'b [Block<'c>],
    coupling: &'x Coupling<'x>,
    choice: Vec<usize>,
    total: Vec<f64>,
    money: f64,
    holding: f64,
    value: f64,
    scratch: Vec<f64>,
    trial: Vec<f64>,
}

impl Search<'_, '_, '_> {
    /// Mean + weight x CVaR of `losses`.
    fn risk(&mut self, losses_from_trial: bool) -> f64 {
        let losses = if losses_from_trial {
            &self.trial
        } else {
            &self.total
        };
        losses.iter().sum::<f64>() / self.coupling.scenarios as f64
            + self.coupling.cvar_weight
                * cvar_with_scratch(losses, self.coupling.cvar_alpha, &mut self.scratch)
    }

    fn fits(&self, money: f64) -> bool {
        self.coupling
            .budget
            .is_none_or(|limit| money <= limit * (1.0 + 1e-12) + 1e-9)
    }

    /// Objective after switching the given blocks to the given candidates.
    fn value_after(&mut self, moves: &[(usize, usize)]) -> f64 {
        self.trial.copy_from_slice(&self.total);
        let mut holding = self.holding;
        for &(b, c) in moves {
            let now = &self.blocks[b].candidates[self.choice[b]];
            let next = &self.blocks[b].candidates[c];
            for ((t, old), new) in self
                .trial
                .iter_mut()
                .zip(now.losses.iter())
                .zip(next.losses.iter())
            {
                *t = *t - old + new;
            }
            holding += next.holding - now.holding;
        }
        holding + self.risk(true)
    }

    fn money_after(&self, moves: &[(usize, usize)]) -> f64 {
        moves.iter().fold(self.money, |m, &(b, c)| {
            m - self.blocks[b].candidates[self.choice[b]].investment
                + self.blocks[b].candidates[c].investment
        })
    }

    fn apply(&mut self, moves: &[(usize, usize)], value: f64) {
        for &(b, c) in moves {
            let now = &self.blocks[b].candidates[self.choice[b]];
            let next = &self.blocks[b].candidates[c];
            for ((t, old), new) in self
                .total
                .iter_mut()
                .zip(now.losses.iter())
                .zip(next.losses.iter())
            {
                *t = *t - old + new;
            }
            self.money += next.investment - now.investment;
            self.holding += next.holding - now.holding;
            self.choice[b] = c;
        }
        self.value = value;
    }

    fn improves(&self, value: f64) -> bool {
        value < self.value - 1e-9 * self.value.abs().max(1.0)
    }

    /// One sweep of single-block switches; whether anything changed.
    fn sweep(&mut self, start: Instant, seconds: f64) -> Option<bool> {
        let mut changed = false;
        for b in 0..self.blocks.len() {
            if start.elapsed().as_secs_f64() > seconds {
                return None;
            }
            let mut best: Option<(usize, f64)> = None;
            for c in 0..self.blocks[b].candidates.len() {
                if c == self.choice[b] || !self.fits(self.money_after(&[(b, c)])) {
                    continue;
                }
                let after = self.value_after(&[(b, c)]);
                if self.improves(after) && best.is_none_or(|(_, v)| after < v) {
                    best = Some((c, after));
                }
            }
            if let Some((c, after)) = best {
                self.apply(&[(b, c)], after);
                changed = true;
            }
        }
        Some(changed)
    }

    /// The best improving (raise one block, cut another) pair within the budget among
    /// shortlists; whether one was applied.
    fn pair(&mut self) -> bool {
        let mut raises: Vec<(f64, usize, usize)> = Vec::new();
        let mut cuts: Vec<(f64, usize, usize)> = Vec::new();
        for b in 0..self.blocks.len() {
            let now = self.blocks[b].candidates[self.choice[b]].investment;
            for c in 0..self.blocks[b].candidates.len() {
                let money = self.blocks[b].candidates[c].investment - now;
                if c == self.choice[b] || money == 0.0 {
                    continue;
                }
                let change = self.value_after(&[(b, c)]) - self.value;
                if money > 0.0 {
                    raises.push((change / money, b, c));
                } else {
                    cuts.push((change / -money, b, c));
                }
            }
        }
        let shortlist = |list: &mut Vec<(f64, usize, usize)>| {
            list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
            list.truncate(PAIR_SHORTLIST);
        };
        shortlist(&mut raises);
        shortlist(&mut cuts);
        let mut best: Option<([(usize, usize); 2], f64)> = None;
        for &(_, up, c_up) in &raises {
            for &(_, down, c_down) in &cuts {
                let moves = [(up, c_up), (down, c_down)];
                if up == down || !self.fits(self.money_after(&moves)) {
                    continue;
                }
                let after = self.value_after(&moves);
                if self.improves(after) && best.is_none_or(|(_, v)| after < v) {
                    best = Some((moves, after));
                }
            }
        }
        match best {
            Some((moves, after)) => {
                self.apply(&moves, after);
                true
            }
            None => false,
        }
    }
}

/// Improves a feasible choice within the budget: sweeps of single-block switches (each
/// block to its best candidate given the others) until none helps, then the best pair of a
/// raise and a cut from shortlists, and again, until nothing helps or time runs out.
/// Returns the choice and whether time ran out.
pub(super) fn polish(
    blocks: &[Block],
    coupling: &Coupling,
    choice: Vec<usize>,
    seconds: f64,
) -> (Vec<usize>, bool) {
    let start = Instant::now();
    let total = total_losses(blocks, &choice, coupling.scenarios);
    let holding = blocks
        .iter()
        .zip(&choice)
        .map(|(b, &c)| b.candidates[c].holding)
        .sum();
    let mut search = Search {
        blocks,
        coupling,
        money: spent(blocks, &choice),
        choice,
        trial: vec![0.0; total.len()],
        total,
        holding,
        value: 0.0,
        scratch: Vec::with_capacity(coupling.scenarios),
    };
    search.value = search.holding + search.risk(false);
    loop {
        match search.sweep(start, seconds) {
            None => return (search.choice, true),
            Some(true) => continue,
            Some(false) => {}
        }
        if coupling.budget.is_none() || !search.pair() {
            break;
        }
    }
    debug_assert!(
        (objective(coupling, blocks, &search.choice, &search.total) - search.value).abs()
            <= 1e-6 * search.value.abs().max(1.0)
    );
    (search.choice, false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::scenario::PlanStatus;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// A decreasing random curve per item (more stock, less loss, never negative).
    fn random_model(rng: &mut StdRng, items: usize, levels: usize, scenarios: usize) -> CurveModel {
        let items = (0..items)
            .map(|i| {
                let mut losses: Vec<Vec<f64>> = Vec::new();
                let mut row: Vec<f64> = (0..scenarios)
                    .map(|_| {
                        if rng.random_bool(0.4) {
                            rng.random_range(0.0..1000.0)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                for _ in 0..levels {
                    losses.push(row.clone());
                    row.iter_mut()
                        .for_each(|l| *l *= rng.random_range(0.0..0.8));
                }
                CurveItem {
                    part: format!("P{i}"),
                    location: "S".into(),
                    unit_cost: rng.random_range(10.0..200.0),
                    holding_cost: rng.random_range(1.0..40.0),
                    min_stock: 0,
                    levels: (0..levels as u64).collect(),
                    losses,
                }
            })
            .collect();
        CurveModel {
            items,
            scenarios,
            budget: None,
            cvar_alpha: 0.9,
            cvar_weight: 1.0,
        }
    }

    /// Best objective by trying every combination of levels.
    fn exhaustive(model: &CurveModel) -> f64 {
        let mut index = vec![0usize; model.items.len()];
        let mut best = f64::INFINITY;
        loop {
            let stock: Vec<u64> = index
                .iter()
                .zip(&model.items)
                .map(|(&j, item)| item.levels[j])
                .collect();
            let e = model.evaluate(&stock).unwrap();
            if e.is_feasible() {
                best = best.min(e.objective);
            }
            let mut position = 0;
            loop {
                if position == index.len() {
                    return best;
                }
                if index[position] + 1 < model.items[position].levels.len() {
                    index[position] += 1;
                    break;
                }
                index[position] = 0;
                position += 1;
            }
        }
    }

    #[test]
    fn bounds_and_plans_bracket_the_exhaustive_optimum() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..30 {
            let mut model = random_model(&mut rng, 4, 4, 20);
            if round % 2 == 1 {
                model.budget = Some(rng.random_range(50.0..400.0));
            }
            let best = exhaustive(&model);
            let plan = optimize_curves(&model, &OptimizeOptions::default()).unwrap();
            assert!(
                plan.evaluation.is_feasible(),
                "{:?}",
                plan.evaluation.violations
            );
            let again = model.evaluate(&plan.stock).unwrap();
            assert!((again.objective - plan.evaluation.objective).abs() < 1e-6);
            assert!(
                plan.lower_bound <= best + 1e-6 * best.abs().max(1.0),
                "round {round}"
            );
            assert!(plan.evaluation.objective >= best - 1e-6 * best.abs().max(1.0));
            // The decomposition with polishing lands close to the optimum on these tiny cases.
            assert!(
                plan.evaluation.objective <= best * 1.05 + 1e-6,
                "round {round}: {} vs {best}",
                plan.evaluation.objective
            );
        }
    }

    #[test]
    fn risk_neutral_without_budget_is_exact_per_item() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut model = random_model(&mut rng, 6, 5, 30);
        model.cvar_weight = 0.0;
        let plan = optimize_curves(&model, &OptimizeOptions::default()).unwrap();
        assert_eq!(plan.status, PlanStatus::Optimal);
        for (item, &s) in model.items.iter().zip(&plan.stock) {
            let cost =
                |l: usize| item.holding_cost * l as f64 + item.losses[l].iter().sum::<f64>() / 30.0;
            let best = (0..item.losses.len())
                .map(cost)
                .fold(f64::INFINITY, f64::min);
            assert_eq!(item.levels[s as usize], s);
            assert!((cost(s as usize) - best).abs() < 1e-9);
        }
    }

    #[test]
    fn a_larger_budget_never_raises_the_optimum_and_floors_hold() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut model = random_model(&mut rng, 5, 4, 25);
        model.items[2].min_stock = 2;
        let mut last = f64::INFINITY;
        for budget in [400.0, 600.0, 900.0, 2000.0] {
            model.budget = Some(budget);
            let best = exhaustive(&model);
            assert!(best <= last + 1e-9);
            last = best;
            let plan = optimize_curves(&model, &OptimizeOptions::default()).unwrap();
            assert!(plan.stock[2] >= 2);
            assert!(plan.evaluation.investment <= budget + 1e-6);
        }
        model.budget = Some(1.0);
        assert!(matches!(
            optimize_curves(&model, &OptimizeOptions::default()),
            Err(SolverError::Infeasible(_))
        ));
    }

    #[test]
    fn bad_curves_are_named() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut model = random_model(&mut rng, 2, 3, 4);
        model.items[1].losses[2].pop();
        let e = model.validate().unwrap_err().to_string();
        assert!(e.contains("items[1].losses[2]"), "{e}");
        let mut model = random_model(&mut rng, 2, 3, 4);
        model.items[0].losses[1][3] = f64::NAN;
        let e = model.validate().unwrap_err().to_string();
        assert!(e.contains("items[0].losses[1][3]"), "{e}");
        let mut model = random_model(&mut rng, 2, 3, 4);
        model.items[0].min_stock = 3;
        let e = model.validate().unwrap_err().to_string();
        assert!(e.contains("items[0].min_stock"), "{e}");
        let mut model = random_model(&mut rng, 2, 3, 4);
        model.items[1].levels = vec![0, 2, 2];
        let e = model.validate().unwrap_err().to_string();
        assert!(e.contains("items[1].levels"), "{e}");
    }

    #[test]
    fn levels_need_not_be_contiguous() {
        // A tight budget over coarse levels is a small knapsack: the plan can miss the
        // optimum, but never by more than the gap it reports, and rarely by much.
        let mut rng = StdRng::seed_from_u64(21);
        let (mut found, mut optimum) = (0.0, 0.0);
        for _ in 0..20 {
            let mut model = random_model(&mut rng, 4, 4, 15);
            for item in &mut model.items {
                item.levels = vec![0, 1, 3, 6];
            }
            model.budget = Some(800.0);
            let best = exhaustive(&model);
            let plan = optimize_curves(&model, &OptimizeOptions::default()).unwrap();
            let objective = plan.evaluation.objective;
            assert!(plan.stock.iter().all(|s| [0, 1, 3, 6].contains(s)));
            assert!(plan.evaluation.investment <= 800.0 + 1e-6);
            assert!(plan.lower_bound <= best + 1e-6 * best.abs().max(1.0));
            assert!(objective - best <= plan.gap * objective + 1e-6);
            found += objective;
            optimum += best;
        }
        assert!(found <= optimum * 1.03, "{found} vs {optimum}");
    }
}
