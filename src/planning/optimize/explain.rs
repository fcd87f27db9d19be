//! Explanations and the result: a row per decided level of any plan, with the numbers the
//! choice rests on (what the part's chosen candidate saves against its next smaller one in
//! the training years, on average and in the network's worst years), and the result the
//! job returns.

use super::compare::Comparison;
use super::solve::Solved;
use super::train::Trained;
use super::{
    MAX_RECOMMENDATION_ROWS, OptimizeRequest, OptimizeResult, Recommendation, TrainingModel, money,
};
use crate::domain::network::PartId;
use crate::planning::simulate::WarmUpChoice;
use spares_simulations::tree::PartTree;
use spares_solver::scenario::Method;
use spares_solver::tail::tail_weights;

/// Everything [`result`] assembles.
pub struct Parts<'a> {
    /// Parts planned.
    pub part_ids: Vec<PartId>,
    /// Their trees.
    pub trees: &'a [PartTree],
    /// The trained model.
    pub trained: &'a Trained,
    /// The solve.
    pub solved: &'a Solved,
    /// The consequence plan per tree.
    pub plan: &'a [Vec<u32>],
    /// The comparison, when asked.
    pub comparison: Option<Comparison>,
    /// The rows.
    pub recommendations: Vec<Recommendation>,
    /// The request (resolved warm-up).
    pub request: &'a OptimizeRequest,
    /// Training years.
    pub years: u32,
    /// The warm-up and why.
    pub warm_up: WarmUpChoice,
}

/// The job's result.
pub fn result(parts: Parts<'_>) -> OptimizeResult {
    let Parts {
        part_ids,
        trees,
        trained,
        solved,
        plan,
        comparison,
        recommendations,
        request,
        years,
        warm_up,
    } = parts;
    let levels: Vec<(PartId, String, u64)> = trees
        .iter()
        .zip(plan)
        .flat_map(|(tree, stock)| {
            tree.nodes
                .iter()
                .zip(stock)
                .map(|(node, &units)| (tree.part.clone(), node.id.clone(), u64::from(units)))
        })
        .collect();
    let evaluation = &solved.plan.evaluation;
    let (rows, paired, interval_method, evaluation_seed) = match comparison {
        Some(c) => (c.rows, c.paired, c.interval_method, Some(c.evaluation_seed)),
        None => (Vec::new(), Vec::new(), String::new(), None),
    };
    OptimizeResult {
        part_ids,
        part_locations: levels.len(),
        scenarios: years as usize,
        training_seed: request.settings.seed,
        evaluation_seed,
        status: solved.plan.status,
        method: Method::Decomposed,
        backend: None,
        gap: solved.plan.gap,
        solve_seconds: solved.plan.seconds,
        budget_usd: request.budget_usd,
        model: TrainingModel::Echelons,
        mode: request.mode,
        in_sample_cvar: evaluation.cvar_downtime_cost,
        investment_usd: evaluation.investment,
        unspent_usd: solved.unspent_usd,
        unspent_reason: solved.unspent_reason.clone(),
        comparison: rows,
        paired,
        interval_method,
        recommendations,
        levels,
        warm_up,
        training: Some(trained.stats.clone()),
    }
}

/// Every level any plan holds, most money first, at most [`MAX_RECOMMENDATION_ROWS`].
pub fn recommendations(
    trees: &[PartTree],
    trained: &Trained,
    solved: &Solved,
    alpha: f64,
    comparison: Option<&Comparison>,
) -> Vec<Recommendation> {
    let weights = tail_weights(&solved.plan.evaluation.scenario_losses, alpha)
        .unwrap_or_else(|_| vec![0.0; trained.years]);
    let mut rows: Vec<(f64, Recommendation)> = Vec::new();
    for (t, tree) in trees.iter().enumerate() {
        let chosen = &trained.candidates[t][solved.choice[t]];
        let metric = comparison.map(|c| &c.metric.stock[t]);
        let averages = comparison.map(|c| &c.averages.stock[t]);
        let why = part_explanation(tree, trained, t, solved.choice[t], &weights, alpha);
        for (n, node) in tree.nodes.iter().enumerate() {
            let units = chosen[n];
            let other = |p: Option<&Vec<u32>>| p.map(|s| u64::from(s[n]));
            if units == 0 && other(metric).unwrap_or(0) == 0 && other(averages).unwrap_or(0) == 0 {
                continue;
            }
            rows.push((
                tree.unit_cost * f64::from(units),
                Recommendation {
                    part_id: tree.part.clone(),
                    location_id: node.id.clone(),
                    order_up_to: u64::from(units),
                    averages_order_up_to: other(averages),
                    metric_order_up_to: other(metric),
                    explanation: why.clone(),
                },
            ));
        }
    }
    rows.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| (&a.1.part_id, &a.1.location_id).cmp(&(&b.1.part_id, &b.1.location_id)))
    });
    rows.truncate(MAX_RECOMMENDATION_ROWS);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// What the part's chosen candidate saves against its next smaller candidate in training.
fn part_explanation(
    tree: &PartTree,
    trained: &Trained,
    t: usize,
    chosen: usize,
    tail_weights: &[f64],
    alpha: f64,
) -> String {
    let block = &trained.blocks[t];
    let now = &block.candidates[chosen];
    let units = |c: usize| -> u32 { trained.candidates[t][c].iter().sum() };
    let level = format!("CVaR{:.0}", alpha * 100.0);
    let smaller = block
        .candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.investment < now.investment)
        .max_by(|a, b| a.1.investment.total_cmp(&b.1.investment));
    let Some((p, before)) = smaller else {
        let tail = now
            .losses
            .iter()
            .zip(tail_weights)
            .map(|(l, w)| l * w)
            .sum::<f64>();
        return format!(
            "{}: {} units in this tree, its cheapest candidate; training downtime cost {} a year on average, {} of the network's {level}",
            tree.part,
            units(chosen),
            money(mean(&now.losses)),
            money(tail)
        );
    };
    let tail =
        |losses: &[f64]| -> f64 { losses.iter().zip(tail_weights).map(|(l, w)| l * w).sum() };
    format!(
        "{}: {} units in this tree ({}) against {} ({}) lower training downtime cost by {} a year on average and the part's share of the network's {level} by {}",
        tree.part,
        units(chosen),
        money(now.investment),
        units(p),
        money(before.investment),
        money(mean(&before.losses) - mean(&now.losses)),
        money(tail(&before.losses) - tail(&now.losses)),
    )
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
