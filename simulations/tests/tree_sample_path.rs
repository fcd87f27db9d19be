//! Independent check of the per-part tree simulator: an event-driven simulation written
//! here (on-hand counts, FIFO queues, a heap of arrivals; nothing shared with the sample-path
//! recursion but the failure stream) must give every failure the same wait, to 1e-9 days,
//! with fixed times, emergencies off and on by DOMAIN.md's rule.

use spares_simulations::TimeDistribution;
use spares_simulations::tree::{
    EmergencySource, Failure, PartTree, TreeNode, TreeSimulator, TreeWindow,
};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

fn fixed(days: f64) -> TimeDistribution {
    TimeDistribution::Deterministic { days }
}

/// Supplier -> 1 depot -> 2 regionals -> 3 stores each, with emergencies from the store's
/// regional (1 day) and the depot (2 days) when `emergencies`.
fn tree(emergencies: bool) -> PartTree {
    let mut nodes = vec![TreeNode {
        id: "DEPOT".into(),
        parent: None,
        resupply_days: fixed(37.0),
        demand_per_day: 0.0,
        variance_to_mean_ratio: 1.0,
        downtime_cost_per_hour: 0.0,
        emergency: Vec::new(),
    }];
    for r in 0..2 {
        let regional = nodes.len();
        nodes.push(TreeNode {
            id: format!("R{r}"),
            parent: Some(0),
            resupply_days: fixed(3.0 + 2.0 * r as f64),
            demand_per_day: 0.0,
            variance_to_mean_ratio: 1.0,
            downtime_cost_per_hour: 0.0,
            emergency: Vec::new(),
        });
        for s in 0..3 {
            let emergency = if emergencies {
                vec![
                    EmergencySource {
                        node: regional,
                        delay_days: fixed(1.0),
                    },
                    EmergencySource {
                        node: 0,
                        delay_days: fixed(2.0),
                    },
                ]
            } else {
                Vec::new()
            };
            nodes.push(TreeNode {
                id: format!("S{r}{s}"),
                parent: Some(regional),
                resupply_days: fixed(1.0 + 0.5 * s as f64),
                demand_per_day: 0.02 + 0.03 * s as f64,
                variance_to_mean_ratio: 1.0,
                downtime_cost_per_hour: 100.0,
                emergency,
            });
        }
    }
    PartTree {
        part: "PART-1".into(),
        unit_cost: 100.0,
        nodes,
    }
}

/// A unit arriving at a node at a time.
#[derive(Debug, PartialEq)]
struct Arrival {
    time: f64,
    sequence: u64,
    node: usize,
}

impl Eq for Arrival {}
impl Ord for Arrival {
    fn cmp(&self, other: &Self) -> Ordering {
        // Earliest first on a max-heap.
        other
            .time
            .total_cmp(&self.time)
            .then(other.sequence.cmp(&self.sequence))
    }
}
impl PartialOrd for Arrival {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Who takes a unit at a node: a failure (its index), a child's replenishment order, or an
/// emergency shipment (taken from stock on hand, so it never waits).
enum Waiter {
    Failure(usize),
    Child(usize),
    Emergency,
}

struct Events<'a> {
    tree: &'a PartTree,
    on_hand: Vec<u32>,
    queues: Vec<VecDeque<Waiter>>,
    heap: BinaryHeap<Arrival>,
    sequence: u64,
    waits: Vec<Option<(f64, usize)>>,
    failure_times: Vec<f64>,
}

impl Events<'_> {
    fn ship(&mut self, to: usize, at: f64) {
        self.sequence += 1;
        self.heap.push(Arrival {
            time: at + days(&self.tree.nodes[to].resupply_days),
            sequence: self.sequence,
            node: to,
        });
    }

    /// A demand for one unit at `node` at `now`; replenishment is ordered at once.
    fn demand(&mut self, node: usize, now: f64, waiter: Waiter) {
        match self.tree.nodes[node].parent {
            Some(parent) => self.demand(parent, now, Waiter::Child(node)),
            None => self.ship(node, now),
        }
        if self.on_hand[node] > 0 {
            self.on_hand[node] -= 1;
            self.hand_over(node, waiter, now);
        } else {
            self.queues[node].push_back(waiter);
        }
    }

    fn hand_over(&mut self, node: usize, waiter: Waiter, now: f64) {
        match waiter {
            Waiter::Failure(i) => self.waits[i] = Some((now - self.failure_times[i], node)),
            Waiter::Child(child) => self.ship(child, now),
            Waiter::Emergency => {}
        }
    }

    fn arrive(&mut self, arrival: Arrival) {
        match self.queues[arrival.node].pop_front() {
            Some(waiter) => self.hand_over(arrival.node, waiter, arrival.time),
            None => self.on_hand[arrival.node] += 1,
        }
    }

    fn failure(&mut self, index: usize, failure: Failure) {
        let (now, node) = (failure.time_days, failure.node as usize);
        if self.on_hand[node] == 0 {
            for source in &self.tree.nodes[node].emergency {
                if self.on_hand[source.node] > 0 {
                    // The source's unit goes; it reorders; the store orders nothing.
                    self.demand(source.node, now, Waiter::Emergency);
                    self.waits[index] = Some((days(&source.delay_days), source.node));
                    return;
                }
            }
        }
        self.demand(node, now, Waiter::Failure(index));
    }
}

fn days(time: &TimeDistribution) -> f64 {
    match time {
        TimeDistribution::Deterministic { days } => *days,
        _ => panic!("the reference handles fixed times only"),
    }
}

/// Every failure's (wait, serving node) by the event-driven reference.
fn reference(tree: &PartTree, stock: &[u32], failures: &[Failure]) -> Vec<(f64, usize)> {
    let mut events = Events {
        tree,
        on_hand: stock.to_vec(),
        queues: (0..tree.nodes.len()).map(|_| VecDeque::new()).collect(),
        heap: BinaryHeap::new(),
        sequence: 0,
        waits: vec![None; failures.len()],
        failure_times: failures.iter().map(|f| f.time_days).collect(),
    };
    for (index, &failure) in failures.iter().enumerate() {
        // Units arriving at or before the failure are on hand for it.
        while events
            .heap
            .peek()
            .is_some_and(|a| a.time <= failure.time_days)
        {
            let arrival = events.heap.pop().expect("peeked");
            events.arrive(arrival);
        }
        events.failure(index, failure);
    }
    while let Some(arrival) = events.heap.pop() {
        events.arrive(arrival);
    }
    events
        .waits
        .into_iter()
        .map(|w| w.expect("every failure is served by the end"))
        .collect()
}

fn check(emergencies: bool, stocks: &[Vec<u32>]) {
    let window = TreeWindow {
        warm_up_days: 100.0,
        measured_days: 730.0,
    };
    let tree = tree(emergencies);
    let simulator = TreeSimulator::new(tree.clone(), window, 17, 0, 3).expect("valid tree");
    let mut compared = 0;
    let mut waited = 0;
    for stock in stocks {
        for replication in 0..simulator.replications() {
            let failures = simulator.failures(replication);
            let expected = reference(&tree, stock, failures);
            let served = simulator.trace(replication, stock);
            assert_eq!(served.len(), failures.len());
            for (i, (s, (wait, source))) in served.iter().zip(&expected).enumerate() {
                assert!(
                    (s.wait_days - wait).abs() < 1e-9 && s.source == *source,
                    "stock {stock:?} replication {replication} failure {i} at day {}: \
                     simulator waits {} from node {}, reference {wait} from node {source}",
                    s.failure.time_days,
                    s.wait_days,
                    s.source
                );
                compared += 1;
                waited += usize::from(*wait > 0.0);
            }
        }
    }
    // The check means something only if failures were compared and many waited.
    assert!(compared > 1000, "only {compared} failures compared");
    assert!(waited > 100, "only {waited} failures waited");
}

/// Stock vectors from starved to generous: depot, R0, its stores, R1, its stores.
fn stocks() -> Vec<Vec<u32>> {
    vec![
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![3, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0, 2, 1, 0, 1, 1, 0, 1, 0],
        vec![2, 1, 1, 1, 1, 1, 1, 1, 1],
        vec![5, 2, 0, 1, 2, 0, 2, 1, 0],
    ]
}

#[test]
fn every_wait_matches_the_event_driven_reference_without_emergencies() {
    check(false, &stocks());
}

#[test]
fn every_wait_matches_the_event_driven_reference_with_emergencies_by_the_rule() {
    check(true, &stocks());
}
