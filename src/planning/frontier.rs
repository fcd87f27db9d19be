//! The availability-versus-investment frontier of the selected parts by METRIC or
//! VARI-METRIC marginal analysis, over each part's supply tree (factory depot -> regional
//! warehouse -> stores with installed-base demand). Pure.

use super::model::{
    FACTORY_LEAD_TIME_DAYS_MEAN, demand_per_day, select_parts, supplier_lead_time, transit_days,
};
use super::optimize::money;
use crate::domain::DomainError;
use crate::domain::network::{LaneKind, Network, PartId};
use serde::{Deserialize, Serialize};
use spares_solver::metric::{self, MetricItem, MetricModel, MetricNode, MetricOptions};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Points reported when the request gives none.
pub const DEFAULT_FRONTIER_POINTS: u32 = 50;
/// Most points one result may hold (each is a row of the summary and the JSON).
pub const MAX_FRONTIER_POINTS: u32 = 10_000;
/// Availability at which an open-ended frontier stops.
pub const TARGET_AVAILABILITY: f64 = 0.999;

/// A frontier request in the service's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierRequest {
    /// Pipeline model.
    pub model: MetricModel,
    /// Stop at this investment, if given; else at [`TARGET_AVAILABILITY`].
    pub max_investment_usd: Option<f64>,
    /// Points to report.
    pub points: u32,
    /// Parts; empty selects by downtime exposure.
    pub part_ids: Vec<PartId>,
}

/// One reported point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierRow {
    /// Money in stock.
    pub investment_usd: f64,
    /// Expected backorders over all stores.
    pub expected_backorders: f64,
    /// Sherbrooke availability of the fleets.
    pub availability: Option<f64>,
}

/// The result of a frontier job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontierResult {
    /// Parts covered.
    pub part_ids: Vec<PartId>,
    /// Model used.
    pub model: MetricModel,
    /// Machines in the fleets (N in the availability formula).
    pub machines: u64,
    /// Purchases behind the frontier (before thinning).
    pub purchases: usize,
    /// Points, investment rising.
    pub points: Vec<FrontierRow>,
    /// The plan in force (the policies' order-up-to levels at the frontier's
    /// stocking points) measured by the same model; `None` when no policy
    /// holds stock for the selected parts.
    #[serde(default)]
    pub in_force: Option<FrontierRow>,
    /// The recommended point: the best frontier point costing no more than
    /// the plan in force, or without one the cheapest point reaching the
    /// target availability (else the last point traced).
    #[serde(default)]
    pub recommended: Option<FrontierRow>,
}

/// Builds the METRIC items: one per part and factory depot, with the depot's regional
/// warehouses and their stores that have demand for the part.
pub fn metric_items(network: &Network, parts: &[PartId]) -> Vec<MetricItem> {
    metric_items_at(network, parts)
        .into_iter()
        .map(|(item, _)| item)
        .collect()
}

/// [`metric_items`] with the location of every node, in node order.
fn metric_items_at(network: &Network, parts: &[PartId]) -> Vec<(MetricItem, Vec<String>)> {
    let demand = store_demand(network, parts);
    let mut items = Vec::new();
    for part_id in parts {
        let Some(part) = network.parts.get(part_id) else {
            continue;
        };
        for depot in network
            .locations
            .values()
            .filter(|l| l.replenishment_source.is_none())
        {
            let mut at = vec![depot.id.clone()];
            let mut nodes = vec![MetricNode {
                parent: None,
                demand_per_day: demand
                    .get(&(part_id.clone(), depot.id.clone()))
                    .copied()
                    .unwrap_or(0.0),
                local_repair_probability: 0.0,
                local_repair_days: supplier_lead_time(network, part_id, &depot.id).mean_days(),
                order_and_ship_days: 0.0,
            }];
            add_children(network, &demand, part_id, &depot.id, 0, &mut nodes, &mut at);
            if nodes.iter().any(|n| n.demand_per_day > 0.0) {
                items.push((
                    MetricItem {
                        name: format!("{part_id}@{}", depot.id),
                        unit_cost: part.unit_cost_usd,
                        units_per_machine: 1,
                        nodes,
                    },
                    at,
                ));
            }
        }
    }
    items
}

/// Adds the subtree under `parent_id` (node index `parent`) with demand below it.
fn add_children(
    network: &Network,
    demand: &BTreeMap<(PartId, String), f64>,
    part_id: &PartId,
    parent_id: &str,
    parent: usize,
    nodes: &mut Vec<MetricNode>,
    at: &mut Vec<String>,
) {
    for child in network
        .locations
        .values()
        .filter(|l| l.replenishment_source.as_deref() == Some(parent_id))
    {
        let mark = nodes.len();
        at.push(child.id.clone());
        nodes.push(MetricNode {
            parent: Some(parent),
            demand_per_day: demand
                .get(&(part_id.clone(), child.id.clone()))
                .copied()
                .unwrap_or(0.0),
            local_repair_probability: 0.0,
            local_repair_days: 0.0,
            order_and_ship_days: resupply_days(network, parent_id, &child.id),
        });
        add_children(network, demand, part_id, &child.id, mark, nodes, at);
        // A subtree without demand holds no useful stock; drop it.
        if nodes[mark..].iter().all(|n| n.demand_per_day == 0.0) {
            nodes.truncate(mark);
            at.truncate(mark);
        }
    }
}

/// Mean days of the fastest replenishment lane from `from` to `to`.
fn resupply_days(network: &Network, from: &str, to: &str) -> f64 {
    network
        .lanes
        .values()
        .filter(|l| l.kind == LaneKind::Replenishment && l.from == from && l.to == to)
        .map(|l| transit_days(&l.transit).mean_days())
        .min_by(f64::total_cmp)
        .unwrap_or(FACTORY_LEAD_TIME_DAYS_MEAN)
}

/// Mean demand per day of each wanted part at each location, by the demand
/// rule of `model` (rate, else history, else installed base).
fn store_demand(network: &Network, parts: &[PartId]) -> BTreeMap<(PartId, String), f64> {
    let wanted: std::collections::BTreeSet<&str> = parts.iter().map(String::as_str).collect();
    demand_per_day(network)
        .into_iter()
        .filter(|((part_id, _), _)| wanted.contains(part_id.as_str()))
        .map(|(key, estimate)| (key, estimate.units_per_day))
        .collect()
}

/// Traces the frontier. Errors: unknown parts (`NotFound`), no demand, solver errors.
pub fn run_frontier(
    network: &Network,
    request: &FrontierRequest,
) -> Result<FrontierResult, DomainError> {
    let part_ids = select_parts(network, &request.part_ids)?;
    let (items, at): (Vec<MetricItem>, Vec<Vec<String>>) =
        metric_items_at(network, &part_ids).into_iter().unzip();
    if items.is_empty() {
        return Err(DomainError::invalid(
            "part_ids",
            "no selected part has installed-base demand",
        ));
    }
    let machines: u64 = network
        .fleets
        .values()
        .map(|f| u64::from(f.machine_count))
        .sum();
    let options = MetricOptions {
        model: request.model,
        ..MetricOptions::default()
    };
    let frontier = metric::frontier(&items, &options, Some(machines.max(1)))
        .map_err(|e| DomainError::invalid("part_ids", e.to_string()))?;
    let mut rows: Vec<FrontierRow> = Vec::new();
    for p in &frontier.points {
        if let Some(max) = request.max_investment_usd
            && p.investment > max + 1e-9
        {
            break;
        }
        rows.push(FrontierRow {
            investment_usd: p.investment,
            expected_backorders: p.expected_backorders,
            availability: p.availability,
        });
        if request.max_investment_usd.is_none()
            && p.availability.is_some_and(|a| a >= TARGET_AVAILABILITY)
        {
            break;
        }
    }
    let purchases = rows.len().saturating_sub(1);
    let in_force = plan_in_force(network, &items, &at, &options, machines.max(1))?;
    let recommended = recommend(&rows, in_force.as_ref());
    Ok(FrontierResult {
        part_ids,
        model: request.model,
        machines,
        purchases,
        points: thin(rows, request.points as usize),
        in_force,
        recommended,
    })
}

/// The policies' order-up-to levels at each item's nodes, measured by the
/// frontier's model; `None` when they hold no stock there.
fn plan_in_force(
    network: &Network,
    items: &[MetricItem],
    at: &[Vec<String>],
    options: &MetricOptions,
    machines: u64,
) -> Result<Option<FrontierRow>, DomainError> {
    let stock: Vec<Vec<u64>> = items
        .iter()
        .zip(at)
        .map(|(item, locations)| {
            let part_id = item.name.split('@').next().unwrap_or_default();
            locations
                .iter()
                .map(|location| {
                    network
                        .policies
                        .get(&(part_id.to_string(), location.clone()))
                        .map_or(0, |p| p.order_up_to)
                })
                .collect()
        })
        .collect();
    if stock.iter().flatten().all(|s| *s == 0) {
        return Ok(None);
    }
    let measure = metric::evaluate(items, options, &stock, Some(machines))
        .map_err(|e| DomainError::invalid("policies", e.to_string()))?;
    Ok(Some(FrontierRow {
        investment_usd: measure.investment,
        expected_backorders: measure.expected_backorders,
        availability: measure.availability,
    }))
}

/// The recommended point of a traced frontier (see [`FrontierResult::recommended`]).
fn recommend(rows: &[FrontierRow], in_force: Option<&FrontierRow>) -> Option<FrontierRow> {
    match in_force {
        Some(plan) => rows
            .iter()
            .take_while(|r| r.investment_usd <= plan.investment_usd + 1e-9)
            .last()
            .cloned(),
        None => rows
            .iter()
            .find(|r| r.availability.is_some_and(|a| a >= TARGET_AVAILABILITY))
            .or(rows.last())
            .cloned(),
    }
}

/// Keeps `count` points evenly spread by index, always the first and the last.
fn thin(rows: Vec<FrontierRow>, count: usize) -> Vec<FrontierRow> {
    let count = count.max(2);
    if rows.len() <= count {
        return rows;
    }
    let last = rows.len() - 1;
    (0..count)
        .map(|k| k * last / (count - 1))
        .map(|i| rows[i].clone())
        .collect()
}

/// A readable summary of a frontier.
pub fn summarize(result: &FrontierResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:?} frontier of {} parts over {} machines ({} purchases, {} points shown)",
        result.model,
        result.part_ids.len(),
        result.machines,
        result.purchases,
        result.points.len()
    );
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>12}",
        "investment", "backorders", "availability"
    );
    for p in &result.points {
        let _ = writeln!(
            out,
            "{:>12} {:>14.3} {:>12}",
            money(p.investment_usd),
            p.expected_backorders,
            p.availability
                .map_or("-".into(), |a| format!("{:.3}%", a * 100.0))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn thinning_keeps_the_ends() {
        let rows: Vec<FrontierRow> = (0..10)
            .map(|i| FrontierRow {
                investment_usd: f64::from(i),
                expected_backorders: 10.0 - f64::from(i),
                availability: None,
            })
            .collect();
        let thin = thin(rows, 3);
        let xs: Vec<f64> = thin.iter().map(|r| r.investment_usd).collect();
        assert_eq!(xs, vec![0.0, 4.0, 9.0]);
    }
}
