//! The discrete-event engine: one part's network through one replication.
//!
//! Parts are independent given the network, so each (replication, part) is its own event
//! loop over a binary heap. Time jumps from event to event; a slow mover costs nothing while
//! nothing happens. Stock is integer; every unit that leaves a shelf is matched by an
//! order, a repair or a carcass, so the books balance.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use rand::rngs::SmallRng;

use crate::compile::{Network, PartPlan, Process};
use crate::config::EVENTS_BETWEEN_CANCEL_CHECKS;
use crate::demand::{FLAT, logarithmic, next_poisson};
use crate::error::SimError;
use crate::model::{Policy, RepairSpec};
use crate::random::{Purpose, duration, stream, uniform};

/// Per (replication, part-location) totals over the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Tally {
    pub(crate) demand_units: f64,
    pub(crate) first_time_fills: f64,
    pub(crate) wait_days_total: f64,
    pub(crate) backorder_unit_days: f64,
    pub(crate) downtime_hours: f64,
    pub(crate) downtime_cost: f64,
    pub(crate) lateral_shipments: f64,
    pub(crate) lateral_cost: f64,
    pub(crate) emergency_shipments: f64,
    pub(crate) emergency_cost: f64,
    pub(crate) lead_time_demand_units: f64,
}

impl Tally {
    /// Adds `other`; backorders only when they are customers' (not a warehouse's).
    pub(crate) fn absorb(&mut self, other: &Tally, with_backorders: bool) {
        self.demand_units += other.demand_units;
        self.first_time_fills += other.first_time_fills;
        self.wait_days_total += other.wait_days_total;
        if with_backorders {
            self.backorder_unit_days += other.backorder_unit_days;
        }
        self.downtime_hours += other.downtime_hours;
        self.downtime_cost += other.downtime_cost;
        self.lateral_shipments += other.lateral_shipments;
        self.lateral_cost += other.lateral_cost;
        self.emergency_shipments += other.emergency_shipments;
        self.emergency_cost += other.emergency_cost;
        self.lead_time_demand_units += other.lead_time_demand_units;
    }
}

/// The measured window and how waits are bucketed.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) seed: u64,
    pub(crate) warm_up: f64,
    pub(crate) horizon: f64,
    pub(crate) weeks: usize,
    pub(crate) thresholds: Vec<f64>,
}

/// Waits within this many days of a threshold count as at most the threshold, so a wait of
/// exactly a deterministic lead time is not lost to rounding.
const WAIT_TOLERANCE_DAYS: f64 = 1e-9;

impl Window {
    fn overlap(&self, from: f64, to: f64) -> f64 {
        (to.min(self.horizon) - from.max(self.warm_up)).max(0.0)
    }

    fn contains(&self, t: f64) -> bool {
        t >= self.warm_up && t < self.horizon
    }
}

/// Where one part's run writes, indexed by location (dense scratch, reset per part).
pub(crate) struct Sink<'a> {
    pub(crate) tallies: &'a mut [Tally],
    /// location x thresholds: count of waits whose first threshold at or above is this one.
    pub(crate) wait_buckets: &'a mut [f64],
    /// weeks: downtime hours of this part.
    pub(crate) part_week_hours: &'a mut [f64],
    /// weeks: downtime cost of this part.
    pub(crate) part_week_cost: &'a mut [f64],
    /// location x weeks: downtime hours of all parts so far in this replication.
    pub(crate) location_week_hours: &'a mut [f64],
    /// location x weeks: downtime cost of all parts so far in this replication.
    pub(crate) location_week_cost: &'a mut [f64],
}

#[derive(Debug, Clone, Copy)]
enum EventKind {
    Demand { source: u32, payload: u32 },
    Arrival { location: u32, quantity: u32 },
    Reopen { location: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: f64,
    sequence: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so the max-heap pops the earliest event; ties go to the first scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time
            .total_cmp(&self.time)
            .then_with(|| other.sequence.cmp(&self.sequence))
    }
}

/// Who waits in a location's backorder queue.
#[derive(Debug, Clone, Copy)]
enum Claim {
    Customer { arrival: f64, source: u32 },
    Child { location: u32 },
}

#[derive(Debug, Default)]
struct Shelf {
    on_hand: i64,
    on_order: i64,
    queue: VecDeque<Claim>,
    queue_since: f64,
}

/// Lazily created random streams, one per (entity, purpose).
#[derive(Default)]
struct Streams {
    sources: Vec<SmallRng>,
    lanes: Vec<Option<SmallRng>>,
    local_repair: Vec<Option<SmallRng>>,
    depot_repair: Vec<Option<SmallRng>>,
    external: Vec<Option<SmallRng>>,
}

fn lazily(slot: &mut Option<SmallRng>, make: impl FnOnce() -> SmallRng) -> &mut SmallRng {
    slot.get_or_insert_with(make)
}

/// One part through one replication.
struct PartRun<'a, 'b> {
    network: &'a Network,
    part: &'a PartPlan,
    window: &'a Window,
    replication: u32,
    sink: Sink<'b>,
    heap: BinaryHeap<Event>,
    sequence: u64,
    shelves: Vec<Shelf>,
    streams: Streams,
    bootstrap_periods: Vec<u64>,
}

/// Simulates `part` in `replication`, writing into `sink`.
///
/// # Errors
/// [`SimError::Cancelled`] when `cancel` is raised during the run.
pub(crate) fn simulate_part(
    network: &Network,
    part: &PartPlan,
    window: &Window,
    replication: u32,
    sink: Sink<'_>,
    cancel: &AtomicBool,
) -> Result<(), SimError> {
    let mut run = PartRun::new(network, part, window, replication, sink);
    run.start();
    let mut handled: u64 = 0;
    while let Some(event) = run.heap.pop() {
        handled += 1;
        if handled.is_multiple_of(EVENTS_BETWEEN_CANCEL_CHECKS)
            && cancel.load(AtomicOrdering::Relaxed)
        {
            return Err(SimError::Cancelled);
        }
        run.handle(event);
        debug_assert!(run.positions_hold(), "inventory position off its policy");
    }
    debug_assert!(run.books_closed(), "a unit was lost or never arrived");
    run.finish();
    Ok(())
}

impl<'a, 'b> PartRun<'a, 'b> {
    fn new(
        network: &'a Network,
        part: &'a PartPlan,
        window: &'a Window,
        replication: u32,
        sink: Sink<'b>,
    ) -> Self {
        let count = network.locations.len();
        let shelves = (0..count)
            .map(|location| Shelf {
                on_hand: if part.reported[location] {
                    part.policies[location].initial_stock()
                } else {
                    0
                },
                ..Shelf::default()
            })
            .collect();
        let streams = Streams {
            sources: part
                .sources
                .iter()
                .map(|source| stream(window.seed, replication, source.key, Purpose::Demand))
                .collect(),
            lanes: vec![None; network.lanes.len()],
            local_repair: vec![None; count],
            depot_repair: vec![None; count],
            external: vec![None; count],
        };
        PartRun {
            network,
            part,
            window,
            replication,
            sink,
            heap: BinaryHeap::new(),
            sequence: 0,
            shelves,
            streams,
            bootstrap_periods: vec![0; part.sources.len()],
        }
    }

    fn schedule(&mut self, time: f64, kind: EventKind) {
        self.sequence += 1;
        self.heap.push(Event {
            time,
            sequence: self.sequence,
            kind,
        });
    }

    /// Demand events at or after the horizon are dropped, so the queue drains.
    fn schedule_demand(&mut self, time: Option<f64>, source: usize, payload: u32) {
        if let Some(time) = time.filter(|&t| t < self.window.horizon) {
            self.schedule(
                time,
                EventKind::Demand {
                    source: source as u32,
                    payload,
                },
            );
        }
    }

    fn start(&mut self) {
        for source in 0..self.part.sources.len() {
            self.start_source(source);
        }
        for &location in &self.part.slots {
            for outage in 0..self.network.locations[location].outages.len() {
                let end = self.network.locations[location].outages[outage].1;
                self.schedule(
                    end,
                    EventKind::Reopen {
                        location: location as u32,
                    },
                );
            }
        }
    }

    fn start_source(&mut self, source: usize) {
        let part = self.part;
        match &part.sources[source].process {
            Process::Poisson {
                rate_per_day,
                profile,
            } => {
                let rng = &mut self.streams.sources[source];
                let next = next_poisson(*rate_per_day, profile, 0.0, rng);
                self.schedule_demand(next, source, 0);
            }
            Process::Weibull {
                life,
                units,
                start_age_hours,
                profile,
                ..
            } => {
                for unit in 0..*units {
                    let rng = &mut self.streams.sources[source];
                    let next = life.next_failure(profile, 0.0, *start_age_hours, rng);
                    self.schedule_demand(next, source, unit);
                }
            }
            Process::Batches {
                batches_per_day, ..
            } => {
                let rng = &mut self.streams.sources[source];
                let next = next_poisson(*batches_per_day, &FLAT, 0.0, rng);
                self.schedule_demand(next, source, 0);
            }
            Process::Bootstrap(bootstrap) => {
                // The chain starts in the state of the last period of the history, which
                // stands just before period 0.
                let rng = &mut self.streams.sources[source];
                let start = bootstrap.starts_with_demand;
                if let Some(period) = bootstrap.next_period(0, start, rng) {
                    self.schedule_bootstrap(source, period - 1);
                }
            }
        }
    }

    /// Schedules the demand of bootstrap period `period` (0-based from day 0).
    fn schedule_bootstrap(&mut self, source: usize, period: u64) {
        let Process::Bootstrap(bootstrap) = &self.part.sources[source].process else {
            return;
        };
        let rng = &mut self.streams.sources[source];
        let size = bootstrap.size(rng);
        let time = (period as f64 + uniform(rng)) * bootstrap.period_days;
        self.bootstrap_periods[source] = period;
        self.schedule_demand(Some(time), source, size);
    }

    fn handle(&mut self, event: Event) {
        let now = event.time;
        match event.kind {
            EventKind::Demand { source, payload } => self.on_demand(source as usize, payload, now),
            EventKind::Arrival { location, quantity } => {
                let shelf = &mut self.shelves[location as usize];
                shelf.on_order -= i64::from(quantity);
                shelf.on_hand += i64::from(quantity);
                self.serve_queue(location as usize, now);
            }
            EventKind::Reopen { location } => self.serve_queue(location as usize, now),
        }
    }

    fn on_demand(&mut self, source: usize, payload: u32, now: f64) {
        let part = self.part;
        let location = part.sources[source].location;
        let rng = &mut self.streams.sources[source];
        let units = match &part.sources[source].process {
            Process::Poisson {
                rate_per_day,
                profile,
            } => {
                let next = next_poisson(*rate_per_day, profile, now, rng);
                self.schedule_demand(next, source, 0);
                1
            }
            Process::Weibull {
                life,
                attach_rate,
                profile,
                ..
            } => {
                let needs_part = uniform(rng) < *attach_rate;
                // The failed unit is renewed either way and starts again from age zero.
                let next = life.next_failure(profile, now, 0.0, rng);
                self.schedule_demand(next, source, payload);
                u32::from(needs_part)
            }
            Process::Batches {
                batches_per_day,
                logarithmic_p,
            } => {
                let next = next_poisson(*batches_per_day, &FLAT, now, rng);
                let size = logarithmic(*logarithmic_p, rng);
                self.schedule_demand(next, source, 0);
                size
            }
            Process::Bootstrap(bootstrap) => {
                let period = self.bootstrap_periods[source];
                if let Some(next) = bootstrap.next_period(period, true, rng) {
                    self.schedule_bootstrap(source, next);
                }
                payload
            }
        };
        for _ in 0..units {
            self.serve_customer(location, source, now);
        }
    }

    fn in_service(&self, location: usize, now: f64) -> bool {
        self.network.locations[location]
            .outages
            .iter()
            .all(|&(start, end)| now < start || now >= end)
    }

    /// Fulfilment: own shelf, else lateral, else emergency, else backorder.
    fn serve_customer(&mut self, store: usize, source: usize, now: f64) {
        let counted = self.window.contains(now);
        if counted {
            let tally = &mut self.sink.tallies[store];
            tally.demand_units += 1.0;
            if now < self.window.warm_up + self.part.lead_time_days[store] {
                tally.lead_time_demand_units += 1.0;
            }
        }
        if self.in_service(store, now) && self.shelves[store].on_hand > 0 {
            self.shelves[store].on_hand -= 1;
            if counted {
                self.sink.tallies[store].first_time_fills += 1.0;
                self.record_wait(store, 0.0);
            }
            self.replenish(store, true, now);
            return;
        }
        if self.lend(store, source, now, true) || self.lend(store, source, now, false) {
            return;
        }
        self.touch_queue(store, now);
        self.shelves[store].queue.push_back(Claim::Customer {
            arrival: now,
            source: source as u32,
        });
        self.replenish(store, true, now);
    }

    /// Tries the lateral (or emergency) lenders of `store`, nearest first.
    fn lend(&mut self, store: usize, source: usize, now: f64, lateral: bool) -> bool {
        let network = self.network;
        let node = &network.locations[store];
        let (allowed, lenders) = if lateral {
            (network.fulfilment_lateral, &node.lateral_sources)
        } else {
            (network.fulfilment_emergency, &node.emergency_sources)
        };
        if !allowed {
            return false;
        }
        let Some(&(lender, lane)) = lenders
            .iter()
            .find(|&&(lender, _)| self.shelves[lender].on_hand > 0 && self.in_service(lender, now))
        else {
            return false;
        };
        self.shelves[lender].on_hand -= 1;
        let transit = self.transit(lane);
        let cost = self.network.lanes[lane].cost_per_shipment;
        if self.window.contains(now) {
            let tally = &mut self.sink.tallies[store];
            if lateral {
                tally.lateral_shipments += 1.0;
                tally.lateral_cost += cost;
            } else {
                tally.emergency_shipments += 1.0;
                tally.emergency_cost += cost;
            }
            self.record_wait(store, transit);
        }
        self.accrue_downtime(store, source, now, now + transit);
        // The lender's books: its unit went to a customer, so it replenishes as if the
        // demand had been its own.
        self.replenish(lender, true, now);
        true
    }

    fn transit(&mut self, lane: usize) -> f64 {
        let (seed, replication, key) = (
            self.window.seed,
            self.replication,
            self.network.lanes[lane].key ^ self.part.key,
        );
        let rng = lazily(&mut self.streams.lanes[lane], || {
            stream(seed, replication, key, Purpose::Transit)
        });
        duration(&self.network.lanes[lane].transit, rng)
    }

    /// After a unit is claimed at `location` (by a failure if `failure`, else by a child's
    /// order), start whatever brings a unit back.
    fn replenish(&mut self, location: usize, failure: bool, now: f64) {
        let part = self.part;
        match &part.repair {
            None => {
                let shelf = &self.shelves[location];
                let position = shelf.on_hand + shelf.on_order - shelf.queue.len() as i64;
                let quantity = self.part.policies[location].order_quantity(position);
                if quantity > 0 {
                    self.place_order(location, quantity, now);
                }
            }
            Some(repair) => self.repair_flow(location, failure, now, repair),
        }
    }

    /// METRIC's flow: a failed unit is repaired at the store with the local probability;
    /// otherwise the carcass goes to depot repair and the location orders one from its parent.
    fn repair_flow(&mut self, location: usize, failure: bool, now: f64, repair: &'a RepairSpec) {
        let (seed, replication) = (self.window.seed, self.replication);
        let network = self.network;
        let node = &network.locations[location];
        if failure && node.is_store && repair.local_repair_probability > 0.0 {
            let key = node.key ^ self.part.key;
            let rng = lazily(&mut self.streams.local_repair[location], || {
                stream(seed, replication, key, Purpose::LocalRepair)
            });
            if uniform(rng) < repair.local_repair_probability {
                let days = duration(&repair.local_repair_days, rng);
                self.shelves[location].on_order += 1;
                self.schedule(
                    now + days,
                    EventKind::Arrival {
                        location: location as u32,
                        quantity: 1,
                    },
                );
                return;
            }
        }
        let root = node.root;
        if failure {
            let key = self.network.locations[root].key ^ self.part.key;
            let rng = lazily(&mut self.streams.depot_repair[root], || {
                stream(seed, replication, key, Purpose::DepotRepair)
            });
            let days = duration(&repair.depot_repair_days, rng);
            self.shelves[root].on_order += 1;
            self.schedule(
                now + days,
                EventKind::Arrival {
                    location: root as u32,
                    quantity: 1,
                },
            );
        }
        if location != root {
            self.place_order(location, 1, now);
        }
    }

    fn place_order(&mut self, location: usize, quantity: i64, now: f64) {
        self.shelves[location].on_order += quantity;
        let network = self.network;
        let node = &network.locations[location];
        if let Some((parent, _)) = node.parent {
            for _ in 0..quantity {
                self.claim_at_parent(parent, location, now);
            }
        } else if let Some(supply) = &self.part.external_supply[location] {
            let (seed, replication, key) =
                (self.window.seed, self.replication, node.key ^ self.part.key);
            let rng = lazily(&mut self.streams.external[location], || {
                stream(seed, replication, key, Purpose::ExternalSupply)
            });
            let days = duration(supply, rng);
            self.schedule(
                now + days,
                EventKind::Arrival {
                    location: location as u32,
                    quantity: quantity as u32,
                },
            );
        }
        // Without a parent or outside supply the order never arrives; validation rejects
        // models where a location with demand is in that position.
    }

    fn claim_at_parent(&mut self, parent: usize, child: usize, now: f64) {
        if self.in_service(parent, now) && self.shelves[parent].on_hand > 0 {
            self.shelves[parent].on_hand -= 1;
            self.ship_to_child(child, now);
        } else {
            self.touch_queue(parent, now);
            self.shelves[parent].queue.push_back(Claim::Child {
                location: child as u32,
            });
        }
        self.replenish(parent, false, now);
    }

    fn ship_to_child(&mut self, child: usize, now: f64) {
        if let Some((_, lane)) = self.network.locations[child].parent {
            let days = self.transit(lane);
            self.schedule(
                now + days,
                EventKind::Arrival {
                    location: child as u32,
                    quantity: 1,
                },
            );
        }
    }

    /// Serves the oldest claims while the location is in service and has stock.
    fn serve_queue(&mut self, location: usize, now: f64) {
        if !self.in_service(location, now) {
            return;
        }
        while self.shelves[location].on_hand > 0 && !self.shelves[location].queue.is_empty() {
            self.touch_queue(location, now);
            let shelf = &mut self.shelves[location];
            let Some(claim) = shelf.queue.pop_front() else {
                break;
            };
            shelf.on_hand -= 1;
            match claim {
                Claim::Customer { arrival, source } => {
                    if self.window.contains(arrival) {
                        self.record_wait(location, now - arrival);
                    }
                    self.accrue_downtime(location, source as usize, arrival, now);
                }
                Claim::Child { location: child } => self.ship_to_child(child as usize, now),
            }
        }
    }

    /// Adds the backorder-days since the queue last changed, before it changes.
    fn touch_queue(&mut self, location: usize, now: f64) {
        let shelf = &mut self.shelves[location];
        let overlap = self.window.overlap(shelf.queue_since, now);
        self.sink.tallies[location].backorder_unit_days += shelf.queue.len() as f64 * overlap;
        shelf.queue_since = now;
    }

    fn record_wait(&mut self, store: usize, wait_days: f64) {
        self.sink.tallies[store].wait_days_total += wait_days;
        let thresholds = &self.window.thresholds;
        let first = thresholds.partition_point(|&t| t + WAIT_TOLERANCE_DAYS < wait_days);
        if first < thresholds.len() {
            self.sink.wait_buckets[store * thresholds.len() + first] += 1.0;
        }
    }

    /// Downtime of a machine waiting from `from` to `to`, within the window, by week.
    fn accrue_downtime(&mut self, store: usize, source: usize, from: f64, to: f64) {
        let hours_per_day = 24.0 * self.part.criticality;
        let waiting_cost = self.part.waiting_cost_per_hour;
        if (hours_per_day <= 0.0 && waiting_cost.is_none_or(|c| c <= 0.0)) || to <= from {
            return;
        }
        let cost_per_hour = self.part.sources[source].downtime_cost_per_hour;
        let (start, end) = (from.max(self.window.warm_up), to.min(self.window.horizon));
        if end <= start {
            return;
        }
        let weeks = self.window.weeks;
        let first_week = ((start - self.window.warm_up) / 7.0) as usize;
        for week in first_week..weeks {
            let week_start = self.window.warm_up + 7.0 * week as f64;
            if week_start >= end {
                break;
            }
            let days = end.min(week_start + 7.0) - start.max(week_start);
            if days <= 0.0 {
                continue;
            }
            let hours = days * hours_per_day;
            // The part's own cost prices every waiting hour; else the machine's, per hour lost.
            let cost = match waiting_cost {
                Some(per_waiting_hour) => days * 24.0 * per_waiting_hour,
                None => hours * cost_per_hour,
            };
            self.sink.part_week_hours[week] += hours;
            self.sink.part_week_cost[week] += cost;
            self.sink.location_week_hours[store * weeks + week] += hours;
            self.sink.location_week_cost[store * weeks + week] += cost;
            self.sink.tallies[store].downtime_hours += hours;
            self.sink.tallies[store].downtime_cost += cost;
        }
    }

    /// Every location's inventory position (on hand + on order - backorders) sits where its
    /// policy keeps it: exactly S under base stock, within (reorder point, maximum] otherwise.
    /// Checked after every event in debug builds; a lost or duplicated unit breaks it.
    fn positions_hold(&self) -> bool {
        self.part.slots.iter().all(|&location| {
            let shelf = &self.shelves[location];
            let position = shelf.on_hand + shelf.on_order - shelf.queue.len() as i64;
            match self.part.policies[location] {
                Policy::BaseStock { level } => position == i64::from(level),
                Policy::MinMax {
                    reorder_point,
                    order_up_to,
                } => position > reorder_point && position <= order_up_to.max(reorder_point + 1),
                Policy::ReorderPointQuantity {
                    reorder_point,
                    quantity,
                } => position > reorder_point && position <= reorder_point + i64::from(quantity),
            }
        })
    }

    /// Once the queue has drained, nothing is on order and nobody waits: for base stock,
    /// every shelf holds its level again.
    fn books_closed(&self) -> bool {
        self.part.slots.iter().all(|&location| {
            let shelf = &self.shelves[location];
            let settled = shelf.on_order == 0 && shelf.queue.is_empty();
            let full = match self.part.policies[location] {
                Policy::BaseStock { level } => shelf.on_hand == i64::from(level),
                _ => true,
            };
            settled && full
        })
    }

    /// Closes the books: backorder-days up to the horizon, and downtime of customers still
    /// waiting when the queue ran dry (none, unless a location has no supply at all).
    fn finish(&mut self) {
        let end = self.window.horizon;
        for index in 0..self.part.slots.len() {
            let location = self.part.slots[index];
            self.touch_queue(location, end.max(self.shelves[location].queue_since));
            let waiting: Vec<Claim> = self.shelves[location].queue.iter().copied().collect();
            for claim in waiting {
                if let Claim::Customer { arrival, source } = claim {
                    self.accrue_downtime(location, source as usize, arrival, end);
                }
            }
        }
    }
}
