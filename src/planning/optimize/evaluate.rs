//! Scoring plans with the exact per-part simulator: every plan on the same simulated years
//! (common random numbers), network-wide downtime cost per year.

use crate::domain::DomainError;
use rayon::prelude::*;
use spares_simulations::tree::{PartTree, TreeScratch, TreeSimulator, TreeTotals, TreeWindow};

/// Every plan's yearly network-wide downtime cost and its service totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// `years[p][k]`: plan `p`'s downtime cost in year `k`.
    pub years: Vec<Vec<f64>>,
    /// Plan `p`'s failures, shelf fills and emergencies over all years and parts.
    pub totals: Vec<TreeTotals>,
}

/// Downtime cost of every plan in each of `years` simulated years on `seed` (see
/// [`Scores`]). A plan is a stock vector per tree. Parts run
/// in parallel; each part's years are summed into the totals in part order, so the result
/// does not depend on the thread count. Errors: a bad tree (`InvalidArgument`), or a plan
/// without a vector per tree and a unit count per node (`InvalidArgument` on `plans`).
pub fn score(
    trees: &[PartTree],
    plans: &[&[Vec<u32>]],
    window: TreeWindow,
    seed: u64,
    years: u32,
) -> Result<Scores, DomainError> {
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
            ));
        }
    }
    let per_part: Vec<Vec<(Vec<f64>, TreeTotals)>> = trees
        .par_iter()
        .enumerate()
        .map(|(t, tree)| {
            let simulator = TreeSimulator::new(tree.clone(), window, seed, 0, years)
                .map_err(|e| DomainError::invalid("trees", e.to_string()))?;
            let mut scratch = TreeScratch::default();
            Ok(plans
                .iter()
                .map(|plan| {
                    let mut costs = vec![0.0; years as usize];
                    let totals = simulator.costs(&plan[t], &mut costs, &mut scratch);
                    (costs, totals)
                })
                .collect())
        })
        .collect::<Result<_, DomainError>>()?;
    let mut out = Scores {
        years: vec![vec![0.0; years as usize]; plans.len()],
        totals: vec![TreeTotals::default(); plans.len()],
    };
    for part in per_part {
        for (p, (costs, totals)) in part.into_iter().enumerate() {
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
