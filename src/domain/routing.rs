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

use super::calendar::{Departures, SiteCalendar};
use super::error::DomainError;
use super::network::{LaneKind, LocationId, LocationKind, Network, TransportMode};
use super::transit::{TransitModel, TransitQuantile, duration_to_hours, hours_to_duration};
use jiff::{SignedDuration, Timestamp};
use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::{HashMap, VecDeque};
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

/// Routes remembered per shard of the route memo; a full shard is emptied
/// (a bound on memory: about 200 bytes an entry with its route, so about
/// 13 MB for the 65,536 entries of all shards).
const MEMO_SHARD_ENTRIES: usize = 1 << 12;

/// Shards of the route memo (concurrent requests rarely share a lock).
const MEMO_SHARDS: usize = 16;

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
    index: HashMap<LocationId, NodeIndex>,
    /// `hops[to * n + from]`: fewest legs from `from` to `to`, capped at
    /// `MAX_ROUTE_LEGS + 1`; `UNREACHABLE` when farther or never. Stored by
    /// destination, so the row one query reads is contiguous.
    hops: Vec<u8>,
    /// Outgoing lanes per node as (target, lane), in petgraph's iteration
    /// order (which decides between routes of equal arrival), packed so a
    /// search reads them without following petgraph's edge lists.
    outgoing: Vec<Vec<(NodeIndex, EdgeIndex)>>,
    /// Per node, the distinct departure timetables of its outgoing lanes
    /// (`None` past [`MAX_MEMO_TIMETABLES`]): the instants a unit ready there
    /// leaves on them are all a route from it depends on.
    timetables: Vec<Option<Vec<Departures>>>,
    /// Routes already computed for this network version.
    memo: RouteMemo,
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
    shards: [Mutex<rustc_hash::FxHashMap<MemoKey, Option<Arc<Route>>>>; MEMO_SHARDS],
    hasher: rustc_hash::FxBuildHasher,
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
    fn shard(&self, key: &MemoKey) -> &Mutex<rustc_hash::FxHashMap<MemoKey, Option<Arc<Route>>>> {
        // Middle bits: the shard's own table reads the low and the top ones.
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 40) as usize % MEMO_SHARDS]
    }

    fn get(&self, key: &MemoKey) -> Option<Option<Arc<Route>>> {
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(key).cloned()
    }

    fn put(&self, key: MemoKey, route: Option<Arc<Route>>) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MEMO_SHARD_ENTRIES {
            shard.clear();
        }
        shard.insert(key, route);
    }
}

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
        let mut index = HashMap::with_capacity(network.locations.len());
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
        let timetables = outgoing
            .iter()
            .map(|lanes| {
                let mut distinct: Vec<Departures> = Vec::new();
                for &(_, lane) in lanes {
                    let departures = &graph[lane].departures;
                    if !distinct.contains(departures) {
                        distinct.push(departures.clone());
                    }
                }
                (distinct.len() <= MAX_MEMO_TIMETABLES).then_some(distinct)
            })
            .collect();
        Ok(Self {
            graph,
            index,
            hops,
            outgoing,
            timetables,
            memo: RouteMemo::default(),
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
        for (slot, departures) in signature.iter_mut().zip(timetables) {
            *slot = calendar.dispatch(ready_at, departures);
        }
        let key = MemoKey {
            from: from.index() as u32,
            to: to.index() as u32,
            quantile_bits: quantile.level().to_bits(),
            signature,
        };
        if let Some(route) = self.memo.get(&key) {
            return route;
        }
        let route = self.route(from, ready_at, to, quantile).map(Arc::new);
        self.memo.put(key, route.clone());
        route
    }

    /// The earliest arrival at `to` of a unit on hand at `from` at `ready_at`,
    /// over routes of at most [`MAX_ROUTE_LEGS`] legs, with each leg's transit at
    /// quantile `quantile`. Handling applies at the source and at every
    /// intermediate location. An empty route when `from == to`; `None` when no
    /// route exists or a calendar has no departure within its search bound.
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
        let remembered: usize = router
            .memo
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().len())
            .sum();
        assert!(
            remembered > 0 && remembered * 20 < queries,
            "{remembered} routes for {queries} queries"
        );
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
