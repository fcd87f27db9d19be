//! The planning problem: each part's supply tree under each factory depot, as the exact
//! per-part simulator and METRIC both see it.
//!
//! One tree per (part, depot) with demand below it: the depot (resupplied by the part's
//! supplier lead time, by `model::supplier_lead_time`), the regional warehouses and the
//! locations with demand under it (resupplied over the fastest replenishment lane from
//! their replenishment source; without one, the default supplier lead time's mean), each
//! with its demand by the one demand rule (`model::demand_per_day`) and its cost per
//! waiting hour: the part's or its class's (`model::part_downtime_cost_per_hour`), else
//! the pricing machine model's rate x the class's share. A location's emergency sources are
//! its ancestors with an emergency lane to it, nearest first (DOMAIN.md's rule: the
//! regional, then the depot), each with that lane's transit as the delay. Emergency lanes
//! from outside the location's own chain, lateral lanes and calendars are not modelled here.

use crate::domain::DomainError;
use crate::domain::network::{LaneKind, LocationId, Network, PartId, TransitTime};
use crate::planning::model::{
    criticality_share, default_supplier_lead_time, demand_per_day, part_downtime_cost_per_hour,
    pricing_machine_model, supplier_lead_time, transit_days,
};
use spares_simulations::TimeDistribution;
use spares_simulations::tree::{EmergencySource, PartTree, TreeNode};
use spares_solver::metric::{MetricItem, MetricNode};
use std::collections::BTreeMap;

/// Children of every location in the supply tree, in id order.
fn children(network: &Network) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for location in network.locations.values() {
        if let Some(source) = location.replenishment_source.as_deref() {
            out.entry(source).or_default().push(location.id.as_str());
        }
    }
    out
}

/// The fastest lane of `kind` from `from` to `to` by median transit.
fn fastest<'a>(
    lanes: &'a BTreeMap<(&str, &str, LaneKind), Vec<&'a TransitTime>>,
    from: &str,
    to: &str,
    kind: LaneKind,
) -> Option<&'a TransitTime> {
    lanes
        .get(&(from, to, kind))?
        .iter()
        .copied()
        .min_by(|a, b| a.median_hours().total_cmp(&b.median_hours()))
}

/// Everything the trees read from the network, indexed once.
struct Index<'a> {
    network: &'a Network,
    children: BTreeMap<&'a str, Vec<&'a str>>,
    lanes: BTreeMap<(&'a str, &'a str, LaneKind), Vec<&'a TransitTime>>,
    demand: BTreeMap<(PartId, LocationId), crate::planning::model::DemandEstimate>,
}

impl<'a> Index<'a> {
    fn new(network: &'a Network) -> Self {
        let mut lanes: BTreeMap<(&str, &str, LaneKind), Vec<&TransitTime>> = BTreeMap::new();
        for lane in network.lanes.values() {
            lanes
                .entry((lane.from.as_str(), lane.to.as_str(), lane.kind))
                .or_default()
                .push(&lane.transit);
        }
        Self {
            network,
            children: children(network),
            lanes,
            demand: demand_per_day(network),
        }
    }

    /// Cost of an hour a failure of `part_id` at `location` waits.
    fn cost_per_hour(&self, part_id: &str, location: &str) -> f64 {
        let Some(part) = self.network.parts.get(part_id) else {
            return 0.0;
        };
        part_downtime_cost_per_hour(self.network, part).unwrap_or_else(|| {
            pricing_machine_model(self.network, part_id, location)
                .and_then(|m| self.network.machine_models.get(&m))
                .map_or(0.0, |m| {
                    m.downtime_cost_usd_per_hour * criticality_share(part.criticality)
                })
        })
    }

    /// Adds `location` and its subtree with demand; false (and nothing added) when the
    /// subtree has no demand for the part.
    fn add(
        &self,
        part_id: &str,
        location: &str,
        parent: Option<usize>,
        nodes: &mut Vec<TreeNode>,
    ) -> bool {
        let mark = nodes.len();
        let (demand, ratio) = self
            .demand
            .get(&(part_id.to_string(), location.to_string()))
            .map_or((0.0, 1.0), |d| (d.units_per_day, d.variance_to_mean_ratio));
        let resupply_days = match parent {
            None => supplier_lead_time(self.network, part_id, location),
            Some(p) => fastest(&self.lanes, &nodes[p].id, location, LaneKind::Replenishment)
                .map(transit_days)
                .unwrap_or(TimeDistribution::Deterministic {
                    days: default_supplier_lead_time().mean_days(),
                }),
        };
        nodes.push(TreeNode {
            id: location.to_string(),
            parent,
            resupply_days,
            demand_per_day: demand,
            variance_to_mean_ratio: ratio.max(1.0),
            downtime_cost_per_hour: if demand > 0.0 {
                self.cost_per_hour(part_id, location)
            } else {
                0.0
            },
            emergency: Vec::new(),
        });
        let mut any = demand > 0.0;
        for child in self.children.get(location).into_iter().flatten() {
            any |= self.add(part_id, child, Some(mark), nodes);
        }
        if !any {
            nodes.truncate(mark);
            return false;
        }
        if demand > 0.0 {
            nodes[mark].emergency = self.emergency_sources(location, mark, nodes);
        }
        true
    }

    /// Ancestors of node `index` with an emergency lane to `location`, nearest first.
    fn emergency_sources(
        &self,
        location: &str,
        index: usize,
        nodes: &[TreeNode],
    ) -> Vec<EmergencySource> {
        let mut sources = Vec::new();
        let mut at = nodes[index].parent;
        while let Some(a) = at {
            if let Some(transit) = fastest(&self.lanes, &nodes[a].id, location, LaneKind::Emergency)
            {
                sources.push(EmergencySource {
                    node: a,
                    delay_days: transit_days(transit),
                });
            }
            at = nodes[a].parent;
        }
        sources
    }
}

/// One tree per (part, depot) with demand below the depot, parts in the order given,
/// depots in id order. Errors: an unknown part (`NotFound`).
pub fn part_trees(network: &Network, parts: &[PartId]) -> Result<Vec<PartTree>, DomainError> {
    let index = Index::new(network);
    let depots: Vec<&str> = network
        .locations
        .values()
        .filter(|l| l.replenishment_source.is_none())
        .map(|l| l.id.as_str())
        .collect();
    let mut trees = Vec::new();
    for part_id in parts {
        let part = network
            .parts
            .get(part_id)
            .ok_or_else(|| DomainError::not_found("part", part_id.clone()))?;
        for depot in &depots {
            let mut nodes = Vec::new();
            if index.add(part_id, depot, None, &mut nodes) {
                trees.push(PartTree {
                    part: part_id.clone(),
                    unit_cost: part.unit_cost_usd,
                    nodes,
                });
            }
        }
    }
    Ok(trees)
}

/// The METRIC item of a tree: the same nodes, resupply times at their means, no repair.
pub fn metric_item(tree: &PartTree) -> MetricItem {
    MetricItem {
        name: format!("{}@{}", tree.part, tree.nodes[0].id),
        unit_cost: tree.unit_cost,
        units_per_machine: 1,
        nodes: tree
            .nodes
            .iter()
            .map(|n| MetricNode {
                parent: n.parent,
                demand_per_day: n.demand_per_day,
                local_repair_probability: 0.0,
                local_repair_days: if n.parent.is_none() {
                    n.resupply_days.mean_days()
                } else {
                    0.0
                },
                order_and_ship_days: n.resupply_days.mean_days(),
            })
            .collect(),
    }
}

/// What one backorder-day of the tree's part costs, averaged over its demand nodes by
/// demand (24 x the cost per waiting hour where every node prices alike).
pub fn backorder_day_cost(tree: &PartTree) -> f64 {
    let (weighted, demand) = tree.nodes.iter().fold((0.0, 0.0), |(w, d), n| {
        (
            w + n.demand_per_day * n.downtime_cost_per_hour,
            d + n.demand_per_day,
        )
    });
    if demand > 0.0 {
        24.0 * weighted / demand
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::testnet::{TestNetworkShape, generate};

    #[test]
    fn test_network_trees_have_every_echelon_and_the_emergency_rule() {
        let shape = TestNetworkShape {
            regionals: 2,
            stores_per_regional: 3,
            parts: 4,
        };
        let network = generate(5, shape);
        let parts: Vec<PartId> = network.parts.keys().cloned().collect();
        let trees = part_trees(&network, &parts).expect("known parts");
        assert_eq!(trees.len(), 4);
        for tree in &trees {
            tree.validate().expect("valid tree");
            assert_eq!(tree.nodes.len(), 1 + 2 + 6);
            let TimeDistribution::Deterministic { days } = tree.nodes[0].resupply_days else {
                panic!("fixed supplier lead time");
            };
            assert!((30.0..=90.0).contains(&days));
            for node in tree.nodes.iter().filter(|n| n.demand_per_day > 0.0) {
                // Regional (1 day) first, then the depot (2 days).
                assert_eq!(node.emergency.len(), 2);
                assert_eq!(node.emergency[1].node, 0);
                assert_eq!(
                    node.emergency[0].delay_days,
                    TimeDistribution::Deterministic { days: 1.0 }
                );
                assert!([500.0, 100.0, 10.0].contains(&node.downtime_cost_per_hour));
            }
            let item = metric_item(tree);
            assert_eq!(item.nodes.len(), tree.nodes.len());
            assert!(backorder_day_cost(tree) > 0.0);
        }
        assert!(part_trees(&network, &["NOPE".to_string()]).is_err());
    }
}
