//! The straightforward METRIC computation the fast path in `metric.rs` replaced, kept as a
//! test oracle: each combination sorts all of its children's blocks from scratch and every
//! leaf tabulates its whole pmf. Tests check that the fast path gives bit-for-bit the same
//! curves and frontier. The pmf and backorder tabulation are the earlier ones too, so the
//! oracle shares no arithmetic with the code it checks beyond building a `Pipeline`.

use super::{
    Frontier, FrontierPoint, ItemCurve, MetricItem, MetricModel, MetricOptions,
    item_log_availability, validate_item,
};
use crate::distribution::{BackorderPoint, Pipeline};
use crate::error::{Result, invalid, non_negative, positive};

/// The state a parent passes to its children.
#[derive(Debug, Clone, Copy)]
struct ParentState {
    expected_backorders: f64,
    variance_backorders: f64,
    demand_per_day: f64,
}

/// A validated tree with derived totals.
struct Tree<'a> {
    item: &'a MetricItem,
    children: Vec<Vec<usize>>,
    total_demand: Vec<f64>,
    max_stock: Vec<u64>,
    options: MetricOptions,
}

impl<'a> Tree<'a> {
    /// Validates the item and precomputes demand totals and enumeration ranges.
    fn new(item: &'a MetricItem, options: MetricOptions) -> Result<Self> {
        validate_item(item)?;
        positive("ebo_tolerance", options.ebo_tolerance)?;
        let count = item.nodes.len();
        let mut children = vec![Vec::new(); count];
        for (index, node) in item.nodes.iter().enumerate().skip(1) {
            if let Some(parent) = node.parent {
                children[parent].push(index);
            }
        }
        let mut total_demand: Vec<f64> = item.nodes.iter().map(|n| n.demand_per_day).collect();
        for index in (1..count).rev() {
            let node = &item.nodes[index];
            if let Some(parent) = node.parent {
                total_demand[parent] += total_demand[index] * (1.0 - node.local_repair_probability);
            }
        }
        let mut tree = Self {
            item,
            children,
            total_demand,
            max_stock: vec![0; count],
            options,
        };
        tree.max_stock = tree.enumeration_ranges()?;
        Ok(tree)
    }

    /// Largest stock worth enumerating at each node: where EBO with no stock upstream
    /// falls below the tolerance.
    fn enumeration_ranges(&self) -> Result<Vec<u64>> {
        let count = self.item.nodes.len();
        let mut states: Vec<Option<ParentState>> = vec![None; count];
        let mut ranges = vec![0; count];
        for index in 0..count {
            let parent = self.item.nodes[index].parent.and_then(|p| states[p]);
            let pipeline = self.pipeline(index, parent)?;
            ranges[index] = stock_covering(&pipeline, self.options.ebo_tolerance)?;
            let empty = backorder_curve(&pipeline, 0)[0];
            states[index] = Some(ParentState {
                expected_backorders: empty.expected_backorders,
                variance_backorders: empty.variance_backorders,
                demand_per_day: self.total_demand[index],
            });
        }
        Ok(ranges)
    }

    /// The pipeline at `index` given its parent's state (`None` at the root).
    fn pipeline(&self, index: usize, parent: Option<ParentState>) -> Result<Pipeline> {
        let node = &self.item.nodes[index];
        let demand = self.total_demand[index];
        let Some(parent) = parent else {
            return Pipeline::poisson(demand * node.local_repair_days);
        };
        let r = node.local_repair_probability;
        let own = demand * (r * node.local_repair_days + (1.0 - r) * node.order_and_ship_days);
        let share = if parent.demand_per_day > 0.0 {
            demand * (1.0 - r) / parent.demand_per_day
        } else {
            0.0
        };
        let mean = own + share * parent.expected_backorders;
        match self.options.model {
            MetricModel::Metric => Pipeline::poisson(mean),
            MetricModel::VariMetric => {
                let extra =
                    share * share * (parent.variance_backorders - parent.expected_backorders);
                Pipeline::fit(mean, (mean + extra).max(0.0))
            }
        }
    }

    /// Best EBO of the subtree at `index` for each total stock in it, with the node's own
    /// stock attaining it.
    fn subtree(&self, index: usize, parent: Option<ParentState>) -> Result<(Vec<f64>, Vec<u64>)> {
        let pipeline = self.pipeline(index, parent)?;
        let own_curve = backorder_curve(&pipeline, self.max_stock[index]);
        let counts = self.item.nodes[index].demand_per_day > 0.0;
        if self.children[index].is_empty() {
            // A leaf's curve is its own backorder curve (convex in its stock).
            let best = own_curve
                .iter()
                .map(|p| if counts { p.expected_backorders } else { 0.0 })
                .collect();
            return Ok((best, own_curve.iter().map(|p| p.stock).collect()));
        }
        let mut best: Vec<f64> = Vec::new();
        let mut own_stock: Vec<u64> = Vec::new();
        for point in &own_curve {
            let state = ParentState {
                expected_backorders: point.expected_backorders,
                variance_backorders: point.variance_backorders,
                demand_per_day: self.total_demand[index],
            };
            let children = self.combined_children(index, state)?;
            let own = if counts {
                point.expected_backorders
            } else {
                0.0
            };
            let offset = point.stock as usize;
            if best.len() < offset + children.len() {
                best.resize(offset + children.len(), f64::INFINITY);
                own_stock.resize(offset + children.len(), 0);
            }
            for (units, value) in children.iter().enumerate() {
                let total = own + value;
                if total < best[offset + units] - 1e-15 {
                    best[offset + units] = total;
                    own_stock[offset + units] = point.stock;
                }
            }
        }
        Ok((best, own_stock))
    }

    /// A leaf's one-unit blocks, EBO(s) - EBO(s+1) = P(X > s), appended to `blocks`
    /// without building its curve; returns EBO(0). Leaf curves are convex, so every unit
    /// is a hull step.
    fn leaf_blocks(
        &self,
        leaf: usize,
        parent: ParentState,
        blocks: &mut Vec<(u64, f64)>,
    ) -> Result<f64> {
        if self.item.nodes[leaf].demand_per_day <= 0.0 {
            return Ok(0.0);
        }
        let pipeline = self.pipeline(leaf, Some(parent))?;
        let mut above = 1.0;
        for p in pmf(&pipeline, self.max_stock[leaf] as usize) {
            above -= p;
            if above <= 0.0 {
                break;
            }
            blocks.push((1, above));
        }
        Ok(pipeline.mean())
    }

    /// Children of `index` combined by marginal analysis over their convex hulls: entry u is
    /// the least children EBO with u units spread over the children.
    fn combined_children(&self, index: usize, state: ParentState) -> Result<Vec<f64>> {
        let mut start = 0.0;
        let mut blocks: Vec<(u64, f64)> = Vec::new();
        for &child in &self.children[index] {
            if self.children[child].is_empty() {
                start += self.leaf_blocks(child, state, &mut blocks)?;
                continue;
            }
            let (curve, _) = self.subtree(child, Some(state))?;
            start += curve[0];
            blocks.extend(hull_blocks(&curve));
        }
        // Steepest decrease per unit first; the sort is stable so ties keep tree order.
        blocks.sort_by(|a, b| (b.1 / b.0 as f64).total_cmp(&(a.1 / a.0 as f64)));
        let mut out = vec![start];
        let mut current = start;
        for (units, decrease) in blocks {
            current -= decrease;
            for _ in 1..units {
                let last = out[out.len() - 1];
                out.push(last);
            }
            out.push(current.max(0.0));
        }
        Ok(out)
    }
}

/// Indexes of the lower convex hull of a decreasing curve, starting at 0.
fn lower_hull(curve: &[f64]) -> Vec<u64> {
    let mut hull: Vec<usize> = Vec::new();
    for (x, &y) in curve.iter().enumerate() {
        if !y.is_finite() {
            continue;
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // Drop b if it lies on or above the chord from a to x.
            let cross = (curve[b] - curve[a]) * (x - a) as f64 - (y - curve[a]) * (b - a) as f64;
            if cross >= -1e-15 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(x);
    }
    // Keep only the decreasing part: flat or rising tails buy nothing.
    while hull.len() >= 2 && curve[hull[hull.len() - 1]] >= curve[hull[hull.len() - 2]] - 1e-15 {
        hull.pop();
    }
    hull.into_iter().map(|x| x as u64).collect()
}

/// The hull of a curve as blocks (units bought together, EBO decrease).
fn hull_blocks(curve: &[f64]) -> Vec<(u64, f64)> {
    let hull = lower_hull(curve);
    hull.windows(2)
        .map(|w| (w[1] - w[0], curve[w[0] as usize] - curve[w[1] as usize]))
        .collect()
}

/// The item's best expected backorders (summed over nodes with external demand) for every
/// total stock, with the depot stock attaining each, and its lower convex hull.
pub(super) fn item_curve(item: &MetricItem, options: &MetricOptions) -> Result<ItemCurve> {
    let tree = Tree::new(item, *options)?;
    let (mut expected_backorders, root_stock) = tree.subtree(0, None)?;
    // A total that no allocation reaches exactly takes the best smaller total.
    for s in 1..expected_backorders.len() {
        if expected_backorders[s] > expected_backorders[s - 1] {
            expected_backorders[s] = expected_backorders[s - 1];
        }
    }
    let hull = lower_hull(&expected_backorders);
    Ok(ItemCurve {
        expected_backorders,
        root_stock,
        hull,
    })
}

/// Stock per node with `total_stock` units placed as well as possible: at each node, the
/// smallest total attaining the best value, then the children's hull blocks bought
/// steepest first, every subtree enumerated afresh where it is needed.
pub(super) fn allocate(
    item: &MetricItem,
    options: &MetricOptions,
    total_stock: u64,
) -> Result<Vec<u64>> {
    let tree = Tree::new(item, *options)?;
    let mut stock = vec![0u64; item.nodes.len()];
    place(&tree, 0, None, total_stock, &mut stock)?;
    Ok(stock)
}

fn place(
    tree: &Tree,
    index: usize,
    parent: Option<ParentState>,
    units: u64,
    stock: &mut [u64],
) -> Result<()> {
    let (curve, own_stock) = tree.subtree(index, parent)?;
    let units = units.min(curve.len() as u64 - 1) as usize;
    let best_total = (0..=units)
        .min_by(|&a, &b| curve[a].total_cmp(&curve[b]))
        .unwrap_or(0);
    let own = own_stock[best_total];
    stock[index] = own;
    let point = tree.pipeline(index, parent)?.at(own);
    let state = ParentState {
        expected_backorders: point.expected_backorders,
        variance_backorders: point.variance_backorders,
        demand_per_day: tree.total_demand[index],
    };
    let mut remaining = best_total as u64 - own;
    let mut blocks: Vec<(usize, u64, u64, f64)> = Vec::new();
    for &child in &tree.children[index] {
        let (curve, _) = tree.subtree(child, Some(state))?;
        let hull = lower_hull(&curve);
        for w in hull.windows(2) {
            blocks.push((
                child,
                w[1],
                w[1] - w[0],
                curve[w[0] as usize] - curve[w[1] as usize],
            ));
        }
    }
    blocks.sort_by(|a, b| (b.3 / b.2 as f64).total_cmp(&(a.3 / a.2 as f64)));
    let mut child_units = vec![0u64; tree.item.nodes.len()];
    for (child, reach, units_needed, _) in blocks {
        if units_needed > remaining {
            break;
        }
        child_units[child] = reach;
        remaining -= units_needed;
    }
    for &child in &tree.children[index] {
        place(tree, child, Some(state), child_units[child], stock)?;
    }
    Ok(())
}

/// Greedy marginal analysis over every item's convex hull: repeatedly buy the hull step
/// with the largest EBO reduction per unit of money. Items are computed one after another.
/// `machines`, if given, is the fleet size for Sherbrooke availability.
pub(super) fn frontier(
    items: &[MetricItem],
    options: &MetricOptions,
    machines: Option<u64>,
) -> Result<Frontier> {
    let curves: Vec<ItemCurve> = items
        .iter()
        .map(|item| item_curve(item, options))
        .collect::<Result<_>>()?;
    let mut steps: Vec<(usize, u64, f64, f64)> = Vec::new();
    for (index, (curve, item)) in curves.iter().zip(items).enumerate() {
        for w in curve.hull.windows(2) {
            let cost = (w[1] - w[0]) as f64 * item.unit_cost;
            let decrease =
                curve.expected_backorders[w[0] as usize] - curve.expected_backorders[w[1] as usize];
            steps.push((index, w[1], cost, decrease));
        }
    }
    // Free steps first, then by decrease per money; stable so ties keep item order.
    steps.sort_by(|a, b| ratio(b.3, b.2).total_cmp(&ratio(a.3, a.2)));
    let mut ebo_by_item: Vec<f64> = curves.iter().map(|c| c.expected_backorders[0]).collect();
    let mut log_availability = 0.0;
    if let Some(n) = machines {
        for (item, ebo) in items.iter().zip(&ebo_by_item) {
            log_availability += item_log_availability(n, item.units_per_machine, *ebo)?;
        }
    }
    let mut total: f64 = ebo_by_item.iter().sum();
    let mut investment = 0.0;
    let mut points = vec![FrontierPoint {
        investment,
        expected_backorders: total,
        availability: machines.map(|_| log_availability.exp()),
        item: None,
        item_total_stock: 0,
    }];
    for (index, reach, cost, decrease) in steps {
        investment += cost;
        total -= decrease;
        let new_ebo = curves[index].expected_backorders[reach as usize];
        if let Some(n) = machines {
            let units = items[index].units_per_machine;
            log_availability += item_log_availability(n, units, new_ebo)?
                - item_log_availability(n, units, ebo_by_item[index])?;
        }
        ebo_by_item[index] = new_ebo;
        points.push(FrontierPoint {
            investment,
            expected_backorders: total.max(0.0),
            availability: machines.map(|_| log_availability.exp()),
            item: Some(index),
            item_total_stock: reach,
        });
    }
    Ok(Frontier { points, curves })
}

/// Decrease per unit of money, with free steps ranked first.
fn ratio(decrease: f64, cost: f64) -> f64 {
    if cost > 0.0 {
        decrease / cost
    } else {
        f64::INFINITY
    }
}

/// P(X = 0), P(X = 1), ... up to `count` terms (the earlier `Pipeline::pmf`).
fn pmf(pipeline: &Pipeline, count: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(count);
    match *pipeline {
        Pipeline::Poisson { mean } => {
            let first = (-mean).exp();
            if first > 1e-300 {
                let mut p = first;
                for x in 0..count {
                    out.push(p);
                    p *= mean / (x + 1) as f64;
                }
            } else {
                let mut log_p = -mean;
                for x in 0..count {
                    out.push(log_p.exp());
                    log_p += mean.ln() - ((x + 1) as f64).ln();
                }
            }
        }
        Pipeline::NegativeBinomial { mean, variance } => {
            let success = mean / variance;
            let size = mean * mean / (variance - mean);
            let log_first = size * success.ln();
            if log_first > -690.0 {
                let mut p = log_first.exp();
                for x in 0..count {
                    out.push(p);
                    let xf = x as f64;
                    p *= (xf + size) / (xf + 1.0) * (1.0 - success);
                }
            } else {
                let mut log_p = log_first;
                for x in 0..count {
                    out.push(log_p.exp());
                    let xf = x as f64;
                    log_p += ((xf + size) / (xf + 1.0)).ln() + (1.0 - success).ln();
                }
            }
        }
    }
    if pipeline.mean() == 0.0 {
        out.iter_mut()
            .enumerate()
            .for_each(|(x, p)| *p = if x == 0 { 1.0 } else { 0.0 });
    }
    out
}

/// Backorder curve for stock 0..=max_stock (the earlier `Pipeline::backorder_curve`).
fn backorder_curve(pipeline: &Pipeline, max_stock: u64) -> Vec<BackorderPoint> {
    let count = usize::try_from(max_stock).unwrap_or(usize::MAX - 1) + 1;
    let pmf = pmf(pipeline, count);
    let mean = pipeline.mean();
    let mut ebo = mean;
    let mut second = pipeline.variance() + mean * mean;
    let mut below: f64 = 0.0;
    let mut out = Vec::with_capacity(count);
    for (s, p) in pmf.iter().enumerate() {
        out.push(BackorderPoint {
            stock: s as u64,
            expected_backorders: ebo.max(0.0),
            variance_backorders: (second - ebo * ebo).max(0.0),
            fill_rate: below.min(1.0),
        });
        let above = (1.0 - below - p).max(0.0);
        second = (second - 2.0 * ebo + above).max(0.0);
        ebo = (ebo - above).max(0.0);
        below += p;
    }
    out
}

/// The smallest stock whose EBO falls below `tolerance` (the earlier
/// `Pipeline::stock_covering`).
fn stock_covering(pipeline: &Pipeline, tolerance: f64) -> Result<u64> {
    non_negative("tolerance", tolerance)?;
    let mean = pipeline.mean();
    let sd = pipeline.variance().sqrt();
    let mut upper = (mean + 10.0 * sd + 10.0).ceil() as u64;
    loop {
        let curve = backorder_curve(pipeline, upper);
        if let Some(point) = curve
            .iter()
            .find(|p| p.expected_backorders <= tolerance.max(1e-12))
        {
            return Ok(point.stock);
        }
        if upper > 10_000_000 {
            return Err(invalid("mean", "pipeline too large to tabulate"));
        }
        upper *= 2;
    }
}
