//! Explanations and the result: a row per decided level of any plan, with the numbers the
//! choice rests on (what the part's chosen candidate saves against its next smaller one in
//! the training years, on average and in the network's worst years), and the result the
//! job returns.

use super::OptimizeError;
use super::compare::Comparison;
use super::solve::Solved;
use super::solve::cvar_by_selection;
use super::train::Trained;
use super::{
    LevelChange, MAX_RECOMMENDATION_ROWS, OptimizeRequest, OptimizeResult, Recommendation,
    TrainingModel, money,
};
use crate::domain::network::{Network, PartId};
use crate::planning::simulate::WarmUpChoice;
use rayon::prelude::*;
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeWindow};
use spares_solver::scenario::Method;
use spares_solver::tail::tail_weights;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// Stocked levels explained by simulating their last unit (the ones holding the most
/// money); the rest keep their part's explanation. Each costs one simulation of the
/// training years.
pub const MAX_EXPLAINED_LEVELS: usize = 300;

/// Everything [`result`] assembles.
pub struct Parts<'a> {
    /// Levels that differ from the plan in force.
    pub changes: Vec<LevelChange>,
    /// Their one-line summary.
    pub change_summary: String,
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
        changes,
        change_summary,
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
    let mut result = OptimizeResult {
        part_ids,
        part_locations: levels.len(),
        scenarios: years as usize,
        training_seed: request.settings.seed,
        evaluation_seed: None,
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
        comparison: Vec::new(),
        paired: Vec::new(),
        interval_method: String::new(),
        recommendations,
        levels,
        warm_up,
        training: Some(trained.stats.clone()),
        changes,
        change_summary,
        in_force: None,
        metric_frontier: Vec::new(),
        downtime_by_location: Vec::new(),
        downtime_by_part: Vec::new(),
    };
    if let Some(c) = comparison {
        result.evaluation_seed = Some(c.evaluation_seed);
        result.comparison = c.rows;
        result.paired = c.paired;
        result.interval_method = c.interval_method;
        result.in_force = Some(c.in_force);
        result.metric_frontier = c.metric_frontier;
        result.downtime_by_location = c.downtime_by_location;
        result.downtime_by_part = c.downtime_by_part;
    }
    result
}

/// Every level any plan holds, most money first, at most [`MAX_RECOMMENDATION_ROWS`]. Each
/// stocked level of the consequence plan is explained by its last unit: the plan is
/// simulated again on the training years with that unit removed (common random numbers),
/// and the row says how much the network's CVaR and mean of yearly downtime cost would
/// rise without it, and how many demand locations the node covers. Errors: a tree the
/// simulator refuses.
#[allow(clippy::too_many_arguments)]
pub fn recommendations(
    trees: &[PartTree],
    trained: &Trained,
    solved: &Solved,
    alpha: f64,
    comparison: Option<&Comparison>,
    window: TreeWindow,
    seed: u64,
    cancel: &AtomicBool,
) -> Result<Vec<Recommendation>, OptimizeError> {
    let weights = tail_weights(&solved.plan.evaluation.scenario_losses, alpha)
        .unwrap_or_else(|_| vec![0.0; trained.scenarios()]);
    let mut rows: Vec<(f64, (usize, usize), Recommendation)> = Vec::new();
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
                (t, n),
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
            .then_with(|| (&a.2.part_id, &a.2.location_id).cmp(&(&b.2.part_id, &b.2.location_id)))
    });
    rows.truncate(MAX_RECOMMENDATION_ROWS);
    let stocked: Vec<(usize, usize)> = rows
        .iter()
        .filter(|r| r.2.order_up_to > 0)
        .map(|r| r.1)
        .take(MAX_EXPLAINED_LEVELS)
        .collect();
    let marginal = last_units(trees, trained, solved, &stocked, window, seed, cancel)?;
    let totals = &solved.plan.evaluation.scenario_losses;
    let mut scratch = Vec::new();
    let base_tail = cvar_by_selection(totals, alpha, &mut scratch);
    let level = format!("CVaR{:.0}", alpha * 100.0);
    let mut changed = vec![0.0; totals.len()];
    for (_, (t, n), row) in rows.iter_mut() {
        let Some(without) = marginal.get(&(*t, *n)) else {
            continue;
        };
        let now = &trained.blocks[*t].candidates[solved.choice[*t]].losses;
        for (k, c) in changed.iter_mut().enumerate() {
            *c = totals[k] - now[k] + without[k];
        }
        let tail = cvar_by_selection(&changed, alpha, &mut scratch) - base_tail;
        let mean_rise = mean(without) - mean(now);
        let covered = demand_nodes_below(&trees[*t], *n);
        row.explanation = format!(
            "the {} unit at {} lowers the network's {level} of yearly downtime cost by {} and its mean by {} in training (without it, on the same years); it serves {covered} demand location{} of {}",
            ordinal(row.order_up_to),
            row.location_id,
            money(tail),
            money(mean_rise),
            if covered == 1 { "" } else { "s" },
            row.part_id,
        );
    }
    Ok(rows.into_iter().map(|(_, _, r)| r).collect())
}

/// A (tree, node) and the part's losses per network year without the node's last unit.
type NodeLosses = ((usize, usize), Vec<f64>);

/// Each listed (tree, node)'s part losses per training year with one unit fewer at the
/// node than the plan holds.
fn last_units(
    trees: &[PartTree],
    trained: &Trained,
    solved: &Solved,
    stocked: &[(usize, usize)],
    window: TreeWindow,
    seed: u64,
    cancel: &AtomicBool,
) -> Result<BTreeMap<(usize, usize), Vec<f64>>, OptimizeError> {
    let mut by_tree: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &(t, n) in stocked {
        by_tree.entry(t).or_default().push(n);
    }
    let work: Vec<(usize, Vec<usize>)> = by_tree.into_iter().collect();
    let years = trained.years as u32;
    let done: Vec<Vec<NodeLosses>> = work
        .par_iter()
        .map_init(TreeScratch::default, |scratch, (t, nodes)| {
            super::check_cancel(cancel)?;
            let simulator = TreeSimulator::new(trees[*t].clone(), window, seed, 0, years)
                .map_err(|e| crate::domain::DomainError::invalid("trees", e.to_string()))?;
            let chosen = &trained.candidates[*t][solved.choice[*t]];
            Ok(nodes
                .iter()
                .map(|&n| {
                    let mut stock = chosen.clone();
                    stock[n] = stock[n].saturating_sub(1);
                    let mut losses = vec![0.0; years as usize];
                    simulator.costs(&stock, &mut losses, scratch);
                    ((*t, n), trained.recombination.expand(&trees[*t], &losses))
                })
                .collect())
        })
        .collect::<Result<_, OptimizeError>>()?;
    Ok(done.into_iter().flatten().collect())
}

/// The plan against the plan in force: every level that differs (the order-up-to level in
/// force, 0 without a policy), most money first, and one line saying what to add and free.
pub fn diff(
    network: &Network,
    trees: &[PartTree],
    plan: &[Vec<u32>],
) -> (Vec<LevelChange>, String) {
    let mut changes = Vec::new();
    for (tree, stock) in trees.iter().zip(plan) {
        for (node, &units) in tree.nodes.iter().zip(stock) {
            let in_force = network
                .policies
                .get(&(tree.part.clone(), node.id.clone()))
                .map_or(0, |p| p.order_up_to);
            let recommended = u64::from(units);
            if in_force != recommended {
                changes.push(LevelChange {
                    part_id: tree.part.clone(),
                    location_id: node.id.clone(),
                    in_force,
                    recommended,
                    change_usd: (recommended as f64 - in_force as f64) * tree.unit_cost,
                });
            }
        }
    }
    let (mut add_units, mut add_usd, mut adds) = (0u64, 0.0, 0usize);
    let (mut free_units, mut free_usd, mut frees) = (0u64, 0.0, 0usize);
    for c in &changes {
        if c.recommended > c.in_force {
            add_units += c.recommended - c.in_force;
            add_usd += c.change_usd;
            adds += 1;
        } else {
            free_units += c.in_force - c.recommended;
            free_usd -= c.change_usd;
            frees += 1;
        }
    }
    changes.sort_by(|a, b| {
        b.change_usd
            .abs()
            .total_cmp(&a.change_usd.abs())
            .then_with(|| (&a.part_id, &a.location_id).cmp(&(&b.part_id, &b.location_id)))
    });
    changes.truncate(MAX_RECOMMENDATION_ROWS);
    let summary = format!(
        "Against the plan in force: add {add_units} units ({}) at {adds} part-locations, free {free_units} units ({}) at {frees}; net {}",
        money(add_usd),
        money(free_usd),
        money(add_usd - free_usd)
    );
    (changes, summary)
}

/// Nodes with demand in the subtree of `node` (itself included).
fn demand_nodes_below(tree: &PartTree, node: usize) -> usize {
    (0..tree.nodes.len())
        .filter(|&i| tree.nodes[i].demand_per_day > 0.0 && (i == node || tree.is_ancestor(node, i)))
        .count()
}

/// 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_read_as_english() {
        let words: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            words,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }
}
