//! Where the downtime comes from: the out-of-sample downtime cost of the compared plans and
//! the plan in force, by the location where machines waited and by part, as mean cost per
//! evaluated year. Read from the scores the comparison already made, so it costs no
//! simulation.

use super::evaluate::Scores;
use super::{DowntimeShare, MAX_RECOMMENDATION_ROWS};
use spares_simulations::tree::PartTree;
use std::collections::BTreeMap;

/// Per location and per part (in that order), the mean yearly downtime cost of the plans at
/// `plans` = [consequence, averages, METRIC, in force] (indexes into `scores`), most
/// consequence-plan downtime first (ties: most in force, then by id). Locations and parts
/// with no downtime under any of the four are left out; parts are cut to
/// [`MAX_RECOMMENDATION_ROWS`].
pub fn downtime(
    trees: &[PartTree],
    scores: &Scores,
    plans: [usize; 4],
) -> (Vec<DowntimeShare>, Vec<DowntimeShare>) {
    let mut by_location: BTreeMap<&str, [f64; 4]> = BTreeMap::new();
    let mut by_part: BTreeMap<&str, [f64; 4]> = BTreeMap::new();
    for (t, tree) in trees.iter().enumerate() {
        for (slot, &p) in plans.iter().enumerate() {
            let Some(nodes) = scores.node_costs.get(p).and_then(|n| n.get(t)) else {
                continue;
            };
            for (node, cost) in tree.nodes.iter().zip(nodes) {
                by_location.entry(&node.id).or_default()[slot] += cost;
                by_part.entry(&tree.part).or_default()[slot] += cost;
            }
        }
    }
    let years = scores.years.first().map_or(0, Vec::len).max(1) as f64;
    let mut parts = shares(by_part, years);
    parts.truncate(MAX_RECOMMENDATION_ROWS);
    (shares(by_location, years), parts)
}

/// Rows with any downtime, as means per year, sorted (see [`downtime`]).
fn shares(totals: BTreeMap<&str, [f64; 4]>, years: f64) -> Vec<DowntimeShare> {
    let mut rows: Vec<DowntimeShare> = totals
        .into_iter()
        .filter(|(_, costs)| costs.iter().any(|c| *c > 0.0))
        .map(
            |(id, [consequence, averages, metric, in_force])| DowntimeShare {
                id: id.to_string(),
                consequence_cost_per_year: consequence / years,
                averages_cost_per_year: averages / years,
                metric_cost_per_year: metric / years,
                in_force_cost_per_year: in_force / years,
            },
        )
        .collect();
    rows.sort_by(|a, b| {
        b.consequence_cost_per_year
            .total_cmp(&a.consequence_cost_per_year)
            .then_with(|| {
                b.in_force_cost_per_year
                    .total_cmp(&a.in_force_cost_per_year)
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::evaluate::score;
    use super::super::problem::part_trees;
    use super::*;
    use crate::planning::testnet::{TestNetworkShape, generate};
    use spares_simulations::tree::TreeWindow;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn every_plans_downtime_by_location_and_by_part_adds_up_to_its_mean() {
        let shape = TestNetworkShape {
            regionals: 2,
            stores_per_regional: 3,
            parts: 8,
        };
        let network = generate(9, shape);
        let parts: Vec<String> = network.parts.keys().cloned().collect();
        let trees = part_trees(&network, &parts).unwrap();
        let plan = |units: u32| -> Vec<Vec<u32>> {
            trees.iter().map(|t| vec![units; t.nodes.len()]).collect()
        };
        let (zero, one, two, three) = (plan(0), plan(1), plan(2), plan(3));
        let window = TreeWindow {
            warm_up_days: 60.0,
            measured_days: 365.0,
        };
        let never = AtomicBool::new(false);
        let scores = score(
            &trees,
            &[&one, &two, &three, &zero],
            window,
            2,
            30,
            &|_| {},
            &never,
        )
        .unwrap();
        let (locations, parts) = downtime(&trees, &scores, [0, 1, 2, 3]);
        assert!(!locations.is_empty() && !parts.is_empty());
        let column = |rows: &[DowntimeShare], slot: usize| -> f64 {
            rows.iter()
                .map(|r| {
                    [
                        r.consequence_cost_per_year,
                        r.averages_cost_per_year,
                        r.metric_cost_per_year,
                        r.in_force_cost_per_year,
                    ][slot]
                })
                .sum()
        };
        for slot in 0..4 {
            let mean = scores.years[slot].iter().sum::<f64>() / 30.0;
            for rows in [&locations, &parts] {
                let total = column(rows, slot);
                assert!(
                    (total - mean).abs() <= 1e-9 * mean.max(1.0),
                    "plan {slot}: {total} against {mean}"
                );
            }
        }
        assert!(
            locations
                .windows(2)
                .all(|w| w[0].consequence_cost_per_year >= w[1].consequence_cost_per_year)
        );
    }
}
