//! The baselines a consequence plan is compared with, at the same investment: the
//! averages plan (z per class, scaled) and the downtime-weighted METRIC plan.
//!
//! The downtime-weighted METRIC plan is Sherbrooke's cost form over every echelon
//! (`spares_solver::metric::weighted_plan`): METRIC pipelines (Poisson, no emergency
//! shipments, resupply times at their means) and each part's expected backorders at its
//! demand locations weighted by what one backorder-day of that part costs.
//!
//! Two more plans are scored beside them when the run is compared: the plan in force (the
//! policies' order-up-to levels) and the downtime-weighted METRIC plan at several
//! investments ([`FRONTIER_MULTIPLES`]), the downtime-versus-investment frontier the report
//! draws with the plan in force and the recommended plan marked on it.

use super::problem::{backorder_day_cost, metric_item};
use crate::domain::DomainError;
use crate::domain::network::{Criticality, Network};
use spares_simulations::tree::PartTree;
use spares_solver::metric::{MetricItem, MetricModel, MetricOptions, WeightedCurves};

/// Investments of the METRIC frontier as multiples of the compared investment (1 is the
/// METRIC baseline itself); the plan in force's investment is added when it holds stock.
/// Each point costs one METRIC allocation per part and one pass over the evaluation years.
pub const FRONTIER_MULTIPLES: [f64; 6] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

/// A stock vector per tree (node order), and what it ties up.
#[derive(Debug, Clone, PartialEq)]
pub struct TreePlan {
    /// Units per node of every tree.
    pub stock: Vec<Vec<u32>>,
    /// Money tied up.
    pub investment: f64,
}

/// METRIC options of the baseline: classic Poisson pipelines, enumerated until a node's
/// expected backorders fall below 1e-6.
pub fn metric_options() -> MetricOptions {
    MetricOptions {
        model: MetricModel::Metric,
        ebo_tolerance: 1e-6,
    }
}

/// The METRIC items of the trees.
pub fn metric_items(trees: &[PartTree]) -> Vec<MetricItem> {
    trees.iter().map(metric_item).collect()
}

/// The downtime-weighted METRIC plan within `budget_usd` (weights: each tree's cost of a
/// backorder-day; `unweighted` sets every weight to 1, the fill-rate form, for contrast).
/// Errors: a solver error on a bad tree (`InvalidArgument` naming the field).
pub fn weighted_metric(
    trees: &[PartTree],
    budget_usd: f64,
    unweighted: bool,
) -> Result<TreePlan, DomainError> {
    MetricCurves::new(trees, unweighted)?.plan(budget_usd)
}

/// The downtime-weighted METRIC curves of a set of trees, built once so that plans at many
/// budgets (the baseline, the frontier) cost only their allocations.
#[derive(Debug)]
pub struct MetricCurves {
    items: Vec<MetricItem>,
    curves: WeightedCurves,
}

impl MetricCurves {
    /// The curves of `trees` (weights as in [`weighted_metric`]). Errors: a solver error on
    /// a bad tree (`InvalidArgument` on `metric`).
    pub fn new(trees: &[PartTree], unweighted: bool) -> Result<Self, DomainError> {
        let items = metric_items(trees);
        let weights: Vec<f64> = if unweighted {
            vec![1.0; trees.len()]
        } else {
            trees.iter().map(backorder_day_cost).collect()
        };
        let curves = WeightedCurves::new(&items, &weights, &metric_options())
            .map_err(|e| DomainError::invalid("metric", e.to_string()))?;
        Ok(Self { items, curves })
    }

    /// The plan within `budget_usd`. Errors: a negative or non-finite budget
    /// (`InvalidArgument` on `metric`).
    pub fn plan(&self, budget_usd: f64) -> Result<TreePlan, DomainError> {
        let plan = self
            .curves
            .plan(&self.items, &metric_options(), budget_usd)
            .map_err(|e| DomainError::invalid("metric", e.to_string()))?;
        Ok(TreePlan {
            stock: plan
                .stock
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|&u| u32::try_from(u).unwrap_or(u32::MAX))
                        .collect()
                })
                .collect(),
            investment: plan.investment,
        })
    }
}

/// The plan in force over the trees: each node's order-up-to level from the network's
/// policies (0 without a policy), as the changes against the plan in force read them.
pub fn in_force(network: &Network, trees: &[PartTree]) -> TreePlan {
    let stock: Vec<Vec<u32>> = trees
        .iter()
        .map(|tree| {
            tree.nodes
                .iter()
                .map(|node| {
                    network
                        .policies
                        .get(&(tree.part.clone(), node.id.clone()))
                        .map_or(0, |p| u32::try_from(p.order_up_to).unwrap_or(u32::MAX))
                })
                .collect()
        })
        .collect();
    let investment = investment_of(trees, &stock);
    TreePlan { stock, investment }
}

/// Money tied up by a stock vector per tree.
fn investment_of(trees: &[PartTree], stock: &[Vec<u32>]) -> f64 {
    trees
        .iter()
        .zip(stock)
        .map(|(t, s)| t.unit_cost * s.iter().map(|&u| f64::from(u)).sum::<f64>())
        .sum()
}

/// The budgets of the METRIC frontier around `target_usd` ([`FRONTIER_MULTIPLES`]) and at
/// `in_force_usd` when positive, rising, without near-duplicates (within 0.1%).
pub fn frontier_budgets(target_usd: f64, in_force_usd: f64) -> Vec<f64> {
    let mut budgets: Vec<f64> = FRONTIER_MULTIPLES
        .iter()
        .map(|m| m * target_usd)
        .chain((in_force_usd > 0.0).then_some(in_force_usd))
        .filter(|b| b.is_finite() && *b > 0.0)
        .collect();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup_by(|later, earlier| *later - *earlier <= 1e-3 * *later);
    budgets
}

/// The unscaled averages plan's investment over every part with demand in `network`: the
/// unit the comparison's budgets are multiples of. Errors: no part with demand
/// (`InvalidArgument` on `part_ids`).
pub fn averages_investment(network: &Network) -> Result<f64, DomainError> {
    let parts = super::optimized_parts(network, &[], super::TrainingModel::Echelons)?;
    let trees = super::problem::part_trees(network, &parts)?;
    Ok(averages_unscaled(&trees, &tree_z(network, &trees)).investment)
}

/// z of the averages plan per criticality class before scaling: critical 2.326 (99%),
/// essential 1.645 (95%), routine 1.282 (90%).
pub fn class_z(criticality: Criticality) -> f64 {
    match criticality {
        Criticality::Critical => 2.326,
        Criticality::Essential => 1.645,
        Criticality::Routine => 1.282,
    }
}

/// z of every tree by its part's class ([`class_z`]; routine for a part not in the network).
pub fn tree_z(network: &Network, trees: &[PartTree]) -> Vec<f64> {
    trees
        .iter()
        .map(|t| {
            network
                .parts
                .get(&t.part)
                .map_or(class_z(Criticality::Routine), |p| class_z(p.criticality))
        })
        .collect()
}

/// What planners do today, per node of every tree: reorder point = d L + z sqrt(L d) with d
/// the mean demand per day reaching the node (its own and everything below it), L its own
/// resupply time (supplier lead time at the depot, the transit elsewhere; the wait at an
/// empty parent is ignored), Poisson variance, `z[t]` the tree's class z times one
/// multiplier for the whole network. The multiplier is the largest (by bisection on
/// [-10, 100]) whose plan costs at most `target_usd`, so the averages plan is scaled to the
/// same investment as the plan it is compared with.
pub fn averages(trees: &[PartTree], z: &[f64], target_usd: f64) -> TreePlan {
    let flows: Vec<Vec<f64>> = trees.iter().map(subtree_demand).collect();
    let plan_at = |multiplier: f64| averages_at(trees, z, &flows, multiplier);
    let (mut low, mut high) = (-10.0, 100.0);
    if plan_at(low).investment > target_usd {
        return plan_at(low);
    }
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if plan_at(mid).investment <= target_usd {
            low = mid;
        } else {
            high = mid;
        }
    }
    plan_at(low)
}

/// The averages plan as planners set it, unscaled (multiplier 1: each class's own z): the
/// investment the comparison's budgets are multiples of.
pub fn averages_unscaled(trees: &[PartTree], z: &[f64]) -> TreePlan {
    let flows: Vec<Vec<f64>> = trees.iter().map(subtree_demand).collect();
    averages_at(trees, z, &flows, 1.0)
}

/// The averages plan with every class z times `multiplier`.
fn averages_at(trees: &[PartTree], z: &[f64], flows: &[Vec<f64>], multiplier: f64) -> TreePlan {
    let stock: Vec<Vec<u32>> = trees
        .iter()
        .zip(flows)
        .zip(z)
        .map(|((tree, flow), &z)| averages_vector(tree, flow, z * multiplier))
        .collect();
    let investment = investment_of(trees, &stock);
    TreePlan { stock, investment }
}

/// One tree's averages levels at safety factor `z` (see [`averages`]); `flow` is
/// [`subtree_demand`] of the tree.
pub fn averages_vector(tree: &PartTree, flow: &[f64], z: f64) -> Vec<u32> {
    tree.nodes
        .iter()
        .zip(flow)
        .map(|(node, &d)| {
            let mean = d * node.resupply_days.mean_days();
            if mean <= 0.0 {
                return 0;
            }
            let level = (mean + z * mean.sqrt()).ceil();
            level.clamp(0.0, 1e6) as u32
        })
        .collect()
}

/// Mean demand per day reaching each node: its own and all of its subtree's.
pub fn subtree_demand(tree: &PartTree) -> Vec<f64> {
    let mut flow: Vec<f64> = tree.nodes.iter().map(|n| n.demand_per_day).collect();
    for i in (0..tree.nodes.len()).rev() {
        if let Some(p) = tree.nodes[i].parent {
            flow[p] += flow[i];
        }
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::super::evaluate::score;
    use super::super::problem::part_trees;
    use super::*;
    use crate::planning::testnet::{TestNetworkShape, generate};
    use spares_simulations::tree::TreeWindow;

    #[test]
    fn frontier_budgets_rise_around_the_target_and_take_in_the_plan_in_force() {
        assert_eq!(
            frontier_budgets(100.0, 0.0),
            [25.0, 50.0, 75.0, 100.0, 150.0, 200.0]
        );
        assert_eq!(
            frontier_budgets(100.0, 120.0),
            [25.0, 50.0, 75.0, 100.0, 120.0, 150.0, 200.0]
        );
        // Within 0.1% of a multiple, the plan in force's investment adds no point.
        assert_eq!(frontier_budgets(100.0, 100.05).len(), 6);
        assert_eq!(frontier_budgets(0.0, 40.0), [40.0]);
    }

    #[test]
    fn weighting_by_downtime_cost_lowers_downtime_cost_at_the_same_budget() {
        let shape = TestNetworkShape {
            regionals: 2,
            stores_per_regional: 5,
            parts: 30,
        };
        let network = generate(11, shape);
        let parts: Vec<String> = network.parts.keys().cloned().collect();
        let trees = part_trees(&network, &parts).expect("trees");
        let budget = 60_000.0;
        let weighted = weighted_metric(&trees, budget, false).expect("plan");
        let plain = weighted_metric(&trees, budget, true).expect("plan");
        assert!(weighted.investment <= budget && plain.investment <= budget);
        assert!(
            weighted.investment > 0.8 * budget,
            "{}",
            weighted.investment
        );
        // Every echelon is decided: some depot or regional units are bought.
        let upstream: u32 = weighted
            .stock
            .iter()
            .zip(&trees)
            .map(|(s, t)| {
                s.iter()
                    .zip(&t.nodes)
                    .filter(|(_, n)| n.demand_per_day == 0.0)
                    .map(|(u, _)| *u)
                    .sum::<u32>()
            })
            .sum();
        assert!(upstream > 0);
        let window = TreeWindow {
            warm_up_days: 120.0,
            measured_days: 365.0,
        };
        let never = std::sync::atomic::AtomicBool::new(false);
        let scores = score(
            &trees,
            &[&weighted.stock, &plain.stock],
            window,
            7,
            40,
            &|_| {},
            &never,
        )
        .expect("score");
        let years = &scores.years;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&years[0]) < mean(&years[1]),
            "weighted {} vs unweighted {}",
            mean(&years[0]),
            mean(&years[1])
        );
    }
}
