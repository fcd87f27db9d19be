//! Choosing one candidate per block (a part's stock vector over all its echelons) against
//! the network-wide tail, within a budget.
//!
//! Each block is one part's supply tree; its candidates are whole stock vectors, each with
//! the money it ties up, its holding cost and its downtime cost in every scenario (common
//! random numbers across candidates and blocks). The problem is DOMAIN.md's "scenario model
//! across parts": minimise holding + mean_k L_k + lambda CVaR_alpha(L), L_k the sum of the
//! chosen candidates' losses, within the budget. It is solved by the same Lagrangian
//! decomposition as the curve model (each block priced by enumerating its candidates; the
//! bound and gap are reported), then polished by single switches and raise/cut pairs.

use super::decompose::{Block, Candidate, Coupling, solve_blocks};
use super::evaluate::Evaluation;
use super::{OptimizeOptions, PlanStatus};
use crate::error::{Result, invalid, non_negative, open_unit, positive};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;

/// One candidate of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorCandidate {
    /// Money the candidate ties up (counts against the budget).
    pub investment: f64,
    /// Holding cost over the scenario period.
    pub holding_cost: f64,
    /// Downtime cost in each scenario.
    pub losses: Vec<f64>,
}

/// A block: one part's tree and its candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorBlock {
    /// Name for errors and reports.
    pub name: String,
    /// The candidates (at least one).
    pub candidates: Vec<VectorCandidate>,
}

/// The model as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorModel {
    /// The blocks.
    pub blocks: Vec<VectorBlock>,
    /// Number of equiprobable scenarios (the length of every loss row).
    pub scenarios: usize,
    /// Most money to tie up, if limited.
    pub budget: Option<f64>,
    /// CVaR confidence level in (0, 1).
    pub cvar_alpha: f64,
    /// Weight lambda of the CVaR term.
    pub cvar_weight: f64,
}

/// The chosen candidate of every block, evaluated, with the bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorPlan {
    /// Chosen candidate index per block.
    pub choice: Vec<usize>,
    /// Exact evaluation of the choice on the scenarios (`fill_rates` empty).
    pub evaluation: Evaluation,
    /// Lagrangian lower bound on the best objective.
    pub lower_bound: f64,
    /// (objective - bound) / max(|objective|, 1e-9).
    pub gap: f64,
    /// How the solve ended.
    pub status: PlanStatus,
    /// Decomposition iterations.
    pub iterations: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl VectorModel {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.blocks.is_empty() {
            return Err(invalid("blocks", "must not be empty"));
        }
        if self.scenarios == 0 {
            return Err(invalid("scenarios", "needs at least one scenario"));
        }
        for (b, block) in self.blocks.iter().enumerate() {
            if block.candidates.is_empty() {
                return Err(invalid(format!("blocks[{b}].candidates"), "needs one"));
            }
            for (c, candidate) in block.candidates.iter().enumerate() {
                let field = |name: &str| format!("blocks[{b}].candidates[{c}].{name}");
                non_negative(&field("investment"), candidate.investment)?;
                non_negative(&field("holding_cost"), candidate.holding_cost)?;
                if candidate.losses.len() != self.scenarios {
                    return Err(invalid(field("losses"), "needs one entry per scenario"));
                }
                if candidate.losses.iter().any(|l| !l.is_finite() || *l < 0.0) {
                    return Err(invalid(field("losses"), "must be finite and not negative"));
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

    fn decomposition_blocks(&self) -> Vec<Block<'_>> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(b, block)| Block {
                members: vec![b],
                candidates: block
                    .candidates
                    .iter()
                    .enumerate()
                    .map(|(c, candidate)| Candidate {
                        stock: vec![c as u64],
                        investment: candidate.investment,
                        holding: candidate.holding_cost,
                        row_units: Vec::new(),
                        losses: Cow::Borrowed(&candidate.losses),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Exact evaluation of a choice (candidate index per block).
    pub fn evaluate(&self, choice: &[usize]) -> Result<Evaluation> {
        if choice.len() != self.blocks.len() {
            return Err(invalid("choice", "needs one candidate index per block"));
        }
        let mut losses = vec![0.0; self.scenarios];
        let (mut investment, mut holding) = (0.0, 0.0);
        for (b, (block, &c)) in self.blocks.iter().zip(choice).enumerate() {
            let candidate = block
                .candidates
                .get(c)
                .ok_or_else(|| invalid(format!("choice[{b}]"), "no such candidate"))?;
            investment += candidate.investment;
            holding += candidate.holding_cost;
            losses
                .iter_mut()
                .zip(&candidate.losses)
                .for_each(|(t, l)| *t += l);
        }
        Ok(self.summarise(investment, holding, losses))
    }

    fn summarise(&self, investment: f64, holding: f64, losses: Vec<f64>) -> Evaluation {
        let expected = losses.iter().sum::<f64>() / losses.len() as f64;
        let tail = crate::tail::cvar(&losses, self.cvar_alpha).unwrap_or(expected);
        let mut violations = Vec::new();
        if let Some(budget) = self.budget
            && investment > budget * (1.0 + 1e-9) + 1e-9
        {
            violations.push(format!("budget: {investment:.2} > {budget:.2}"));
        }
        Evaluation {
            investment,
            holding_cost: holding,
            expected_downtime_cost: expected,
            cvar_downtime_cost: tail,
            objective: holding + expected + self.cvar_weight * tail,
            fill_rates: Vec::new(),
            violations,
            scenario_losses: losses,
        }
    }
}

/// Solves the model. Errors: `InvalidInput` for a bad model, `Infeasible` when even the
/// cheapest candidates together cost more than the budget.
pub fn optimize_vectors(model: &VectorModel, options: &OptimizeOptions) -> Result<VectorPlan> {
    let start = Instant::now();
    positive("time_limit_seconds", options.time_limit_seconds)?;
    model.validate()?;
    let blocks = model.decomposition_blocks();
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
        "the cheapest candidates together cost more than the budget",
    )?;
    let choice = solved.choice;
    let (investment, holding) = blocks
        .iter()
        .zip(&choice)
        .fold((0.0, 0.0), |(m, h), (b, &c)| {
            (m + b.candidates[c].investment, h + b.candidates[c].holding)
        });
    let evaluation = model.summarise(investment, holding, solved.losses);
    let status = super::decompose::status(
        evaluation.objective,
        solved.lower_bound,
        options,
        solved.timed_out,
    );
    Ok(VectorPlan {
        choice,
        gap: super::joint::gap(evaluation.objective, solved.lower_bound),
        evaluation,
        lower_bound: solved.lower_bound,
        status,
        iterations: solved.iterations,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn random_model(seed: u64, blocks: usize, candidates: usize, scenarios: usize) -> VectorModel {
        let mut rng = StdRng::seed_from_u64(seed);
        let blocks = (0..blocks)
            .map(|b| {
                let mut row: Vec<f64> = (0..scenarios)
                    .map(|_| {
                        if rng.random_bool(0.3) {
                            rng.random_range(0.0..1000.0)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let mut investment = 0.0;
                let candidates = (0..candidates)
                    .map(|_| {
                        let c = VectorCandidate {
                            investment,
                            holding_cost: 0.1 * investment,
                            losses: row.clone(),
                        };
                        investment += rng.random_range(10.0..100.0);
                        row.iter_mut()
                            .for_each(|l| *l *= rng.random_range(0.0..0.9));
                        c
                    })
                    .collect();
                VectorBlock {
                    name: format!("B{b}"),
                    candidates,
                }
            })
            .collect();
        VectorModel {
            blocks,
            scenarios,
            budget: Some(150.0),
            cvar_alpha: 0.8,
            cvar_weight: 1.0,
        }
    }

    /// Best objective within the budget by trying every combination.
    fn brute_force(model: &VectorModel) -> f64 {
        let sizes: Vec<usize> = model.blocks.iter().map(|b| b.candidates.len()).collect();
        let mut choice = vec![0usize; sizes.len()];
        let mut best = f64::INFINITY;
        loop {
            let e = model.evaluate(&choice).unwrap();
            if e.is_feasible() {
                best = best.min(e.objective);
            }
            let mut i = 0;
            loop {
                if i == sizes.len() {
                    return best;
                }
                choice[i] += 1;
                if choice[i] < sizes[i] {
                    break;
                }
                choice[i] = 0;
                i += 1;
            }
        }
    }

    #[test]
    fn the_plan_is_near_the_brute_force_optimum_and_its_bound_holds() {
        for seed in 0..8 {
            let model = random_model(seed, 4, 4, 30);
            let best = brute_force(&model);
            let plan = optimize_vectors(&model, &OptimizeOptions::default()).unwrap();
            assert!(plan.evaluation.is_feasible());
            assert!(plan.lower_bound <= best + 1e-6 * best.abs().max(1.0));
            assert!(
                plan.evaluation.objective <= best * 1.05 + 1e-9,
                "seed {seed}: {} vs optimum {best}",
                plan.evaluation.objective
            );
        }
    }

    #[test]
    fn bad_models_name_the_field() {
        let mut model = random_model(1, 2, 2, 5);
        model.cvar_alpha = 1.0;
        assert!(optimize_vectors(&model, &OptimizeOptions::default()).is_err());
        let mut model = random_model(1, 2, 2, 5);
        model.blocks[1].candidates[0].losses.pop();
        let error = optimize_vectors(&model, &OptimizeOptions::default()).unwrap_err();
        assert!(
            error.to_string().contains("blocks[1].candidates[0].losses"),
            "{error}"
        );
    }
}
