//! Exact evaluation of an integer stock plan on the scenarios, with optimal recourse.

use super::{Prepared, ScenarioModel};
use crate::error::{Result, invalid};
use crate::tail::cvar;
use serde::{Deserialize, Serialize};

/// Cost and service of one stock plan on the model's scenarios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Money tied up: sum of unit cost x stock.
    pub investment: f64,
    /// Holding cost per scenario period.
    pub holding_cost: f64,
    /// Mean over scenarios of the downtime cost (downtime plus expediting).
    pub expected_downtime_cost: f64,
    /// CVaR_alpha over scenarios of the downtime cost.
    pub cvar_downtime_cost: f64,
    /// holding + expected downtime + lambda x CVaR.
    pub objective: f64,
    /// Share of demand served from each part-location's own shelf (1 with no demand).
    pub fill_rates: Vec<f64>,
    /// Constraints the plan breaks (empty when feasible).
    pub violations: Vec<String>,
    /// Downtime cost of each scenario.
    pub scenario_losses: Vec<f64>,
}

impl Evaluation {
    /// Whether the plan meets the budget, capacities and fill floors.
    pub fn is_feasible(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Evaluates `stock` (units per part-location) exactly: each scenario's recourse is the
/// cheapest mix of lateral and emergency shipments (a small min-cost flow per part).
pub fn evaluate(model: &ScenarioModel, stock: &[u64]) -> Result<Evaluation> {
    let prepared = model.prepare()?;
    evaluate_prepared(&prepared, stock)
}

/// [`evaluate`] on prepared data.
pub(crate) fn evaluate_prepared(p: &Prepared, stock: &[u64]) -> Result<Evaluation> {
    let n = p.model.part_locations.len();
    if stock.len() != n {
        return Err(invalid(
            "stock",
            format!("needs {n} entries, has {}", stock.len()),
        ));
    }
    let scenarios = p.model.scenario_count();
    let mut losses = vec![0.0; scenarios];
    for group in 0..p.groups.len() {
        for (total, loss) in losses.iter_mut().zip(group_losses(p, group, stock)) {
            *total += loss;
        }
    }
    Ok(summarise(p, stock, losses))
}

/// Builds the evaluation from per-scenario losses.
pub(crate) fn summarise(p: &Prepared, stock: &[u64], losses: Vec<f64>) -> Evaluation {
    let m = p.model;
    let investment: f64 = m
        .part_locations
        .iter()
        .zip(stock)
        .map(|(q, &s)| q.unit_cost * s as f64)
        .sum();
    let holding_cost: f64 = m
        .part_locations
        .iter()
        .zip(stock)
        .map(|(q, &s)| q.holding_cost * s as f64)
        .sum();
    let expected = losses.iter().sum::<f64>() / losses.len() as f64;
    let tail = cvar(&losses, m.cvar_alpha).unwrap_or(expected);
    let fill_rates = fill_rates(p, stock);
    let violations = violations(p, stock, investment, &fill_rates);
    Evaluation {
        investment,
        holding_cost,
        expected_downtime_cost: expected,
        cvar_downtime_cost: tail,
        objective: holding_cost + expected + m.cvar_weight * tail,
        fill_rates,
        violations,
        scenario_losses: losses,
    }
}

/// Own-shelf fill rate per part-location.
fn fill_rates(p: &Prepared, stock: &[u64]) -> Vec<f64> {
    (0..stock.len())
        .map(|i| {
            if p.total_demand[i] == 0 {
                return 1.0;
            }
            let served: u64 = p.model.demand.iter().map(|row| row[i].min(stock[i])).sum();
            served as f64 / p.total_demand[i] as f64
        })
        .collect()
}

/// Names every broken constraint.
fn violations(p: &Prepared, stock: &[u64], investment: f64, fill: &[f64]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(budget) = p.model.budget
        && investment > budget * (1.0 + 1e-9) + 1e-9
    {
        out.push(format!("budget: {investment:.2} > {budget:.2}"));
    }
    for (limit, members) in &p.capacity_rows {
        let used: u64 = members.iter().map(|&i| stock[i]).sum();
        if used > *limit {
            out.push(format!(
                "capacity at {}: {used} > {limit}",
                p.model.part_locations[members[0]].location
            ));
        }
    }
    for (i, q) in p.model.part_locations.iter().enumerate() {
        if let Some(floor) = q.fill_rate_floor
            && fill[i] < floor - 1e-9
        {
            out.push(format!(
                "fill_rate_floor at part_locations[{i}]: {:.4} < {floor}",
                fill[i]
            ));
        }
        if q.max_stock.is_some_and(|m| stock[i] > m) {
            out.push(format!("max_stock at part_locations[{i}]"));
        }
    }
    out
}

/// Downtime cost of one group in every scenario.
pub(crate) fn group_losses(p: &Prepared, group: usize, stock: &[u64]) -> Vec<f64> {
    let members = &p.groups[group];
    if members.len() == 1 {
        let i = members[0];
        let w = p.emergency_penalty[i];
        return p
            .model
            .demand
            .iter()
            .map(|row| w * row[i].saturating_sub(stock[i]) as f64)
            .collect();
    }
    let network = GroupNetwork::new(p, members);
    p.model
        .demand
        .iter()
        .map(|row| network.cheapest_recourse(row, stock))
        .collect()
}

/// The flow network of one group: members, emergency arcs and lanes.
struct GroupNetwork<'a> {
    members: &'a [usize],
    emergency: Vec<f64>,
    /// (from member, to member, cost per unit)
    lanes: Vec<(usize, usize, f64)>,
}

/// One arc of the residual graph.
#[derive(Clone, Copy)]
struct Arc {
    to: usize,
    capacity: i64,
    cost: f64,
    reverse: usize,
}

impl<'a> GroupNetwork<'a> {
    /// Collects the group's arcs.
    fn new(p: &Prepared, members: &'a [usize]) -> Self {
        let local = |i: usize| members.iter().position(|&m| m == i);
        let lanes = p
            .model
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(l, lane)| Some((local(lane.from)?, local(lane.to)?, p.lane_penalty[l])))
            .collect();
        Self {
            members,
            emergency: members.iter().map(|&i| p.emergency_penalty[i]).collect(),
            lanes,
        }
    }

    /// Least cost to cover every shortage of one scenario (successive shortest paths).
    ///
    /// Each member has a shelf node and a demand node. A shelf serves its own demand at no
    /// cost or a peer's demand over a lane; emergency shipments go straight to a demand
    /// node. So no unit passes through a second location, exactly as in the LP.
    fn cheapest_recourse(&self, demand: &[u64], stock: &[u64]) -> f64 {
        let g = self.members.len();
        let wanted: Vec<i64> = self.members.iter().map(|&i| demand[i] as i64).collect();
        if self.members.iter().all(|&i| stock[i] >= demand[i]) {
            return 0.0;
        }
        let needed: i64 = wanted.iter().sum();
        let (source, sink) = (2 * g, 2 * g + 1);
        let mut graph: Vec<Vec<Arc>> = vec![Vec::new(); 2 * g + 2];
        for (m, &i) in self.members.iter().enumerate() {
            add_arc(
                &mut graph,
                source,
                m,
                stock[i].min(needed as u64) as i64,
                0.0,
            );
            add_arc(&mut graph, m, g + m, needed, 0.0);
            add_arc(&mut graph, source, g + m, needed, self.emergency[m]);
            add_arc(&mut graph, g + m, sink, wanted[m], 0.0);
        }
        for &(a, b, cost) in &self.lanes {
            add_arc(&mut graph, a, g + b, needed, cost);
        }
        let mut total = 0.0;
        let mut sent = 0;
        while sent < needed {
            let Some((path, cost)) = shortest_path(&graph, source, sink) else {
                break;
            };
            let bottleneck = path
                .iter()
                .map(|&(u, e)| graph[u][e].capacity)
                .min()
                .unwrap_or(0)
                .min(needed - sent);
            for &(u, e) in &path {
                graph[u][e].capacity -= bottleneck;
                let (to, reverse) = (graph[u][e].to, graph[u][e].reverse);
                graph[to][reverse].capacity += bottleneck;
            }
            total += cost * bottleneck as f64;
            sent += bottleneck;
        }
        total
    }
}

/// Adds an arc and its zero-capacity reverse.
fn add_arc(graph: &mut [Vec<Arc>], from: usize, to: usize, capacity: i64, cost: f64) {
    let (forward_index, reverse_index) = (graph[from].len(), graph[to].len());
    graph[from].push(Arc {
        to,
        capacity,
        cost,
        reverse: reverse_index,
    });
    graph[to].push(Arc {
        to: from,
        capacity: 0,
        cost: -cost,
        reverse: forward_index,
    });
}

/// Bellman-Ford shortest path in the residual graph: (arcs as (node, arc index), cost).
fn shortest_path(
    graph: &[Vec<Arc>],
    source: usize,
    sink: usize,
) -> Option<(Vec<(usize, usize)>, f64)> {
    let count = graph.len();
    let mut distance = vec![f64::INFINITY; count];
    let mut via: Vec<Option<(usize, usize)>> = vec![None; count];
    distance[source] = 0.0;
    for _ in 0..count {
        let mut changed = false;
        for u in 0..count {
            if !distance[u].is_finite() {
                continue;
            }
            for (e, arc) in graph[u].iter().enumerate() {
                if arc.capacity > 0 && distance[u] + arc.cost < distance[arc.to] - 1e-12 {
                    distance[arc.to] = distance[u] + arc.cost;
                    via[arc.to] = Some((u, e));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut path = Vec::new();
    let mut node = sink;
    while node != source {
        let (u, e) = via[node]?;
        path.push((u, e));
        node = u;
        if path.len() > count {
            return None;
        }
    }
    Some((path, distance[sink]))
}
