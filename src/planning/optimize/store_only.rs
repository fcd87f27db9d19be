//! The store-only consequence methods kept from before the every-echelon planner, reached
//! only when a request names their training model explicitly ([`TrainingModel::Curves`] or
//! [`TrainingModel::LeadTime`]).
//!
//! 1. Training ([`TrainingModel::Curves`]): the selected parts are simulated on the
//!    training seed over the request's horizon with every sized store at level 0, 1, 2, ...
//!    (common random numbers, lateral shipments off so each curve is the store's own). The
//!    downtime cost plus expediting cost of each replication at each store part-location is
//!    one point of that part-location's consequence curve. A curve stops once no further
//!    unit could pay. With [`TrainingModel::LeadTime`] each replication's demand in one
//!    store lead time is a scenario of the solver's scenario LP instead, with lateral and
//!    emergency recourse in the LP and the request's backend.
//! 2. The solver sizes store stock to minimise holding + expected downtime cost + lambda
//!    CVaR within the budget.
//! 3. With `compare`, an averages plan and a store-only METRIC plan (upstream delays at the
//!    levels in force, no downtime weights) are scaled to the same investment and all three
//!    are simulated out of sample with the same upstream stock.
//!
//! Depots and warehouses keep the plan in force. These methods are weaker than the default
//! every-echelon planner (`super::run`); they stay for comparison and for the lateral
//! recourse the lead-time LP models.

use super::super::model::{
    FACTORY_LEAD_TIME_DAYS_MEAN, build_model, criticality_share, transit_days,
};
use super::*;
use crate::domain::network::{LaneKind, LocationKind};
use spares_solver::metric::{self, MetricItem, MetricModel, MetricNode, MetricOptions};
use spares_solver::scenario::{
    self, CurveItem, CurveModel, LateralLane, PartLocation, ScenarioModel,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Units per part-location the averages plan may reach while being scaled.
const MAX_AVERAGES_UNITS: u64 = 200;

/// A store part-location with what the plans need to know about it.
#[derive(Debug, Clone)]
struct Cell {
    part: PartId,
    store: String,
    demand_per_day: f64,
    lead_time_days_mean: f64,
    lead_time_days_std_dev: f64,
    unit_cost: f64,
    downtime_cost_per_hour: f64,
    emergency_delay_hours: f64,
    emergency_cost_per_unit: f64,
    critical: bool,
}

/// The trained model, ready to solve.
enum Trained {
    Curves(CurveModel),
    LeadTime(ScenarioModel),
}

/// Runs the whole optimisation. `progress` gets (share done, stage).
pub(super) fn run(
    network: &Network,
    request: &OptimizeRequest,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<OptimizeResult, OptimizeError> {
    let part_ids = optimized_parts(network, &request.settings.part_ids, request.model)?;
    // A warm-up of 0 becomes the network's derived default, for every simulation below.
    let mut resolved = request.clone();
    let warm_up = resolved.settings.resolve_warm_up(network, &part_ids);
    let request = &resolved;
    let base = build_model(network, &part_ids)?;
    let cells = store_cells(network, &part_ids)?;
    progress(0.0, "training simulation");
    let (trained, simulated_rates) = match request.model {
        TrainingModel::Curves | TrainingModel::Echelons => {
            let (model, rates) = curve_model(network, &cells, request, progress, cancel)?;
            (Trained::Curves(model), rates)
        }
        TrainingModel::LeadTime => {
            let samples = training_samples(&base, &request.settings, progress, cancel)?;
            let rates = sampled_rates(&cells, &samples);
            (
                Trained::LeadTime(scenario_model(network, &cells, &samples, request)?),
                rates,
            )
        }
    };
    // The averages and METRIC plans size for the mean demand the training simulation saw,
    // the same information the consequence plan has; only the use of it differs.
    let mut cells = cells;
    for (cell, rate) in cells.iter_mut().zip(simulated_rates) {
        cell.demand_per_day = rate;
    }
    check_cancel(cancel)?;
    progress(0.5, "solving");
    let plan = solve(&trained, request, cancel)?;
    let consequence = plan.stock.clone();
    let investment = plan.evaluation.investment;
    let unit_costs: Vec<f64> = cells.iter().map(|c| c.unit_cost).collect();
    let (averages, metric_plan) = if request.compare {
        (
            Some(averages_plan(&cells, &unit_costs, investment)?),
            Some(metric_plan(
                &cells,
                &metric_lead_times(network, &cells)?,
                &unit_costs,
                investment,
            )?),
        )
    } else {
        (None, None)
    };
    // A scaled plan stops short of the target by less than one unit of the dearest part.
    let dearest = unit_costs.iter().copied().fold(0.0, f64::max);
    let mut comparison = Vec::new();
    let mut eval_seed = None;
    if let (Some(a), Some(m)) = (&averages, &metric_plan) {
        let seed = evaluation_seed(request.settings.seed);
        eval_seed = Some(seed);
        let plans = [
            ("consequence", &consequence),
            ("averages", a),
            ("metric", m),
        ];
        for (index, (name, stock)) in plans.iter().enumerate() {
            let stage = format!("evaluating the {name} plan");
            let on_progress = |f: f64| progress(0.55 + 0.4 * (index as f64 + f) / 3.0, &stage);
            on_progress(0.0);
            let report = evaluate_plan(&base, &cells, stock, request, seed, &on_progress, cancel)?;
            let mut row = plan_evaluation(name, &report, &unit_costs, stock);
            if investment - row.investment_usd > dearest {
                row.note = format!(
                    "{name} stops at {}: its model sees no benefit in more stock",
                    money(row.investment_usd)
                );
            }
            comparison.push(row);
        }
    }
    progress(0.96, "explaining");
    let explanations = match &trained {
        Trained::Curves(model) => {
            spares_solver::explain::explain_curves(model, &consequence, averages.as_deref())?
        }
        Trained::LeadTime(model) => {
            spares_solver::explain::explain(model, &consequence, averages.as_deref())?
        }
    };
    let recommendations = recommendations(
        &cells,
        &consequence,
        averages.as_deref(),
        metric_plan.as_deref(),
        &unit_costs,
        &explanations,
    );
    Ok(OptimizeResult {
        part_ids,
        part_locations: cells.len(),
        scenarios: scenarios(&request.settings, request.model) as usize,
        training_seed: request.settings.seed,
        evaluation_seed: eval_seed,
        status: plan.status,
        method: plan.method,
        backend: plan.backend,
        gap: plan.gap,
        solve_seconds: plan.seconds,
        budget_usd: request.budget_usd,
        model: request.model,
        mode: request.mode,
        in_sample_cvar: plan.evaluation.cvar_downtime_cost,
        investment_usd: investment,
        unspent_usd: 0.0,
        unspent_reason: String::new(),
        comparison,
        paired: Vec::new(),
        interval_method: String::new(),
        recommendations,
        levels: cells
            .iter()
            .zip(&consequence)
            .map(|(c, s)| (c.part.clone(), c.store.clone(), *s))
            .collect(),
        warm_up,
        training: None,
        changes: Vec::new(),
        change_summary: String::new(),
        in_force: None,
        metric_frontier: Vec::new(),
        downtime_by_location: Vec::new(),
        downtime_by_part: Vec::new(),
    })
}

fn training_samples(
    base: &sim::Model,
    settings: &Settings,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<sim::ScenarioSamples, OptimizeError> {
    let warm = settings.sim_config().warm_up_days;
    let config = sim::SimConfig {
        seed: settings.seed,
        replications: scenarios(settings, TrainingModel::LeadTime),
        horizon_days: warm + f64::from(TRAINING_WINDOW_DAYS),
        warm_up_days: warm,
        scenario_samples: true,
        ..sim::SimConfig::default()
    };
    let report = |p: sim::Progress| {
        let f = p.replications_done as f64 / p.replications_total.max(1) as f64;
        progress(0.5 * f, "training simulation");
    };
    let report = sim::simulate(base, &config, &report, cancel).map_err(sim_error)?;
    report.scenario_samples.ok_or_else(|| {
        DomainError::invalid("settings", "the simulation returned no scenario samples").into()
    })
}

/// Mean and standard deviation in days of a time distribution.
fn moments(d: &sim::TimeDistribution) -> (f64, f64) {
    let sd = match *d {
        sim::TimeDistribution::Deterministic { .. } => 0.0,
        sim::TimeDistribution::Exponential { mean_days } => mean_days,
        sim::TimeDistribution::Uniform { min_days, max_days } => {
            (max_days - min_days) / 12f64.sqrt()
        }
        sim::TimeDistribution::LogNormal { std_dev_days, .. } => std_dev_days,
    };
    (d.mean_days(), sd)
}

/// Lanes of one kind into `to`, as (from, mean hours, cost per unit).
fn lanes_into(network: &Network, to: &str, kind: LaneKind) -> Vec<(String, f64, f64)> {
    network
        .lanes
        .values()
        .filter(|l| l.kind == kind && l.to == to)
        .map(|l| {
            (
                l.from.clone(),
                transit_days(&l.transit).mean_days() * 24.0,
                l.cost_per_unit_usd,
            )
        })
        .collect()
}

/// Resupply time of a store from its replenishment source (fastest lane), in days.
fn store_lead_time(network: &Network, store: &str) -> (f64, f64) {
    let source = network
        .locations
        .get(store)
        .and_then(|l| l.replenishment_source.clone());
    network
        .lanes
        .values()
        .filter(|l| l.kind == LaneKind::Replenishment && l.to == store)
        .filter(|l| source.as_deref() == Some(l.from.as_str()))
        .map(|l| moments(&transit_days(&l.transit)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((FACTORY_LEAD_TIME_DAYS_MEAN, 0.0))
}

/// Installed-base demand per day and downtime cost per hour of one unit short (machine
/// cost x criticality share, weighted by where the failures come from), per (part, store).
fn store_rates(network: &Network, parts: &[PartId]) -> BTreeMap<(PartId, String), (f64, f64)> {
    let wanted: std::collections::BTreeSet<&str> = parts.iter().map(String::as_str).collect();
    let mut rates: BTreeMap<(PartId, String), (f64, f64)> = BTreeMap::new();
    for fleet in network.fleets.values() {
        let Some(machine) = network.machine_models.get(&fleet.machine_model_id) else {
            continue;
        };
        for part in machine
            .parts
            .iter()
            .filter(|p| wanted.contains(p.part_id.as_str()))
        {
            let rate = f64::from(fleet.machine_count)
                * f64::from(part.units_per_machine)
                * part.attach_rate
                * part.failures_per_million_operating_hours
                / 1e6
                * fleet.usage_hours_per_day;
            let entry = rates
                .entry((part.part_id.clone(), fleet.store_location_id.clone()))
                .or_insert((0.0, 0.0));
            entry.0 += rate;
            entry.1 += rate * machine.downtime_cost_usd_per_hour;
        }
    }
    for ((part_id, _), (rate, cost)) in rates.iter_mut() {
        let share = network
            .parts
            .get(part_id)
            .map_or(1.0, |p| criticality_share(p.criticality));
        *cost = if *rate > 0.0 {
            *cost / *rate * share
        } else {
            0.0
        };
    }
    rates.retain(|_, (rate, _)| *rate > 0.0);
    rates
}

/// Every store part-location of `parts` with installed-base demand, in (part, store) order.
fn store_cells(network: &Network, parts: &[PartId]) -> Result<Vec<Cell>, DomainError> {
    let rates = store_rates(network, parts);
    let mut cells = Vec::new();
    for ((part_id, store), (demand_per_day, downtime_per_hour)) in rates {
        let is_store = network
            .locations
            .get(&store)
            .is_some_and(|l| l.kind == LocationKind::Store);
        let Some(part) = network.parts.get(&part_id).filter(|_| is_store) else {
            continue;
        };
        let (lead_mean, lead_sd) = store_lead_time(network, &store);
        // Without an emergency lane a unit short waits for resupply.
        let (delay_hours, cost) = lanes_into(network, &store, LaneKind::Emergency)
            .into_iter()
            .map(|(_, h, c)| (h, c))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((lead_mean * 24.0, 0.0));
        cells.push(Cell {
            part: part_id,
            store,
            demand_per_day,
            lead_time_days_mean: lead_mean,
            lead_time_days_std_dev: lead_sd,
            unit_cost: part.unit_cost_usd,
            downtime_cost_per_hour: downtime_per_hour,
            emergency_delay_hours: delay_hours,
            emergency_cost_per_unit: cost,
            critical: part.criticality == crate::domain::network::Criticality::Critical,
        });
    }
    if cells.is_empty() {
        return Err(DomainError::invalid(
            "settings.part_ids",
            "no store of the selected parts has installed-base demand",
        ));
    }
    Ok(cells)
}

/// The lead-time scenario LP: each replication's demand in one store lead time.
fn scenario_model(
    network: &Network,
    cells: &[Cell],
    samples: &sim::ScenarioSamples,
    request: &OptimizeRequest,
) -> Result<ScenarioModel, DomainError> {
    let columns = sample_columns(cells, samples);
    let part_locations = cells
        .iter()
        .map(|c| PartLocation {
            part: c.part.clone(),
            location: c.store.clone(),
            unit_cost: c.unit_cost,
            holding_cost: c.unit_cost * ANNUAL_HOLDING_RATE * c.lead_time_days_mean / 365.0,
            downtime_cost_per_hour: c.downtime_cost_per_hour,
            emergency_delay_hours: c.emergency_delay_hours,
            emergency_cost_per_unit: c.emergency_cost_per_unit,
            fill_rate_floor: request.critical_fill_rate_floor.filter(|_| c.critical),
            max_stock: None,
        })
        .collect();
    let demand = samples
        .replications
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| c.map_or(0, |c| row[c].lead_time_demand_units))
                .collect()
        })
        .collect();
    Ok(ScenarioModel {
        lanes: lateral_lanes(network, cells),
        part_locations,
        capacities: Vec::new(),
        demand,
        budget: request.budget_usd,
        cvar_alpha: request.cvar_alpha,
        cvar_weight: request.cvar_weight,
    })
}

/// One store part-location's curve as it is simulated.
#[derive(Default)]
struct CurveBuild {
    /// Levels simulated.
    levels: Vec<u64>,
    /// Per level, per replication: downtime cost.
    losses: Vec<Vec<f64>>,
    /// Per level: own-shelf fills over all replications.
    fills: Vec<u64>,
    /// Units demanded over all replications (the same at every level).
    demand: u64,
    /// Still being extended.
    open: bool,
}

/// Simulates every sized store at level 0, 1, 2, ... (see the module docs) and returns the
/// curve model.
fn curve_model(
    network: &Network,
    cells: &[Cell],
    request: &OptimizeRequest,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<(CurveModel, Vec<f64>), OptimizeError> {
    let settings = &request.settings;
    let replications = scenarios(settings, TrainingModel::Curves);
    let config = sim::SimConfig {
        replications,
        scenario_samples: true,
        ..settings.sim_config()
    };
    let horizon_years = (config.horizon_days - config.warm_up_days) / 365.0;
    let holding: Vec<f64> = cells
        .iter()
        .map(|c| c.unit_cost * ANNUAL_HOLDING_RATE * horizon_years)
        .collect();
    let floor = |c: &Cell| request.critical_fill_rate_floor.filter(|_| c.critical);
    let index: BTreeMap<(&str, &str), usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.part.as_str(), c.store.as_str()), i))
        .collect();
    let mut curves: Vec<CurveBuild> = cells
        .iter()
        .map(|_| CurveBuild {
            open: true,
            ..CurveBuild::default()
        })
        .collect();
    let mut level = 0u64;
    loop {
        let mut parts: Vec<PartId> = cells
            .iter()
            .zip(&curves)
            .filter(|(_, b)| b.open)
            .map(|(c, _)| c.part.clone())
            .collect();
        parts.dedup();
        if parts.is_empty() {
            break;
        }
        let open = curves.iter().filter(|b| b.open).count();
        let held: usize = curves.iter().map(|b| b.losses.len()).sum();
        let entries = (held + open).saturating_mul(replications as usize);
        if entries > scenario::MAX_CELLS {
            return Err(DomainError::OutOfRange {
                field: "settings.replications".into(),
                reason: format!(
                    "{replications} training scenarios need {entries} curve entries by store level {level}, more than {} (use fewer scenarios or parts)",
                    scenario::MAX_CELLS
                ),
            }
            .into());
        }
        let mut model = build_model(network, &parts)?;
        model.fulfilment.lateral = false;
        let levels: Vec<u64> = curves
            .iter()
            .map(|b| {
                if b.open {
                    level
                } else {
                    b.levels.last().copied().unwrap_or(0)
                }
            })
            .collect();
        set_store_levels(&mut model, cells, &levels);
        let done = curves.iter().filter(|b| !b.open).count() as f64 / cells.len() as f64;
        let stage = format!(
            "training simulation, store level {level} ({} parts, {open} part-locations open)",
            parts.len()
        );
        let report = |p: sim::Progress| {
            let f = p.replications_done as f64 / p.replications_total.max(1) as f64;
            progress(0.5 * (done + (1.0 - done) * f * 0.5), &stage);
        };
        let report = sim::simulate(&model, &config, &report, cancel).map_err(sim_error)?;
        let samples = report.scenario_samples.ok_or_else(|| {
            DomainError::invalid("settings", "the simulation returned no scenario samples")
        })?;
        for (column, key) in samples.part_locations.iter().enumerate() {
            let Some(&i) = index.get(&(key.part.as_str(), key.location.as_str())) else {
                continue;
            };
            let curve = &mut curves[i];
            if !curve.open {
                continue;
            }
            let row: Vec<f64> = samples
                .replications
                .iter()
                .map(|r| r[column].downtime_cost + r[column].expediting_cost)
                .collect();
            curve.fills.push(
                samples
                    .replications
                    .iter()
                    .map(|r| r[column].first_time_fills)
                    .sum(),
            );
            if level == 0 {
                curve.demand = samples
                    .replications
                    .iter()
                    .map(|r| r[column].demand_units)
                    .sum();
            }
            let at_most_saved = mean(&row)
                + request.cvar_weight
                    * spares_solver::tail::cvar(&row, request.cvar_alpha).unwrap_or(0.0);
            let floor_met = floor(&cells[i]).is_none_or(|f| {
                curve.demand == 0
                    || curve.fills.last().copied().unwrap_or(0) as f64
                        >= f * curve.demand as f64 - 1e-9
            });
            curve.losses.push(row);
            curve.levels.push(level);
            if (at_most_saved <= holding[i] && floor_met) || level >= MAX_CURVE_LEVEL {
                curve.open = false;
            }
        }
        // A cell the simulation did not report (no demand source reached it) has nothing
        // to save: close it with the rows it has, or an all-zero level 0.
        for curve in curves.iter_mut().filter(|b| b.open) {
            if curve.levels.last() != Some(&level) {
                curve.losses.push(vec![0.0; replications as usize]);
                curve.levels.push(level);
                curve.fills.push(0);
                curve.open = false;
            }
        }
        level = next_curve_level(level);
    }
    let days = f64::from(replications) * (config.horizon_days - config.warm_up_days);
    let rates = curves.iter().map(|b| b.demand as f64 / days).collect();
    let items = cells
        .iter()
        .zip(curves)
        .zip(&holding)
        .map(|((c, b), &holding_cost)| {
            let min_stock = floor(c)
                .and_then(|f| {
                    (b.demand > 0).then(|| {
                        let j = b
                            .fills
                            .iter()
                            .position(|&x| x as f64 >= f * b.demand as f64 - 1e-9)
                            .unwrap_or(b.fills.len().saturating_sub(1));
                        b.levels.get(j).copied().unwrap_or(0)
                    })
                })
                .unwrap_or(0);
            CurveItem {
                part: c.part.clone(),
                location: c.store.clone(),
                unit_cost: c.unit_cost,
                holding_cost,
                min_stock,
                levels: b.levels,
                losses: b.losses,
            }
        })
        .collect();
    let model = CurveModel {
        items,
        scenarios: replications as usize,
        budget: request.budget_usd,
        cvar_alpha: request.cvar_alpha,
        cvar_weight: request.cvar_weight,
    };
    Ok((model, rates))
}

/// The sample column of each cell, if the simulation reported it.
fn sample_columns(cells: &[Cell], samples: &sim::ScenarioSamples) -> Vec<Option<usize>> {
    let column: BTreeMap<(&str, &str), usize> = samples
        .part_locations
        .iter()
        .enumerate()
        .map(|(i, k)| ((k.part.as_str(), k.location.as_str()), i))
        .collect();
    cells
        .iter()
        .map(|c| column.get(&(c.part.as_str(), c.store.as_str())).copied())
        .collect()
}

/// Mean demand per day of each cell in lead-time training samples (0 where unsampled).
fn sampled_rates(cells: &[Cell], samples: &sim::ScenarioSamples) -> Vec<f64> {
    let days = samples.replications.len().max(1) as f64 * f64::from(TRAINING_WINDOW_DAYS);
    sample_columns(cells, samples)
        .into_iter()
        .map(|column| {
            column.map_or(0.0, |column| {
                samples
                    .replications
                    .iter()
                    .map(|r| r[column].demand_units as f64)
                    .sum::<f64>()
                    / days
            })
        })
        .collect()
}

/// The level simulated after `level`: every one up to [`FINE_CURVE_LEVELS`], then 25% up.
fn next_curve_level(level: u64) -> u64 {
    if level < FINE_CURVE_LEVELS {
        level + 1
    } else {
        (level + 1).max((level as f64 * 1.25).ceil() as u64)
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn sim_error(e: sim::SimError) -> OptimizeError {
    match e {
        sim::SimError::Cancelled => OptimizeError::Cancelled,
        other => other.into(),
    }
}

/// Replaces the store policies of `model` by base stock `levels[i]` at each cell (0 at
/// stores that are not cells); depots and warehouses keep theirs.
fn set_store_levels(model: &mut sim::Model, cells: &[Cell], levels: &[u64]) {
    let stores: std::collections::BTreeSet<String> = model
        .locations
        .iter()
        .filter(|l| l.echelon == sim::Echelon::Store)
        .map(|l| l.id.clone())
        .collect();
    let parts: std::collections::BTreeSet<&str> =
        model.parts.iter().map(|p| p.id.as_str()).collect();
    model.policies.retain(|p| !stores.contains(&p.location));
    for (cell, level) in cells.iter().zip(levels) {
        if *level > 0 && parts.contains(cell.part.as_str()) {
            model.policies.push(sim::StockingPolicy {
                part: cell.part.clone(),
                location: cell.store.clone(),
                policy: sim::Policy::BaseStock {
                    level: u32::try_from(*level).unwrap_or(u32::MAX),
                },
            });
        }
    }
}

/// Lateral lanes between stores that both have demand for the same part.
fn lateral_lanes(network: &Network, cells: &[Cell]) -> Vec<LateralLane> {
    let index: BTreeMap<(&str, &str), usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.part.as_str(), c.store.as_str()), i))
        .collect();
    let mut by_store: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        by_store.entry(c.store.as_str()).or_default().push(i);
    }
    let mut candidates = Vec::new();
    for lane in network
        .lanes
        .values()
        .filter(|l| l.kind == LaneKind::Lateral)
    {
        let Some(receivers) = by_store.get(lane.to.as_str()) else {
            continue;
        };
        let hours = transit_days(&lane.transit).mean_days() * 24.0;
        for &to in receivers {
            if let Some(&from) = index.get(&(cells[to].part.as_str(), lane.from.as_str())) {
                candidates.push(LateralLane {
                    from,
                    to,
                    delay_hours: hours,
                    cost_per_unit: lane.cost_per_unit_usd,
                });
            }
        }
    }
    // Fastest lanes first; union-find keeps every group within MAX_LATERAL_GROUP.
    candidates.sort_by(|a, b| a.delay_hours.total_cmp(&b.delay_hours));
    let mut root: Vec<usize> = (0..cells.len()).collect();
    let mut size = vec![1usize; cells.len()];
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    let mut lanes = Vec::new();
    for lane in candidates {
        let (a, b) = (find(&mut root, lane.from), find(&mut root, lane.to));
        if a != b {
            if size[a] + size[b] > MAX_LATERAL_GROUP {
                continue;
            }
            root[b] = a;
            size[a] += size[b];
        }
        lanes.push(lane);
    }
    lanes
}

/// Solves on its own thread so a cancel is answered at once; an abandoned solve ends by
/// its time limit.
fn solve(
    trained: &Trained,
    request: &OptimizeRequest,
    cancel: &AtomicBool,
) -> Result<scenario::Plan, OptimizeError> {
    let options = scenario::OptimizeOptions {
        backend: request.backend,
        time_limit_seconds: request.time_limit_seconds,
        ..scenario::OptimizeOptions::default()
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    let job: Box<dyn FnOnce() -> spares_solver::Result<scenario::Plan> + Send> = match trained {
        Trained::Curves(model) => {
            let model = model.clone();
            Box::new(move || scenario::optimize_curves(&model, &options))
        }
        Trained::LeadTime(model) => {
            let model = model.clone();
            Box::new(move || scenario::optimize(&model, &options))
        }
    };
    std::thread::Builder::new()
        .name("optimize-solve".into())
        .spawn(move || {
            let _ = sender.send(job());
        })
        .map_err(|e| DomainError::FailedPrecondition(format!("cannot start the solver: {e}")))?;
    loop {
        check_cancel(cancel)?;
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => return Ok(result?),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(DomainError::FailedPrecondition("the solver stopped".into()).into());
            }
        }
    }
}

/// Buys candidate levels in order while they fit the budget: a candidate (cell, target)
/// raises the cell to `target`; once a cell's step does not fit, its later steps are
/// skipped so every cell keeps the order its planner would buy in.
fn buy_in_order(candidates: &[(usize, u64)], unit_costs: &[f64], budget: f64) -> Vec<u64> {
    let mut stock = vec![0u64; unit_costs.len()];
    let mut blocked = vec![false; unit_costs.len()];
    let mut spent = 0.0;
    // A cent of slack absorbs floating-point sums of the same prices.
    let limit = budget + 0.01;
    for &(cell, target) in candidates {
        if blocked[cell] || target <= stock[cell] {
            continue;
        }
        let cost = (target - stock[cell]) as f64 * unit_costs[cell];
        if spent + cost <= limit {
            spent += cost;
            stock[cell] = target;
        } else {
            blocked[cell] = true;
        }
    }
    stock
}

/// The averages plan (SS = z sqrt(L sigma_d^2 + d^2 sigma_L^2), Poisson daily demand) scaled
/// to `budget` by moving z: unit n of a cell is bought once z passes the level where the
/// reorder point d L + z sigma exceeds n - 1, so units are bought in order of z.
fn averages_plan(
    cells: &[Cell],
    unit_costs: &[f64],
    budget: f64,
) -> Result<Vec<u64>, OptimizeError> {
    let mut candidates: Vec<(f64, usize, u64)> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let input = spares_solver::averages::AveragesInput {
            demand_per_day_mean: c.demand_per_day,
            demand_per_day_std_dev: c.demand_per_day.sqrt(),
            lead_time_days_mean: c.lead_time_days_mean,
            lead_time_days_std_dev: c.lead_time_days_std_dev,
        };
        // Checks the inputs and gives the unscaled plan's spread.
        let plan = spares_solver::averages::safety_stock(&input, AVERAGES_CYCLE_SERVICE_LEVEL)?;
        let mean = c.demand_per_day * c.lead_time_days_mean;
        let sigma = plan.safety_stock / 1.644_853_626_951_472_2;
        // Far past the unscaled plan, so z can reach any budget a consequence plan sets.
        let top = (plan.stock.max(1) * 20).min(MAX_AVERAGES_UNITS);
        for n in 1..=top {
            let gap = (n - 1) as f64 - mean;
            let z = if sigma > 0.0 {
                gap / sigma
            } else if gap < 0.0 {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            if z.is_finite() || z < 0.0 {
                candidates.push((z, i, n));
            }
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let order: Vec<(usize, u64)> = candidates.iter().map(|&(_, i, n)| (i, n)).collect();
    Ok(buy_in_order(&order, unit_costs, budget))
}

/// METRIC's resupply time of each store part-location with the warehouses and depots at
/// the levels in force: the transit from its parent plus the parent's mean delay
/// EBO(s) / lambda (Little's law), where the parent's pipeline is Poisson with mean
/// lambda x (its own transit + its parent's delay), up to the depot and its factory lead
/// time. lambda is the installed-base demand of the stores below. A min/max or (R, Q)
/// policy counts as base stock at its order-up-to level.
fn metric_lead_times(network: &Network, cells: &[Cell]) -> Result<Vec<f64>, OptimizeError> {
    let parent = |location: &str| {
        network
            .locations
            .get(location)
            .and_then(|l| l.replenishment_source.clone())
    };
    let mut rates: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for c in cells {
        let mut at = parent(&c.store);
        let mut depth = 0;
        while let Some(location) = at {
            *rates
                .entry((c.part.as_str(), location.clone()))
                .or_default() += c.demand_per_day;
            at = parent(&location);
            depth += 1;
            if depth > network.locations.len() {
                break;
            }
        }
    }
    let mut delays: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut delay = |part: &str, location: &str| -> Result<f64, OptimizeError> {
        // The chain from the top down, so each parent's delay is known first.
        let mut chain = vec![location.to_string()];
        while let Some(up) = parent(&chain[chain.len() - 1]) {
            if chain.contains(&up) || chain.len() > network.locations.len() {
                break;
            }
            chain.push(up);
        }
        let mut above = 0.0;
        for node in chain.iter().rev() {
            let key = (part.to_string(), node.clone());
            if let Some(d) = delays.get(&key) {
                above = *d;
                continue;
            }
            let rate = rates.get(&(part, node.clone())).copied().unwrap_or(0.0);
            let level = network.policies.get(&key).map_or(0, |p| p.order_up_to);
            let (transit, _) = store_lead_time(network, node);
            let d = if rate > 0.0 {
                let pipeline =
                    spares_solver::distribution::Pipeline::poisson(rate * (transit + above))?;
                pipeline.at(level).expected_backorders / rate
            } else {
                0.0
            };
            delays.insert(key, d);
            above = d;
        }
        Ok(above)
    };
    cells
        .iter()
        .map(|c| {
            let above = match parent(&c.store) {
                Some(p) => delay(&c.part, &p)?,
                None => 0.0,
            };
            Ok(c.lead_time_days_mean + above)
        })
        .collect()
}

/// The METRIC plan: marginal analysis of expected backorders per dollar over every store
/// part-location (each a one-node METRIC item resupplied in its METRIC lead time, which
/// counts the delay upstream at the levels in force), bought in frontier order up to
/// `budget`.
fn metric_plan(
    cells: &[Cell],
    lead_times: &[f64],
    unit_costs: &[f64],
    budget: f64,
) -> Result<Vec<u64>, OptimizeError> {
    let frontier = metric_frontier(cells, lead_times, unit_costs)?;
    let order: Vec<(usize, u64)> = frontier
        .points
        .iter()
        .filter_map(|p| p.item.map(|i| (i, p.item_total_stock)))
        .collect();
    Ok(buy_in_order(&order, unit_costs, budget))
}

fn metric_frontier(
    cells: &[Cell],
    lead_times: &[f64],
    unit_costs: &[f64],
) -> Result<metric::Frontier, OptimizeError> {
    let items: Vec<MetricItem> = cells
        .iter()
        .zip(unit_costs)
        .zip(lead_times)
        .map(|((c, cost), lead_time)| MetricItem {
            name: format!("{}@{}", c.part, c.store),
            unit_cost: *cost,
            units_per_machine: 1,
            nodes: vec![MetricNode {
                parent: None,
                demand_per_day: c.demand_per_day,
                local_repair_probability: 1.0,
                local_repair_days: *lead_time,
                order_and_ship_days: 0.0,
            }],
        })
        .collect();
    let options = MetricOptions {
        model: MetricModel::Metric,
        ..MetricOptions::default()
    };
    Ok(metric::frontier(&items, &options, None)?)
}

/// Simulates the selected parts with `stock` at the sized stores (0 at other stores of
/// those parts), upstream as in force.
fn evaluate_plan(
    base: &sim::Model,
    cells: &[Cell],
    stock: &[u64],
    request: &OptimizeRequest,
    seed: u64,
    on_progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<sim::Report, OptimizeError> {
    let mut model = base.clone();
    set_store_levels(&mut model, cells, stock);
    let config = sim::SimConfig {
        seed,
        replications: EVALUATION_REPLICATIONS,
        scenario_samples: false,
        ..request.settings.sim_config()
    };
    let report = |p: sim::Progress| {
        on_progress(p.replications_done as f64 / p.replications_total.max(1) as f64);
    };
    sim::simulate(&model, &config, &report, cancel).map_err(sim_error)
}

fn plan_evaluation(
    name: &str,
    report: &sim::Report,
    unit_costs: &[f64],
    stock: &[u64],
) -> PlanEvaluation {
    let m = &report.network.measures;
    let tail = report.network.downtime.total_cost.as_ref();
    PlanEvaluation {
        plan: name.to_string(),
        investment_usd: investment(unit_costs, stock),
        fill_rate: m.first_time_fill_rate.as_ref().map(|e| e.mean),
        availability: m.availability.as_ref().map(|e| e.mean),
        downtime_cost_mean: tail.map_or(m.downtime_cost.mean, |t| t.mean.mean),
        downtime_cost_p95: tail.map_or(0.0, |t| t.p95.value),
        downtime_cost_p99: tail.map_or(0.0, |t| t.p99.value),
        downtime_cost_cvar95: tail.map_or(0.0, |t| t.cvar95.mean),
        emergency_shipments: m.emergency_shipments.mean,
        note: String::new(),
        in_sample_mean: None,
        in_sample_cvar95: None,
        replication_costs: report
            .replication_totals
            .iter()
            .map(|r| r.downtime_cost)
            .collect(),
    }
}

fn recommendations(
    cells: &[Cell],
    consequence: &[u64],
    averages: Option<&[u64]>,
    metric_plan: Option<&[u64]>,
    unit_costs: &[f64],
    explanations: &[spares_solver::explain::Explanation],
) -> Vec<Recommendation> {
    let mut rows: Vec<(f64, Recommendation)> = cells
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            consequence[*i] > 0
                || averages.is_some_and(|a| a[*i] > 0)
                || metric_plan.is_some_and(|m| m[*i] > 0)
        })
        .map(|(i, c)| {
            let value = unit_costs[i] * consequence[i] as f64;
            let explanation = explanations
                .iter()
                .find(|e| e.part_location == i)
                .map(|e| e.text.clone())
                .unwrap_or_default();
            (
                value,
                Recommendation {
                    part_id: c.part.clone(),
                    location_id: c.store.clone(),
                    order_up_to: consequence[i],
                    averages_order_up_to: averages.map(|a| a[i]),
                    metric_order_up_to: metric_plan.map(|m| m[i]),
                    explanation,
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| (&a.1.part_id, &a.1.location_id).cmp(&(&b.1.part_id, &b.1.location_id)))
    });
    rows.truncate(MAX_RECOMMENDATION_ROWS);
    rows.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn buying_in_order_stays_within_budget_and_keeps_order() {
        let costs = [10.0, 3.0];
        let order = [(0, 1), (1, 1), (0, 2), (1, 2), (1, 3)];
        let stock = buy_in_order(&order, &costs, 17.0);
        // 10 + 3 fit; the 2nd unit of cell 0 (10) does not; cell 1 goes on to 2 units.
        assert_eq!(stock, vec![1, 2]);
        assert!(investment(&costs, &stock) <= 17.0);
    }

    fn small_demo() -> Network {
        let config = crate::demo::DemoConfig {
            seed: 3,
            parts: 30,
            stores: 10,
            ..crate::demo::DemoConfig::default()
        };
        let now = jiff::Timestamp::from_second(1_790_000_000).unwrap();
        crate::demo::build_demo(&config, now)
            .unwrap()
            .network()
            .unwrap()
    }

    #[test]
    fn metric_lead_time_is_transit_plus_upstream_delay() {
        let mut network = small_demo();
        let parts = optimized_parts(&network, &[], TrainingModel::Curves).unwrap();
        let cells = store_cells(&network, &parts).unwrap();
        // Upstream stocked far beyond its pipeline: no delay, the store waits its transit.
        let template = network.policies.values().next().unwrap().clone();
        let upstream: Vec<String> = network
            .locations
            .values()
            .filter(|l| l.kind != LocationKind::Store)
            .map(|l| l.id.clone())
            .collect();
        for part in &parts {
            for location in &upstream {
                let policy = crate::domain::network::Policy {
                    part_id: part.clone(),
                    location_id: location.clone(),
                    ..template.clone()
                };
                network
                    .policies
                    .insert((part.clone(), location.clone()), policy);
            }
        }
        for policy in network.policies.values_mut() {
            policy.order_up_to = 100_000;
        }
        let lead = metric_lead_times(&network, &cells).unwrap();
        for (c, l) in cells.iter().zip(&lead) {
            assert!(
                (l - c.lead_time_days_mean).abs() < 1e-9,
                "{} @ {}",
                c.part,
                c.store
            );
        }
        // Upstream empty: EBO(0) is the whole pipeline, so every echelon's delay is its full
        // resupply time and the store waits transit + warehouse transit + factory lead time.
        for policy in network.policies.values_mut() {
            policy.order_up_to = 0;
        }
        let lead = metric_lead_times(&network, &cells).unwrap();
        for (c, l) in cells.iter().zip(&lead) {
            let mut expected = c.lead_time_days_mean;
            let mut at = network.locations[&c.store].replenishment_source.clone();
            while let Some(location) = at {
                expected += store_lead_time(&network, &location).0;
                at = network.locations[&location].replenishment_source.clone();
            }
            assert!(
                (l - expected).abs() < 1e-6,
                "{}: {l} vs {expected}",
                c.store
            );
            assert!(expected >= c.lead_time_days_mean + FACTORY_LEAD_TIME_DAYS_MEAN - 1e-9);
        }
    }

    #[test]
    fn curve_levels_are_fine_then_a_growing_grid() {
        let mut levels = vec![0u64];
        while levels.len() < 20 {
            levels.push(next_curve_level(levels[levels.len() - 1]));
        }
        assert_eq!(&levels[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]);
        for w in levels.windows(2).skip(10) {
            // At most 25% (rounded up) between neighbours above the fine range.
            assert!(w[1] > w[0] && w[1] as f64 <= (w[0] as f64 * 1.25).ceil());
        }
    }
}
