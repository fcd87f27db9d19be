//! Simulation requests: settings and what-if scenarios in the service's words,
//! converted to the `simulations` crate's, run, and summarised for people.

use super::model::{SupplyChain, build_model, derived_warmup_days, select_parts};
use crate::domain::DomainError;
use crate::domain::network::{Network, PartId};
use serde::{Deserialize, Serialize};
use spares_simulations as sim;
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;

/// Default simulated days (after warm-up).
pub const DEFAULT_HORIZON_DAYS: u32 = 365;
/// Warm-up days when settings reach [`Settings::sim_config`] unresolved (a
/// request's 0 is first replaced by the network's derived default, see
/// [`Settings::resolve_warm_up`]).
pub const DEFAULT_WARMUP_DAYS: u32 = super::model::MIN_WARMUP_DAYS;
/// Default replications: enough for a p99 with a usable interval.
pub const DEFAULT_REPLICATIONS: u32 = 200;

/// Monte Carlo settings as a planner gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Measured days.
    pub horizon_days: u32,
    /// Unmeasured days first; 0 derives them from the network (see
    /// [`Settings::resolve_warm_up`]).
    pub warmup_days: u32,
    /// Replications.
    pub replications: u32,
    /// Seed of every random stream.
    pub seed: u64,
    /// Parts to simulate; empty selects by downtime exposure.
    pub part_ids: Vec<PartId>,
}

/// One what-if change, in the service's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WhatIf {
    /// A location out of service from `start_day` for `duration_days`.
    Outage {
        /// Location.
        location_id: String,
        /// First day out.
        start_day: f64,
        /// Days out.
        duration_days: f64,
    },
    /// Lead times into a location (or everywhere) multiplied.
    LeadTimeShock {
        /// Location, or `None` for every lane and supplier.
        location_id: Option<String>,
        /// Factor.
        multiplier: f64,
    },
    /// Failure rates multiplied, for a part or for whole fleets at a location.
    DemandShock {
        /// Part, or `None` for all.
        part_id: Option<String>,
        /// Location, or `None` for all.
        location_id: Option<String>,
        /// Factor.
        multiplier: f64,
        /// First day.
        start_day: f64,
        /// Days; 0 = to the end.
        duration_days: f64,
    },
    /// Machines added to a store's fleet.
    FleetGrowth {
        /// Store.
        store_location_id: String,
        /// Model.
        machine_model_id: String,
        /// Machines added.
        additional_machines: u32,
    },
    /// A different base-stock level.
    StockLevel {
        /// Part.
        part_id: String,
        /// Location.
        location_id: String,
        /// New S.
        order_up_to: u64,
    },
}

/// A named what-if.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfScenario {
    /// Name.
    pub name: String,
    /// Changes.
    pub changes: Vec<WhatIf>,
}

/// A simulation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationRequest {
    /// Settings.
    pub settings: Settings,
    /// Scenarios compared with the baseline.
    pub scenarios: Vec<WhatIfScenario>,
}

/// The warm-up a run used, and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmUpChoice {
    /// Days simulated before measuring.
    pub days: u32,
    /// The supply chain the days were derived from; `None` when the request gave them.
    pub derived_from: Option<SupplyChain>,
}

impl WarmUpChoice {
    /// One line for a summary, saying where the days came from.
    pub fn describe(&self) -> String {
        match &self.derived_from {
            None => format!("warm-up {} days, as asked", self.days),
            Some(chain) => format!(
                "warm-up {} days, derived: the longest supply chain at p99 is {:.1} days \
                 (part {}, supplier -> {}), at least {}",
                self.days,
                chain.p99_days,
                chain.part_id,
                chain.locations.join(" -> "),
                super::model::MIN_WARMUP_DAYS
            ),
        }
    }
}

/// The result of a simulation job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulationResult {
    /// Parts simulated.
    pub part_ids: Vec<PartId>,
    /// The warm-up used and why.
    #[serde(default)]
    pub warm_up: WarmUpChoice,
    /// Baseline report.
    pub baseline: sim::Report,
    /// One comparison per scenario.
    pub comparisons: Vec<sim::Comparison>,
}

impl Settings {
    /// Replaces a warm-up of 0 by the network's derived default for `parts`
    /// (`model::derived_warmup_days`) and says which it used.
    pub fn resolve_warm_up(&mut self, network: &Network, parts: &[PartId]) -> WarmUpChoice {
        if self.warmup_days != 0 {
            return WarmUpChoice {
                days: self.warmup_days,
                derived_from: None,
            };
        }
        let (days, chain) = derived_warmup_days(network, parts);
        self.warmup_days = days;
        WarmUpChoice {
            days,
            derived_from: chain,
        }
    }

    /// Fills defaults and converts to the simulation config.
    pub fn sim_config(&self) -> sim::SimConfig {
        let horizon = if self.horizon_days == 0 {
            DEFAULT_HORIZON_DAYS
        } else {
            self.horizon_days
        };
        let warmup = if self.warmup_days == 0 {
            DEFAULT_WARMUP_DAYS
        } else {
            self.warmup_days
        };
        sim::SimConfig {
            seed: self.seed,
            replications: if self.replications == 0 {
                DEFAULT_REPLICATIONS
            } else {
                self.replications
            },
            horizon_days: f64::from(horizon) + f64::from(warmup),
            warm_up_days: f64::from(warmup),
            ..sim::SimConfig::default()
        }
    }
}

/// Converts a what-if scenario to the simulation's, against the network.
/// `prefix` names the scenario in errors (`scenarios[2]`): an unknown id is
/// `NotFound` naming `scenarios[2].changes[0].location_id`.
pub fn sim_scenario(
    network: &Network,
    scenario: &WhatIfScenario,
    horizon_days: f64,
    prefix: &str,
) -> Result<sim::Scenario, DomainError> {
    let mut changes = Vec::new();
    for (i, change) in scenario.changes.iter().enumerate() {
        let field = format!("{prefix}.changes[{i}]");
        changes.extend(
            sim_changes(network, change, horizon_days, &field).map_err(|e| e.within(&field))?,
        );
    }
    Ok(sim::Scenario {
        name: scenario.name.clone(),
        changes,
    })
}

/// `NotFound` unless `id` is a known `entity`, naming `field` (a full path).
fn known(found: bool, entity: &'static str, id: &str, field: &str) -> Result<(), DomainError> {
    if found {
        Ok(())
    } else {
        Err(DomainError::not_found(entity, format!("{id} ({field})")))
    }
}

fn known_location(network: &Network, id: &str, field: &str) -> Result<(), DomainError> {
    known(network.locations.contains_key(id), "location", id, field)
}

fn sim_changes(
    network: &Network,
    change: &WhatIf,
    horizon_days: f64,
    prefix: &str,
) -> Result<Vec<sim::Change>, DomainError> {
    let path = |field: &str| format!("{prefix}.{field}");
    Ok(match change {
        WhatIf::Outage {
            location_id,
            start_day,
            duration_days,
        } => {
            known_location(network, location_id, &path("location_id"))?;
            vec![sim::Change::LocationOutOfService {
                location: location_id.clone(),
                start_day: *start_day,
                end_day: start_day + duration_days,
            }]
        }
        WhatIf::LeadTimeShock {
            location_id,
            multiplier,
        } => {
            if let Some(id) = location_id {
                known_location(network, id, &path("location_id"))?;
            }
            vec![
                sim::Change::LeadTimeMultiplier {
                    from: None,
                    to: location_id.clone(),
                    kind: None,
                    multiplier: *multiplier,
                },
                sim::Change::SupplierLeadTimeMultiplier {
                    location: location_id.clone(),
                    multiplier: *multiplier,
                },
            ]
        }
        WhatIf::DemandShock {
            part_id,
            location_id,
            multiplier,
            start_day,
            duration_days,
        } => {
            if let Some(id) = part_id {
                known(network.parts.contains_key(id), "part", id, &path("part_id"))?;
            }
            if let Some(id) = location_id {
                known_location(network, id, &path("location_id"))?;
            }
            demand_shock(
                network,
                part_id,
                location_id,
                *multiplier,
                *start_day,
                *duration_days,
                horizon_days,
            )?
        }
        WhatIf::FleetGrowth {
            store_location_id,
            machine_model_id,
            additional_machines,
        } => {
            known_location(network, store_location_id, &path("store_location_id"))?;
            known(
                network.machine_models.contains_key(machine_model_id),
                "machine model",
                machine_model_id,
                &path("machine_model_id"),
            )?;
            let similar = network
                .fleets
                .values()
                .filter(|f| &f.machine_model_id == machine_model_id)
                .find(|f| &f.store_location_id == store_location_id)
                .or_else(|| {
                    network
                        .fleets
                        .values()
                        .find(|f| &f.machine_model_id == machine_model_id)
                });
            vec![sim::Change::AddFleet(sim::Fleet {
                id: format!("{store_location_id}/{machine_model_id}/growth"),
                location: store_location_id.clone(),
                machine_model: machine_model_id.clone(),
                machines: *additional_machines,
                usage_hours_per_day: similar.map_or(8.0, |f| f.usage_hours_per_day),
                age_operating_hours: 0.0,
            })]
        }
        WhatIf::StockLevel {
            part_id,
            location_id,
            order_up_to,
        } => {
            known(
                network.parts.contains_key(part_id),
                "part",
                part_id,
                &path("part_id"),
            )?;
            known_location(network, location_id, &path("location_id"))?;
            vec![sim::Change::SetPolicy {
                part: part_id.clone(),
                location: location_id.clone(),
                policy: sim::Policy::BaseStock {
                    level: u32::try_from(*order_up_to).unwrap_or(u32::MAX),
                },
            }]
        }
    })
}

fn demand_shock(
    network: &Network,
    part_id: &Option<String>,
    location_id: &Option<String>,
    multiplier: f64,
    start_day: f64,
    duration_days: f64,
    horizon_days: f64,
) -> Result<Vec<sim::Change>, DomainError> {
    let windowed = start_day > 0.0 || duration_days > 0.0;
    if location_id.is_none() && !windowed {
        // Over the whole horizon every demand source of the part scales: fleets'
        // failure rates, and the rates and histories that replace them.
        return Ok(vec![
            sim::Change::FailureRateMultiplier {
                part: part_id.clone(),
                machine_model: None,
                multiplier,
            },
            sim::Change::DemandMultiplier {
                part: part_id.clone(),
                location: None,
                multiplier,
            },
        ]);
    }
    if part_id.is_some() {
        return Err(DomainError::invalid(
            "part_id",
            "a demand shock at a location or over a window applies to whole fleets; leave part_id empty",
        ));
    }
    let end_day = if duration_days > 0.0 {
        start_day + duration_days
    } else {
        horizon_days
    };
    Ok(network
        .fleets
        .values()
        .filter(|f| {
            location_id
                .as_ref()
                .is_none_or(|l| &f.store_location_id == l)
        })
        .map(|f| {
            sim::Change::AddShock(sim::CommonCauseShock {
                fleet: format!("{}/{}", f.store_location_id, f.machine_model_id),
                start_day,
                end_day,
                failure_rate_multiplier: multiplier,
            })
        })
        .collect())
}

/// Maps a refused simulation config to the core error: a value past a named
/// limit is `OutOfRange`, anything else `InvalidArgument`, both under `settings`.
pub fn settings_error(error: sim::SimError) -> DomainError {
    match error {
        sim::SimError::LimitExceeded { what, value, limit } => DomainError::OutOfRange {
            field: format!("settings.{what}"),
            reason: format!("{value} is over the limit of {limit}"),
        },
        other => DomainError::invalid("settings", other.to_string()),
    }
}

/// Why a simulation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// Bad request.
    #[error(transparent)]
    Request(#[from] DomainError),
    /// The engine refused or stopped.
    #[error(transparent)]
    Engine(#[from] sim::SimError),
}

/// Runs the baseline and every scenario. `progress` gets the share done.
pub fn run_simulation(
    network: &Network,
    request: &SimulationRequest,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<SimulationResult, SimulationError> {
    let part_ids = select_parts(network, &request.settings.part_ids)?;
    if part_ids.is_empty() {
        return Err(
            DomainError::invalid("settings.part_ids", "no part has demand to simulate").into(),
        );
    }
    let model = build_model(network, &part_ids)?;
    let mut settings = request.settings.clone();
    let warm_up = settings.resolve_warm_up(network, &part_ids);
    let config = settings.sim_config();
    let scenarios = request
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| sim_scenario(network, s, config.horizon_days, &format!("scenarios[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let report = |p: sim::Progress| {
        progress(p.replications_done as f64 / p.replications_total.max(1) as f64);
    };
    if scenarios.is_empty() {
        let baseline = sim::simulate(&model, &config, &report, cancel)?;
        return Ok(SimulationResult {
            part_ids,
            warm_up,
            baseline,
            comparisons: Vec::new(),
        });
    }
    // The baseline is simulated once and paired with every scenario.
    let comparisons = sim::compare_all(&model, &scenarios, &config, &report, cancel)?;
    let baseline = comparisons
        .first()
        .map(|c| c.baseline.clone())
        .ok_or_else(|| DomainError::invalid("scenarios", "no comparison came back"))?;
    Ok(SimulationResult {
        part_ids,
        warm_up,
        baseline,
        comparisons,
    })
}

/// Part-location rows kept in a result sent over the API: the ones with the
/// most downtime cost. Keeps a 200-part run on a 315-location network in a
/// few megabytes instead of tens.
pub const MAX_PART_LOCATION_ROWS: usize = 1_000;

fn trim_report(report: &mut sim::Report) {
    report
        .part_locations
        .retain(|row| row.measures.demand_units.mean > 0.0);
    report.part_locations.sort_by(|a, b| {
        b.measures
            .downtime_cost
            .mean
            .total_cmp(&a.measures.downtime_cost.mean)
            .then_with(|| (&a.part, &a.location).cmp(&(&b.part, &b.location)))
    });
    report.part_locations.truncate(MAX_PART_LOCATION_ROWS);
    report.scenario_samples = None;
}

/// The result as sent to clients: per-replication samples dropped, the
/// part-location table cut to the rows that matter, and each comparison's
/// baseline (identical to the result's own) omitted.
pub fn compact(result: &SimulationResult) -> SimulationResult {
    let mut out = result.clone();
    trim_report(&mut out.baseline);
    for comparison in &mut out.comparisons {
        trim_report(&mut comparison.changed);
        comparison.baseline.part_locations.clear();
        comparison.baseline.parts.clear();
        comparison.baseline.locations.clear();
        comparison.baseline.replication_totals.clear();
        comparison.baseline.scenario_samples = None;
    }
    out
}

fn money(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("${:.2}M", value / 1e6)
    } else if value.abs() >= 1e3 {
        format!("${:.1}k", value / 1e3)
    } else {
        format!("${value:.0}")
    }
}

fn estimate(e: &sim::Estimate, scale: f64, unit: &str) -> String {
    match e.half_width_95 {
        Some(h) => format!("{:.3}{unit} ± {:.3}", e.mean * scale, h * scale),
        None => format!("{:.3}{unit}", e.mean * scale),
    }
}

/// A readable summary of a simulation result.
pub fn summarize(result: &SimulationResult) -> String {
    let r = &result.baseline;
    let m = &r.network.measures;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Simulated {} parts, {} replications of {:.0} days (warm-up {:.0}), seed {}",
        result.part_ids.len(),
        r.replications,
        r.horizon_days - r.warm_up_days,
        r.warm_up_days,
        r.seed
    );
    let _ = writeln!(out, "  {}", result.warm_up.describe());
    let _ = writeln!(
        out,
        "  demand per replication   {}",
        estimate(&m.demand_units, 1.0, " units")
    );
    if let Some(f) = &m.first_time_fill_rate {
        let _ = writeln!(
            out,
            "  first-time fill rate     {}",
            estimate(f, 100.0, "%")
        );
    }
    if let Some(a) = &m.availability {
        let _ = writeln!(
            out,
            "  machine availability     {}",
            estimate(a, 100.0, "%")
        );
    }
    let _ = writeln!(
        out,
        "  expected backorders      {}",
        estimate(&m.expected_backorders, 1.0, "")
    );
    let _ = writeln!(
        out,
        "  emergency shipments      {}",
        estimate(&m.emergency_shipments, 1.0, "")
    );
    let _ = writeln!(
        out,
        "  lateral shipments        {}",
        estimate(&m.lateral_shipments, 1.0, "")
    );
    for (label, tail) in [
        ("downtime cost, horizon  ", &r.network.downtime.total_cost),
        (
            "downtime cost, worst wk ",
            &r.network.downtime.worst_week_cost,
        ),
    ] {
        if let Some(t) = tail {
            let _ = writeln!(
                out,
                "  {label} mean {}  p50 {}  p95 {}  p99 {}  CVaR95 {}",
                money(t.mean.mean),
                money(t.p50.value),
                money(t.p95.value),
                money(t.p99.value),
                money(t.cvar95.mean)
            );
        }
    }
    for c in &result.comparisons {
        let d = &c.network;
        let _ = writeln!(
            out,
            "What-if {:?} vs baseline (paired, common random numbers):",
            c.scenario
        );
        let _ = writeln!(
            out,
            "  downtime cost            {}",
            signed_money(&d.downtime_cost)
        );
        let _ = writeln!(
            out,
            "  worst-week downtime cost {}",
            signed_money(&d.worst_week_downtime_cost)
        );
        if let Some(f) = &d.first_time_fill_rate {
            let _ = writeln!(
                out,
                "  fill rate                {}",
                estimate(f, 100.0, " pts")
            );
        }
        let _ = writeln!(
            out,
            "  emergency cost           {}",
            signed_money(&d.emergency_cost)
        );
    }
    out
}

fn signed_money(e: &sim::Estimate) -> String {
    let sign = if e.mean >= 0.0 { "+" } else { "-" };
    match e.half_width_95 {
        Some(h) => format!("{sign}{} ± {}", money(e.mean.abs()), money(h)),
        None => format!("{sign}{}", money(e.mean.abs())),
    }
}
