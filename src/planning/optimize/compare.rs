//! The honest comparison: the consequence plan against the downtime-weighted multi-echelon
//! METRIC plan and the averages plan at the same investment (the budget in budget mode,
//! the consequence plan's investment in cost mode), all scored out of sample on a fresh
//! seed with common random numbers, with paired differences and bootstrap intervals, and
//! each plan's in-sample figures (the training years) beside its out-of-sample ones.
//!
//! The same out-of-sample years also score the plan in force and the METRIC plan at several
//! investments (the frontier the report marks both plans on), and the downtime of the
//! three plans and the plan in force is kept by location and by part ([`breakdown`]).

use super::baselines::{MetricCurves, TreePlan, averages, frontier_budgets, in_force, tree_z};
use super::breakdown;
use super::evaluate::{Scores, score};
use super::solve::{Objective, Solved};
use super::train::Trained;
use super::{
    DowntimeShare, EVALUATION_REPLICATIONS, OptimizeError, OptimizeRequest, PairedDifference,
    PlanEvaluation, PlanMode, evaluation_seed, money,
};
use crate::domain::DomainError;
use crate::domain::network::Network;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares_simulations::tree::{PartTree, TreeTotals, TreeWindow};
use spares_solver::tail::{cvar, value_at_risk};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Bootstrap resamples of the evaluation years behind every paired interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2_000;
/// The tail level of the reported CVaR (the comparison's, whatever the objective's).
pub const REPORTED_CVAR_ALPHA: f64 = 0.95;

/// The baseline plans, when they are known before training (budget mode: at the budget).
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// Downtime-weighted METRIC at the budget.
    pub metric: Option<TreePlan>,
    /// Averages scaled to the budget.
    pub averages: Option<TreePlan>,
    /// The METRIC curves the METRIC plan was allocated from, kept for the frontier.
    pub metric_curves: Option<Arc<MetricCurves>>,
}

impl Baselines {
    /// Both baselines at `budget_usd`, or none without a budget. Errors: a tree METRIC
    /// cannot model (`InvalidArgument`).
    pub fn build(
        network: &Network,
        trees: &[PartTree],
        budget_usd: Option<f64>,
    ) -> Result<Self, DomainError> {
        let Some(budget) = budget_usd else {
            return Ok(Self::default());
        };
        let curves = MetricCurves::new(trees, false)?;
        Ok(Self {
            metric: Some(curves.plan(budget)?),
            averages: Some(averages(trees, &tree_z(network, trees), budget)),
            metric_curves: Some(Arc::new(curves)),
        })
    }

    /// The METRIC plan's total stock in tree `t`.
    pub fn metric_total(&self, t: usize) -> Option<u64> {
        self.metric
            .as_ref()
            .map(|p| p.stock[t].iter().map(|&u| u64::from(u)).sum())
    }

    /// The baselines' vectors of tree `t`.
    pub fn vectors(&self, t: usize) -> Vec<Vec<u32>> {
        [&self.metric, &self.averages]
            .into_iter()
            .flatten()
            .map(|p| p.stock[t].clone())
            .collect()
    }

    /// Each baseline as a choice of candidates (when all its vectors are candidates).
    pub fn choices(&self, trained: &Trained) -> Vec<Vec<usize>> {
        [&self.metric, &self.averages]
            .into_iter()
            .flatten()
            .filter_map(|plan| {
                plan.stock
                    .iter()
                    .zip(&trained.candidates)
                    .map(|(s, c)| c.iter().position(|v| v == s))
                    .collect::<Option<Vec<usize>>>()
            })
            .collect()
    }
}

/// The comparison of a run.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Consequence, averages, METRIC.
    pub rows: Vec<PlanEvaluation>,
    /// Consequence minus each baseline.
    pub paired: Vec<PairedDifference>,
    /// How the intervals were made.
    pub interval_method: String,
    /// The out-of-sample seed.
    pub evaluation_seed: u64,
    /// The METRIC plan compared.
    pub metric: TreePlan,
    /// The averages plan compared.
    pub averages: TreePlan,
    /// The plan in force on the same years (no per-year costs).
    pub in_force: PlanEvaluation,
    /// The METRIC plan at each frontier investment on the same years, investment rising.
    pub metric_frontier: Vec<PlanEvaluation>,
    /// Downtime by location, per plan.
    pub downtime_by_location: Vec<DowntimeShare>,
    /// Downtime by part, per plan.
    pub downtime_by_part: Vec<DowntimeShare>,
}

/// Scores the three plans (see the module docs). `progress` gets the share done. Errors: a
/// tree the simulator refuses, or a baseline METRIC cannot build.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    network: &Network,
    trees: &[PartTree],
    trained: &Trained,
    solved: &Solved,
    baselines: &Baselines,
    objective: &Objective,
    window: TreeWindow,
    request: &OptimizeRequest,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Comparison, OptimizeError> {
    let consequence = trained.stock_of(&solved.choice);
    let investment = solved.plan.evaluation.investment;
    let target = match objective.mode {
        PlanMode::Budget => objective.budget_usd.unwrap_or(investment),
        PlanMode::Cost => investment,
    };
    let built;
    let baselines = if baselines.metric.is_some() && objective.mode == PlanMode::Budget {
        baselines
    } else {
        built = Baselines::build(network, trees, Some(target))?;
        &built
    };
    let (Some(metric), Some(averages), Some(curves)) = (
        &baselines.metric,
        &baselines.averages,
        &baselines.metric_curves,
    ) else {
        return Err(DomainError::invalid("compare", "no baseline plans were built").into());
    };
    progress(0.0);
    let current = in_force(network, trees);
    let frontier = frontier_budgets(target, current.investment)
        .into_iter()
        .map(|b| {
            if b == target {
                Ok(metric.clone())
            } else {
                curves.plan(b)
            }
        })
        .collect::<Result<Vec<TreePlan>, DomainError>>()?;
    let seed = evaluation_seed(request.settings.seed);
    // Plans 0..3 are compared; 3 is the plan in force; the rest trace the frontier.
    let plans: Vec<&[Vec<u32>]> = [
        consequence.as_slice(),
        &averages.stock,
        &metric.stock,
        &current.stock,
    ]
    .into_iter()
    .chain(frontier.iter().map(|p| p.stock.as_slice()))
    .collect();
    // The out-of-sample run scores every plan on 200 years, the in-sample run two on the
    // training years: progress is split by that work.
    let out_work = plans.len() as f64 * f64::from(EVALUATION_REPLICATIONS);
    let in_work = 2.0 * trained.years as f64;
    let split = out_work / (out_work + in_work).max(1.0);
    let out_of_sample = score(
        trees,
        &plans,
        window,
        seed,
        EVALUATION_REPLICATIONS,
        &|f| progress(split * f),
        cancel,
    )?;
    let in_sample = score(
        trees,
        &plans[1..3],
        window,
        request.settings.seed,
        trained.years as u32,
        &|f| progress(split + (1.0 - split) * f),
        cancel,
    )?;
    progress(1.0);
    let dearest = trees.iter().map(|t| t.unit_cost).fold(0.0, f64::max);
    let investments = [investment, averages.investment, metric.investment];
    let names = ["consequence", "averages", "metric"];
    let rows = (0..3)
        .map(|p| {
            let losses_in = if p == 0 {
                &solved.plan.evaluation.scenario_losses
            } else {
                &in_sample.years[p - 1]
            };
            let mut row = evaluation(names[p], investments[p], &out_of_sample, p);
            row.in_sample_mean = Some(mean(losses_in));
            row.in_sample_cvar95 = cvar(losses_in, REPORTED_CVAR_ALPHA).ok();
            if p > 0 && target - row.investment_usd > dearest {
                row.note = format!(
                    "{} stops at {}: its model sees no benefit in more stock",
                    names[p],
                    money(row.investment_usd)
                );
            }
            row
        })
        .collect();
    let unpaired = |name: String, investment: f64, p: usize| PlanEvaluation {
        replication_costs: Vec::new(),
        ..evaluation(&name, investment, &out_of_sample, p)
    };
    let in_force_row = unpaired("in force".into(), current.investment, 3);
    let metric_frontier = frontier
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let name = format!("metric at {}", money(plan.investment));
            unpaired(name, plan.investment, 4 + i)
        })
        .collect();
    let (downtime_by_location, downtime_by_part) =
        breakdown::downtime(trees, &out_of_sample, [0, 1, 2, 3]);
    let mut paired = Vec::new();
    for (p, name) in [(2, "metric"), (1, "averages")] {
        paired.extend(paired_differences(
            name,
            &out_of_sample.years[0],
            &out_of_sample.years[p],
            seed,
        ));
    }
    Ok(Comparison {
        rows,
        paired,
        interval_method: format!(
            "paired bootstrap over the {EVALUATION_REPLICATIONS} evaluation years (the same \
             years for every plan), {BOOTSTRAP_RESAMPLES} resamples, percentile 95% interval; \
             significant when it excludes 0"
        ),
        evaluation_seed: seed,
        metric: metric.clone(),
        averages: averages.clone(),
        in_force: in_force_row,
        metric_frontier,
        downtime_by_location,
        downtime_by_part,
    })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Plan `p`'s row from the scores.
fn evaluation(name: &str, investment: f64, scores: &Scores, p: usize) -> PlanEvaluation {
    let years = &scores.years[p];
    let totals: &TreeTotals = &scores.totals[p];
    PlanEvaluation {
        plan: name.to_string(),
        investment_usd: investment,
        fill_rate: (totals.failures > 0).then(|| totals.from_shelf as f64 / totals.failures as f64),
        availability: None,
        downtime_cost_mean: mean(years),
        downtime_cost_p95: value_at_risk(years, 0.95).unwrap_or(0.0),
        downtime_cost_p99: value_at_risk(years, 0.99).unwrap_or(0.0),
        downtime_cost_cvar95: cvar(years, REPORTED_CVAR_ALPHA).unwrap_or(0.0),
        emergency_shipments: totals.emergencies as f64 / years.len().max(1) as f64,
        note: String::new(),
        in_sample_mean: None,
        in_sample_cvar95: None,
        replication_costs: years.clone(),
    }
}

/// Mean and CVaR95 of `a` minus `b` on the same years, with paired bootstrap intervals
/// (resampled year indices, the same for both plans).
pub fn paired_differences(
    baseline: &str,
    a: &[f64],
    b: &[f64],
    seed: u64,
) -> Vec<PairedDifference> {
    let n = a.len().min(b.len());
    if n == 0 {
        return Vec::new();
    }
    let stats = |x: &[f64], y: &[f64]| {
        let mean_difference = mean(x) - mean(y);
        let tail = cvar(x, REPORTED_CVAR_ALPHA).unwrap_or(0.0)
            - cvar(y, REPORTED_CVAR_ALPHA).unwrap_or(0.0);
        [mean_difference, tail]
    };
    let point = stats(&a[..n], &b[..n]);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xB007_57A9);
    let mut draws = [
        Vec::with_capacity(BOOTSTRAP_RESAMPLES),
        Vec::with_capacity(BOOTSTRAP_RESAMPLES),
    ];
    let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for k in 0..n {
            let i = rng.random_range(0..n);
            x[k] = a[i];
            y[k] = b[i];
        }
        let s = stats(&x, &y);
        draws[0].push(s[0]);
        draws[1].push(s[1]);
    }
    ["mean", "CVaR95"]
        .into_iter()
        .zip(point)
        .zip(draws.iter_mut())
        .map(|((statistic, difference), draw)| {
            draw.sort_by(f64::total_cmp);
            let low = draw[(0.025 * BOOTSTRAP_RESAMPLES as f64) as usize];
            let high = draw[((0.975 * BOOTSTRAP_RESAMPLES as f64) as usize).min(draw.len() - 1)];
            PairedDifference {
                baseline: baseline.to_string(),
                statistic: statistic.to_string(),
                difference,
                low,
                high,
                significant: low > 0.0 || high < 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_lower_every_year_is_significantly_lower_and_equal_plans_are_not() {
        let b: Vec<f64> = (0..200).map(|k| 1000.0 + (k * 37 % 101) as f64).collect();
        let a: Vec<f64> = b.iter().map(|v| v - 50.0).collect();
        let rows = paired_differences("metric", &a, &b, 1);
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert!((row.difference + 50.0).abs() < 1e-9, "{row:?}");
            assert!(row.significant && row.high < 0.0, "{row:?}");
        }
        let same = paired_differences("metric", &b, &b, 1);
        assert!(same.iter().all(|r| !r.significant && r.difference == 0.0));
    }
}
