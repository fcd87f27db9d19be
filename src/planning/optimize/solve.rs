//! The cross-part solve: one candidate per tree against the network-wide tail of downtime
//! cost (`spares_solver::scenario::optimize_vectors`, Lagrangian decomposition with its
//! bound, then polish), within the budget (budget mode) or with holding cost (cost mode).
//!
//! The baselines' choices (the METRIC and averages vectors, which are candidates too) are
//! evaluated on the same model; if either is better than the solver's choice, it is kept,
//! so in sample the plan is never worse than a baseline it can reach. The money left
//! unspent is reported with its reason.

use super::train::Trained;
use super::{ANNUAL_HOLDING_RATE, OptimizeError, OptimizeRequest, PlanMode};
use crate::domain::DomainError;
use spares_simulations::tree::TreeWindow;
use spares_solver::SolverError;
use spares_solver::scenario::{Method, OptimizeOptions, VectorModel, VectorPlan, optimize_vectors};

/// What the plan minimises, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Budget or cost mode.
    pub mode: PlanMode,
    /// The budget (budget mode).
    pub budget_usd: Option<f64>,
    /// CVaR level.
    pub cvar_alpha: f64,
    /// Weight lambda of CVaR.
    pub cvar_weight: f64,
    /// Solver wall-clock limit.
    pub time_limit_seconds: f64,
}

impl Objective {
    /// The request's objective. Errors: budget mode without a budget (`InvalidArgument` on
    /// `budget_usd`); a negative budget, which no plan can meet (`FailedPrecondition`
    /// naming `budget_usd`).
    pub fn of(request: &OptimizeRequest) -> Result<Self, DomainError> {
        let budget = match (request.mode, request.budget_usd) {
            (_, Some(b)) if !b.is_finite() => {
                return Err(DomainError::invalid("budget_usd", "must be finite"));
            }
            (_, Some(b)) if b < 0.0 => {
                return Err(DomainError::FailedPrecondition(format!(
                    "budget_usd: {b} is below the cheapest plan (no stock, 0 USD)"
                )));
            }
            (PlanMode::Budget, None) => {
                return Err(DomainError::invalid(
                    "budget_usd",
                    "budget mode needs a budget above 0 (or ask for cost mode)",
                ));
            }
            (PlanMode::Budget, b) => b,
            (PlanMode::Cost, _) => None,
        };
        Ok(Self {
            mode: request.mode,
            budget_usd: budget,
            cvar_alpha: request.cvar_alpha,
            cvar_weight: request.cvar_weight,
            time_limit_seconds: request.time_limit_seconds,
        })
    }

    /// Holding cost per dollar invested over the window's measured days: 0 in budget mode
    /// (the budget prices money), [`ANNUAL_HOLDING_RATE`] pro rata in cost mode.
    pub fn holding_per_usd(&self, window: TreeWindow) -> f64 {
        match self.mode {
            PlanMode::Budget => 0.0,
            PlanMode::Cost => ANNUAL_HOLDING_RATE * window.measured_days / 365.0,
        }
    }
}

/// The chosen candidates and how the solve went.
#[derive(Debug, Clone)]
pub struct Solved {
    /// Candidate index per tree.
    pub choice: Vec<usize>,
    /// The solver's plan, re-evaluated for the final choice.
    pub plan: VectorPlan,
    /// Budget left (budget mode; 0 otherwise).
    pub unspent_usd: f64,
    /// Why it was left (empty when nothing was).
    pub unspent_reason: String,
}

/// The model of the trained blocks under the objective (the blocks move into it; give
/// them back with [`restore`]).
pub fn model(trained: &mut Trained, objective: &Objective) -> VectorModel {
    VectorModel {
        blocks: std::mem::take(&mut trained.blocks),
        scenarios: trained.scenarios(),
        budget: objective.budget_usd,
        cvar_alpha: objective.cvar_alpha,
        cvar_weight: objective.cvar_weight,
    }
}

/// Solves, keeps the best of the solver's choice and `fallbacks`, and explains unspent
/// money. Errors: the budget below every plan (`FailedPrecondition` naming `budget_usd`),
/// or a solver failure.
pub fn solve(
    trained: &mut Trained,
    objective: &Objective,
    fallbacks: &[Vec<usize>],
) -> Result<Solved, OptimizeError> {
    let model = model(trained, objective);
    let outcome = solve_model(&model, objective, fallbacks);
    restore(trained, model);
    outcome
}

/// Gives the blocks back to `trained`.
pub fn restore(trained: &mut Trained, model: VectorModel) {
    trained.blocks = model.blocks;
}

fn solve_model(
    model: &VectorModel,
    objective: &Objective,
    fallbacks: &[Vec<usize>],
) -> Result<Solved, OptimizeError> {
    let options = OptimizeOptions {
        time_limit_seconds: objective.time_limit_seconds.max(1.0),
        method: Method::Decomposed,
        ..OptimizeOptions::default()
    };
    let mut plan = optimize_vectors(model, &options).map_err(|e| match e {
        SolverError::Infeasible(reason) => OptimizeError::Request(DomainError::FailedPrecondition(
            format!("budget_usd: {reason}"),
        )),
        other => OptimizeError::Solver(other),
    })?;
    for choice in fallbacks {
        let Ok(evaluation) = model.evaluate(choice) else {
            continue;
        };
        if evaluation.is_feasible() && evaluation.objective < plan.evaluation.objective {
            plan.choice = choice.clone();
            plan.evaluation = evaluation;
        }
    }
    improve(model, &mut plan);
    let (unspent_usd, unspent_reason) = unspent(model, &plan);
    Ok(Solved {
        choice: plan.choice.clone(),
        plan,
        unspent_usd,
        unspent_reason,
    })
}

/// Most passes of [`improve`].
const IMPROVE_PASSES: usize = 50;
/// Raises and cuts short-listed (by first-order merit) for the pair moves of a pass.
const PAIR_SHORTLIST: usize = 48;

/// One switch: block `block` to candidate `candidate`.
#[derive(Debug, Clone, Copy)]
struct Switch {
    block: usize,
    candidate: usize,
    /// First-order change of the objective per dollar of investment change.
    merit: f64,
}

/// Local search on the model after the solver: each pass applies the best of (a) single
/// switches, one tree to another of its candidates, that fit the budget and lower the
/// objective, and (b) pairs, one tree up and another down, among the short-listed raises
/// and cuts (by first-order merit with the current tail weights), that fit and lower it;
/// until none is left (or [`IMPROVE_PASSES`]). After this no single switch the budget
/// allows lowers the training objective, which is what the unspent-money reason says.
fn improve(model: &VectorModel, plan: &mut VectorPlan) {
    let Ok(mut current) = model.evaluate(&plan.choice) else {
        return;
    };
    let mut trial = vec![0.0; model.scenarios];
    let mut scratch = Vec::with_capacity(model.scenarios);
    let fits = |investment: f64| {
        model
            .budget
            .is_none_or(|budget| investment <= budget * (1.0 + 1e-12) + 1e-9)
    };
    for _ in 0..IMPROVE_PASSES {
        let threshold = current.objective - 1e-9 * current.objective.abs().max(1.0);
        let mut best: Option<(Vec<Switch>, f64)> = None;
        let mut consider = |switches: Vec<Switch>, trial: &mut Vec<f64>| {
            let mut investment = current.investment;
            let mut holding = current.holding_cost;
            trial.copy_from_slice(&current.scenario_losses);
            for s in &switches {
                let block = &model.blocks[s.block];
                let (now, next) = (
                    &block.candidates[plan.choice[s.block]],
                    &block.candidates[s.candidate],
                );
                investment += next.investment - now.investment;
                holding += next.holding_cost - now.holding_cost;
                for ((t, a), b) in trial.iter_mut().zip(&now.losses).zip(&next.losses) {
                    *t += b - a;
                }
            }
            if !fits(investment) {
                return;
            }
            let objective = objective_of(model, holding, trial, &mut scratch);
            if objective < threshold && best.as_ref().is_none_or(|(_, o)| objective < *o) {
                best = Some((switches, objective));
            }
        };
        let (raises, cuts) = shortlists(model, plan, &current);
        for s in raises.iter().chain(&cuts) {
            consider(vec![*s], &mut trial);
        }
        for r in raises.iter().take(PAIR_SHORTLIST) {
            for c in cuts.iter().take(PAIR_SHORTLIST) {
                if r.block != c.block {
                    consider(vec![*r, *c], &mut trial);
                }
            }
        }
        let Some((switches, _)) = best else {
            break;
        };
        for s in switches {
            plan.choice[s.block] = s.candidate;
        }
        match model.evaluate(&plan.choice) {
            Ok(evaluation) => current = evaluation,
            Err(_) => break,
        }
    }
    plan.evaluation = current;
}

/// Every switch of every block, split into raises (more money) and cuts (less money or
/// the same), each sorted by first-order merit per dollar (best first; equal-money
/// switches by their change).
fn shortlists(
    model: &VectorModel,
    plan: &VectorPlan,
    current: &spares_solver::scenario::Evaluation,
) -> (Vec<Switch>, Vec<Switch>) {
    let weights = spares_solver::tail::tail_weights(&current.scenario_losses, model.cvar_alpha)
        .unwrap_or_else(|_| vec![0.0; model.scenarios]);
    let years = model.scenarios.max(1) as f64;
    let (mut raises, mut cuts) = (Vec::new(), Vec::new());
    for (b, block) in model.blocks.iter().enumerate() {
        let now = &block.candidates[plan.choice[b]];
        for (k, next) in block.candidates.iter().enumerate() {
            if k == plan.choice[b] {
                continue;
            }
            let mut change = next.holding_cost - now.holding_cost;
            for ((a, n), w) in now.losses.iter().zip(&next.losses).zip(&weights) {
                change += (n - a) / years + model.cvar_weight * w * (n - a);
            }
            let spend = next.investment - now.investment;
            let merit = if spend.abs() < 1e-9 {
                change
            } else {
                change / spend.abs()
            };
            let switch = Switch {
                block: b,
                candidate: k,
                merit,
            };
            if spend > 1e-9 {
                raises.push(switch);
            } else {
                cuts.push(switch);
            }
        }
    }
    raises.sort_by(|a, b| a.merit.total_cmp(&b.merit));
    cuts.sort_by(|a, b| a.merit.total_cmp(&b.merit));
    (raises, cuts)
}

/// Holding + mean + lambda x CVaR of `losses`, CVaR by selection (O(n)) on `scratch`.
fn objective_of(model: &VectorModel, holding: f64, losses: &[f64], scratch: &mut Vec<f64>) -> f64 {
    let n = losses.len().max(1);
    let mean = losses.iter().sum::<f64>() / n as f64;
    holding + mean + model.cvar_weight * cvar_by_selection(losses, model.cvar_alpha, scratch)
}

/// CVaR_alpha of equiprobable `losses` (the boundary scenario counted fractionally, as
/// `spares_solver::tail::cvar`), by selection instead of a sort.
pub fn cvar_by_selection(losses: &[f64], alpha: f64, scratch: &mut Vec<f64>) -> f64 {
    let n = losses.len();
    if n == 0 {
        return 0.0;
    }
    let cap = 1.0 / ((1.0 - alpha) * n as f64);
    let full = ((1.0 / cap) + 1e-9).floor() as usize;
    scratch.clear();
    scratch.extend_from_slice(losses);
    if full >= n {
        return scratch.iter().sum::<f64>() / n as f64;
    }
    let (top, boundary, _) = scratch.select_nth_unstable_by(full, |a, b| b.total_cmp(a));
    let top_sum: f64 = top.iter().sum();
    cap * top_sum + (1.0 - full as f64 * cap).max(0.0) * *boundary
}

/// Budget left and why: either no larger candidate of any tree fits the money left, or the
/// ones that fit do not lower the training objective.
fn unspent(model: &VectorModel, plan: &VectorPlan) -> (f64, String) {
    let Some(budget) = model.budget else {
        return (0.0, String::new());
    };
    let left = (budget - plan.evaluation.investment).max(0.0);
    if left < 0.01 {
        return (left, String::new());
    }
    let smallest_step = model
        .blocks
        .iter()
        .zip(&plan.choice)
        .filter_map(|(block, &c)| {
            let at = block.candidates[c].investment;
            block
                .candidates
                .iter()
                .map(|k| k.investment - at)
                .filter(|step| *step > 0.0)
                .min_by(f64::total_cmp)
        })
        .min_by(f64::total_cmp);
    let reason = match smallest_step {
        None => "every part is at its largest candidate: more stock is past what METRIC's \
                 marginal analysis reaches at twice the budget"
            .to_string(),
        Some(step) if step > left => format!(
            "the smallest step to a larger candidate of any part costs {}, more than is left",
            super::money(step)
        ),
        Some(_) => "no switch of one part to a larger candidate that fits lowers expected + \
                    lambda x CVaR of downtime cost in training: more stock does not pay here"
            .to_string(),
    };
    (left, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvar_by_selection_matches_the_sorted_definition() {
        let losses: Vec<f64> = (0..137).map(|k| ((k * 7919) % 113) as f64).collect();
        let mut scratch = Vec::new();
        for alpha in [0.5, 0.9, 0.95, 0.99] {
            let exact = spares_solver::tail::cvar(&losses, alpha).expect("valid");
            let fast = cvar_by_selection(&losses, alpha, &mut scratch);
            assert!((exact - fast).abs() < 1e-9, "{alpha}: {exact} vs {fast}");
        }
    }
}
