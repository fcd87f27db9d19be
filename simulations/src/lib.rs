//! Seeded discrete-event simulation of spare-parts networks for spares.
//!
//! The crate is pure: no I/O, no clock, no thread-local randomness. A [`Model`] (network,
//! parts with their own supplier lead times and downtime costs, policies, installed base,
//! failure models, demand histories, demand rates; at each part-location one source drives
//! demand: rate, else history, else installed base) and a [`SimConfig`]
//! (seed, replications, horizon, warm-up) go in; a [`Report`] comes out, the same bits for
//! the same seed on any number of threads.
//!
//! - [`simulate`] runs one model.
//! - [`compare`] runs a base model and a [`Scenario`] with common random numbers and reports
//!   paired differences; [`compare_all`] does it for several scenarios, simulating the base
//!   once.
//! - [`tree`] is the exact per-part simulator of one part's supply tree (one-for-one, FIFO,
//!   emergency rule) by the sample-path recursion, which the planner scores stock vectors
//!   with.
//! - [`analytic`] holds the textbook formulas the engine is validated against.

pub mod analytic;
mod compile;
pub mod config;
mod demand;
mod engine;
pub mod error;
pub mod model;
mod random;
pub mod report;
mod run;
pub mod scenario;
pub mod stats;
pub mod tree;

use std::sync::atomic::AtomicBool;

pub use compile::{MAX_LOCATIONS, MAX_RENEWAL_UNITS, MAX_STOCK_LEVEL, MAX_UNITS_PER_DAY};
pub use config::{MAX_REPLICATIONS, Progress, SimConfig};
pub use error::SimError;
pub use model::{
    CommonCauseShock, DemandHistory, DemandRate, Echelon, FailureModel, Fleet, FulfilmentRules,
    Lane, LaneKind, Life, Location, MachineModel, Model, Outage, Part, Policy, RepairSpec,
    StockingPolicy, SupplierLeadTime, TimeDistribution,
};
pub use report::{
    DowntimeRisk, LevelReport, LocationReport, Measures, PartLocationKey, PartLocationReport,
    PartLocationSample, PartReport, ReplicationTotals, Report, ScenarioSamples, WaitPoint,
};
pub use run::MAX_TAIL_SAMPLES;
pub use scenario::{Change, Comparison, Difference, PartDifference, Scenario};
pub use stats::{Estimate, Quantile, TailSummary};

/// Simulates `model` under `config`.
///
/// Replications run on the current rayon pool (wrap the call in `ThreadPool::install` to
/// choose the threads) and are reduced in replication order. `progress` is called after
/// each batch of replications with the count done; `cancel` is checked between batches,
/// between parts and every few thousand events.
///
/// # Errors
/// - [`SimError::Cancelled`] when `cancel` was raised.
/// - Any validation error of the config or model (see [`SimError`]): each names the entity
///   and field at fault.
pub fn simulate(
    model: &Model,
    config: &SimConfig,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Report, SimError> {
    config.validate()?;
    let network = compile::compile(model)?;
    let total = u64::from(config.replications);
    on_workers(config, || {
        let (report, _) = run::run(&network, config, false, progress, (0, total), cancel)?;
        Ok(report)
    })
}

/// Runs `work` on the pool the config asks for.
fn on_workers<T: Send>(
    config: &SimConfig,
    work: impl FnOnce() -> Result<T, SimError> + Send,
) -> Result<T, SimError> {
    match config.worker_threads {
        None => work(),
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|error| SimError::ThreadPool {
                threads,
                reason: error.to_string(),
            })?
            .install(work),
    }
}

/// Simulates `base` and `scenario.apply(base)` with the same seed, so every entity the
/// scenario does not change draws the same random numbers (common random numbers), and
/// reports the difference paired by replication. A scenario without changes gives a
/// difference of exactly zero.
///
/// Progress counts both runs: `replications_total` is twice the replications.
///
/// # Errors
/// As [`simulate`], for either model, and errors of [`Scenario::apply`].
pub fn compare(
    base: &Model,
    scenario: &Scenario,
    config: &SimConfig,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Comparison, SimError> {
    let mut comparisons = compare_all(
        base,
        std::slice::from_ref(scenario),
        config,
        progress,
        cancel,
    )?;
    // compare_all returns exactly one comparison per scenario, so this is never empty.
    comparisons.pop().ok_or(SimError::Cancelled)
}

/// As [`compare`] for several scenarios, simulating the baseline once. Every comparison
/// carries the same baseline report. Progress counts every run: `replications_total` is
/// (1 + scenarios) times the replications.
///
/// # Errors
/// As [`compare`]. Every scenario is applied and validated before anything is simulated.
pub fn compare_all(
    base: &Model,
    scenarios: &[Scenario],
    config: &SimConfig,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Vec<Comparison>, SimError> {
    config.validate()?;
    let base_network = compile::compile(base)?;
    // Each scenario is a compiled copy of the network; building them is work
    // too, so the cancel flag is checked before each.
    let mut changed_networks = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(SimError::Cancelled);
        }
        changed_networks.push(compile::compile(&scenario.apply(base)?)?);
    }
    let replications = u64::from(config.replications);
    let total = replications * (1 + scenarios.len() as u64);
    on_workers(config, || {
        let (baseline, base_parts) =
            run::run(&base_network, config, true, progress, (0, total), cancel)?;
        let base_parts = base_parts.unwrap_or_default();
        let mut comparisons = Vec::with_capacity(scenarios.len());
        for (index, (scenario, network)) in scenarios.iter().zip(&changed_networks).enumerate() {
            let offset = (replications * (1 + index as u64), total);
            let (changed, changed_parts) =
                run::run(network, config, true, progress, offset, cancel)?;
            let changed_parts = changed_parts.unwrap_or_default();
            comparisons.push(paired(
                scenario,
                &baseline,
                &base_parts,
                changed,
                &changed_parts,
                config,
            ));
        }
        Ok(comparisons)
    })
}

/// The paired differences of one scenario run against the baseline run.
fn paired(
    scenario: &Scenario,
    baseline: &Report,
    base_parts: &[Vec<ReplicationTotals>],
    changed: Report,
    changed_parts: &[Vec<ReplicationTotals>],
    config: &SimConfig,
) -> Comparison {
    let window = config.window_days();
    let network = scenario::difference(
        &baseline.replication_totals,
        &changed.replication_totals,
        window,
    );
    let parts = baseline
        .parts
        .iter()
        .zip(base_parts)
        .filter_map(|(part, base_series)| {
            let position = changed.parts.iter().position(|p| p.part == part.part)?;
            let changed_series = changed_parts.get(position)?;
            Some(PartDifference {
                part: part.part.clone(),
                difference: scenario::difference(base_series, changed_series, window),
            })
        })
        .collect();
    Comparison {
        scenario: scenario.name.clone(),
        baseline: baseline.clone(),
        changed,
        network,
        parts,
    }
}
