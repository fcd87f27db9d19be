//! Candidate stock vectors of each part's tree, over all its echelons, for the consequence
//! planner to simulate and choose among.
//!
//! The family is the part's downtime-weighted METRIC allocation (`metric::Enumerated::allocate`: the
//! best placement of a total stock over depot, regionals and stores by METRIC's expected
//! backorders) at every total in reach: every total up to [`DENSE_TOTALS`], every hull
//! point of the part's METRIC curve, and a grid [`GRID_RATIO`] apart, thinned to at most
//! [`MAX_CANDIDATES_PER_TREE`]. "In reach" is where METRIC's own marginal analysis would
//! still buy: budget mode, the steps that METRIC's greedy takes within [`REACH_FACTOR`]
//! times the budget; cost mode, the steps whose METRIC estimate of yearly downtime saved
//! per dollar is at least the holding rate divided by [`REACH_FACTOR`] squared. Each
//! tree's range is then stretched by a quarter (at least two units), because the tail the
//! planner prices can pay for stock METRIC's means do not.
//!
//! A second family follows the averages rule (`baselines::averages_vector`: pipeline mean
//! plus z standard deviations at every node, upstream-heavy where lead times are long) at
//! the part's class z times each of [`AVERAGES_MULTIPLIERS`]: stock placed by a different
//! logic than METRIC's, for the simulation to judge.
//!
//! The baselines' vectors are added too (the METRIC plan's and the averages plan's at the
//! budget), so both baselines are feasible choices of the model: in sample the
//! consequence plan is never worse than either, and any out-of-sample gap is the price of
//! estimating the tail from the training years.

use super::baselines::{averages_vector, metric_items, metric_options, subtree_demand};
use super::compare::Baselines;
use super::problem::backorder_day_cost;
use super::solve::Objective;
use super::{ANNUAL_HOLDING_RATE, PlanMode};
use crate::domain::DomainError;
use rayon::prelude::*;
use spares_simulations::tree::PartTree;
use spares_solver::metric::{Enumerated, ItemCurve};

/// Most candidates per tree (each costs one simulation of the training years).
pub const MAX_CANDIDATES_PER_TREE: usize = 24;
/// Totals up to this are all candidates (small parts are sized unit by unit).
pub const DENSE_TOTALS: u64 = 6;
/// Neighbouring grid totals differ by at most this factor.
pub const GRID_RATIO: f64 = 1.15;
/// How far past the asked budget (or below the holding rate) candidates reach.
pub const REACH_FACTOR: f64 = 2.0;
/// Multipliers of the class z of the averages family.
pub const AVERAGES_MULTIPLIERS: [f64; 6] = [-1.0, 0.0, 0.5, 1.0, 1.5, 2.5];
/// Largest total stock a tree's candidates reach (bounds the METRIC enumeration).
pub const MAX_TOTAL_STOCK: u64 = 5_000;

/// One hull step of a tree's METRIC curve: up to `reach` units, weighted decrease per
/// dollar per day.
struct Step {
    tree: usize,
    reach: u64,
    cost: f64,
    rate: f64,
}

/// The candidate stock vectors of every tree (node order), cheapest first, no duplicates.
/// Errors: a tree METRIC cannot model (`InvalidArgument` naming the item's field).
pub fn generate(
    trees: &[PartTree],
    class_z: &[f64],
    objective: &Objective,
    baselines: &Baselines,
) -> Result<Vec<Vec<Vec<u32>>>, DomainError> {
    let items = metric_items(trees);
    let options = metric_options();
    let metric_error =
        |e: spares_solver::SolverError| DomainError::invalid("metric", e.to_string());
    // Each tree is enumerated once, for its curve and then for every candidate total.
    let enumerated: Vec<Enumerated> = items
        .par_iter()
        .map(|item| Enumerated::new(item, &options))
        .collect::<Result<_, _>>()
        .map_err(metric_error)?;
    let curves: Vec<ItemCurve> = enumerated.iter().map(Enumerated::curve).collect();
    let reach = reach_totals(trees, &curves, objective);
    enumerated
        .into_par_iter()
        .zip(&curves)
        .zip(&reach)
        .enumerate()
        .map(|(t, ((tree, curve), &top))| {
            let totals = candidate_totals(curve, top, baselines.metric_total(t));
            let mut out: Vec<Vec<u32>> = Vec::with_capacity(totals.len() + 2);
            for total in totals {
                let stock = tree.allocate(total).map_err(metric_error)?;
                out.push(stock.iter().map(|&u| to_units(u)).collect());
            }
            out.extend(baselines.vectors(t));
            let flow = subtree_demand(&trees[t]);
            for m in AVERAGES_MULTIPLIERS {
                out.push(averages_vector(&trees[t], &flow, class_z[t] * m));
            }
            out.sort_by_key(|s| s.iter().map(|&u| u64::from(u)).sum::<u64>());
            let mut unique: Vec<Vec<u32>> = Vec::with_capacity(out.len());
            for stock in out {
                if !unique.contains(&stock) {
                    unique.push(stock);
                }
            }
            Ok(unique)
        })
        .collect()
}

fn to_units(units: u64) -> u32 {
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The largest total in reach of every tree (see the module docs).
fn reach_totals(trees: &[PartTree], curves: &[ItemCurve], objective: &Objective) -> Vec<u64> {
    let mut steps: Vec<Step> = Vec::new();
    for (t, (tree, curve)) in trees.iter().zip(curves).enumerate() {
        let weight = backorder_day_cost(tree);
        for w in curve.hull.windows(2) {
            let cost = (w[1] - w[0]) as f64 * tree.unit_cost;
            let decrease = weight
                * (curve.expected_backorders[w[0] as usize]
                    - curve.expected_backorders[w[1] as usize]);
            let rate = if cost > 0.0 {
                decrease / cost
            } else {
                f64::INFINITY
            };
            steps.push(Step {
                tree: t,
                reach: w[1],
                cost,
                rate,
            });
        }
    }
    steps.sort_by(|a, b| b.rate.total_cmp(&a.rate));
    let threshold = match (objective.mode, objective.budget_usd) {
        (PlanMode::Budget, Some(budget)) => {
            let mut spent = 0.0;
            let mut threshold = 0.0;
            for step in &steps {
                spent += step.cost;
                threshold = step.rate;
                if spent > REACH_FACTOR * budget {
                    break;
                }
            }
            threshold
        }
        _ => ANNUAL_HOLDING_RATE / (REACH_FACTOR * REACH_FACTOR) / 365.0,
    };
    let mut top = vec![0u64; trees.len()];
    for step in steps.iter().filter(|s| s.rate >= threshold) {
        top[step.tree] = top[step.tree].max(step.reach);
    }
    top.iter()
        .zip(curves)
        .map(|(&t, curve)| {
            let stretched = (t + 2).max((t as f64 * 1.25).ceil() as u64);
            stretched
                .min(curve.expected_backorders.len().saturating_sub(1) as u64)
                .min(MAX_TOTAL_STOCK)
        })
        .collect()
}

/// The totals a tree's candidates take: dense, hull points and a grid up to `top`, the
/// METRIC plan's own total kept, thinned to [`MAX_CANDIDATES_PER_TREE`] by dropping the
/// point closest to its neighbours (never 0, `top` or the kept total).
fn candidate_totals(curve: &ItemCurve, top: u64, keep: Option<u64>) -> Vec<u64> {
    let mut totals: Vec<u64> = (0..=top.min(DENSE_TOTALS)).collect();
    totals.extend(curve.hull.iter().copied().filter(|&h| h <= top));
    let mut at = DENSE_TOTALS as f64;
    while (at as u64) < top {
        at = (at * GRID_RATIO).max(at + 1.0);
        totals.push((at as u64).min(top));
    }
    totals.push(top);
    totals.sort_unstable();
    totals.dedup();
    let fixed = |x: u64| x == 0 || x == top || Some(x) == keep;
    while totals.len() > MAX_CANDIDATES_PER_TREE {
        let drop = (1..totals.len() - 1)
            .filter(|&i| !fixed(totals[i]))
            .min_by_key(|&i| (totals[i + 1] - totals[i - 1], i));
        match drop {
            Some(i) => {
                totals.remove(i);
            }
            None => break,
        }
    }
    if let Some(k) = keep
        && !totals.contains(&k)
    {
        totals.push(k);
        totals.sort_unstable();
    }
    totals
}

/// Nodes whose moves the search tries, per tree: the [`BUSIEST_MOVE_NODES`] with the most
/// demand flowing through them (depot and warehouses first on most trees) and the
/// [`QUIETEST_STOCKED_MOVE_NODES`] stocked nodes with the least, so the search costs a
/// bounded number of simulations per tree however many stores it has.
pub const BUSIEST_MOVE_NODES: usize = 12;
/// See [`BUSIEST_MOVE_NODES`].
pub const QUIETEST_STOCKED_MOVE_NODES: usize = 6;

/// Single-unit moves from `stock` for the simulation-guided search, at the nodes
/// [`BUSIEST_MOVE_NODES`] names: one unit more at a node with demand in its subtree, one
/// unit fewer at a stocked node, and one unit shifted between the node and its parent
/// (either way: the question "store or warehouse"). No duplicates, `stock` excluded.
pub fn neighbours(tree: &PartTree, stock: &[u32]) -> Vec<Vec<u32>> {
    let flow = subtree_demand(tree);
    let mut order: Vec<usize> = (0..tree.nodes.len()).filter(|&n| flow[n] > 0.0).collect();
    order.sort_by(|&a, &b| flow[b].total_cmp(&flow[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = order.iter().copied().take(BUSIEST_MOVE_NODES).collect();
    let quiet: Vec<usize> = order
        .iter()
        .rev()
        .copied()
        .filter(|&n| stock[n] > 0 && !chosen.contains(&n))
        .take(QUIETEST_STOCKED_MOVE_NODES)
        .collect();
    chosen.extend(quiet);
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut push = |v: Vec<u32>| {
        if v != stock && !out.contains(&v) {
            out.push(v);
        }
    };
    for n in chosen {
        let mut v = stock.to_vec();
        v[n] = v[n].saturating_add(1);
        push(v);
        if stock[n] > 0 {
            let mut v = stock.to_vec();
            v[n] -= 1;
            push(v);
        }
        if let Some(p) = tree.nodes[n].parent {
            for (from, to) in [(n, p), (p, n)] {
                if stock[from] > 0 {
                    let mut v = stock.to_vec();
                    v[from] -= 1;
                    v[to] += 1;
                    push(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_bounded_and_keep_the_ends_and_the_metric_total() {
        let curve = ItemCurve {
            expected_backorders: (0..400).map(|s| 100.0 / (1.0 + s as f64)).collect(),
            root_stock: vec![0; 400],
            hull: (0..400).collect(),
        };
        let totals = candidate_totals(&curve, 300, Some(137));
        assert!(totals.len() <= MAX_CANDIDATES_PER_TREE + 1, "{totals:?}");
        assert_eq!(totals[0], 0);
        assert_eq!(*totals.last().expect("non-empty"), 300);
        assert!(totals.contains(&137));
        assert!(totals.windows(2).all(|w| w[0] < w[1]));
        let small = candidate_totals(&curve, 4, None);
        assert_eq!(small, vec![0, 1, 2, 3, 4]);
    }
}
