//! Scoring plans with the exact per-part simulator: every plan on the same simulated years
//! (common random numbers), network-wide downtime cost per year, and where it arose (per
//! part and per node of its tree).

use super::{OptimizeError, check_cancel};
use crate::domain::DomainError;
use rayon::prelude::*;
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeTotals, TreeWindow};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Every plan's yearly network-wide downtime cost and its service totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// `years[p][k]`: plan `p`'s downtime cost in year `k`.
    pub years: Vec<Vec<f64>>,
    /// Plan `p`'s failures, shelf fills and emergencies over all years and parts.
    pub totals: Vec<TreeTotals>,
    /// `node_costs[p][t][n]`: plan `p`'s downtime cost over all years from failures at node
    /// `n` of tree `t` (where the machine waited, not where the unit came from).
    pub node_costs: Vec<Vec<Vec<f64>>>,
}

/// One plan's scores on one part: yearly costs, totals and cost by node.
type PartScore = (Vec<f64>, TreeTotals, Vec<f64>);

/// Downtime cost of every plan in each of `years` simulated years on `seed` (see
/// [`Scores`]). A plan is a stock vector per tree. Parts run
/// in parallel; each part's years are summed into the totals in part order, so the result
/// does not depend on the thread count. `progress` gets the share of parts done; `cancel`
/// is checked before each part. Errors: a bad tree (`InvalidArgument`), a plan without a
/// vector per tree and a unit count per node (`InvalidArgument` on `plans`), or `Cancelled`.
pub fn score(
    trees: &[PartTree],
    plans: &[&[Vec<u32>]],
    window: TreeWindow,
    seed: u64,
    years: u32,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Scores, OptimizeError> {
    for (p, plan) in plans.iter().enumerate() {
        let fits = plan.len() == trees.len()
            && plan
                .iter()
                .zip(trees)
                .all(|(s, t)| s.len() == t.nodes.len());
        if !fits {
            return Err(DomainError::invalid(
                format!("plans[{p}]"),
                "needs a stock vector per tree, one entry per node",
            )
            .into());
        }
    }
    let done = AtomicUsize::new(0);
    let total = trees.len().max(1);
    let per_part: Vec<Vec<PartScore>> = trees
        .par_iter()
        .enumerate()
        .map(|(t, tree)| {
            check_cancel(cancel)?;
            let simulator = TreeSimulator::new(tree.clone(), window, seed, 0, years)
                .map_err(|e| DomainError::invalid("trees", e.to_string()))?;
            let mut scratch = TreeScratch::default();
            let part = plans
                .iter()
                .map(|plan| {
                    let mut costs = vec![0.0; years as usize];
                    let totals = simulator.costs(&plan[t], &mut costs, &mut scratch);
                    (costs, totals, scratch.node_costs().to_vec())
                })
                .collect();
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(finished as f64 / total as f64);
            Ok(part)
        })
        .collect::<Result<_, OptimizeError>>()?;
    let mut out = Scores {
        years: vec![vec![0.0; years as usize]; plans.len()],
        totals: vec![TreeTotals::default(); plans.len()],
        node_costs: vec![Vec::with_capacity(trees.len()); plans.len()],
    };
    for part in per_part {
        for (p, (costs, totals, nodes)) in part.into_iter().enumerate() {
            out.node_costs[p].push(nodes);
            out.years[p]
                .iter_mut()
                .zip(costs)
                .for_each(|(a, c)| *a += c);
            let sum = &mut out.totals[p];
            sum.failures += totals.failures;
            sum.from_shelf += totals.from_shelf;
            sum.emergencies += totals.emergencies;
            sum.queued_wait_days += totals.queued_wait_days;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::planning::optimize::problem::part_trees;
    use crate::planning::testnet::{TestNetworkShape, generate};
    use std::sync::Mutex;

    fn trees() -> Vec<PartTree> {
        let shape = TestNetworkShape {
            regionals: 1,
            stores_per_regional: 2,
            parts: 6,
        };
        let network = generate(3, shape);
        let parts: Vec<String> = network.parts.keys().cloned().collect();
        part_trees(&network, &parts).unwrap()
    }

    const WINDOW: TreeWindow = TreeWindow {
        warm_up_days: 60.0,
        measured_days: 365.0,
    };

    #[test]
    fn a_raised_cancel_flag_stops_scoring() {
        let trees = trees();
        let plan: Vec<Vec<u32>> = trees.iter().map(|t| vec![1; t.nodes.len()]).collect();
        let cancel = AtomicBool::new(true);
        let result = score(&trees, &[&plan], WINDOW, 1, 5, &|_| {}, &cancel);
        assert!(
            matches!(result, Err(OptimizeError::Cancelled)),
            "{result:?}"
        );
    }

    #[test]
    fn downtime_by_node_adds_up_to_the_yearly_costs() {
        let trees = trees();
        let thin: Vec<Vec<u32>> = trees.iter().map(|t| vec![0; t.nodes.len()]).collect();
        let thick: Vec<Vec<u32>> = trees.iter().map(|t| vec![2; t.nodes.len()]).collect();
        let never = AtomicBool::new(false);
        let scores = score(&trees, &[&thin, &thick], WINDOW, 4, 20, &|_| {}, &never).unwrap();
        for p in 0..2 {
            assert_eq!(scores.node_costs[p].len(), trees.len());
            let by_node: f64 = scores.node_costs[p].iter().flatten().sum();
            let by_year: f64 = scores.years[p].iter().sum();
            assert!(by_year > 0.0, "plan {p} has downtime");
            assert!(
                (by_node - by_year).abs() <= 1e-9 * by_year,
                "plan {p}: {by_node} by node, {by_year} by year"
            );
            // Downtime arises only where machines fail: nodes with demand.
            for (t, nodes) in scores.node_costs[p].iter().enumerate() {
                for (n, cost) in nodes.iter().enumerate() {
                    if trees[t].nodes[n].demand_per_day == 0.0 {
                        assert_eq!(*cost, 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn progress_counts_every_part_up_to_one() {
        let trees = trees();
        let plan: Vec<Vec<u32>> = trees.iter().map(|t| vec![1; t.nodes.len()]).collect();
        let seen = Mutex::new(Vec::new());
        let cancel = AtomicBool::new(false);
        let scores = score(
            &trees,
            &[&plan],
            WINDOW,
            1,
            5,
            &|f| seen.lock().unwrap().push(f),
            &cancel,
        )
        .unwrap();
        assert_eq!(scores.years[0].len(), 5);
        // Parts finish in any order across threads (the job layer keeps progress monotone);
        // each part is counted once.
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by(f64::total_cmp);
        let expected: Vec<f64> = (1..=trees.len())
            .map(|i| i as f64 / trees.len() as f64)
            .collect();
        assert_eq!(seen, expected);
    }
}
