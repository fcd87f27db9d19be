//! METRIC (Sherbrooke 1968) and VARI-METRIC (Sherbrooke 1986; Graves 1985) for a
//! depot -> warehouse -> store tree, and the availability-versus-investment frontier.
//!
//! Each item's stock is spread over its tree by exact enumeration of the stock at every
//! internal node, with children combined by marginal analysis. Leaves have convex backorder
//! curves, so for a two-echelon tree the item curve (best expected backorders for each total
//! stock) is exact. For deeper trees a subtree's curve is replaced by its lower convex hull
//! when its parent combines it (Sherbrooke's standard approximation). Across items the
//! frontier is the greedy marginal analysis over each item's convex hull of (cost, EBO).
//!
//! The enumeration is the cost: every depot stock times every warehouse stock combines all
//! the stores below. That inner step is kept cheap without changing a bit of the answer:
//! a store's decreases P(X > s) come straight from the pmf recursion into reused buffers,
//! stores under one warehouse are ordered by one integer sort (ties are equal numbers, so
//! their order cannot matter), the combined curve is read as it is folded into the best
//! totals, and other combinations merge their children's already sorted hull runs stably
//! instead of sorting from scratch. Items run in parallel and the hull steps of all items
//! are ordered by a stable sort, so the frontier is the same on any number of threads.
//! `metric/reference.rs` keeps the straightforward computation; tests check the two agree
//! bit for bit.

use crate::distribution::Pipeline;
use crate::error::{Result, SolverError, invalid, non_negative, positive};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::str::FromStr;
use std::sync::Mutex;

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
}

/// A validated tree with derived totals.
struct Tree<'a> {
    /// Borrowed for one-shot curves and allocations, owned where enumerations are kept.
    item: Cow<'a, MetricItem>,
    children: Vec<Vec<usize>>,
    /// Whether every child of the node is a leaf (the common store-parent case, combined
    /// on plain decreases).
    leaf_parent: Vec<bool>,
    total_demand: Vec<f64>,
    /// The part of each non-root node's pipeline mean that does not wait on its parent:
    /// lambda_j (r_j T_j + (1 - r_j) O_j).
    own_pipeline: Vec<f64>,
    /// The node's share of its parent's backorders, f_j = lambda_j (1 - r_j) / lambda_parent.
    parent_share: Vec<f64>,
    max_stock: Vec<u64>,
    /// An upper bound on the length of each node's subtree curve, to size it once.
    curve_length: Vec<usize>,
    options: MetricOptions,
    /// Buffers for combining children, reused by one subtree after another.
    scratch_pool: RefCell<Vec<Scratch>>,
}

impl<'a> Tree<'a> {
    /// Validates the item and precomputes demand totals and enumeration ranges.
    fn new(item: Cow<'a, MetricItem>, options: MetricOptions) -> Result<Self> {
        validate_item(&item)?;
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
        let leaf_parent = children
            .iter()
            .map(|c| !c.is_empty() && c.iter().all(|&child| children[child].is_empty()))
            .collect();
        let (own_pipeline, parent_share) = item
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let demand = total_demand[index];
                let r = node.local_repair_probability;
                let own =
                    demand * (r * node.local_repair_days + (1.0 - r) * node.order_and_ship_days);
                let parent_demand = node.parent.map_or(0.0, |p| total_demand[p]);
                let share = if parent_demand > 0.0 {
                    demand * (1.0 - r) / parent_demand
                } else {
                    0.0
                };
                (own, share)
            })
            .unzip();
        let mut tree = Self {
            item,
            children,
            leaf_parent,
            total_demand,
            own_pipeline,
            parent_share,
            max_stock: vec![0; count],
            curve_length: vec![0; count],
            options,
            scratch_pool: RefCell::new(Vec::new()),
        };
        tree.max_stock = tree.enumeration_ranges()?;
        // A subtree holds at most its own range plus every unit its children can use.
        for index in (0..count).rev() {
            let children: usize = tree.children[index]
                .iter()
                .map(|&child| tree.curve_length[child] - 1)
                .sum();
            tree.curve_length[index] = tree.max_stock[index] as usize + 1 + children;
        }
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
            });
        }
        Ok(ranges)
    }

    /// The pipeline at `index` given its parent's state (`None` at the root).
    fn pipeline(&self, index: usize, parent: Option<ParentState>) -> Result<Pipeline> {
        let Some(parent) = parent else {
            let node = &self.item.nodes[index];
            return Pipeline::poisson(self.total_demand[index] * node.local_repair_days);
        };
        let share = self.parent_share[index];
        let mean = self.own_pipeline[index] + share * parent.expected_backorders;
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
        let mut best: Vec<f64> = Vec::with_capacity(self.curve_length[index]);
        let mut own_stock: Vec<u64> = Vec::with_capacity(self.curve_length[index]);
        // One set of buffers serves every own stock level, and later subtrees after this.
        let mut scratch = self.scratch_pool.borrow_mut().pop().unwrap_or_default();
        for point in &own_curve {
            let state = ParentState {
                expected_backorders: point.expected_backorders,
                variance_backorders: point.variance_backorders,
            };
            let combined = self.combined_children(index, state, &mut scratch)?;
            let own = if counts {
                point.expected_backorders
            } else {
                0.0
            };
            let offset = point.stock as usize;
            let end = offset + combined.length(&scratch);
            if best.len() < end {
                best.resize(end, f64::INFINITY);
                own_stock.resize(end, 0);
            }
            let slots = (&mut best[offset..end], &mut own_stock[offset..end]);
            match combined {
                Combined::Curve => relax(slots, scratch.curve.iter().copied(), own, point.stock),
                Combined::Leaves { start } => {
                    relax(slots, leaf_curve(start, &scratch.keys), own, point.stock);
                }
            }
        }
        self.scratch_pool.borrow_mut().push(scratch);
        Ok((best, own_stock))
    }

    /// A leaf's one-unit decreases, EBO(s) - EBO(s+1) = P(X > s), appended to
    /// `decreases` without building its curve; returns EBO(0). Leaf curves are convex, so
    /// every unit is a hull step, and the decreases come out in falling order.
    fn leaf_decreases(
        &self,
        leaf: usize,
        parent: ParentState,
        decreases: &mut Vec<f64>,
    ) -> Result<f64> {
        if self.item.nodes[leaf].demand_per_day <= 0.0 {
            return Ok(0.0);
        }
        let pipeline = self.pipeline(leaf, Some(parent))?;
        // Write into room made beforehand: no reallocation check inside the loop.
        let first = decreases.len();
        decreases.resize(first + self.max_stock[leaf] as usize, 0.0);
        let written = pipeline.survival_into(&mut decreases[first..]);
        decreases.truncate(first + written);
        Ok(pipeline.mean())
    }

    /// Children that are all leaves, combined: every block is one unit, so the purchase
    /// order is the decreases sorted from largest, and equal decreases give the same curve
    /// in any order. Leaves the sorted decreases in `scratch.keys` (see [`leaf_curve`]).
    fn combined_leaves(
        &self,
        index: usize,
        state: ParentState,
        scratch: &mut Scratch,
    ) -> Result<Combined> {
        let mut start = 0.0;
        scratch.decreases.clear();
        for &leaf in &self.children[index] {
            start += self.leaf_decreases(leaf, state, &mut scratch.decreases)?;
        }
        // An unstable sort of integer keys is several times faster here than merging the
        // leaves' runs, and exact: the keys follow `f64::total_cmp`, and equal keys are
        // equal numbers.
        scratch.keys.clear();
        let keys = scratch.decreases.iter().map(|&d| falling_key(d));
        scratch.keys.extend(keys);
        scratch.keys.sort_unstable();
        Ok(Combined::Leaves { start })
    }

    /// Children of `index` combined by marginal analysis over their convex hulls, left in
    /// `scratch` as the result says: entry u of the curve is the least children EBO with
    /// u units spread over the children.
    fn combined_children(
        &self,
        index: usize,
        state: ParentState,
        scratch: &mut Scratch,
    ) -> Result<Combined> {
        if self.leaf_parent[index] {
            return self.combined_leaves(index, state, scratch);
        }
        let mut start = 0.0;
        scratch.blocks.clear();
        scratch.run_ends.clear();
        for &child in &self.children[index] {
            let run_start = scratch.blocks.len();
            if self.children[child].is_empty() {
                scratch.decreases.clear();
                start += self.leaf_decreases(child, state, &mut scratch.decreases)?;
                let blocks = scratch.decreases.iter().map(|&d| Block::new(1, d));
                scratch.blocks.extend(blocks);
            } else {
                let (curve, _) = self.subtree(child, Some(state))?;
                start += curve[0];
                scratch.blocks.extend(
                    hull_blocks(&curve)
                        .into_iter()
                        .map(|(units, decrease)| Block::new(units, decrease)),
                );
            }
            let run = &mut scratch.blocks[run_start..];
            if !run.is_empty() {
                // Each child's blocks are nearly always in order already (convexity); sort
                // the rare run that rounding left out of order.
                if !run.is_sorted_by(|a, b| a.comes_before(b)) {
                    run.sort_by(Block::order);
                }
                scratch.run_ends.push(scratch.blocks.len());
            }
        }
        // Steepest decrease per unit first; ties keep tree order (a stable merge of the
        // children's runs, which is the same order a stable sort of all blocks gives).
        merge_runs(
            &mut scratch.blocks,
            &mut scratch.spare,
            &mut scratch.run_ends,
        );
        let curve = &mut scratch.curve;
        curve.clear();
        curve.push(start);
        let mut current = start;
        for block in &scratch.blocks {
            current -= block.decrease;
            for _ in 1..block.units {
                let last = curve[curve.len() - 1];
                curve.push(last);
            }
            curve.push(current.max(0.0));
        }
        Ok(Combined::Curve)
    }
}

/// Where [`Tree::combined_children`] left the children curve.
#[derive(Debug, Clone, Copy)]
enum Combined {
    /// In `scratch.curve`.
    Curve,
    /// Implied by `start` and the sorted decreases in `scratch.keys` ([`leaf_curve`]).
    Leaves {
        /// EBO with no units at the leaves.
        start: f64,
    },
}

impl Combined {
    /// The number of entries of the curve.
    fn length(self, scratch: &Scratch) -> usize {
        match self {
            Self::Curve => scratch.curve.len(),
            Self::Leaves { .. } => scratch.keys.len() + 1,
        }
    }
}

/// The leaves' combined curve: `start`, then `start` less each decrease in falling order
/// (never below 0), computed as it is read so the subtraction chain overlaps the update
/// that reads it.
fn leaf_curve(start: f64, keys: &[u64]) -> impl Iterator<Item = f64> + '_ {
    let rest = keys.iter().scan(start, |current, &key| {
        *current -= from_falling_key(key);
        Some(current.max(0.0))
    });
    std::iter::once(start).chain(rest)
}

/// Keeps, for each total, the smaller of the best so far and `own` plus the children
/// value, recording `stock` where the new one wins by more than rounding. Selects rather
/// than branches, as either outcome is common.
fn relax(
    (best, own_stock): (&mut [f64], &mut [u64]),
    children: impl Iterator<Item = f64>,
    own: f64,
    stock: u64,
) {
    for ((best, own_stock), value) in best.iter_mut().zip(own_stock).zip(children) {
        let total = own + value;
        let better = total < *best - 1e-15;
        *best = if better { total } else { *best };
        *own_stock = if better { stock } else { *own_stock };
    }
}

/// Units bought together in one child of a combination and the EBO decrease they buy.
#[derive(Debug, Clone, Copy)]
struct Block {
    units: u64,
    decrease: f64,
    /// Decrease per unit, the order of purchase.
    rate: f64,
}

impl Block {
    fn new(units: u64, decrease: f64) -> Self {
        Self {
            units,
            decrease,
            rate: decrease / units as f64,
        }
    }

    /// Steeper blocks first (total order on the rate, so the order is reproducible).
    fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.rate.total_cmp(&a.rate)
    }

    /// Whether `self` may stand before `other` in purchase order.
    fn comes_before(&self, other: &Self) -> bool {
        Self::order(self, other) != std::cmp::Ordering::Greater
    }
}

/// Buffers reused across the own stock levels of one node.
#[derive(Default)]
struct Scratch {
    /// Blocks of every child, one sorted run per child, then merged.
    blocks: Vec<Block>,
    /// Room for merging.
    spare: Vec<Block>,
    /// The end of each run in `blocks`.
    run_ends: Vec<usize>,
    /// The combined children curve.
    curve: Vec<f64>,
    /// One-unit decreases of leaves.
    decreases: Vec<f64>,
    /// Their [`falling_key`]s, sorted.
    keys: Vec<u64>,
}

/// An integer key whose ascending order is the falling order of `value` under
/// [`f64::total_cmp`] (the transform `total_cmp` itself uses, then reversed).
fn falling_key(value: f64) -> u64 {
    let bits = value.to_bits();
    let total = bits ^ ((((bits as i64) >> 63) as u64) >> 1) ^ (1 << 63);
    !total
}

/// The value behind a [`falling_key`].
fn from_falling_key(key: u64) -> f64 {
    let signed = !key ^ (1 << 63);
    // The sign bit is unchanged by the transform, so it tells how to undo it.
    let bits = signed ^ ((((signed as i64) >> 63) as u64) >> 1);
    f64::from_bits(bits)
}

/// Merges adjacent sorted runs of `blocks` pairwise until one is left, taking from the left
/// run on ties: the result is what a stable sort of all of `blocks` by [`Block::order`]
/// gives, in n log(runs) steps instead of a sort from scratch.
fn merge_runs(blocks: &mut Vec<Block>, spare: &mut Vec<Block>, run_ends: &mut Vec<usize>) {
    while run_ends.len() > 1 {
        spare.clear();
        let mut start = 0;
        let mut kept = 0;
        let mut run = 0;
        while run < run_ends.len() {
            let end = run_ends[run];
            if run + 1 < run_ends.len() {
                let next_end = run_ends[run + 1];
                merge_two(&blocks[start..end], &blocks[end..next_end], spare);
                run_ends[kept] = next_end;
                start = next_end;
                run += 2;
            } else {
                spare.extend_from_slice(&blocks[start..end]);
                run_ends[kept] = end;
                run += 1;
            }
            kept += 1;
        }
        run_ends.truncate(kept);
        std::mem::swap(blocks, spare);
    }
}

/// Appends the stable merge of two sorted runs to `out`.
fn merge_two(left: &[Block], right: &[Block], out: &mut Vec<Block>) {
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if Block::order(&right[j], &left[i]) == std::cmp::Ordering::Less {
            out.push(right[j]);
            j += 1;
        } else {
            out.push(left[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
}

/// Indexes of the lower convex hull of a decreasing curve, starting at 0.
pub fn lower_hull(curve: &[f64]) -> Vec<u64> {
    let mut hull: Vec<usize> = Vec::with_capacity(curve.len());
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
    Ok(Enumerated::new(item, options)?.curve())
}

/// Stock per node for an item when `total_stock` units are placed as well as possible
/// (same method as [`item_curve`]). Errors if the total is past the enumerated range.
pub fn allocate(item: &MetricItem, options: &MetricOptions, total_stock: u64) -> Result<Vec<u64>> {
    Enumerated::new(item, options)?.allocate(total_stock)
}

/// An item's tree enumerated once: its curve ([`item_curve`]) and the allocation of any
/// total ([`allocate`]) read from that one enumeration, so that allocating many totals of
/// one item costs one enumeration of the whole tree plus one pass over the children per
/// total, not a whole enumeration per total. The answers are those of [`item_curve`] and
/// [`allocate`] bit for bit (they are defined through it).
pub struct Enumerated<'a> {
    tree: Tree<'a>,
    /// The root's subtree: best EBO per total and the root stock attaining it.
    root: Subtree,
}

/// A subtree's best EBO for each total stock in it, with the node's own stock attaining it.
type Subtree = (Vec<f64>, Vec<u64>);

impl Enumerated<'static> {
    /// As [`Enumerated::new`] on an item it keeps, for enumerations stored beside other
    /// data ([`WeightedCurves`]). Errors: an invalid item or options.
    pub fn owned(item: MetricItem, options: &MetricOptions) -> Result<Self> {
        Self::of(Cow::Owned(item), options)
    }
}

impl<'a> Enumerated<'a> {
    /// Validates `item` and enumerates its tree. Errors: an invalid item or options.
    pub fn new(item: &'a MetricItem, options: &MetricOptions) -> Result<Self> {
        Self::of(Cow::Borrowed(item), options)
    }

    fn of(item: Cow<'a, MetricItem>, options: &MetricOptions) -> Result<Self> {
        let tree = Tree::new(item, *options)?;
        let root = tree.subtree(0, None)?;
        Ok(Self { tree, root })
    }

    /// The item's curve (see [`item_curve`]).
    pub fn curve(&self) -> ItemCurve {
        let (mut expected_backorders, root_stock) = self.root.clone();
        // A total that no allocation reaches exactly takes the best smaller total.
        for s in 1..expected_backorders.len() {
            if expected_backorders[s] > expected_backorders[s - 1] {
                expected_backorders[s] = expected_backorders[s - 1];
            }
        }
        let hull = lower_hull(&expected_backorders);
        ItemCurve {
            expected_backorders,
            root_stock,
            hull,
        }
    }

    /// Stock per node with `total_stock` units placed as well as possible (see
    /// [`allocate`]).
    pub fn allocate(&self, total_stock: u64) -> Result<Vec<u64>> {
        let mut stock = vec![0u64; self.tree.item.nodes.len()];
        place(&self.tree, 0, None, &self.root, total_stock, &mut stock)?;
        Ok(stock)
    }
}

/// Places `units` in the subtree at `index`, whose curve given `parent` is `subtree`,
/// recording each node's stock.
fn place(
    tree: &Tree,
    index: usize,
    parent: Option<ParentState>,
    (curve, own_stock): &Subtree,
    units: u64,
    stock: &mut [u64],
) -> Result<()> {
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
    };
    let mut remaining = best_total as u64 - own;
    let mut blocks: Vec<(usize, u64, u64, f64)> = Vec::new();
    let mut child_curves = Vec::new();
    for &child in &tree.children[index] {
        let subtree = tree.subtree(child, Some(state))?;
        let curve = &subtree.0;
        let hull = lower_hull(curve);
        for w in hull.windows(2) {
            blocks.push((
                child,
                w[1],
                w[1] - w[0],
                curve[w[0] as usize] - curve[w[1] as usize],
            ));
        }
        child_curves.push((child, subtree));
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
    for (child, subtree) in &child_curves {
        place(
            tree,
            *child,
            Some(state),
            subtree,
            child_units[*child],
            stock,
        )?;
    }
    Ok(())
}

/// Total expected backorders at demand nodes for a given stock per node.
pub fn expected_backorders(
    item: &MetricItem,
    options: &MetricOptions,
    stock: &[u64],
) -> Result<f64> {
    let tree = Tree::new(Cow::Borrowed(item), *options)?;
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
    let mut steps: Vec<Step> = curves
        .par_iter()
        .zip(items)
        .enumerate()
        .flat_map_iter(|(index, (curve, item))| hull_steps(index, curve, item))
        .collect();
    // Free steps first, then by decrease per money; stable so ties keep item order, which
    // also makes the order the same on any number of threads.
    steps.par_sort_by(|a, b| b.rate.total_cmp(&a.rate));
    let mut ebo_by_item: Vec<f64> = curves.iter().map(|c| c.expected_backorders[0]).collect();
    // Each item's term of the log availability, kept so a purchase recomputes only its own.
    let mut term_by_item: Vec<f64> = Vec::new();
    if let Some(n) = machines {
        for (item, ebo) in items.iter().zip(&ebo_by_item) {
            term_by_item.push(item_log_availability(n, item.units_per_machine, *ebo)?);
        }
    }
    let mut log_availability: f64 = term_by_item.iter().sum();
    let mut total: f64 = ebo_by_item.iter().sum();
    let mut investment = 0.0;
    let mut points = Vec::with_capacity(steps.len() + 1);
    points.push(FrontierPoint {
        investment,
        expected_backorders: total,
        availability: machines.map(|_| log_availability.exp()),
        item: None,
        item_total_stock: 0,
    });
    for step in steps {
        let index = step.item;
        investment += step.cost;
        total -= step.decrease;
        let new_ebo = curves[index].expected_backorders[step.reach as usize];
        if let Some(n) = machines {
            let term = item_log_availability(n, items[index].units_per_machine, new_ebo)?;
            log_availability += term - term_by_item[index];
            term_by_item[index] = term;
        }
        ebo_by_item[index] = new_ebo;
        points.push(FrontierPoint {
            investment,
            expected_backorders: total.max(0.0),
            availability: machines.map(|_| log_availability.exp()),
            item: Some(index),
            item_total_stock: step.reach,
        });
    }
    Ok(Frontier { points, curves })
}

/// A downtime-weighted METRIC plan (Sherbrooke's cost form) within a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedPlan {
    /// Stock per node of every item (the item's node order).
    pub stock: Vec<Vec<u64>>,
    /// Total stock of every item.
    pub total_stock: Vec<u64>,
    /// Money the plan ties up.
    pub investment: f64,
    /// Sum over items of weight x expected backorders at demand nodes.
    pub weighted_backorders: f64,
}

/// Sherbrooke's cost form of METRIC: minimise sum_i w_i EBO_i (EBO summed over the item's
/// demand nodes, `w_i` = `weights[i]`, the cost of one backorder-day of item i) subject to
/// the investment staying within `budget`, by greedy marginal analysis over every echelon:
/// each step buys the hull step of one item's best-allocation curve (all its nodes, depot
/// units shortening every store's resupply) with the largest weighted decrease per dollar.
/// A step that does not fit the money left closes that item (its later steps cost more per
/// unit of decrease) and the walk goes on with cheaper steps of other items, so the budget
/// is spent as far as whole steps allow. Ties keep item order, so the plan does not depend
/// on the thread count.
///
/// # Errors
/// A bad item or option (`InvalidInput` naming the field), a weight that is negative or
/// not finite, or a weight list of the wrong length.
pub fn weighted_plan(
    items: &[MetricItem],
    weights: &[f64],
    options: &MetricOptions,
    budget: f64,
) -> Result<WeightedPlan> {
    WeightedCurves::new(items, weights, options)?.plan(items, options, budget)
}

/// The part of [`weighted_plan`] that does not depend on the budget: every item's
/// best-allocation curve and the weighted hull steps in order of purchase. Built once, it
/// gives the plan at any number of budgets (a downtime-weighted frontier) for the cost of
/// the allocations alone: each item's tree is enumerated once here and kept, and a plan
/// reads its allocations from those enumerations ([`Enumerated::allocate`]).
pub struct WeightedCurves {
    curves: Vec<ItemCurve>,
    /// One kept enumeration per item, each behind its own lock because an enumeration
    /// reuses scratch buffers (allocations of different items run in parallel).
    enumerated: Vec<Mutex<Enumerated<'static>>>,
    weights: Vec<f64>,
    steps: Vec<Step>,
}

impl std::fmt::Debug for WeightedCurves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightedCurves")
            .field("items", &self.curves.len())
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

impl WeightedCurves {
    /// The curves and steps of `items` under `weights`.
    ///
    /// # Errors
    /// As [`weighted_plan`].
    pub fn new(items: &[MetricItem], weights: &[f64], options: &MetricOptions) -> Result<Self> {
        if weights.len() != items.len() {
            return Err(invalid("weights", "needs one weight per item"));
        }
        for (i, &w) in weights.iter().enumerate() {
            non_negative(&format!("weights[{i}]"), w)?;
        }
        let enumerated: Vec<Enumerated<'static>> = items
            .par_iter()
            .map(|item| Enumerated::owned(item.clone(), options))
            .collect::<Result<_>>()?;
        let curves: Vec<ItemCurve> = enumerated.iter().map(Enumerated::curve).collect();
        let mut steps: Vec<Step> = curves
            .iter()
            .zip(items)
            .enumerate()
            .flat_map(|(index, (curve, item))| hull_steps(index, curve, item))
            .map(|mut step| {
                step.decrease *= weights[step.item];
                step.rate = ratio(step.decrease, step.cost);
                step
            })
            .filter(|step| step.decrease > 0.0)
            .collect();
        steps.sort_by(|a, b| b.rate.total_cmp(&a.rate));
        Ok(Self {
            curves,
            enumerated: enumerated.into_iter().map(Mutex::new).collect(),
            weights: weights.to_vec(),
            steps,
        })
    }

    /// The plan within `budget` (see [`weighted_plan`]); `items` and `options` must be the
    /// ones the curves were built from (the allocations come from the kept enumerations).
    ///
    /// # Errors
    /// A negative or non-finite budget, or items other than the curves' (`InvalidInput`).
    pub fn plan(
        &self,
        items: &[MetricItem],
        options: &MetricOptions,
        budget: f64,
    ) -> Result<WeightedPlan> {
        non_negative("budget", budget)?;
        if items.len() != self.curves.len() {
            return Err(invalid(
                "items",
                "are not the ones the curves were built from",
            ));
        }
        let mut total_stock = vec![0u64; items.len()];
        let mut closed = vec![false; items.len()];
        let mut investment = 0.0;
        for step in &self.steps {
            if closed[step.item] {
                continue;
            }
            if investment + step.cost > budget * (1.0 + 1e-12) + 1e-9 {
                closed[step.item] = true;
                continue;
            }
            investment += step.cost;
            total_stock[step.item] = step.reach;
        }
        let _ = options;
        let stock = self
            .enumerated
            .par_iter()
            .zip(&total_stock)
            .map(|(enumerated, &total)| {
                // A poisoned lock means an allocation panicked; the enumeration itself is
                // read-only apart from its scratch buffers, so it is still sound to use.
                let enumerated = enumerated
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                enumerated.allocate(total)
            })
            .collect::<Result<Vec<_>>>()?;
        let weighted_backorders = self
            .curves
            .iter()
            .zip(&total_stock)
            .zip(&self.weights)
            .map(|((curve, &total), w)| w * curve.expected_backorders[total as usize])
            .sum();
        Ok(WeightedPlan {
            stock,
            total_stock,
            investment,
            weighted_backorders,
        })
    }
}

/// One step along an item's hull: buying up to `reach` units costs `cost` and lowers the
/// item's expected backorders by `decrease`.
#[derive(Debug, Clone)]
struct Step {
    item: usize,
    reach: u64,
    cost: f64,
    decrease: f64,
    /// Decrease per unit of money, the order of purchase.
    rate: f64,
}

/// The steps along one item's hull, in order.
fn hull_steps<'a>(
    index: usize,
    curve: &'a ItemCurve,
    item: &'a MetricItem,
) -> impl Iterator<Item = Step> + 'a {
    curve.hull.windows(2).map(move |w| {
        let cost = (w[1] - w[0]) as f64 * item.unit_cost;
        let decrease =
            curve.expected_backorders[w[0] as usize] - curve.expected_backorders[w[1] as usize];
        Step {
            item: index,
            reach: w[1],
            cost,
            decrease,
            rate: ratio(decrease, cost),
        }
    })
}

/// Decrease per unit of money, with free steps ranked first.
fn ratio(decrease: f64, cost: f64) -> f64 {
    if cost > 0.0 {
        decrease / cost
    } else {
        f64::INFINITY
    }
}

/// A stocking plan measured as the frontier measures its points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanMeasure {
    /// Money in stock: every node's units times the item's unit cost.
    pub investment: f64,
    /// Total expected backorders at demand nodes.
    pub expected_backorders: f64,
    /// Sherbrooke availability of the fleet, when a fleet size was given.
    pub availability: Option<f64>,
}

/// Measures given stock levels (`stock[i][n]` = units at node `n` of item
/// `i`) with the frontier's model, so a plan can be placed on its frontier.
/// Errors: a stock vector whose length is not the item's node count, or a
/// fleet of zero machines.
pub fn evaluate(
    items: &[MetricItem],
    options: &MetricOptions,
    stock: &[Vec<u64>],
    machines: Option<u64>,
) -> Result<PlanMeasure> {
    if stock.len() != items.len() {
        return Err(invalid(
            "stock",
            format!("needs one entry per item ({})", items.len()),
        ));
    }
    let mut measure = PlanMeasure {
        investment: 0.0,
        expected_backorders: 0.0,
        availability: None,
    };
    let mut log_availability = 0.0;
    for (item, levels) in items.iter().zip(stock) {
        let ebo = expected_backorders(item, options, levels)?;
        measure.expected_backorders += ebo;
        measure.investment += levels.iter().sum::<u64>() as f64 * item.unit_cost;
        if let Some(n) = machines {
            log_availability += item_log_availability(n, item.units_per_machine, ebo)?;
        }
    }
    measure.availability = machines.map(|_| log_availability.exp());
    Ok(measure)
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
mod reference;
#[cfg(test)]
mod tests;
