//! METRIC (Sherbrooke 1968) and VARI-METRIC (Sherbrooke 1986; Graves 1985) for a
//! depot -> warehouse -> store tree, and the availability-versus-investment frontier.
//!
//! Each item's stock is spread over its tree by exact enumeration of the stock at every
//! internal node, with children combined by marginal analysis. Leaves have convex backorder
//! curves, so for a two-echelon tree the item curve (best expected backorders for each total
//! stock) is exact. For deeper trees a subtree's curve is replaced by its lower convex hull
//! when its parent combines it (Sherbrooke's standard approximation). Across items the
//! frontier is the greedy marginal analysis over each item's convex hull of (cost, EBO).

use crate::distribution::Pipeline;
use crate::error::{Result, SolverError, invalid, non_negative, positive};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Most nodes one item's tree may have (enumeration cost grows with it).
pub const MAX_NODES_PER_ITEM: usize = 10_000;

/// Which pipeline model to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricModel {
    /// Poisson pipelines with the METRIC mean.
    Metric,
    /// Negative binomial pipelines with the VARI-METRIC mean and variance.
    VariMetric,
}

impl FromStr for MetricModel {
    type Err = SolverError;
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "metric" => Ok(Self::Metric),
            "varimetric" => Ok(Self::VariMetric),
            other => Err(invalid(
                "method",
                format!("unknown model `{other}` (metric, vari-metric)"),
            )),
        }
    }
}

/// One stocking point of an item's tree. Node 0 is the root (the depot); every other node
/// names a parent with a smaller index. Times are in days, rates per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricNode {
    /// Index of the node that resupplies this one; `None` only for the root.
    pub parent: Option<usize>,
    /// External demand (failures) arising at this node, per day.
    pub demand_per_day: f64,
    /// Probability that a demand is repaired or resolved here (ignored at the root, which
    /// repairs everything).
    pub local_repair_probability: f64,
    /// Local repair time in days (at the root: the depot turnaround time).
    pub local_repair_days: f64,
    /// Order-and-ship time from the parent in days (ignored at the root).
    pub order_and_ship_days: f64,
}

/// An item (part) with its unit cost and its tree of stocking points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricItem {
    /// Item name, for reports.
    pub name: String,
    /// Cost of one unit.
    pub unit_cost: f64,
    /// Units of this item installed per machine (Z in Sherbrooke's availability).
    pub units_per_machine: u64,
    /// The tree, root first.
    pub nodes: Vec<MetricNode>,
}

/// Settings for METRIC curves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricOptions {
    /// Pipeline model.
    pub model: MetricModel,
    /// A node's stock is enumerated until its expected backorders fall below this.
    pub ebo_tolerance: f64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            model: MetricModel::VariMetric,
            ebo_tolerance: 1e-6,
        }
    }
}

/// An item's best expected backorders for each total stock, and the lower convex hull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemCurve {
    /// `expected_backorders[s]` = least total EBO at demand nodes with `s` units in the tree.
    pub expected_backorders: Vec<f64>,
    /// `root_stock[s]` = the depot stock attaining it.
    pub root_stock: Vec<u64>,
    /// Total stocks on the lower convex hull of (stock, EBO), starting at 0.
    pub hull: Vec<u64>,
}

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
            ranges[index] = pipeline.stock_covering(self.options.ebo_tolerance)?;
            let empty = pipeline.at(0);
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
        let own_curve = pipeline.backorder_curve(self.max_stock[index]);
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
        for p in pipeline.pmf(self.max_stock[leaf] as usize) {
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
pub fn lower_hull(curve: &[f64]) -> Vec<u64> {
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

/// Checks the tree shape and every rate and time, naming the node.
fn validate_item(item: &MetricItem) -> Result<()> {
    non_negative("unit_cost", item.unit_cost)?;
    if item.nodes.is_empty() || item.nodes.len() > MAX_NODES_PER_ITEM {
        return Err(invalid(
            "nodes",
            format!("must hold 1..={MAX_NODES_PER_ITEM} nodes"),
        ));
    }
    for (index, node) in item.nodes.iter().enumerate() {
        let field = |name: &str| format!("items[{}].nodes[{index}].{name}", item.name);
        match (index, node.parent) {
            (0, None) => {}
            (0, Some(_)) => return Err(invalid(field("parent"), "the root has no parent")),
            (_, Some(p)) if p < index => {}
            _ => return Err(invalid(field("parent"), "must name an earlier node")),
        }
        non_negative(&field("demand_per_day"), node.demand_per_day)?;
        non_negative(&field("local_repair_days"), node.local_repair_days)?;
        non_negative(&field("order_and_ship_days"), node.order_and_ship_days)?;
        let r = node.local_repair_probability;
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            return Err(invalid(
                field("local_repair_probability"),
                "must lie in [0, 1]",
            ));
        }
    }
    Ok(())
}

/// The item's best expected backorders (summed over nodes with external demand) for every
/// total stock, with the depot stock attaining each, and its lower convex hull.
pub fn item_curve(item: &MetricItem, options: &MetricOptions) -> Result<ItemCurve> {
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

/// Stock per node for an item when `total_stock` units are placed as well as possible
/// (same method as [`item_curve`]). Errors if the total is past the enumerated range.
pub fn allocate(item: &MetricItem, options: &MetricOptions, total_stock: u64) -> Result<Vec<u64>> {
    let tree = Tree::new(item, *options)?;
    let mut stock = vec![0u64; item.nodes.len()];
    place(&tree, 0, None, total_stock, &mut stock)?;
    Ok(stock)
}

/// Places `units` in the subtree at `index`, recording each node's stock.
fn place(
    tree: &Tree,
    index: usize,
    parent: Option<ParentState>,
    units: u64,
    stock: &mut [u64],
) -> Result<()> {
    let (curve, own_stock) = tree.subtree(index, parent)?;
    let units = units.min(curve.len() as u64 - 1) as usize;
    // Use the smallest total attaining the best value at or below `units`.
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
    let mut child_curves = Vec::new();
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
        child_curves.push(child);
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
    for child in child_curves {
        place(tree, child, Some(state), child_units[child], stock)?;
    }
    Ok(())
}

/// Total expected backorders at demand nodes for a given stock per node.
pub fn expected_backorders(
    item: &MetricItem,
    options: &MetricOptions,
    stock: &[u64],
) -> Result<f64> {
    let tree = Tree::new(item, *options)?;
    if stock.len() != item.nodes.len() {
        return Err(invalid(
            "stock",
            format!("needs one entry per node ({})", item.nodes.len()),
        ));
    }
    let mut states: Vec<Option<ParentState>> = vec![None; stock.len()];
    let mut total = 0.0;
    for index in 0..stock.len() {
        let parent = item.nodes[index].parent.and_then(|p| states[p]);
        let point = tree.pipeline(index, parent)?.at(stock[index]);
        if item.nodes[index].demand_per_day > 0.0 {
            total += point.expected_backorders;
        }
        states[index] = Some(ParentState {
            expected_backorders: point.expected_backorders,
            variance_backorders: point.variance_backorders,
            demand_per_day: tree.total_demand[index],
        });
    }
    Ok(total)
}

/// One point of the availability-versus-investment frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    /// Money invested in stock so far.
    pub investment: f64,
    /// Total expected backorders over all items.
    pub expected_backorders: f64,
    /// Sherbrooke availability of the fleet, when a fleet size was given.
    pub availability: Option<f64>,
    /// The item whose stock changed at this point (`None` at the start).
    pub item: Option<usize>,
    /// That item's new total stock.
    pub item_total_stock: u64,
}

/// The frontier and the item curves behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    /// Points in order of rising investment.
    pub points: Vec<FrontierPoint>,
    /// Each item's curve.
    pub curves: Vec<ItemCurve>,
}

impl Frontier {
    /// Total stock per item at the last frontier point costing at most `budget`.
    pub fn stock_within(&self, budget: f64) -> Vec<u64> {
        let mut stock = vec![0; self.curves.len()];
        for point in self
            .points
            .iter()
            .take_while(|p| p.investment <= budget + 1e-9)
        {
            if let Some(item) = point.item {
                stock[item] = point.item_total_stock;
            }
        }
        stock
    }
}

/// Greedy marginal analysis over every item's convex hull: repeatedly buy the hull step
/// with the largest EBO reduction per unit of money. Items are computed in parallel.
/// `machines`, if given, is the fleet size for Sherbrooke availability.
pub fn frontier(
    items: &[MetricItem],
    options: &MetricOptions,
    machines: Option<u64>,
) -> Result<Frontier> {
    let curves: Vec<ItemCurve> = items
        .par_iter()
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

/// One item's term Z ln(1 - EBO / (N Z)) of the log availability.
fn item_log_availability(machines: u64, units_per_machine: u64, ebo: f64) -> Result<f64> {
    if machines == 0 || units_per_machine == 0 {
        return Err(invalid(
            "machines",
            "fleet size and units per machine must be at least 1",
        ));
    }
    let installed = (machines * units_per_machine) as f64;
    Ok(units_per_machine as f64 * (1.0 - ebo / installed).max(1e-300).ln())
}

#[cfg(test)]
mod tests;
