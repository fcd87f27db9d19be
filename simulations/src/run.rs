//! Runs replications in parallel and reduces them in replication order into a [`Report`].
//!
//! Replications go to rayon in chunks; each chunk is collected in order and folded before
//! the next starts, so memory stays bounded and the report is bit-identical on any number of
//! threads. Cancellation is checked between chunks, between parts and inside event loops.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::compile::Network;
use crate::config::{Progress, SimConfig};
use crate::engine::{Sink, Tally, Window, simulate_part};
use crate::error::SimError;
use crate::report::{
    DowntimeRisk, LevelReport, LocationReport, Measures, PartLocationKey, PartLocationReport,
    PartLocationSample, PartReport, ReplicationTotals, Report, ScenarioSamples, WaitPoint,
};
use crate::stats::{MeanAccumulator, RatioAccumulator, tail_summary};

/// Most (entity x replication) downtime values kept for quantiles: 4 values of 8 bytes each,
/// so about 1.6 GB at the limit.
pub const MAX_TAIL_SAMPLES: u64 = 50_000_000;

/// Downtime of one replication: total hours, worst-week hours, total cost, worst-week cost.
type Risk = [f64; 4];

/// Per part, the totals of every replication in order.
pub(crate) type PartSeries = Vec<Vec<ReplicationTotals>>;

/// What one replication produced.
struct ReplicationOutput {
    /// One tally per reported part-location, parts in order, each part's slots in order.
    tallies: Vec<Tally>,
    /// slots x thresholds, bucketed (not yet cumulative).
    wait_buckets: Vec<f64>,
    part_risk: Vec<Risk>,
    location_risk: Vec<Risk>,
    network_risk: Risk,
}

fn risk_of(week_hours: &[f64], week_cost: &[f64]) -> Risk {
    let max = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    [
        week_hours.iter().sum(),
        max(week_hours),
        week_cost.iter().sum(),
        max(week_cost),
    ]
}

fn run_replication(
    network: &Network,
    window: &Window,
    replication: u32,
    cancel: &AtomicBool,
) -> Result<ReplicationOutput, SimError> {
    let locations = network.locations.len();
    let (weeks, thresholds) = (window.weeks, window.thresholds.len());
    let mut tallies = vec![Tally::default(); locations];
    let mut buckets = vec![0.0; locations * thresholds];
    let mut part_hours = vec![0.0; weeks];
    let mut part_cost = vec![0.0; weeks];
    let mut location_hours = vec![0.0; locations * weeks];
    let mut location_cost = vec![0.0; locations * weeks];
    let mut output = ReplicationOutput {
        tallies: Vec::new(),
        wait_buckets: Vec::new(),
        part_risk: Vec::with_capacity(network.parts.len()),
        location_risk: Vec::with_capacity(locations),
        network_risk: [0.0; 4],
    };
    for part in &network.parts {
        if cancel.load(Ordering::Relaxed) {
            return Err(SimError::Cancelled);
        }
        for &slot in &part.slots {
            tallies[slot] = Tally::default();
            buckets[slot * thresholds..(slot + 1) * thresholds].fill(0.0);
        }
        part_hours.fill(0.0);
        part_cost.fill(0.0);
        let sink = Sink {
            tallies: &mut tallies,
            wait_buckets: &mut buckets,
            part_week_hours: &mut part_hours,
            part_week_cost: &mut part_cost,
            location_week_hours: &mut location_hours,
            location_week_cost: &mut location_cost,
        };
        simulate_part(network, part, window, replication, sink, cancel)?;
        for &slot in &part.slots {
            output.tallies.push(tallies[slot]);
            output
                .wait_buckets
                .extend_from_slice(&buckets[slot * thresholds..(slot + 1) * thresholds]);
        }
        output.part_risk.push(risk_of(&part_hours, &part_cost));
    }
    let mut network_hours = vec![0.0; weeks];
    let mut network_cost = vec![0.0; weeks];
    for location in 0..locations {
        let range = location * weeks..(location + 1) * weeks;
        output.location_risk.push(risk_of(
            &location_hours[range.clone()],
            &location_cost[range.clone()],
        ));
        for week in 0..weeks {
            network_hours[week] += location_hours[range.start + week];
            network_cost[week] += location_cost[range.start + week];
        }
    }
    output.network_risk = risk_of(&network_hours, &network_cost);
    Ok(output)
}

/// Accumulates one level (a part-location, part, location or the network) over replications.
#[derive(Debug, Clone, Default)]
struct LevelAccumulator {
    demand: MeanAccumulator,
    fills: RatioAccumulator,
    backorder_days: MeanAccumulator,
    wait: RatioAccumulator,
    waits_at_most: Vec<RatioAccumulator>,
    downtime_hours: MeanAccumulator,
    downtime_cost: MeanAccumulator,
    lateral_shipments: MeanAccumulator,
    lateral_cost: MeanAccumulator,
    emergency_shipments: MeanAccumulator,
    emergency_cost: MeanAccumulator,
    lead_time_demand: MeanAccumulator,
}

impl LevelAccumulator {
    fn new(thresholds: usize) -> Self {
        LevelAccumulator {
            waits_at_most: vec![RatioAccumulator::default(); thresholds],
            ..LevelAccumulator::default()
        }
    }

    /// `buckets` per threshold, not cumulative.
    fn push(&mut self, tally: &Tally, buckets: &[f64]) {
        self.demand.push(tally.demand_units);
        self.fills.push(tally.first_time_fills, tally.demand_units);
        self.backorder_days.push(tally.backorder_unit_days);
        self.wait.push(tally.wait_days_total, tally.demand_units);
        let mut cumulative = 0.0;
        for (accumulator, &bucket) in self.waits_at_most.iter_mut().zip(buckets) {
            cumulative += bucket;
            accumulator.push(cumulative, tally.demand_units);
        }
        self.downtime_hours.push(tally.downtime_hours);
        self.downtime_cost.push(tally.downtime_cost);
        self.lateral_shipments.push(tally.lateral_shipments);
        self.lateral_cost.push(tally.lateral_cost);
        self.emergency_shipments.push(tally.emergency_shipments);
        self.emergency_cost.push(tally.emergency_cost);
        self.lead_time_demand.push(tally.lead_time_demand_units);
    }

    fn measures(&self, window_days: f64, machine_hours: f64, thresholds: &[f64]) -> Measures {
        let availability = (machine_hours > 0.0).then(|| {
            let lost = self.downtime_hours.scaled(1.0 / machine_hours);
            crate::stats::Estimate {
                mean: 1.0 - lost.mean,
                half_width_95: lost.half_width_95,
            }
        });
        Measures {
            demand_units: self.demand.estimate(),
            first_time_fill_rate: self.fills.estimate(),
            availability,
            expected_backorders: self.backorder_days.scaled(1.0 / window_days),
            mean_wait_days: self.wait.estimate(),
            wait_time_distribution: thresholds
                .iter()
                .zip(&self.waits_at_most)
                .map(|(&threshold, accumulator)| WaitPoint {
                    wait_days_at_most: threshold,
                    probability: accumulator.estimate(),
                })
                .collect(),
            downtime_hours: self.downtime_hours.estimate(),
            downtime_cost: self.downtime_cost.estimate(),
            lateral_shipments: self.lateral_shipments.estimate(),
            lateral_cost: self.lateral_cost.estimate(),
            emergency_shipments: self.emergency_shipments.estimate(),
            emergency_cost: self.emergency_cost.estimate(),
            lead_time_demand_units: self.lead_time_demand.estimate(),
        }
    }
}

/// Per-replication downtime values of one entity, for quantiles.
#[derive(Debug, Clone, Default)]
struct RiskSeries([Vec<f64>; 4]);

impl RiskSeries {
    fn push(&mut self, risk: &Risk) {
        for (series, &value) in self.0.iter_mut().zip(risk) {
            series.push(value);
        }
    }

    fn summary(&self) -> DowntimeRisk {
        DowntimeRisk {
            total_hours: tail_summary(&self.0[0]),
            worst_week_hours: tail_summary(&self.0[1]),
            total_cost: tail_summary(&self.0[2]),
            worst_week_cost: tail_summary(&self.0[3]),
        }
    }
}

/// One level's running state.
#[derive(Debug, Clone)]
struct Level {
    accumulator: LevelAccumulator,
    risk: RiskSeries,
}

impl Level {
    fn new(thresholds: usize) -> Self {
        Level {
            accumulator: LevelAccumulator::new(thresholds),
            risk: RiskSeries::default(),
        }
    }
}

fn totals(replication: u32, tally: &Tally, risk: &Risk) -> ReplicationTotals {
    ReplicationTotals {
        replication,
        demand_units: tally.demand_units,
        first_time_fills: tally.first_time_fills,
        backorder_unit_days: tally.backorder_unit_days,
        downtime_hours: tally.downtime_hours,
        downtime_cost: tally.downtime_cost,
        worst_week_downtime_hours: risk[1],
        worst_week_downtime_cost: risk[3],
        lateral_shipments: tally.lateral_shipments,
        lateral_cost: tally.lateral_cost,
        emergency_shipments: tally.emergency_shipments,
        emergency_cost: tally.emergency_cost,
    }
}

/// Folds replications, in order, into every level.
struct Reducer<'a> {
    network: &'a Network,
    thresholds: usize,
    slots: Vec<Level>,
    parts: Vec<Level>,
    locations: Vec<Level>,
    whole: Level,
    replication_totals: Vec<ReplicationTotals>,
    part_totals: Option<PartSeries>,
    samples: Option<Vec<Vec<PartLocationSample>>>,
}

impl<'a> Reducer<'a> {
    fn new(network: &'a Network, config: &SimConfig, keep_part_totals: bool) -> Self {
        let thresholds = config.wait_thresholds_days.len();
        let slot_count: usize = network.parts.iter().map(|p| p.slots.len()).sum();
        Reducer {
            network,
            thresholds,
            slots: vec![Level::new(thresholds); slot_count],
            parts: vec![Level::new(thresholds); network.parts.len()],
            locations: vec![Level::new(thresholds); network.locations.len()],
            whole: Level::new(thresholds),
            replication_totals: Vec::new(),
            part_totals: keep_part_totals.then(|| vec![Vec::new(); network.parts.len()]),
            samples: config.scenario_samples.then(Vec::new),
        }
    }

    fn fold(&mut self, replication: u32, output: &ReplicationOutput) {
        let t = self.thresholds;
        let locations = self.network.locations.len();
        let mut location_tallies = vec![Tally::default(); locations];
        let mut location_buckets = vec![0.0; locations * t];
        let mut whole_tally = Tally::default();
        let mut whole_buckets = vec![0.0; t];
        let mut slot = 0;
        let mut row = Vec::new();
        for (part_index, part) in self.network.parts.iter().enumerate() {
            let mut part_tally = Tally::default();
            let mut part_buckets = vec![0.0; t];
            for &location in &part.slots {
                let tally = &output.tallies[slot];
                let buckets = &output.wait_buckets[slot * t..(slot + 1) * t];
                self.slots[slot].accumulator.push(tally, buckets);
                let is_store = self.network.locations[location].is_store;
                part_tally.absorb(tally, is_store);
                location_tallies[location].absorb(tally, true);
                for k in 0..t {
                    part_buckets[k] += buckets[k];
                    location_buckets[location * t + k] += buckets[k];
                }
                if self.samples.is_some() {
                    row.push(PartLocationSample {
                        demand_units: tally.demand_units as u64,
                        first_time_fills: tally.first_time_fills as u64,
                        lead_time_demand_units: tally.lead_time_demand_units as u64,
                        backorder_unit_days: tally.backorder_unit_days,
                        downtime_hours: tally.downtime_hours,
                        downtime_cost: tally.downtime_cost,
                        expediting_cost: tally.emergency_cost + tally.lateral_cost,
                    });
                }
                slot += 1;
            }
            let risk = &output.part_risk[part_index];
            self.parts[part_index]
                .accumulator
                .push(&part_tally, &part_buckets);
            self.parts[part_index].risk.push(risk);
            if let Some(part_totals) = &mut self.part_totals {
                part_totals[part_index].push(totals(replication, &part_tally, risk));
            }
            whole_tally.absorb(&part_tally, true);
            for k in 0..t {
                whole_buckets[k] += part_buckets[k];
            }
        }
        for location in 0..locations {
            let buckets = &location_buckets[location * t..(location + 1) * t];
            self.locations[location]
                .accumulator
                .push(&location_tallies[location], buckets);
            self.locations[location]
                .risk
                .push(&output.location_risk[location]);
        }
        self.whole.accumulator.push(&whole_tally, &whole_buckets);
        self.whole.risk.push(&output.network_risk);
        self.replication_totals
            .push(totals(replication, &whole_tally, &output.network_risk));
        if let Some(samples) = &mut self.samples {
            samples.push(row);
        }
    }

    fn report(self, config: &SimConfig, weeks: usize) -> (Report, Option<PartSeries>) {
        let network = self.network;
        let window = config.window_days();
        let thresholds = &config.wait_thresholds_days;
        let hours = |machines: u64| machines as f64 * 24.0 * window;
        let level = |level: &Level, machines: u64| LevelReport {
            measures: level
                .accumulator
                .measures(window, hours(machines), thresholds),
            downtime: level.risk.summary(),
        };
        let keys: Vec<PartLocationKey> = network
            .parts
            .iter()
            .flat_map(|part| {
                part.slots.iter().map(|&location| PartLocationKey {
                    part: part.id.clone(),
                    location: network.locations[location].id.clone(),
                })
            })
            .collect();
        let slot_locations = network
            .parts
            .iter()
            .flat_map(|part| part.slots.iter().copied());
        let part_locations = keys
            .iter()
            .zip(slot_locations)
            .zip(&self.slots)
            .map(|((key, location), level)| PartLocationReport {
                part: key.part.clone(),
                location: key.location.clone(),
                measures: level.accumulator.measures(
                    window,
                    hours(network.locations[location].machines),
                    thresholds,
                ),
            })
            .collect();
        let report = Report {
            seed: config.seed,
            replications: config.replications,
            horizon_days: config.horizon_days,
            warm_up_days: config.warm_up_days,
            weeks,
            network: level(&self.whole, network.total_machines),
            parts: network
                .parts
                .iter()
                .zip(&self.parts)
                .map(|(part, state)| PartReport {
                    part: part.id.clone(),
                    report: level(state, network.total_machines),
                })
                .collect(),
            locations: network
                .locations
                .iter()
                .zip(&self.locations)
                .map(|(location, state)| LocationReport {
                    location: location.id.clone(),
                    report: level(state, location.machines),
                })
                .collect(),
            part_locations,
            replication_totals: self.replication_totals,
            scenario_samples: self.samples.map(|replications| ScenarioSamples {
                part_locations: keys,
                replications,
            }),
        };
        (report, self.part_totals)
    }
}

/// The simulation of one compiled network: the report, plus per-part replication totals
/// when `keep_part_totals` (for paired comparisons).
pub(crate) fn run(
    network: &Network,
    config: &SimConfig,
    keep_part_totals: bool,
    progress: &(dyn Fn(Progress) + Sync),
    progress_offset: (u64, u64),
    cancel: &AtomicBool,
) -> Result<(Report, Option<PartSeries>), SimError> {
    let entities = (network.parts.len() + network.locations.len() + 1) as u64;
    let samples = entities.saturating_mul(u64::from(config.replications));
    if samples > MAX_TAIL_SAMPLES {
        return Err(SimError::LimitExceeded {
            what: "(parts + locations + 1) x replications".into(),
            value: samples,
            limit: MAX_TAIL_SAMPLES,
        });
    }
    let weeks = (config.window_days() / 7.0).ceil().max(1.0) as usize;
    let window = Window {
        seed: config.seed,
        warm_up: config.warm_up_days,
        horizon: config.horizon_days,
        weeks,
        thresholds: config.wait_thresholds_days.clone(),
    };
    let mut reducer = Reducer::new(network, config, keep_part_totals);
    let chunk = (rayon::current_num_threads() * 4).max(1) as u32;
    let mut start = 0;
    while start < config.replications {
        if cancel.load(Ordering::Relaxed) {
            return Err(SimError::Cancelled);
        }
        let end = (start + chunk).min(config.replications);
        let outputs: Vec<Result<ReplicationOutput, SimError>> = (start..end)
            .into_par_iter()
            .map(|replication| run_replication(network, &window, replication, cancel))
            .collect();
        for (replication, output) in (start..end).zip(outputs) {
            reducer.fold(replication, &output?);
        }
        start = end;
        progress(Progress {
            replications_done: progress_offset.0 + u64::from(end),
            replications_total: progress_offset.1,
        });
    }
    Ok(reducer.report(config, weeks))
}
