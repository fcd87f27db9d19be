//! Earliest-arrival routing over the lane network, and the probability that a
//! routed unit is available at its destination by a deadline.
//!
//! The [`Router`] is built once from a [`Network`] (the service rebuilds it and
//! swaps it in an `Arc` when the network changes). It holds a petgraph
//! `DiGraph` of locations and lanes, each location's resolved calendar and each
//! lane's resolved transit model and departures, plus a table of hop counts
//! from every location to every other, so a query only explores locations
//! from which the destination is still reachable within the leg limit.
//!
//! A leg from `u` to `v` entered at `u` at time `t` departs at
//! `dispatch_u(t)` (handling, then the next cut-off or scheduled departure on a
//! working day of `u`) and arrives at `dispatch_u(t) + transit`. That arrival
//! function is non-decreasing in `t` (FIFO), so `k` rounds of Bellman-Ford
//! relaxation give the exact earliest arrival over routes of at most `k` legs.
//! Every lane is usable: replenishment, lateral and emergency.

use super::calendar::{Departures, SiteCalendar, Timetable};
use super::error::DomainError;
use super::network::{LaneKind, LocationId, LocationKind, Network, TransportMode};
use super::transit::{TransitModel, TransitQuantile, duration_to_hours, hours_to_duration};
use jiff::{SignedDuration, Timestamp};
use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Most legs a route may take. Depot -> regional -> store is two; one more
/// allows a lateral or emergency hop. Longer chains are not how parts move and
/// would multiply the search.
pub const MAX_ROUTE_LEGS: usize = 3;

/// Most locations a router accepts: the hop table is `n * n` bytes (16 MiB here).
pub const MAX_ROUTER_LOCATIONS: usize = 4096;

/// Most departure slots enumerated per intermediate leg when computing a
/// probability. Slots after the deadline are never needed; this bounds the
/// work for deadlines months away (the few slots beyond it are ignored, which
/// can only lower the probability).
pub const MAX_PROBABILITY_SLOTS: usize = 400;

/// Probability mass left unassigned when the slot sum stops early: far below
/// anything a caller displays, and it keeps long tails from costing slots.
const NEGLIGIBLE_PROBABILITY: f64 = 1e-12;

const UNREACHABLE: u8 = u8::MAX;

/// Most distinct departure timetables a location's outgoing lanes may have
/// for its routes to be remembered (see [`Router::route_memoised`]); a
/// location with more is routed afresh every time.
pub const MAX_MEMO_TIMETABLES: usize = 4;

/// Routes remembered per shard of a route memo; a full shard forgets its
/// oldest entry for each new one (a bound on memory: about 250 bytes an
/// entry with its route and its place in the order, so about 16 MB for the
/// 65,536 entries of all shards).
const MEMO_SHARD_ENTRIES: usize = 1 << 12;

/// Shards of the route memo (concurrent requests rarely share a lock).
const MEMO_SHARDS: usize = 16;

/// Lanes within two legs of a location (its own, and those of the locations
/// they reach) from which its searches are explored once per dispatch
/// signature and shared by every destination (see [`Exploration`]): depots and
/// regional warehouses, whose lanes fan out to most of the network. A store
/// with a lane or two is cheaper to search for each destination.
pub const HUB_FAN_OUT: usize = 256;

/// Labels the exploration memo holds in each of its shards before the shard
/// is emptied: with [`MEMO_SHARDS`] shards, about 1M labels of at most 80
/// bytes with their list link (a test checks the size), so at most about
/// 80 MB for the largest network; an exploration holds one label or a few
/// per location within two legs of its hub.
const EXPLORATION_SHARD_LABELS: usize = 1 << 16;

/// A location as the router sees it.
#[derive(Debug, Clone)]
pub struct Site {
    /// Location id.
    pub id: LocationId,
    /// Display name.
    pub name: String,
    /// Echelon.
    pub kind: LocationKind,
    /// Latitude in degrees.
    pub latitude_deg: f64,
    /// Longitude in degrees.
    pub longitude_deg: f64,
    /// Calendar, cut-off and handling in the location's time zone.
    pub calendar: SiteCalendar,
}

/// A lane as the router sees it.
#[derive(Debug, Clone)]
pub struct LaneEdge {
    /// Transport mode.
    pub mode: TransportMode,
    /// Replenishment, lateral or emergency.
    pub kind: LaneKind,
    /// Transit-time distribution.
    pub transit: TransitModel,
    /// When goods leave on it.
    pub departures: Departures,
    /// Freight cost per unit.
    pub cost_per_unit_usd: f64,
}

/// One leg of a planned route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedLeg {
    /// The lane taken.
    pub lane: EdgeIndex,
    /// Origin.
    pub from: NodeIndex,
    /// Destination.
    pub to: NodeIndex,
    /// Departure instant.
    pub departs_at: Timestamp,
    /// Arrival instant at the routing quantile.
    pub arrives_at: Timestamp,
}

/// A route from a source to a destination; no legs when they are the same place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// Legs in order.
    pub legs: Vec<PlannedLeg>,
}

impl Route {
    /// Arrival at the destination, or `ready_at` for an empty route.
    pub fn arrival(&self, ready_at: Timestamp) -> Timestamp {
        self.legs.last().map_or(ready_at, |leg| leg.arrives_at)
    }
}

/// The network prepared for earliest-arrival queries.
#[derive(Debug, Clone)]
pub struct Router {
    graph: DiGraph<Site, LaneEdge>,
    index: rustc_hash::FxHashMap<LocationId, NodeIndex>,
    /// `hops[to * n + from]`: fewest legs from `from` to `to`, capped at
    /// `MAX_ROUTE_LEGS + 1`; `UNREACHABLE` when farther or never. Stored by
    /// destination, so the row one query reads is contiguous.
    hops: Vec<u8>,
    /// Outgoing lanes per node as (target, lane), in petgraph's iteration
    /// order (which decides between routes of equal arrival), packed so a
    /// search reads them without following petgraph's edge lists.
    outgoing: Vec<Vec<(NodeIndex, EdgeIndex)>>,
    /// Outgoing lanes by (origin, target): a range of `pair_lanes`.
    pairs: rustc_hash::FxHashMap<(u32, u32), (u32, u32)>,
    /// Lanes grouped by (origin, target), each as (position in the origin's
    /// `outgoing` list, target, lane), in `outgoing` order within a group.
    pair_lanes: Vec<(u32, NodeIndex, EdgeIndex)>,
    /// Per node, the distinct origins of its incoming lanes: with the node
    /// itself, every location one leg or none from it.
    near: Vec<Vec<NodeIndex>>,
    /// Per node, its incoming lanes as (origin, position in the origin's
    /// `outgoing` list, lane), in origin order.
    incoming: Vec<Vec<(NodeIndex, u32, EdgeIndex)>>,
    /// Per node, whether its searches go through an [`Exploration`] (see
    /// [`HUB_FAN_OUT`]).
    hub: Vec<bool>,
    /// Explorations from hubs already computed for this network version.
    explorations: ExplorationMemo,
    /// Per lane, the index of its departures among its origin's distinct
    /// timetables (`u8::MAX` past [`MAX_MEMO_TIMETABLES`]), so a search
    /// computes one dispatch per timetable of a location, not one per lane.
    lane_timetable: Vec<u8>,
    /// Per node, the distinct departure timetables of its outgoing lanes
    /// (`None` past [`MAX_MEMO_TIMETABLES`]): the instants a unit ready there
    /// leaves on them are all a route from it depends on.
    timetables: Vec<Option<Vec<Timetable>>>,
    /// Routes already computed for this network version, from locations
    /// that are not hubs.
    memo: RouteMemo,
    /// Routes already finished from an exploration of a hub, by the same key
    /// as `memo` (a memo of its own, so the many hub-to-store routes of a
    /// large network do not crowd the searches out of `memo`).
    finished: RouteMemo,
}

/// What a route from a location depends on besides its two ends and the
/// quantile: the dispatch instant on each of the origin's distinct
/// timetables. Two ready times with the same signature get the same route.
type DispatchSignature = [Option<Timestamp>; MAX_MEMO_TIMETABLES];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MemoKey {
    from: u32,
    to: u32,
    quantile_bits: u64,
    signature: DispatchSignature,
}

/// Routes computed earlier, by (origin, destination, quantile, dispatch
/// signature). It lives in the [`Router`], so a new network version (a new
/// router) starts with an empty memo; it holds results of a pure function,
/// so it never changes an answer, only how fast it comes.
#[derive(Default)]
struct RouteMemo {
    shards: [Mutex<MemoShard>; MEMO_SHARDS],
    hasher: rustc_hash::FxBuildHasher,
}

/// One shard of a [`RouteMemo`]: its routes, and their keys in the order
/// they came (the oldest is forgotten first). Forgetting one entry per new
/// one, rather than emptying a full shard at once, keeps the cost of a miss
/// flat: emptying 4,096 routes in one request took a few hundred
/// microseconds and showed in the p99.9 of a large network.
#[derive(Default)]
struct MemoShard {
    routes: rustc_hash::FxHashMap<MemoKey, Option<Arc<Route>>>,
    order: VecDeque<MemoKey>,
}

impl std::fmt::Debug for RouteMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMemo").finish_non_exhaustive()
    }
}

impl Clone for RouteMemo {
    /// A clone starts empty: the memo is a cache, not state.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl RouteMemo {
    fn shard(&self, key: &MemoKey) -> &Mutex<MemoShard> {
        // Middle bits: the shard's own table reads the low and the top ones.
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 40) as usize % MEMO_SHARDS]
    }

    fn get(&self, key: &MemoKey) -> Option<Option<Arc<Route>>> {
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.routes.get(key).cloned()
    }

    fn put(&self, key: MemoKey, route: Option<Arc<Route>>) {
        let mut guard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let shard = &mut *guard;
        if shard.routes.insert(key, route).is_some() {
            // Already known (two requests raced to compute it): same route.
            return;
        }
        shard.order.push_back(key);
        if shard.order.len() > MEMO_SHARD_ENTRIES
            && let Some(oldest) = shard.order.pop_front()
        {
            shard.routes.remove(&oldest);
        }
    }

    /// Routes remembered in all shards.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).routes.len())
            .sum()
    }
}

/// What an exploration from a hub depends on: the origin, the quantile and
/// the origin's dispatch signature (as for [`MemoKey`], without a destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ExplorationKey {
    from: u32,
    quantile_bits: u64,
    signature: DispatchSignature,
}

/// The labels of the first [`MAX_ROUTE_LEGS`]` - 1` rounds of the search from
/// one origin at one dispatch signature, made for no destination in
/// particular ([`Router::explore`]), from which [`Router::finish`] gives the
/// route to any destination with one more round over the lanes into it.
///
/// Why that is exactly the route [`Router::route`] gives. The search for `to`
/// differs from the exploration in three ways, none of which can change the
/// first label at `to` with the earliest arrival:
/// - it makes no label at a location more legs from `to` than it has left.
///   Such labels lead to `to` only over more than [`MAX_ROUTE_LEGS`] legs,
///   and a label prunes only later labels at its own location, which the
///   search does not make either (a lane into a location within reach of
///   `to` would put its origin within reach too);
/// - it does not expand a label at `to`, nor one arriving no earlier than the
///   best arrival at `to` found so far. Everything made from such a label
///   arrives no earlier than that best, so it can neither improve `to` (only
///   a strictly earlier arrival replaces the best) nor prune a label that
///   could: a pruned label arrives no earlier than the label pruning it;
/// - labels common to both are made in the same relative order, so the lanes
///   into `to` are met in the same order ((label, lane position) ascending).
///
/// The exploration is tested against the plain scan on random networks with
/// many routes of equal arrival.
#[derive(Debug)]
struct Exploration {
    /// Index 0 is the origin; then the labels of each round, in creation order.
    labels: Vec<Label>,
    /// Per node, its first label (`u32::MAX`: none).
    first: Vec<u32>,
    /// Per label, the next label at the same node (`u32::MAX`: none).
    next: Vec<u32>,
}

type ExplorationShard = (
    rustc_hash::FxHashMap<ExplorationKey, Arc<Exploration>>,
    usize,
);

/// Explorations computed earlier, with at most [`EXPLORATION_SHARD_LABELS`]
/// labels in a shard (a full shard is emptied). Like the route memo it holds
/// results of a pure function of the network version: it changes no answer.
#[derive(Default)]
struct ExplorationMemo {
    shards: [Mutex<ExplorationShard>; MEMO_SHARDS],
    hasher: rustc_hash::FxBuildHasher,
}

impl std::fmt::Debug for ExplorationMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExplorationMemo").finish_non_exhaustive()
    }
}

impl Clone for ExplorationMemo {
    /// A clone starts empty: the memo is a cache, not state.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl ExplorationMemo {
    fn shard(&self, key: &ExplorationKey) -> &Mutex<ExplorationShard> {
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 40) as usize % MEMO_SHARDS]
    }

    fn get(&self, key: &ExplorationKey) -> Option<Arc<Exploration>> {
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.0.get(key).cloned()
    }

    fn put(&self, key: ExplorationKey, exploration: Arc<Exploration>) {
        let weight = exploration.labels.len();
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.1 + weight > EXPLORATION_SHARD_LABELS {
            shard.0.clear();
            shard.1 = 0;
        }
        if shard.0.insert(key, exploration).is_none() {
            shard.1 += weight;
        }
    }
}

/// Dispatch instants of one unit at one location, by the index of the
/// departure timetable (see `Router::lane_timetable`), filled as lanes ask.
#[derive(Default)]
struct Dispatched([Option<Option<Timestamp>>; MAX_MEMO_TIMETABLES]);

/// A search label: the earliest arrival found at a node with a given leg count.
#[derive(Debug, Clone, Copy)]
struct Label {
    node: NodeIndex,
    arrival: Timestamp,
    legs: usize,
    parent: Option<(usize, EdgeIndex, Timestamp)>,
}

impl Router {
    /// Builds the router from validated network master data.
    ///
    /// Errors: `InvalidArgument` when a location's time zone or calendar does
    /// not resolve or a lane names an unknown location; `OutOfRange` above
    /// [`MAX_ROUTER_LOCATIONS`].
    pub fn new(network: &Network) -> Result<Self, DomainError> {
        if network.locations.len() > MAX_ROUTER_LOCATIONS {
            return Err(DomainError::OutOfRange {
                field: "locations".into(),
                reason: format!("routing supports at most {MAX_ROUTER_LOCATIONS} locations"),
            });
        }
        let mut graph = DiGraph::with_capacity(network.locations.len(), network.lanes.len());
        let mut index = rustc_hash::FxHashMap::with_capacity_and_hasher(
            network.locations.len(),
            rustc_hash::FxBuildHasher,
        );
        for location in network.locations.values() {
            let calendar = SiteCalendar::from_location(location)
                .map_err(|e| e.within(&format!("locations[{}]", location.id)))?;
            let node = graph.add_node(Site {
                id: location.id.clone(),
                name: location.name.clone(),
                kind: location.kind,
                latitude_deg: location.latitude_deg,
                longitude_deg: location.longitude_deg,
                calendar,
            });
            index.insert(location.id.clone(), node);
        }
        for lane in network.lanes.values() {
            let (Some(&from), Some(&to)) = (index.get(&lane.from), index.get(&lane.to)) else {
                return Err(DomainError::invalid(
                    "lanes",
                    format!(
                        "lane {} -> {} names an unknown location",
                        lane.from, lane.to
                    ),
                ));
            };
            graph.add_edge(
                from,
                to,
                LaneEdge {
                    mode: lane.mode,
                    kind: lane.kind,
                    transit: TransitModel::from_transit(&lane.transit),
                    departures: Departures::from_schedule(lane.schedule.as_ref()),
                    cost_per_unit_usd: lane.cost_per_unit_usd,
                },
            );
        }
        let hops = hop_table(&graph);
        let outgoing: Vec<Vec<(NodeIndex, EdgeIndex)>> = graph
            .node_indices()
            .map(|node| {
                graph
                    .edges_directed(node, Direction::Outgoing)
                    .map(|edge| (edge.target(), edge.id()))
                    .collect()
            })
            .collect();
        let mut lane_timetable = vec![u8::MAX; graph.edge_count()];
        let timetables: Vec<Option<Vec<Timetable>>> = outgoing
            .iter()
            .map(|lanes| {
                let mut distinct: Vec<Timetable> = Vec::new();
                for &(_, lane) in lanes {
                    let departures = &graph[lane].departures;
                    let at = match distinct.iter().position(|d| d.departures() == departures) {
                        Some(at) => at,
                        None => {
                            distinct.push(Timetable::new(departures.clone()));
                            distinct.len() - 1
                        }
                    };
                    if at < MAX_MEMO_TIMETABLES {
                        lane_timetable[lane.index()] = at as u8;
                    }
                }
                (distinct.len() <= MAX_MEMO_TIMETABLES).then_some(distinct)
            })
            .collect();
        let mut incoming: Vec<Vec<(NodeIndex, u32, EdgeIndex)>> =
            vec![Vec::new(); graph.node_count()];
        for (origin, lanes) in outgoing.iter().enumerate() {
            for (position, &(target, lane)) in lanes.iter().enumerate() {
                incoming[target.index()].push((NodeIndex::new(origin), position as u32, lane));
            }
        }
        let hub = outgoing
            .iter()
            .enumerate()
            .map(|(node, lanes)| {
                let fan_out: usize = lanes.len()
                    + lanes
                        .iter()
                        .map(|(target, _)| outgoing[target.index()].len())
                        .sum::<usize>();
                fan_out >= HUB_FAN_OUT && timetables[node].is_some()
            })
            .collect();
        let mut pairs = rustc_hash::FxHashMap::default();
        let mut pair_lanes = Vec::with_capacity(graph.edge_count());
        let mut near: Vec<Vec<NodeIndex>> = vec![Vec::new(); graph.node_count()];
        for (origin, lanes) in outgoing.iter().enumerate() {
            let mut targets: Vec<NodeIndex> = Vec::new();
            for &(target, _) in lanes {
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
            for target in targets {
                let start = pair_lanes.len() as u32;
                for (position, &(to, lane)) in lanes.iter().enumerate() {
                    if to == target {
                        pair_lanes.push((position as u32, to, lane));
                    }
                }
                let end = pair_lanes.len() as u32;
                pairs.insert((origin as u32, target.index() as u32), (start, end));
                near[target.index()].push(NodeIndex::new(origin));
            }
        }
        Ok(Self {
            graph,
            index,
            hops,
            outgoing,
            pairs,
            pair_lanes,
            near,
            incoming,
            hub,
            explorations: ExplorationMemo::default(),
            lane_timetable,
            timetables,
            memo: RouteMemo::default(),
            finished: RouteMemo::default(),
        })
    }

    /// The node of a location id.
    pub fn node(&self, location_id: &str) -> Option<NodeIndex> {
        self.index.get(location_id).copied()
    }

    /// The site at a node.
    pub fn site(&self, node: NodeIndex) -> &Site {
        &self.graph[node]
    }

    /// The lane on an edge.
    pub fn lane(&self, lane: EdgeIndex) -> &LaneEdge {
        &self.graph[lane]
    }

    /// All sites, in node order.
    pub fn sites(&self) -> impl Iterator<Item = (NodeIndex, &Site)> {
        self.graph
            .node_indices()
            .map(move |node| (node, &self.graph[node]))
    }

    /// Builds every location's calendar table and the tables of its
    /// timetables around `anchor` (see [`SiteCalendar::prepare`] and
    /// [`SiteCalendar::prepare_timetable`]), so no query pays for one; the service does
    /// it on a background thread when it builds a router for a new network.
    /// Returns how many tables this call built.
    pub fn prepare_calendars(&self, anchor: Timestamp) -> usize {
        let timetables = self
            .graph
            .node_indices()
            .map(|node| {
                let calendar = &self.graph[node].calendar;
                self.timetables[node.index()]
                    .iter()
                    .flatten()
                    .filter(|timetable| calendar.prepare_timetable(anchor, timetable))
                    .count()
            })
            .sum::<usize>();
        timetables
            + self
                .graph
                .node_weights()
                .filter(|site| site.calendar.prepare(anchor))
                .count()
    }

    /// Number of locations.
    pub fn location_count(&self) -> usize {
        self.graph.node_count()
    }

    fn hops_between(&self, from: NodeIndex, to: NodeIndex) -> u8 {
        self.hops[to.index() * self.graph.node_count() + from.index()]
    }

    /// Fewest legs from every node to `to` (see `hops`), indexed by node.
    fn hops_to(&self, to: NodeIndex) -> &[u8] {
        let n = self.graph.node_count();
        &self.hops[to.index() * n..(to.index() + 1) * n]
    }

    /// [`Router::route`], remembered: the first query for an (origin,
    /// destination, quantile, dispatch signature) computes the route, later
    /// ones read it. The signature is the dispatch instant of a unit ready at
    /// `ready_at` on each distinct timetable of the origin's lanes; the search
    /// reads `ready_at` only through those instants (every later time is an
    /// arrival after one of them), so two ready times with one signature
    /// have one route, exactly: a cut-off between them changes the
    /// signature. An origin with more than [`MAX_MEMO_TIMETABLES`] timetables,
    /// and `from == to`, are computed every time.
    pub fn route_memoised(
        &self,
        from: NodeIndex,
        ready_at: Timestamp,
        to: NodeIndex,
        quantile: TransitQuantile,
    ) -> Option<Arc<Route>> {
        let Some(timetables) = self.timetables[from.index()]
            .as_ref()
            .filter(|_| from != to)
        else {
            return self.route(from, ready_at, to, quantile).map(Arc::new);
        };
        let calendar = &self.graph[from].calendar;
        let mut signature: DispatchSignature = [None; MAX_MEMO_TIMETABLES];
        for (slot, timetable) in signature.iter_mut().zip(timetables) {
            *slot = calendar.dispatch_on(ready_at, timetable);
        }
        let key = MemoKey {
            from: from.index() as u32,
            to: to.index() as u32,
            quantile_bits: quantile.level().to_bits(),
            signature,
        };
        if self.hub[from.index()] {
            if usize::from(self.hops_between(from, to)) > MAX_ROUTE_LEGS {
                return None;
            }
            // The finished route depends on what the exploration depends on
            // and the destination: the memo's key.
            if let Some(route) = self.finished.get(&key) {
                return route;
            }
            let exploration_key = ExplorationKey {
                from: key.from,
                quantile_bits: key.quantile_bits,
                signature,
            };
            let exploration = match self.explorations.get(&exploration_key) {
                Some(exploration) => exploration,
                None => {
                    let exploration = Arc::new(self.explore(from, ready_at, quantile));
                    self.explorations.put(exploration_key, exploration.clone());
                    exploration
                }
            };
            let route = self.finish(&exploration, to, quantile).map(Arc::new);
            self.finished.put(key, route.clone());
            return route;
        }
        if let Some(route) = self.memo.get(&key) {
            return route;
        }
        let route = self.route(from, ready_at, to, quantile).map(Arc::new);
        self.memo.put(key, route.clone());
        route
    }

    /// The first [`MAX_ROUTE_LEGS`]` - 1` rounds of [`Router::route`] from
    /// `from`, for every destination at once: no lane is left out for being
    /// too far from a destination, and no label is passed over for arriving
    /// after a destination's best. See [`Exploration`] for why
    /// [`Router::finish`] then gives exactly the route the search gives.
    fn explore(
        &self,
        from: NodeIndex,
        ready_at: Timestamp,
        quantile: TransitQuantile,
    ) -> Exploration {
        let n = self.graph.node_count();
        let mut labels = vec![Label {
            node: from,
            arrival: ready_at,
            legs: 0,
            parent: None,
        }];
        // Best label per node, as an index into `labels` (u32::MAX: none).
        let mut best = vec![u32::MAX; n];
        best[from.index()] = 0;
        let mut frontier = 0..1;
        for _ in 0..MAX_ROUTE_LEGS - 1 {
            let round_start = labels.len();
            for label_index in frontier.clone() {
                let label = labels[label_index];
                let mut dispatched = Dispatched::default();
                for &(target, lane_index) in &self.outgoing[label.node.index()] {
                    if target == from {
                        continue;
                    }
                    let Some((departs_at, arrival)) = self.leg(
                        label.node,
                        label.arrival,
                        lane_index,
                        quantile,
                        &mut dispatched,
                    ) else {
                        continue;
                    };
                    let known = best[target.index()];
                    if known != u32::MAX && labels[known as usize].arrival <= arrival {
                        continue;
                    }
                    best[target.index()] = labels.len() as u32;
                    labels.push(Label {
                        node: target,
                        arrival,
                        legs: label.legs + 1,
                        parent: Some((label_index, lane_index, departs_at)),
                    });
                }
            }
            frontier = round_start..labels.len();
        }
        // Each node's labels as a list in creation order: the first at the
        // node, then each label's next at the same node.
        let mut first = vec![u32::MAX; n];
        let mut last = vec![u32::MAX; n];
        let mut next = vec![u32::MAX; labels.len()];
        for (index, label) in labels.iter().enumerate() {
            let node = label.node.index();
            match last[node] {
                u32::MAX => first[node] = index as u32,
                previous => next[previous as usize] = index as u32,
            }
            last[node] = index as u32;
        }
        Exploration {
            labels,
            first,
            next,
        }
    }

    /// The route to `to` from an [`Exploration`]: the last round of
    /// [`Router::route`], over the lanes into `to` only.
    fn finish(
        &self,
        exploration: &Exploration,
        to: NodeIndex,
        quantile: TransitQuantile,
    ) -> Option<Route> {
        let labels = &exploration.labels;
        // (label, position of the lane in the label's location's list, lane):
        // sorted, the order in which the search meets these lanes.
        let mut lanes: Vec<(u32, u32, EdgeIndex)> = Vec::new();
        for &(origin, position, lane) in &self.incoming[to.index()] {
            if origin == to {
                continue;
            }
            let mut label_index = exploration.first[origin.index()];
            while label_index != u32::MAX {
                lanes.push((label_index, position, lane));
                label_index = exploration.next[label_index as usize];
            }
        }
        lanes.sort_unstable_by_key(|&(label_index, position, _)| (label_index, position));
        let mut best: Option<(usize, EdgeIndex, Timestamp, Timestamp)> = None;
        for (label_index, _, lane_index) in lanes {
            let label = labels[label_index as usize];
            if best.is_some_and(|(_, _, _, arrival)| label.arrival >= arrival) {
                continue;
            }
            let Some((departs_at, arrival)) = self.leg(
                label.node,
                label.arrival,
                lane_index,
                quantile,
                &mut Dispatched::default(),
            ) else {
                continue;
            };
            if best.is_some_and(|(_, _, _, known)| known <= arrival) {
                continue;
            }
            best = Some((label_index as usize, lane_index, departs_at, arrival));
        }
        let (parent, lane, departs_at, arrival) = best?;
        let mut route = self.unwind(labels, parent);
        route.legs.push(PlannedLeg {
            lane,
            from: labels[parent].node,
            to,
            departs_at,
            arrives_at: arrival,
        });
        Some(route)
    }

    /// The earliest arrival at `to` of a unit on hand at `from` at `ready_at`,
    /// over routes of at most [`MAX_ROUTE_LEGS`] legs, with each leg's transit at
    /// quantile `quantile`. Handling applies at the source and at every
    /// intermediate location. An empty route when `from == to`; `None` when no
    /// route exists or a calendar has no departure within its search bound.
    ///
    /// Labels are relaxed round by round in a fixed order (each round's
    /// labels in the order they were made, each location's lanes in
    /// `outgoing` order), and only a strictly earlier arrival replaces a
    /// node's best, so among routes of equal arrival the first found is
    /// kept. Two things make a round cheap without changing that order: a
    /// label with one leg or none left takes only the lanes to locations one
    /// leg or none from `to` ([`Router::lanes_toward`]), and a location's
    /// dispatch instant is computed once per departure timetable, not once
    /// per lane.
    pub fn route(
        &self,
        from: NodeIndex,
        ready_at: Timestamp,
        to: NodeIndex,
        quantile: TransitQuantile,
    ) -> Option<Route> {
        if from == to {
            return Some(Route::default());
        }
        if usize::from(self.hops_between(from, to)) > MAX_ROUTE_LEGS {
            return None;
        }
        let mut labels = vec![Label {
            node: from,
            arrival: ready_at,
            legs: 0,
            parent: None,
        }];
        // Best arrival per node so far, as an index into `labels`; tiny, so a Vec.
        let mut best: Vec<(NodeIndex, usize)> = vec![(from, 0)];
        // The best label at `to`, kept apart: every label reads it.
        let mut best_at_to: Option<usize> = None;
        let hops_to = self.hops_to(to);
        let mut frontier = vec![0usize];
        let mut lanes: Vec<(u32, NodeIndex, EdgeIndex)> = Vec::new();
        for _ in 0..MAX_ROUTE_LEGS {
            let mut next = Vec::new();
            for &label_index in &frontier {
                let label = labels[label_index];
                if label.node == to {
                    continue;
                }
                // Every leg departs at or after it is entered, so a label no
                // earlier than the best arrival at `to` cannot improve it
                // (only a strictly earlier arrival replaces the best).
                if best_at_to.is_some_and(|at| label.arrival >= labels[at].arrival) {
                    continue;
                }
                let remaining = MAX_ROUTE_LEGS - label.legs - 1;
                self.lanes_toward(label.node, to, remaining, hops_to, &mut lanes);
                let mut dispatched = Dispatched::default();
                for &(_, target, lane_index) in &lanes {
                    if target == from {
                        continue;
                    }
                    let Some((departs_at, arrival)) = self.leg(
                        label.node,
                        label.arrival,
                        lane_index,
                        quantile,
                        &mut dispatched,
                    ) else {
                        continue;
                    };
                    let slot = if target == to {
                        None
                    } else {
                        best.iter().position(|(node, _)| *node == target)
                    };
                    let known = if target == to {
                        best_at_to
                    } else {
                        slot.map(|slot| best[slot].1)
                    };
                    if known.is_some_and(|at| labels[at].arrival <= arrival) {
                        continue;
                    }
                    labels.push(Label {
                        node: target,
                        arrival,
                        legs: label.legs + 1,
                        parent: Some((label_index, lane_index, departs_at)),
                    });
                    let new_index = labels.len() - 1;
                    if target == to {
                        best_at_to = Some(new_index);
                    } else if let Some(slot) = slot {
                        best[slot].1 = new_index;
                    } else {
                        best.push((target, new_index));
                    }
                    next.push(new_index);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Some(self.unwind(&labels, best_at_to?))
    }

    /// One leg over `lane_index` for a unit at `node` at `at`: when it
    /// departs (handling, then the lane's next departure) and when it
    /// arrives at `quantile`; `None` when it never departs or the arrival
    /// is out of range. `dispatched` holds the dispatch instants already
    /// computed for this unit, one per timetable of `node`, so lanes that
    /// share a timetable compute it once.
    fn leg(
        &self,
        node: NodeIndex,
        at: Timestamp,
        lane_index: EdgeIndex,
        quantile: TransitQuantile,
        dispatched: &mut Dispatched,
    ) -> Option<(Timestamp, Timestamp)> {
        let lane = &self.graph[lane_index];
        let calendar = &self.graph[node].calendar;
        let departs_at = match dispatched
            .0
            .get_mut(usize::from(self.lane_timetable[lane_index.index()]))
        {
            Some(slot) => *slot.get_or_insert_with(|| calendar.dispatch(at, &lane.departures)),
            None => calendar.dispatch(at, &lane.departures),
        }?;
        let transit = hours_to_duration(lane.transit.quantile_hours(quantile));
        let arrival = departs_at.checked_add(transit).ok()?;
        Some((departs_at, arrival))
    }

    /// The lanes out of `node` whose target is at most `remaining` legs from
    /// `to`, in `outgoing` order, into `lanes` (cleared first). With one leg
    /// or none left the targets can only be `to` and the origins of its
    /// incoming lanes, so those few pairs are looked up instead of scanning
    /// every lane of `node` (a regional warehouse has one to every other
    /// regional and every store it serves).
    fn lanes_toward(
        &self,
        node: NodeIndex,
        to: NodeIndex,
        remaining: usize,
        hops_to: &[u8],
        lanes: &mut Vec<(u32, NodeIndex, EdgeIndex)>,
    ) {
        lanes.clear();
        let outgoing = &self.outgoing[node.index()];
        let near = &self.near[to.index()];
        let pair = |target: NodeIndex| {
            self.pairs
                .get(&(node.index() as u32, target.index() as u32))
                .map_or(&[][..], |&(start, end)| {
                    &self.pair_lanes[start as usize..end as usize]
                })
        };
        if remaining == 0 {
            lanes.extend_from_slice(pair(to));
        } else if remaining == 1 && near.len() < outgoing.len() {
            lanes.extend_from_slice(pair(to));
            let mut groups = usize::from(!lanes.is_empty());
            for &target in near.iter().filter(|&&target| target != to) {
                let found = pair(target);
                if !found.is_empty() {
                    lanes.extend_from_slice(found);
                    groups += 1;
                }
            }
            if groups > 1 {
                lanes.sort_unstable_by_key(|&(position, _, _)| position);
            }
        } else {
            lanes.extend(
                outgoing
                    .iter()
                    .enumerate()
                    .filter(|(_, (target, _))| usize::from(hops_to[target.index()]) <= remaining)
                    .map(|(position, &(target, lane))| (position as u32, target, lane)),
            );
        }
    }

    /// [`Router::route`] as it was first written (every lane of a location
    /// scanned, one dispatch per lane): the reference the faster search is
    /// checked against.
    ///
    /// The earliest arrival at `to` of a unit on hand at `from` at `ready_at`,
    /// over routes of at most [`MAX_ROUTE_LEGS`] legs, with each leg's transit at
    /// quantile `quantile`. Handling applies at the source and at every
    /// intermediate location. An empty route when `from == to`; `None` when no
    /// route exists or a calendar has no departure within its search bound.
    #[cfg(test)]
    fn route_by_scan(
        &self,
        from: NodeIndex,
        ready_at: Timestamp,
        to: NodeIndex,
        quantile: TransitQuantile,
    ) -> Option<Route> {
        if from == to {
            return Some(Route::default());
        }
        if usize::from(self.hops_between(from, to)) > MAX_ROUTE_LEGS {
            return None;
        }
        let mut labels = vec![Label {
            node: from,
            arrival: ready_at,
            legs: 0,
            parent: None,
        }];
        // Best arrival per node so far, as an index into `labels`; tiny, so a Vec.
        let mut best: Vec<(NodeIndex, usize)> = vec![(from, 0)];
        let hops_to = self.hops_to(to);
        let mut frontier = vec![0usize];
        for _ in 0..MAX_ROUTE_LEGS {
            let mut next = Vec::new();
            for &label_index in &frontier {
                let label = labels[label_index];
                if label.node == to {
                    continue;
                }
                // Every leg departs at or after it is entered, so a label no
                // earlier than the best arrival at `to` cannot improve it
                // (only a strictly earlier arrival replaces the best).
                let arrived = best
                    .iter()
                    .find(|(node, _)| *node == to)
                    .map(|(_, index)| labels[*index].arrival);
                if arrived.is_some_and(|best_arrival| label.arrival >= best_arrival) {
                    continue;
                }
                let remaining = MAX_ROUTE_LEGS - label.legs - 1;
                let calendar = &self.graph[label.node].calendar;
                for &(target, lane_index) in &self.outgoing[label.node.index()] {
                    if target == from || usize::from(hops_to[target.index()]) > remaining {
                        continue;
                    }
                    let lane = &self.graph[lane_index];
                    let Some(departs_at) = calendar.dispatch(label.arrival, &lane.departures)
                    else {
                        continue;
                    };
                    let transit = hours_to_duration(lane.transit.quantile_hours(quantile));
                    let Ok(arrival) = departs_at.checked_add(transit) else {
                        continue;
                    };
                    let slot = best.iter().position(|(node, _)| *node == target);
                    if let Some(slot) = slot
                        && labels[best[slot].1].arrival <= arrival
                    {
                        continue;
                    }
                    labels.push(Label {
                        node: target,
                        arrival,
                        legs: label.legs + 1,
                        parent: Some((label_index, lane_index, departs_at)),
                    });
                    let new_index = labels.len() - 1;
                    match slot {
                        Some(slot) => best[slot].1 = new_index,
                        None => best.push((target, new_index)),
                    }
                    next.push(new_index);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let (_, end) = best.iter().find(|(node, _)| *node == to)?;
        Some(self.unwind(&labels, *end))
    }

    fn unwind(&self, labels: &[Label], end: usize) -> Route {
        let mut legs = Vec::with_capacity(labels[end].legs);
        let mut current = end;
        while let Some((parent, lane, departs_at)) = labels[current].parent {
            legs.push(PlannedLeg {
                lane,
                from: labels[parent].node,
                to: labels[current].node,
                departs_at,
                arrives_at: labels[current].arrival,
            });
            current = parent;
        }
        legs.reverse();
        Route { legs }
    }

    /// Probability that a unit following `route` is available at its last
    /// location by `deadline` (opening hours there respected), with the whole
    /// transit distribution of every leg.
    ///
    /// The first departure is known. For one leg the answer is exact:
    /// `F(latest - departure)`, where `latest` is the last open instant at or
    /// before `deadline`. For more legs the arrival at an intermediate location
    /// only matters through the departure slot it catches there (the next
    /// cut-off or scheduled departure after handling), so the probability is
    /// summed exactly over those discrete slots:
    /// `P = sum_j P(leg catches slot j) * P(rest | departs at slot j)`,
    /// stopping at the first slot after `latest` (a later departure cannot make
    /// it) or after [`MAX_PROBABILITY_SLOTS`] slots (which can only lower `P`).
    /// An empty route is certain when its `available_at` is by the deadline;
    /// callers handle that case.
    pub fn probability_by(
        &self,
        route: &Route,
        destination: NodeIndex,
        deadline: Timestamp,
    ) -> f64 {
        let Some(first) = route.legs.first() else {
            return 1.0;
        };
        let Some(latest) = self.graph[destination]
            .calendar
            .latest_open_at_or_before(deadline)
        else {
            return 0.0;
        };
        self.probability_from(&route.legs, first.departs_at, latest)
    }

    fn probability_from(
        &self,
        legs: &[PlannedLeg],
        departs_at: Timestamp,
        latest: Timestamp,
    ) -> f64 {
        let Some((leg, rest)) = legs.split_first() else {
            return 1.0;
        };
        if departs_at > latest {
            return 0.0;
        }
        let transit = &self.graph[leg.lane].transit;
        let hours_until = |at: Timestamp| duration_to_hours(at.duration_since(departs_at));
        let Some(next_leg) = rest.first() else {
            return transit.cdf(hours_until(latest));
        };
        let next_site = &self.graph[leg.to].calendar;
        let handling = next_site.handling();
        let departures = &self.graph[next_leg.lane].departures;
        // Slot j is caught when arrival + handling <= slot_j (and missed slot j-1).
        let mut probability = 0.0;
        let mut caught_before = 0.0;
        let Ok(earliest) = departs_at.checked_add(handling) else {
            return 0.0;
        };
        let mut slot = next_site.next_departure(earliest, departures);
        for _ in 0..MAX_PROBABILITY_SLOTS {
            let Some(slot_at) = slot else { break };
            if slot_at > latest || caught_before >= 1.0 - NEGLIGIBLE_PROBABILITY {
                break;
            }
            let Ok(latest_arrival) = slot_at.checked_sub(handling) else {
                break;
            };
            let caught = transit.cdf(hours_until(latest_arrival));
            let mass = caught - caught_before;
            if mass > 0.0 {
                probability += mass * self.probability_from(rest, slot_at, latest);
            }
            caught_before = caught;
            slot = slot_at
                .checked_add(SignedDuration::from_nanos(1))
                .ok()
                .and_then(|after| next_site.next_departure(after, departures));
        }
        probability.clamp(0.0, 1.0)
    }
}

/// Fewest legs between every pair of locations, by a breadth-first search on the
/// reversed graph from each destination, stopping past `MAX_ROUTE_LEGS`.
fn hop_table(graph: &DiGraph<Site, LaneEdge>) -> Vec<u8> {
    let n = graph.node_count();
    let mut hops = vec![UNREACHABLE; n * n];
    let mut queue = VecDeque::new();
    for to in graph.node_indices() {
        let row = to.index() * n;
        hops[row + to.index()] = 0;
        queue.clear();
        queue.push_back((to, 0u8));
        while let Some((node, distance)) = queue.pop_front() {
            if usize::from(distance) >= MAX_ROUTE_LEGS {
                continue;
            }
            for previous in graph.neighbors_directed(node, Direction::Incoming) {
                let cell = &mut hops[row + previous.index()];
                if *cell == UNREACHABLE {
                    *cell = distance + 1;
                    queue.push_back((previous, distance + 1));
                }
            }
        }
    }
    hops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::network::{BusinessCalendar, Lane, Location, TransitTime};
    use jiff::civil::Time;

    /// A chain A -> B -> C -> D -> E of 1-hour lanes in UTC, every day a working
    /// day, open 00:00-23:59, cut-off 12:00, no handling.
    fn chain() -> Network {
        let mut network = Network::default();
        let ids = ["A", "B", "C", "D", "E"];
        for id in ids {
            let mut calendar = BusinessCalendar::weekdays_8_to_17();
            calendar.working_days = crate::domain::network::WeekdayName::monday_to_friday();
            calendar
                .working_days
                .insert(crate::domain::network::WeekdayName::Saturday);
            calendar
                .working_days
                .insert(crate::domain::network::WeekdayName::Sunday);
            calendar.opens_local = Time::constant(0, 0, 0, 0);
            calendar.closes_local = Time::constant(23, 59, 0, 0);
            network.locations.insert(
                id.into(),
                Location {
                    id: id.into(),
                    name: id.into(),
                    kind: LocationKind::Store,
                    latitude_deg: 0.0,
                    longitude_deg: 0.0,
                    time_zone: "UTC".into(),
                    calendar,
                    order_cutoff_local: Time::constant(12, 0, 0, 0),
                    handling_minutes: 0,
                    replenishment_source: None,
                    country_code: "NL".into(),
                },
            );
        }
        for pair in ids.windows(2) {
            let lane = Lane {
                from: pair[0].into(),
                to: pair[1].into(),
                mode: TransportMode::Road,
                kind: LaneKind::Replenishment,
                transit: TransitTime::Fixed { transit_hours: 1.0 },
                schedule: None,
                cost_per_unit_usd: 1.0,
            };
            network.lanes.insert(lane.key(), lane);
        }
        network
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The memo returns exactly what a fresh search does, at every ready time
    /// across cut-offs, scheduled departures and handling, for every pair,
    /// and it is used: far fewer searches than queries.
    #[test]
    fn memoised_routes_equal_fresh_searches_across_cut_offs() {
        let mut network = chain();
        // A second timetable at A: a scheduled air lane to C twice a day on
        // three weekdays, and handling at B, so ready times inside one
        // dispatch window and across one are both swept.
        let air = Lane {
            from: "A".into(),
            to: "C".into(),
            mode: TransportMode::Air,
            kind: LaneKind::Emergency,
            transit: TransitTime::Fixed { transit_hours: 0.5 },
            schedule: Some(crate::domain::network::DepartureSchedule {
                days: [
                    crate::domain::network::WeekdayName::Monday,
                    crate::domain::network::WeekdayName::Wednesday,
                    crate::domain::network::WeekdayName::Friday,
                ]
                .into_iter()
                .collect(),
                departures_local: vec![Time::constant(9, 30, 0, 0), Time::constant(15, 0, 0, 0)],
            }),
            cost_per_unit_usd: 5.0,
        };
        network.lanes.insert(air.key(), air);
        network.locations.get_mut("B").unwrap().handling_minutes = 90;
        let router = Router::new(&network).unwrap();
        assert_eq!(
            router.timetables[router.node("A").unwrap().index()]
                .as_ref()
                .map(Vec::len),
            Some(2)
        );
        let q = TransitQuantile::new(0.9).unwrap();
        let nodes: Vec<NodeIndex> = router.sites().map(|(node, _)| node).collect();
        let start = ts("2025-07-07T00:00:00Z");
        let mut queries = 0;
        for step in 0..(8 * 24 * 60 / 7) {
            let ready = start + SignedDuration::from_mins(7 * step);
            for &from in &nodes {
                for &to in &nodes {
                    let fresh = router.route(from, ready, to, q);
                    let memoised = router.route_memoised(from, ready, to, q);
                    assert_eq!(
                        memoised.as_deref(),
                        fresh.as_ref(),
                        "{from:?} -> {to:?} at {ready}"
                    );
                    queries += 1;
                }
            }
        }
        let remembered = router.memo.entries();
        assert!(
            remembered > 0 && remembered * 20 < queries,
            "{remembered} routes for {queries} queries"
        );
    }

    /// A random network: `n` locations in three time zones, dense lanes
    /// (parallel ones of other modes and kinds too), transit times on a
    /// whole-hour grid so routes of equal arrival are common, and some lanes
    /// on schedules, up to six timetables at a location.
    fn random_network(rng: &mut rand::rngs::StdRng, n: usize) -> Network {
        use crate::domain::network::{DepartureSchedule, WeekdayName};
        use rand::RngExt;
        let mut network = Network::default();
        let zones = ["UTC", "Europe/Amsterdam", "America/Chicago"];
        let ids: Vec<String> = (0..n).map(|i| format!("L{i:02}")).collect();
        for (i, id) in ids.iter().enumerate() {
            network.locations.insert(
                id.clone(),
                Location {
                    id: id.clone(),
                    name: id.clone(),
                    kind: LocationKind::Store,
                    latitude_deg: 0.0,
                    longitude_deg: 0.0,
                    time_zone: zones[i % zones.len()].into(),
                    calendar: BusinessCalendar::weekdays_8_to_17(),
                    order_cutoff_local: Time::constant(rng.random_range(12..18), 0, 0, 0),
                    handling_minutes: rng.random_range(0..3) * 30,
                    replenishment_source: None,
                    country_code: "NL".into(),
                },
            );
        }
        let modes = [
            TransportMode::Road,
            TransportMode::Air,
            TransportMode::Courier,
        ];
        let kinds = [
            LaneKind::Replenishment,
            LaneKind::Lateral,
            LaneKind::Emergency,
        ];
        for from in &ids {
            // A few hubs have lanes to most locations, the rest to a handful.
            let degree = if rng.random_bool(0.2) { n } else { 4 };
            for _ in 0..degree {
                let to = &ids[rng.random_range(0..n)];
                if to == from {
                    continue;
                }
                let schedule = rng.random_bool(0.3).then(|| DepartureSchedule {
                    days: [WeekdayName::Monday, WeekdayName::Thursday]
                        .into_iter()
                        .filter(|_| rng.random_bool(0.7))
                        .collect(),
                    departures_local: vec![Time::constant(rng.random_range(6..20), 0, 0, 0)],
                });
                let lane = Lane {
                    from: from.clone(),
                    to: to.clone(),
                    mode: modes[rng.random_range(0..modes.len())],
                    kind: kinds[rng.random_range(0..kinds.len())],
                    transit: TransitTime::Fixed {
                        transit_hours: f64::from(rng.random_range(1..40)),
                    },
                    schedule,
                    cost_per_unit_usd: 1.0,
                };
                network.lanes.insert(lane.key(), lane);
            }
        }
        network
    }

    #[test]
    fn the_search_finds_exactly_the_routes_of_the_plain_scan() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(31);
        let q = TransitQuantile::new(0.9).unwrap();
        let (mut compared, mut found, mut looked_up, mut explored) = (0, 0, 0, 0);
        // Hub routes asked for, and those the finished-route memo answered.
        let (mut hub_routes, mut remembered) = (0, 0);
        for _ in 0..12 {
            let n = rng.random_range(8..40);
            let network = random_network(&mut rng, n);
            let router = Router::new(&network).unwrap();
            // The same network with every location whose routes can be
            // remembered searched through an exploration.
            let mut hubs = Router::new(&network).unwrap();
            hubs.hub = hubs.timetables.iter().map(Option::is_some).collect();
            explored += hubs.hub.iter().filter(|h| **h).count();
            let nodes: Vec<NodeIndex> = router.sites().map(|(node, _)| node).collect();
            let mut lanes = Vec::new();
            for _ in 0..40 {
                let ready = Timestamp::from_second(
                    ts("2025-03-24T00:00:00Z").as_second() + rng.random_range(0..14 * 86_400),
                )
                .unwrap();
                for &from in &nodes {
                    for &to in &nodes {
                        let fast = router.route(from, ready, to, q);
                        let plain = router.route_by_scan(from, ready, to, q);
                        assert_eq!(fast, plain, "{from:?} -> {to:?} at {ready}");
                        let before = hubs.finished.entries();
                        assert_eq!(
                            hubs.route_memoised(from, ready, to, q).as_deref(),
                            plain.as_ref(),
                            "explored {from:?} -> {to:?} at {ready}"
                        );
                        if hubs.hub[from.index()]
                            && from != to
                            && usize::from(hubs.hops_between(from, to)) <= MAX_ROUTE_LEGS
                        {
                            hub_routes += 1;
                            remembered += usize::from(hubs.finished.entries() == before);
                        }
                        compared += 1;
                        found += usize::from(fast.is_some_and(|r| !r.legs.is_empty()));
                    }
                }
            }
            // The pair lookup is taken, and returns what the scan would.
            for &node in &nodes {
                for &to in &nodes {
                    for remaining in 0..MAX_ROUTE_LEGS {
                        router.lanes_toward(node, to, remaining, router.hops_to(to), &mut lanes);
                        let scanned: Vec<(u32, NodeIndex, EdgeIndex)> = router.outgoing
                            [node.index()]
                        .iter()
                        .enumerate()
                        .filter(|(_, (target, _))| {
                            usize::from(router.hops_to(to)[target.index()]) <= remaining
                        })
                        .map(|(position, &(target, lane))| (position as u32, target, lane))
                        .collect();
                        assert_eq!(lanes, scanned, "{node:?} -> {to:?}, {remaining} left");
                        looked_up += usize::from(
                            remaining == 1
                                && router.near[to.index()].len()
                                    < router.outgoing[node.index()].len(),
                        );
                    }
                }
            }
        }
        assert!(
            found * 2 > compared,
            "{found} routes in {compared} searches"
        );
        assert!(looked_up > 100, "the pair lookup ran {looked_up} times");
        // Answers from the finished-route memo were among those compared.
        assert!(
            remembered * 4 > hub_routes && remembered < hub_routes,
            "{remembered} of {hub_routes} hub routes came from the memo"
        );
        assert!(
            explored > 100,
            "{explored} locations searched by exploration"
        );
    }

    #[test]
    fn a_full_memo_shard_forgets_its_oldest_route_first() {
        let memo = RouteMemo::default();
        let key = |to: u32| MemoKey {
            from: 0,
            to,
            quantile_bits: 0,
            signature: [None; MAX_MEMO_TIMETABLES],
        };
        let watched = memo.shard(&key(0));
        // The first two keys of the watched shard, then keys until it has
        // seen one more than it holds.
        let (mut seen, mut second, mut to) = (0, None, 0);
        while seen <= MEMO_SHARD_ENTRIES {
            if std::ptr::eq(memo.shard(&key(to)), watched) {
                seen += 1;
                if seen == 2 {
                    second = Some(key(to));
                }
            }
            memo.put(key(to), None);
            to += 1;
        }
        assert!(memo.get(&key(0)).is_none(), "the oldest is forgotten");
        let second = second.expect("the shard saw two keys");
        assert!(memo.get(&second).is_some(), "the second oldest is kept");
        assert!(memo.get(&key(to - 1)).is_some(), "the newest is kept");
        for shard in &memo.shards {
            let shard = shard.lock().unwrap();
            assert!(shard.routes.len() <= MEMO_SHARD_ENTRIES);
            assert_eq!(shard.routes.len(), shard.order.len());
        }
        // Putting a known key again neither grows nor reorders the shard.
        let before = memo.entries();
        memo.put(second, None);
        assert_eq!(memo.entries(), before);
    }

    #[test]
    fn an_explored_label_takes_at_most_80_bytes() {
        // The bound EXPLORATION_SHARD_LABELS's memory estimate rests on:
        // the label and its link to the next label at the same location.
        let per_label = std::mem::size_of::<Label>() + std::mem::size_of::<u32>();
        assert!(per_label <= 80, "{per_label} bytes");
    }

    #[test]
    fn routes_longer_than_the_leg_limit_are_not_taken() {
        let router = Router::new(&chain()).unwrap();
        let q = TransitQuantile::new(0.9).unwrap();
        let node = |id: &str| router.node(id).unwrap();
        let ready = ts("2025-07-09T08:00:00Z");
        // A -> D is three legs: one per day at the 12:00 cut-off, 1 h each.
        let route = router.route(node("A"), ready, node("D"), q).unwrap();
        assert_eq!(route.legs.len(), 3);
        assert_eq!(route.arrival(ready), ts("2025-07-11T13:00:00Z"));
        // A -> E needs four.
        assert_eq!(router.route(node("A"), ready, node("E"), q), None);
        // Nothing goes backwards.
        assert_eq!(router.route(node("D"), ready, node("A"), q), None);
        // Same place: no legs.
        assert_eq!(
            router.route(node("B"), ready, node("B"), q),
            Some(Route::default())
        );
    }

    #[test]
    fn fixed_transit_probability_is_zero_or_one() {
        let router = Router::new(&chain()).unwrap();
        let q = TransitQuantile::new(0.9).unwrap();
        let (a, c) = (router.node("A").unwrap(), router.node("C").unwrap());
        let route = router.route(a, ts("2025-07-09T08:00:00Z"), c, q).unwrap();
        let arrival = route.arrival(ts("2025-07-09T08:00:00Z"));
        assert_eq!(arrival, ts("2025-07-10T13:00:00Z"));
        assert_eq!(router.probability_by(&route, c, arrival), 1.0);
        let just_before = arrival.checked_sub(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(router.probability_by(&route, c, just_before), 0.0);
    }
}
