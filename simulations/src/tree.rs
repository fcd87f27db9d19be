//! The exact per-part simulator of one part's supply tree (supplier -> depot -> regional
//! -> store), one-for-one stock, FIFO allocation, and DOMAIN.md's emergency rule, by the
//! sample-path recursion: no event queue.
//!
//! Every demand reaching a node with base stock S is numbered in time order; demand `k`
//! leaves the node at `max(t_k, A[k - S])` (at `t_k` when `k < S`), where `A[j]` is the
//! arrival of the replenishment demand `j` triggered. A replenishment order is placed the
//! moment the demand arrives, so it is demand number `m` at the parent at the same instant,
//! and `A[j] = max(A[j - 1], dispatch at the parent + transit)`: a lane delivers in the
//! order it ships (with fixed transits the `max` never binds). At the root the dispatch is
//! the order time and the transit the supplier lead time. Failures of all the part's
//! demand nodes are taken in time order, so each node's numbering is its time order.
//!
//! The emergency rule: a failure at a node with nothing on hand is served at once from
//! its first emergency source (its regional warehouse, then its depot) that has stock on
//! hand, after that source's emergency delay; that unit is the source's demand (it reorders
//! one-for-one) and the failing node orders nothing. If no source has stock, the failure
//! joins the node's own FIFO queue.
//!
//! Failures are drawn once per replication from streams derived from (seed, replication,
//! part and node ids, purpose) and kept, so every stock vector of the part is scored on the
//! same failures (common random numbers), and a part's draws do not depend on which other
//! parts are simulated, or on how parts are split across threads or machines. Downtime of a
//! wait is counted where it overlaps the measured window `[warm_up, warm_up + measured)`,
//! priced at the node's cost per waiting hour.

use crate::demand::logarithmic;
use crate::error::SimError;
use crate::model::TimeDistribution;
use crate::random::{Purpose, duration, entity_key, exponential, stream};
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

/// Most nodes in one part's tree (the sample path keeps a queue per node).
pub const MAX_TREE_NODES: usize = 100_000;
/// Most failures drawn for one part in one replication: bounds the memory a part's
/// kept failure streams take (12 bytes each, times the replications).
pub const MAX_FAILURES_PER_REPLICATION: usize = 2_000_000;

/// Where a failure at a node may be served by an emergency shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencySource {
    /// The node that ships (an ancestor of the failing node).
    pub node: usize,
    /// Days from the failure until the unit arrives.
    pub delay_days: TimeDistribution,
}

/// One stocking point of a part's tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// Location id (keys the node's random streams).
    pub id: String,
    /// The node that replenishes this one (a smaller index); `None` at a root, which the
    /// outside supplier replenishes.
    pub parent: Option<usize>,
    /// Days from dispatch at the parent to arrival here; at a root, the supplier lead time.
    pub resupply_days: TimeDistribution,
    /// Failures arising here per day (mean units).
    pub demand_per_day: f64,
    /// Variance over mean of the units in any window: 1 is Poisson; above 1 failures come
    /// in logarithmic batches (negative binomial counts).
    pub variance_to_mean_ratio: f64,
    /// What an hour a failure here waits costs.
    pub downtime_cost_per_hour: f64,
    /// Emergency sources for failures here, tried in order.
    pub emergency: Vec<EmergencySource>,
}

/// One part's supply tree, roots first in any order, every parent before its children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartTree {
    /// Part id (keys the random streams).
    pub part: String,
    /// Cost of one unit.
    pub unit_cost: f64,
    /// The nodes.
    pub nodes: Vec<TreeNode>,
}

/// The simulated window of every replication.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeWindow {
    /// Days simulated before measuring starts (the pipeline fills).
    pub warm_up_days: f64,
    /// Days measured after the warm-up (365 for one year).
    pub measured_days: f64,
}

/// One failure: when, and at which node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failure {
    /// Day of the failure.
    pub time_days: f64,
    /// Node index.
    pub node: u32,
}

/// How one failure was served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Served {
    /// The failure.
    pub failure: Failure,
    /// Days the machine waited.
    pub wait_days: f64,
    /// The node whose unit served it (the failing node, or an emergency source).
    pub source: usize,
}

/// Totals over all replications of one stock vector, inside the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeTotals {
    /// Failures in the window.
    pub failures: u64,
    /// Served from the failing node's own shelf.
    pub from_shelf: u64,
    /// Served by an emergency shipment.
    pub emergencies: u64,
    /// Waiting days of failures that joined a queue.
    pub queued_wait_days: f64,
}

/// A part's tree with its failure streams drawn, ready to score stock vectors.
#[derive(Debug, Clone)]
pub struct TreeSimulator {
    tree: PartTree,
    window: TreeWindow,
    seed: u64,
    first_replication: u32,
    /// Failures of each replication, in time order.
    failures: Vec<Vec<Failure>>,
    node_keys: Vec<u64>,
}

/// Buffers reused from one stock vector (and one part) to the next.
#[derive(Debug, Default)]
pub struct TreeScratch {
    arrivals: Vec<Vec<f64>>,
    node_costs: Vec<f64>,
    /// Each node's transit and emergency streams of the current replication, created on
    /// first use: a node whose times are fixed never draws, and seeding every node's two
    /// streams per replication cost as much as simulating its failures on sparse trees.
    transit: Vec<Option<SmallRng>>,
    emergency: Vec<Option<SmallRng>>,
    replication: u32,
}

impl TreeScratch {
    /// Downtime cost of the last [`TreeSimulator::costs`] call by the node where the
    /// failures arose, summed over its replications.
    pub fn node_costs(&self) -> &[f64] {
        &self.node_costs
    }
}

fn invalid(entity: String, field: &str, value: f64, reason: &str) -> SimError {
    SimError::InvalidValue {
        entity,
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl PartTree {
    /// Checks the tree's shape and every number, naming the node and field.
    pub fn validate(&self) -> Result<(), SimError> {
        let entity = |i: usize| format!("part `{}` node {i}", self.part);
        if !(self.unit_cost.is_finite() && self.unit_cost >= 0.0) {
            return Err(invalid(
                format!("part `{}`", self.part),
                "unit_cost",
                self.unit_cost,
                "must be finite and >= 0",
            ));
        }
        if self.nodes.is_empty() || self.nodes.len() > MAX_TREE_NODES {
            return Err(invalid(
                format!("part `{}`", self.part),
                "nodes",
                self.nodes.len() as f64,
                "a tree holds 1..=100000 nodes",
            ));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.parent.is_some_and(|p| p >= i) {
                return Err(invalid(
                    entity(i),
                    "parent",
                    i as f64,
                    "must be an earlier node",
                ));
            }
            for (field, value) in [
                ("demand_per_day", node.demand_per_day),
                ("downtime_cost_per_hour", node.downtime_cost_per_hour),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(entity(i), field, value, "must be finite and >= 0"));
                }
            }
            let ratio = node.variance_to_mean_ratio;
            if !(ratio.is_finite() && ratio >= 1.0) {
                return Err(invalid(
                    entity(i),
                    "variance_to_mean_ratio",
                    ratio,
                    "must be >= 1",
                ));
            }
            check_time(&entity(i), "resupply_days", &node.resupply_days)?;
            for source in &node.emergency {
                if !self.is_ancestor(source.node, i) {
                    return Err(invalid(
                        entity(i),
                        "emergency.node",
                        source.node as f64,
                        "must be an ancestor of the node",
                    ));
                }
                check_time(&entity(i), "emergency.delay_days", &source.delay_days)?;
            }
        }
        Ok(())
    }

    /// Whether `ancestor` is on the path from `node` to its root (excluding `node`).
    pub fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        let mut at = self.nodes.get(node).and_then(|n| n.parent);
        while let Some(p) = at {
            if p == ancestor {
                return true;
            }
            at = self.nodes.get(p).and_then(|n| n.parent);
        }
        false
    }
}

fn check_time(entity: &str, field: &str, time: &TimeDistribution) -> Result<(), SimError> {
    let values: &[f64] = match time {
        TimeDistribution::Deterministic { days } => &[*days],
        TimeDistribution::Exponential { mean_days } => &[*mean_days],
        TimeDistribution::Uniform { min_days, max_days } => &[*min_days, *max_days],
        TimeDistribution::LogNormal {
            mean_days,
            std_dev_days,
        } => &[*mean_days, *std_dev_days],
    };
    if values.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(invalid(
            entity.to_string(),
            field,
            values[0],
            "durations must be finite and >= 0",
        ));
    }
    Ok(())
}

impl TreeSimulator {
    /// Validates the tree and draws the failures of replications
    /// `first_replication..first_replication + replications` under `seed`.
    ///
    /// # Errors
    /// A bad tree or window (`InvalidValue` naming the node and field), or a replication
    /// with more than [`MAX_FAILURES_PER_REPLICATION`] failures (`InvalidValue` on
    /// `demand_per_day`: the part's demand is too large to keep its stream).
    pub fn new(
        tree: PartTree,
        window: TreeWindow,
        seed: u64,
        first_replication: u32,
        replications: u32,
    ) -> Result<Self, SimError> {
        tree.validate()?;
        for (field, value) in [
            ("warm_up_days", window.warm_up_days),
            ("measured_days", window.measured_days),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    "window".into(),
                    field,
                    value,
                    "must be finite and >= 0",
                ));
            }
        }
        let node_keys: Vec<u64> = tree
            .nodes
            .iter()
            .map(|n| entity_key(&[&tree.part, &n.id]))
            .collect();
        let failures = (0..replications)
            .map(|r| draw_failures(&tree, &node_keys, window, seed, first_replication + r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            tree,
            window,
            seed,
            first_replication,
            failures,
            node_keys,
        })
    }

    /// The tree.
    pub fn tree(&self) -> &PartTree {
        &self.tree
    }

    /// Replications held.
    pub fn replications(&self) -> usize {
        self.failures.len()
    }

    /// The failures of replication `index` (counted from the first), in time order.
    pub fn failures(&self, index: usize) -> &[Failure] {
        &self.failures[index]
    }

    /// Failures drawn over all replications (including the warm-up).
    pub fn failures_drawn(&self) -> usize {
        self.failures.iter().map(Vec::len).sum()
    }

    /// Downtime cost of every replication with `stock` units per node, written into
    /// `costs` (one entry per replication), and the totals.
    ///
    /// # Panics
    /// Never for a `stock` of one entry per node; a shorter slice is a caller bug and
    /// panics on the index.
    pub fn costs(&self, stock: &[u32], costs: &mut [f64], scratch: &mut TreeScratch) -> TreeTotals {
        let mut totals = TreeTotals::default();
        scratch.node_costs.clear();
        scratch.node_costs.resize(self.tree.nodes.len(), 0.0);
        for (index, cost) in costs.iter_mut().enumerate().take(self.failures.len()) {
            *cost = self.replicate(index, stock, scratch, &mut totals, |_| {});
        }
        totals
    }

    /// How every failure of replication `index` was served with `stock`.
    pub fn trace(&self, index: usize, stock: &[u32]) -> Vec<Served> {
        let mut served = Vec::new();
        let mut totals = TreeTotals::default();
        let mut scratch = TreeScratch::default();
        self.replicate(index, stock, &mut scratch, &mut totals, |s| served.push(s));
        served
    }

    /// One replication by the sample path; returns its downtime cost.
    fn replicate(
        &self,
        index: usize,
        stock: &[u32],
        scratch: &mut TreeScratch,
        totals: &mut TreeTotals,
        mut each: impl FnMut(Served),
    ) -> f64 {
        let replication = self.first_replication + index as u32;
        self.reset(scratch, replication);
        let (start, end) = (
            self.window.warm_up_days,
            self.window.warm_up_days + self.window.measured_days,
        );
        let mut cost = 0.0;
        for &failure in &self.failures[index] {
            let (t, node) = (failure.time_days, failure.node as usize);
            let (wait, source) = self.serve(node, t, stock, scratch);
            let overlap = ((t + wait).min(end) - t.max(start)).max(0.0);
            let paid = overlap * 24.0 * self.tree.nodes[node].downtime_cost_per_hour;
            cost += paid;
            if let Some(c) = scratch.node_costs.get_mut(node) {
                *c += paid;
            }
            if t >= start && t < end {
                totals.failures += 1;
                if source != node {
                    totals.emergencies += 1;
                } else if wait == 0.0 {
                    totals.from_shelf += 1;
                } else {
                    totals.queued_wait_days += wait;
                }
            }
            each(Served {
                failure,
                wait_days: wait,
                source,
            });
        }
        cost
    }

    /// Clears the queues and the node streams of one replication (streams are seeded on
    /// first use, from the same keys, so the draws are the same as seeding them all here).
    fn reset(&self, scratch: &mut TreeScratch, replication: u32) {
        let count = self.tree.nodes.len();
        scratch.arrivals.resize_with(count, Vec::new);
        scratch.arrivals.iter_mut().for_each(Vec::clear);
        scratch.transit.clear();
        scratch.transit.resize_with(count, || None);
        scratch.emergency.clear();
        scratch.emergency.resize_with(count, || None);
        scratch.replication = replication;
    }

    /// A draw of `distribution` from `node`'s stream of `purpose` (created on first use);
    /// a fixed time draws nothing.
    fn draw(
        &self,
        distribution: &TimeDistribution,
        node: usize,
        purpose: Purpose,
        scratch: &mut TreeScratch,
    ) -> f64 {
        if let TimeDistribution::Deterministic { days } = *distribution {
            return days;
        }
        let (streams, replication) = match purpose {
            Purpose::Emergency => (&mut scratch.emergency, scratch.replication),
            _ => (&mut scratch.transit, scratch.replication),
        };
        let rng = streams[node]
            .get_or_insert_with(|| stream(self.seed, replication, self.node_keys[node], purpose));
        duration(distribution, rng)
    }

    /// Serves one failure at `node` at day `t`: (wait in days, node whose unit served it).
    fn serve(&self, node: usize, t: f64, stock: &[u32], scratch: &mut TreeScratch) -> (f64, usize) {
        if on_hand(&scratch.arrivals[node], stock[node], t) {
            self.demand(node, t, stock, scratch);
            return (0.0, node);
        }
        for (e, source) in self.tree.nodes[node].emergency.iter().enumerate() {
            if on_hand(&scratch.arrivals[source.node], stock[source.node], t) {
                self.demand(source.node, t, stock, scratch);
                let delay = self.emergency_delay(node, e, scratch);
                return (delay, source.node);
            }
        }
        let left = self.demand(node, t, stock, scratch);
        (left - t, node)
    }

    /// The delay of emergency source `e` of `node`, drawn from the node's stream.
    fn emergency_delay(&self, node: usize, e: usize, scratch: &mut TreeScratch) -> f64 {
        let delay = &self.tree.nodes[node].emergency[e].delay_days;
        self.draw(delay, node, Purpose::Emergency, scratch)
    }

    /// A demand at `node` at day `t`: orders its replenishment at once (a demand at the
    /// parent at `t`) and returns when a unit leaves the node for it (FIFO).
    fn demand(&self, node: usize, t: f64, stock: &[u32], scratch: &mut TreeScratch) -> f64 {
        let dispatched = match self.tree.nodes[node].parent {
            Some(parent) => self.demand(parent, t, stock, scratch),
            None => t,
        };
        let transit = self.draw(
            &self.tree.nodes[node].resupply_days,
            node,
            Purpose::Transit,
            scratch,
        );
        let arrivals = &mut scratch.arrivals[node];
        let last = arrivals.last().copied().unwrap_or(f64::NEG_INFINITY);
        arrivals.push(last.max(dispatched + transit));
        let k = arrivals.len() - 1;
        let s = stock[node] as usize;
        if k < s { t } else { t.max(arrivals[k - s]) }
    }
}

/// Whether a node holding `stock` has a unit on hand at day `t` for its next demand.
fn on_hand(arrivals: &[f64], stock: u32, t: f64) -> bool {
    let (k, s) = (arrivals.len(), stock as usize);
    s > 0 && (k < s || arrivals[k - s] <= t)
}

/// The failures of one replication over the whole window, in time order (ties by node).
fn draw_failures(
    tree: &PartTree,
    node_keys: &[u64],
    window: TreeWindow,
    seed: u64,
    replication: u32,
) -> Result<Vec<Failure>, SimError> {
    let horizon = window.warm_up_days + window.measured_days;
    let mut failures = Vec::new();
    for (i, node) in tree.nodes.iter().enumerate() {
        if node.demand_per_day <= 0.0 {
            continue;
        }
        let mut rng = stream(seed, replication, node_keys[i], Purpose::Demand);
        // Logarithmic batches with p = 1 - 1/ratio have E[B^2]/E[B] = ratio.
        let p = 1.0 - 1.0 / node.variance_to_mean_ratio;
        let batch_mean = if p > 0.0 {
            -p / ((1.0 - p) * (1.0 - p).ln())
        } else {
            1.0
        };
        let event_rate = node.demand_per_day / batch_mean;
        let mut t = 0.0;
        loop {
            t += exponential(&mut rng) / event_rate;
            if t >= horizon {
                break;
            }
            let batch = if p > 0.0 { logarithmic(p, &mut rng) } else { 1 };
            for _ in 0..batch {
                failures.push(Failure {
                    time_days: t,
                    node: i as u32,
                });
            }
            if failures.len() > MAX_FAILURES_PER_REPLICATION {
                return Err(invalid(
                    format!("part `{}`", tree.part),
                    "demand_per_day",
                    node.demand_per_day,
                    "more failures in one replication than the per-part limit",
                ));
            }
        }
    }
    failures.sort_by(|a, b| {
        a.time_days
            .total_cmp(&b.time_days)
            .then(a.node.cmp(&b.node))
    });
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(days: f64) -> TimeDistribution {
        TimeDistribution::Deterministic { days }
    }

    fn node(id: &str, parent: Option<usize>, days: f64, demand: f64) -> TreeNode {
        TreeNode {
            id: id.into(),
            parent,
            resupply_days: fixed(days),
            demand_per_day: demand,
            variance_to_mean_ratio: 1.0,
            downtime_cost_per_hour: 1.0,
            emergency: Vec::new(),
        }
    }

    fn single_site(stock: u32, lead: f64, rate: f64) -> (f64, f64) {
        let tree = PartTree {
            part: "P".into(),
            unit_cost: 1.0,
            nodes: vec![node("D", None, lead, rate)],
        };
        let window = TreeWindow {
            warm_up_days: 50.0,
            measured_days: 20_000.0,
        };
        let sim = TreeSimulator::new(tree, window, 3, 0, 4).expect("valid");
        let mut costs = vec![0.0; 4];
        let totals = sim.costs(&[stock], &mut costs, &mut TreeScratch::default());
        let fill = totals.from_shelf as f64 / totals.failures as f64;
        // Cost per hour is 1, so cost / 24 is waiting days; per day of window, it is EBO.
        let ebo = costs.iter().sum::<f64>() / 24.0 / (4.0 * window.measured_days);
        (fill, ebo)
    }

    #[test]
    fn a_single_site_matches_palms_theorem() {
        // lambda T = 2; S = 3: fill = P(X <= 2) = 0.6767, EBO = sum (x - 3) p(x) = 0.2180.
        let (fill, ebo) = single_site(3, 10.0, 0.2);
        assert!((fill - 0.6767).abs() < 0.01, "fill {fill}");
        assert!((ebo - 0.2180).abs() < 0.015, "ebo {ebo}");
    }

    #[test]
    fn more_stock_never_costs_more_on_the_same_failures() {
        let mut nodes = vec![node("D", None, 40.0, 0.0), node("R", Some(0), 4.0, 0.0)];
        for s in 0..3 {
            let mut store = node(&format!("S{s}"), Some(1), 1.5, 0.05);
            store.emergency = vec![EmergencySource {
                node: 1,
                delay_days: fixed(1.0),
            }];
            nodes.push(store);
        }
        let tree = PartTree {
            part: "P".into(),
            unit_cost: 1.0,
            nodes,
        };
        let window = TreeWindow {
            warm_up_days: 60.0,
            measured_days: 365.0,
        };
        let sim = TreeSimulator::new(tree, window, 9, 0, 20).expect("valid");
        let mut scratch = TreeScratch::default();
        let mut total = |stock: &[u32]| {
            let mut costs = vec![0.0; 20];
            sim.costs(stock, &mut costs, &mut scratch);
            costs.iter().sum::<f64>()
        };
        let none = total(&[0, 0, 0, 0, 0]);
        let depot = total(&[2, 0, 0, 0, 0]);
        let more = total(&[2, 1, 1, 1, 1]);
        assert!(none > depot && depot > more, "{none} {depot} {more}");
        // Same failures, same answer.
        assert_eq!(total(&[2, 1, 1, 1, 1]), more);
    }
}
