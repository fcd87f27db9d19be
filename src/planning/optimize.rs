//! Consequence planning for every echelon of every part with demand, as pure glue between
//! the network, the exact per-part simulator (`simulations::tree`) and the scenario CVaR
//! model of the `solver` crate. [`run_optimize`] reads like the method:
//!
//! 1. [`problem`]: one supply tree per (part, depot): depot, regional warehouses and the
//!    locations with demand under them, with lead times, transits, emergency sources and the
//!    cost of a waiting hour.
//! 2. [`candidates`]: per tree, candidate stock vectors over all its echelons: the part's
//!    downtime-weighted METRIC allocation of every total stock in reach (so the METRIC plan
//!    is one choice among them), plus the averages plan's vector.
//! 3. [`train`]: each candidate's downtime cost in every training year, by the exact tree
//!    simulator under common random numbers (streams from seed, replication, part, location
//!    and purpose: no dependence on threads or batching). Only per-candidate yearly costs are
//!    kept.
//!    Then rounds of a search beyond METRIC's order ([`SEARCH_ROUNDS`]): single-unit moves
//!    from each tree's chosen candidate (one more, one fewer, one shifted between a node
//!    and its parent or child), simulated, the most promising added, and the model solved
//!    again.
//! 4. [`solve`]: one candidate per tree against the network-wide tail
//!    (`spares_solver::scenario::vectors`): budget mode minimises expected + lambda x CVaR
//!    of downtime cost within the budget; cost mode adds holding cost
//!    ([`ANNUAL_HOLDING_RATE`]) and has no budget. Unspent money is reported with its reason.
//! 5. [`compare`]: with `compare`, the downtime-weighted METRIC plan and the averages plan at
//!    the same investment, all scored out of sample on a fresh seed with common random
//!    numbers, paired differences with bootstrap intervals, in-sample beside out-of-sample.
//! 6. [`explain`]: a row per decided level, with the numbers behind it.
//!
//! The store-only methods that came before ([`TrainingModel::Curves`] and
//! [`TrainingModel::LeadTime`]) live in [`store_only`], reached only when asked for.

pub mod baselines;
pub mod breakdown;
pub mod candidates;
pub mod compare;
pub mod evaluate;
pub mod explain;
pub mod problem;
pub mod solve;
pub mod store_only;
pub mod train;

use super::simulate::{Settings, WarmUpChoice};
use crate::domain::DomainError;
use crate::domain::network::{Network, PartId};
use serde::{Deserialize, Serialize};
use spares_simulations as sim;
use spares_simulations::tree::{PartTree, TreeWindow};
use spares_solver::lp::Backend;
use spares_solver::scenario::{Method, PlanStatus};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Holding cost per year as a share of unit cost (capital, space, obsolescence).
pub const ANNUAL_HOLDING_RATE: f64 = 0.25;
/// Parts the store-only methods optimise when a request names none: the top of the
/// downtime-exposure ranking (they do not scale to every part; the default planner does).
pub const DEFAULT_OPTIMIZED_PARTS: usize = 50;
/// Training scenarios (replications) of the lead-time model when the request gives none.
pub const DEFAULT_SCENARIOS: u32 = 300;
/// Training scenarios (simulated years) of the curve and every-echelon models when the
/// request gives none.
pub const DEFAULT_CURVE_SCENARIOS: u32 = 100;
/// Highest store level a consequence curve is simulated to.
pub const MAX_CURVE_LEVEL: u64 = 200;
/// Curves are simulated at every level up to this one, then on a grid 25% apart.
pub const FINE_CURVE_LEVELS: u64 = 10;
/// Most training scenarios: candidates x scenarios bounds the solver's memory.
pub const MAX_SCENARIOS: u32 = 5_000;
/// Replications (simulated years) of each out-of-sample evaluation.
pub const EVALUATION_REPLICATIONS: u32 = 200;
/// Days simulated after the warm-up for lead-time training.
pub const TRAINING_WINDOW_DAYS: u32 = 30;
/// Cycle service level of the store-only averages plan before it is scaled (z = 1.645).
pub const AVERAGES_CYCLE_SERVICE_LEVEL: f64 = 0.95;
/// Rounds of the simulation-guided search beyond METRIC's order (`train::search_round`).
pub const SEARCH_ROUNDS: usize = 2;
/// Most recommendation rows kept in a result (the ones tying up the most money).
pub const MAX_RECOMMENDATION_ROWS: usize = 2_000;
/// Most store part-locations one group of lateral lanes may join (lead-time model).
pub const MAX_LATERAL_GROUP: usize = 2;

/// What the consequence model is trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainingModel {
    /// Every echelon of every part: candidate stock vectors per part tree scored by the
    /// exact tree simulator, chosen against the network-wide tail (the default).
    #[default]
    Echelons,
    /// Store levels only: per-store consequence curves, solved by decomposition.
    Curves,
    /// Store levels only: one store lead time of demand per scenario in the scenario LP.
    LeadTime,
}

/// What the plan minimises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanMode {
    /// Expected + lambda x CVaR of downtime cost, within the budget.
    #[default]
    Budget,
    /// Holding + expected + lambda x CVaR of downtime cost, no budget.
    Cost,
}

impl PlanMode {
    /// Lower-case name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            PlanMode::Budget => "budget",
            PlanMode::Cost => "cost",
        }
    }
}

/// An optimisation request in the service's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeRequest {
    /// What the consequence model is trained on.
    #[serde(default)]
    pub model: TrainingModel,
    /// What the plan minimises (the every-echelon model; budget mode needs a budget).
    #[serde(default)]
    pub mode: PlanMode,
    /// Parts, seed, training scenarios (`replications`), evaluation horizon.
    pub settings: Settings,
    /// Most money to tie up in stock of the selected parts (every echelon), if limited.
    pub budget_usd: Option<f64>,
    /// CVaR level in (0, 1).
    pub cvar_alpha: f64,
    /// Weight of CVaR in the objective.
    pub cvar_weight: f64,
    /// LP backend (lead-time model).
    pub backend: Backend,
    /// Wall-clock limit of the solve.
    pub time_limit_seconds: f64,
    /// Least share of demand served from the shelf for critical parts (store-only models).
    pub critical_fill_rate_floor: Option<f64>,
    /// Also evaluate the averages and METRIC plans at the same investment.
    pub compare: bool,
}

/// One plan evaluated out of sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEvaluation {
    /// "consequence", "averages" or "metric".
    pub plan: String,
    /// Money in stock of the selected parts.
    pub investment_usd: f64,
    /// First-time fill rate.
    pub fill_rate: Option<f64>,
    /// Machine availability.
    pub availability: Option<f64>,
    /// Mean downtime cost per replication (horizon).
    pub downtime_cost_mean: f64,
    /// 95th percentile.
    pub downtime_cost_p95: f64,
    /// 99th percentile.
    pub downtime_cost_p99: f64,
    /// CVaR95: the mean of the worst 5%.
    pub downtime_cost_cvar95: f64,
    /// Emergency shipments per replication.
    pub emergency_shipments: f64,
    /// Why the plan holds less than the others, if it does (empty otherwise).
    #[serde(default)]
    pub note: String,
    /// Mean downtime cost per training year (in sample), when known.
    #[serde(default)]
    pub in_sample_mean: Option<f64>,
    /// CVaR95 of downtime cost over the training years (in sample), when known.
    #[serde(default)]
    pub in_sample_cvar95: Option<f64>,
    /// Downtime cost of each evaluation replication (horizon), in replication
    /// order: the same years for every plan, so they pair. Drawn as the
    /// distribution in the Optimize report; empty in results from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replication_costs: Vec<f64>,
}

/// Where downtime arises: the mean downtime cost per evaluated year from failures at one
/// location (or of one part), per plan, out of sample on the comparison's years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DowntimeShare {
    /// The location (per-location list) or part (per-part list).
    pub id: String,
    /// The consequence plan's.
    pub consequence_cost_per_year: f64,
    /// The averages plan's.
    pub averages_cost_per_year: f64,
    /// The downtime-weighted METRIC plan's.
    pub metric_cost_per_year: f64,
    /// The plan in force's.
    pub in_force_cost_per_year: f64,
}

/// The consequence plan minus a baseline, on the same evaluation years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// The baseline ("metric" or "averages").
    pub baseline: String,
    /// "mean" or "CVaR95" of yearly downtime cost.
    pub statistic: String,
    /// Consequence plan's value minus the baseline's (negative: the consequence plan is
    /// lower).
    pub difference: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
    /// Whether the interval excludes 0.
    pub significant: bool,
}

/// One recommended level, with the alternatives and the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Part.
    pub part_id: PartId,
    /// Location (any echelon).
    pub location_id: String,
    /// Base stock of the consequence plan.
    pub order_up_to: u64,
    /// Base stock of the averages plan at the same investment, when compared.
    pub averages_order_up_to: Option<u64>,
    /// Base stock of the METRIC plan at the same investment, when compared.
    pub metric_order_up_to: Option<u64>,
    /// Why, in numbers.
    pub explanation: String,
}

/// One level that differs from the plan in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    /// Part.
    pub part_id: PartId,
    /// Location.
    pub location_id: String,
    /// Order-up-to level in force (0 without a policy).
    pub in_force: u64,
    /// The plan's level.
    pub recommended: u64,
    /// (recommended - in force) x unit cost: money to add (negative: to free).
    pub change_usd: f64,
}

/// What the training simulation did, for the throughput figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingStats {
    /// Part trees planned.
    pub trees: usize,
    /// Candidate stock vectors simulated (all trees).
    pub candidates: usize,
    /// Failures simulated (every candidate's pass over its tree's failures).
    pub failures_simulated: u64,
    /// Seconds the worker threads were busy simulating (CPU-seconds on an idle machine).
    pub busy_seconds: f64,
    /// Wall-clock seconds of training.
    pub wall_seconds: f64,
    /// Network years the cross-part solve saw: the simulated years times the recombined
    /// copies (`train::Recombination`; 0 in results from before it).
    #[serde(default)]
    pub network_years: usize,
}

/// The result of an optimisation job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimizeResult {
    /// Parts optimised.
    pub part_ids: Vec<PartId>,
    /// Part-locations decided (every echelon for the default model, stores otherwise).
    pub part_locations: usize,
    /// Training scenarios.
    pub scenarios: usize,
    /// Seed of the training simulation.
    pub training_seed: u64,
    /// Seed of the out-of-sample evaluation, when compared.
    pub evaluation_seed: Option<u64>,
    /// How the solve ended.
    pub status: PlanStatus,
    /// Method used.
    pub method: Method,
    /// Backend used, if an LP was solved.
    pub backend: Option<Backend>,
    /// Optimality gap.
    pub gap: f64,
    /// Solve seconds.
    pub solve_seconds: f64,
    /// Budget asked for.
    pub budget_usd: Option<f64>,
    /// What the model was trained on.
    #[serde(default)]
    pub model: TrainingModel,
    /// What the plan minimised.
    #[serde(default)]
    pub mode: PlanMode,
    /// In-sample CVaR_alpha of downtime cost per scenario (the horizon for curves and
    /// echelons, one lead time for the lead-time model).
    pub in_sample_cvar: f64,
    /// Money in the consequence plan.
    #[serde(default)]
    pub investment_usd: f64,
    /// Budget left unspent (budget mode), and why.
    #[serde(default)]
    pub unspent_usd: f64,
    /// Why money was left unspent (empty when none was).
    #[serde(default)]
    pub unspent_reason: String,
    /// The three plans side by side, when compared.
    pub comparison: Vec<PlanEvaluation>,
    /// Consequence minus each baseline, with 95% intervals, when compared.
    #[serde(default)]
    pub paired: Vec<PairedDifference>,
    /// How the paired intervals were computed.
    #[serde(default)]
    pub interval_method: String,
    /// Non-zero levels (any plan), most money first, at most [`MAX_RECOMMENDATION_ROWS`].
    pub recommendations: Vec<Recommendation>,
    /// Every decided part-location and its consequence level (for `apply`).
    pub levels: Vec<(PartId, String, u64)>,
    /// The warm-up of every simulation of the run, and why.
    #[serde(default)]
    pub warm_up: WarmUpChoice,
    /// What training simulated (every-echelon model).
    #[serde(default)]
    pub training: Option<TrainingStats>,
    /// Levels that differ from the plan in force, most money first, at most
    /// [`MAX_RECOMMENDATION_ROWS`].
    #[serde(default)]
    pub changes: Vec<LevelChange>,
    /// The difference from the plan in force in one line (what to add, where, at what
    /// cost).
    #[serde(default)]
    pub change_summary: String,
    /// The plan in force (the policies' order-up-to levels over the same trees) scored on
    /// the comparison's evaluation years, when compared (no per-year costs kept).
    #[serde(default)]
    pub in_force: Option<PlanEvaluation>,
    /// The downtime-weighted METRIC plan at several investments
    /// ([`baselines::FRONTIER_MULTIPLES`] of the compared investment, and the plan in
    /// force's), scored on the same evaluation years, investment rising: the
    /// downtime-versus-investment frontier the report draws (empty when not compared; no
    /// per-year costs kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_frontier: Vec<PlanEvaluation>,
    /// Downtime by the location where machines waited, per plan, most consequence-plan
    /// downtime first (empty when not compared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downtime_by_location: Vec<DowntimeShare>,
    /// Downtime by part, per plan, most consequence-plan downtime first, at most
    /// [`MAX_RECOMMENDATION_ROWS`] (empty when not compared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downtime_by_part: Vec<DowntimeShare>,
}

/// Why an optimisation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// Bad request.
    #[error(transparent)]
    Request(#[from] DomainError),
    /// The simulation refused or stopped.
    #[error(transparent)]
    Simulation(#[from] sim::SimError),
    /// The solver refused or failed.
    #[error("solver: {0}")]
    Solver(#[from] spares_solver::SolverError),
    /// The cancel flag was raised.
    #[error("cancelled")]
    Cancelled,
    /// Work shared with other servers could not be handed out or collected (the store
    /// failed, or a unit's result did not decode).
    #[error("shared work: {0}")]
    Work(String),
}

/// The out-of-sample seed: derived from the training seed so that a run replays, and never
/// equal to it.
pub fn evaluation_seed(training_seed: u64) -> u64 {
    training_seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        ^ 0xD1B5_4A32_D192_ED03
}

/// Runs the whole optimisation on this process's threads. `progress` gets (share done,
/// stage).
pub fn run_optimize(
    network: &Network,
    request: &OptimizeRequest,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<OptimizeResult, OptimizeError> {
    run_optimize_with(network, request, &train::LocalScoring, progress, cancel)
}

/// Runs the whole optimisation with the every-echelon model's simulation of candidates
/// (training and the search rounds) done by `scoring`, the step that takes most of the
/// time; the result is the same whoever scores (`train`'s module docs). `progress` gets
/// (share done, stage).
pub fn run_optimize_with(
    network: &Network,
    request: &OptimizeRequest,
    scoring: &dyn train::Scoring,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<OptimizeResult, OptimizeError> {
    match request.model {
        TrainingModel::Echelons => run(network, request, scoring, progress, cancel),
        TrainingModel::Curves | TrainingModel::LeadTime => {
            store_only::run(network, request, progress, cancel)
        }
    }
}

/// The every-echelon planner (see the module docs).
fn run(
    network: &Network,
    request: &OptimizeRequest,
    scoring: &dyn train::Scoring,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<OptimizeResult, OptimizeError> {
    let part_ids = optimized_parts(network, &request.settings.part_ids, request.model)?;
    let mut resolved = request.clone();
    let warm_up = resolved.settings.resolve_warm_up(network, &part_ids);
    let request = &resolved;
    let objective = solve::Objective::of(request)?;
    let window = tree_window(&request.settings);
    let trees = problem::part_trees(network, &part_ids)?;
    let years = training_years(&request.settings, &trees, window);
    progress(0.0, "choosing candidates");
    let baselines = compare::Baselines::build(network, &trees, request.budget_usd)?;
    let class_z = baselines::tree_z(network, &trees);
    let candidates = candidates::generate(&trees, &class_z, &objective, &baselines)?;
    check_cancel(cancel)?;
    let on_training = |f: f64| progress(0.02 + 0.43 * f, "simulating candidates");
    let setup = train::ScoreSetup {
        window,
        seed: request.settings.seed,
        years,
    };
    let mut trained = train::train(
        &trees,
        candidates,
        setup,
        objective.holding_per_usd(window),
        scoring,
        &on_training,
        cancel,
    )?;
    progress(0.45, "solving");
    let solved = search(
        &trees,
        &mut trained,
        &objective,
        &baselines,
        setup,
        scoring,
        progress,
        cancel,
    )?;
    check_cancel(cancel)?;
    let plan = trained.stock_of(&solved.choice);
    let comparison = if request.compare {
        let stage = |f: f64| progress(0.62 + 0.33 * f, "scoring plans out of sample");
        Some(compare::compare(
            network, &trees, &trained, &solved, &baselines, &objective, window, request, &stage,
            cancel,
        )?)
    } else {
        None
    };
    progress(0.96, "explaining");
    let recommendations = explain::recommendations(
        &trees,
        &trained,
        &solved,
        objective.cvar_alpha,
        comparison.as_ref(),
        window,
        request.settings.seed,
        cancel,
    )?;
    let (changes, change_summary) = explain::diff(network, &trees, &plan);
    Ok(explain::result(explain::Parts {
        changes,
        change_summary,
        part_ids,
        trees: &trees,
        trained: &trained,
        solved: &solved,
        plan: &plan,
        comparison,
        recommendations,
        request,
        years,
        warm_up,
    }))
}

/// The first solve, then [`SEARCH_ROUNDS`] rounds of the simulation-guided search beyond
/// METRIC's order, each followed by a new solve (the previous choice and the baselines as
/// fallbacks, so the training objective never rises).
#[allow(clippy::too_many_arguments)]
fn search(
    trees: &[PartTree],
    trained: &mut train::Trained,
    objective: &solve::Objective,
    baselines: &compare::Baselines,
    setup: train::ScoreSetup,
    scoring: &dyn train::Scoring,
    progress: &(dyn Fn(f64, &str) + Sync),
    cancel: &AtomicBool,
) -> Result<solve::Solved, OptimizeError> {
    let fallbacks = baselines.choices(trained);
    let mut solved = solve::solve(trained, objective, &fallbacks)?;
    for round in 0..SEARCH_ROUNDS {
        check_cancel(cancel)?;
        let share = 0.15 / SEARCH_ROUNDS as f64;
        let start = 0.45 + share * round as f64;
        let on_search = |f: f64| progress(start + share * f, "searching beyond METRIC's order");
        let weights = spares_solver::tail::tail_weights(
            &solved.plan.evaluation.scenario_losses,
            objective.cvar_alpha,
        )?;
        let added = train::search_round(
            trees,
            trained,
            &solved.choice,
            &weights,
            objective.cvar_weight,
            setup,
            objective.holding_per_usd(setup.window),
            scoring,
            &on_search,
            cancel,
        )?;
        if added == 0 {
            break;
        }
        let mut fallbacks = baselines.choices(trained);
        fallbacks.push(solved.choice.clone());
        solved = solve::solve(trained, objective, &fallbacks)?;
    }
    Ok(solved)
}

/// The window every tree simulation of a request measures: the resolved warm-up, then the
/// horizon (365 days unless asked).
pub fn tree_window(settings: &Settings) -> TreeWindow {
    let config = settings.sim_config();
    TreeWindow {
        warm_up_days: config.warm_up_days,
        measured_days: config.horizon_days - config.warm_up_days,
    }
}

/// Returns `Cancelled` once the flag is raised.
pub fn check_cancel(cancel: &AtomicBool) -> Result<(), OptimizeError> {
    if cancel.load(Ordering::Relaxed) {
        Err(OptimizeError::Cancelled)
    } else {
        Ok(())
    }
}

/// The parts asked for, or by default every part with demand (the store-only models: the
/// top [`DEFAULT_OPTIMIZED_PARTS`] by downtime exposure). Errors: an unknown part
/// (`NotFound`), or no part with demand (`InvalidArgument` on `part_ids`).
pub fn optimized_parts(
    network: &Network,
    asked: &[PartId],
    model: TrainingModel,
) -> Result<Vec<PartId>, DomainError> {
    let parts = match (asked.is_empty(), model) {
        (true, TrainingModel::Echelons) => super::model::part_demand_per_day(network)
            .into_iter()
            .filter(|(part, rate)| *rate > 0.0 && network.parts.contains_key(part))
            .map(|(part, _)| part)
            .collect(),
        (true, _) => {
            let mut parts = super::model::select_parts(network, asked)?;
            parts.truncate(DEFAULT_OPTIMIZED_PARTS);
            parts
        }
        (false, _) => super::model::select_parts(network, asked)?,
    };
    if parts.is_empty() {
        return Err(DomainError::invalid(
            "part_ids",
            "no part has installed-base demand to optimise",
        ));
    }
    Ok(parts)
}

/// Part-locations a plan of `parts` simulates, for the job work limit: the every-echelon
/// model simulates each part's supply tree (its stores with demand and the warehouses and
/// depot above them), the store-only models every location of the network per part.
/// Errors: an unknown part (`NotFound` on `part`).
pub fn simulated_part_locations(
    network: &Network,
    parts: &[PartId],
    model: TrainingModel,
) -> Result<usize, DomainError> {
    Ok(match model {
        TrainingModel::Echelons => problem::part_trees(network, parts)?
            .iter()
            .map(|t| t.nodes.len())
            .sum(),
        TrainingModel::Curves | TrainingModel::LeadTime => {
            parts.len().saturating_mul(network.locations.len())
        }
    })
}

/// Failures the default training aims to simulate per candidate pass over every tree:
/// about ten seconds of one core, so small networks get many years (a stable tail
/// estimate) and large ones [`DEFAULT_CURVE_SCENARIOS`]. On the 200-part standard test
/// network this is about 600 years; at 2e7 (about 200 years) the plan at 1.5x of the
/// averages investment, seed 1, fitted the training tail (in-sample CVaR95 $50k against
/// $265k out of sample), at 600 years it scored $185k out of sample (README, planner table).
pub const DEFAULT_TRAINING_FAILURES: f64 = 6e7;
/// Most training years the default picks.
pub const MAX_DEFAULT_TRAINING_YEARS: u32 = 2_000;
/// Most yearly loss cells (trees x candidates x years) the default keeps, about 400 MB;
/// candidates per tree are counted at 40.
pub const MAX_DEFAULT_LOSS_CELLS: f64 = 5e7;

/// Training years of the every-echelon model: as asked, or by default enough years that
/// one candidate pass simulates about [`DEFAULT_TRAINING_FAILURES`] failures, within
/// [`DEFAULT_CURVE_SCENARIOS`]..=[`MAX_DEFAULT_TRAINING_YEARS`] and the memory bound
/// [`MAX_DEFAULT_LOSS_CELLS`] (never below the minimum).
pub fn training_years(settings: &Settings, trees: &[PartTree], window: TreeWindow) -> u32 {
    if settings.replications != 0 {
        return settings.replications;
    }
    let days = window.warm_up_days + window.measured_days;
    let per_year: f64 = trees
        .iter()
        .flat_map(|t| &t.nodes)
        .map(|n| n.demand_per_day * days)
        .sum();
    let by_failures = DEFAULT_TRAINING_FAILURES / per_year.max(1e-9);
    let by_memory = MAX_DEFAULT_LOSS_CELLS / (40.0 * trees.len().max(1) as f64);
    let years = by_failures
        .min(by_memory)
        .min(f64::from(MAX_DEFAULT_TRAINING_YEARS));
    (years.floor() as u32).max(DEFAULT_CURVE_SCENARIOS)
}

/// Training scenarios of a request.
pub fn scenarios(settings: &Settings, model: TrainingModel) -> u32 {
    match (settings.replications, model) {
        (0, TrainingModel::Curves | TrainingModel::Echelons) => DEFAULT_CURVE_SCENARIOS,
        (0, TrainingModel::LeadTime) => DEFAULT_SCENARIOS,
        (n, _) => n,
    }
}

/// Money tied up by `stock`.
pub fn investment(unit_costs: &[f64], stock: &[u64]) -> f64 {
    unit_costs
        .iter()
        .zip(stock)
        .map(|(c, s)| c * *s as f64)
        .sum()
}

pub use spares_solver::explain::money;

fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

fn optional_money(value: Option<f64>) -> String {
    value.map_or("-".into(), money)
}

/// The comparison as an aligned table.
pub fn comparison_table(rows: &[PlanEvaluation]) -> String {
    let mut out = format!(
        "{:<12} {:>11} {:>9} {:>10} {:>10} {:>10} {:>11} {:>9} {:>10} {:>11}\n",
        "plan",
        "investment",
        "fill rate",
        "mean cost",
        "p95 cost",
        "p99 cost",
        "CVaR95 cost",
        "emergency",
        "in-s mean",
        "in-s CVaR95"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<12} {:>11} {:>9} {:>10} {:>10} {:>10} {:>11} {:>9.1} {:>10} {:>11}",
            r.plan,
            money(r.investment_usd),
            percent(r.fill_rate),
            money(r.downtime_cost_mean),
            money(r.downtime_cost_p95),
            money(r.downtime_cost_p99),
            money(r.downtime_cost_cvar95),
            r.emergency_shipments,
            optional_money(r.in_sample_mean),
            optional_money(r.in_sample_cvar95),
        );
    }
    out
}

/// The plan in force and the top of the downtime breakdown in two lines, when compared:
/// what the recommended plan is measured against, and where its downtime arises.
pub fn in_force_lines(result: &OptimizeResult) -> String {
    let mut out = String::new();
    if let Some(p) = &result.in_force {
        let _ = writeln!(
            out,
            "Plan in force on the same years: {} of stock, mean {}, p95 {}, CVaR95 {} a year",
            money(p.investment_usd),
            money(p.downtime_cost_mean),
            money(p.downtime_cost_p95),
            money(p.downtime_cost_cvar95),
        );
    }
    let total: f64 = result
        .downtime_by_location
        .iter()
        .map(|r| r.consequence_cost_per_year)
        .sum();
    if total > 0.0 {
        let top: Vec<String> = result
            .downtime_by_location
            .iter()
            .take(3)
            .map(|r| {
                format!(
                    "{} {} ({:.0}%)",
                    r.id,
                    money(r.consequence_cost_per_year),
                    100.0 * r.consequence_cost_per_year / total
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "Most downtime under the plan (per year): {}",
            top.join(", ")
        );
    }
    out
}

/// The paired differences as lines.
pub fn paired_table(rows: &[PairedDifference]) -> String {
    let mut out = String::new();
    for p in rows {
        let _ = writeln!(
            out,
            "consequence - {:<9} {:<7} {:>12}  95% [{}, {}]  {}",
            p.baseline,
            p.statistic,
            money(p.difference),
            money(p.low),
            money(p.high),
            if p.significant {
                "significant"
            } else {
                "not significant"
            }
        );
    }
    out
}

/// A readable summary of an optimisation result.
pub fn summarize(result: &OptimizeResult, shown: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Optimised {} parts at {} part-locations ({:?} model, {} mode) on {} scenarios (training seed {}): {:?} by {:?}{}, gap {:.2}%, {:.1} s",
        result.part_ids.len(),
        result.part_locations,
        result.model,
        result.mode.name(),
        result.scenarios,
        result.training_seed,
        result.status,
        result.method,
        result
            .backend
            .map(|b| format!(" ({})", b.name()))
            .unwrap_or_default(),
        result.gap * 100.0,
        result.solve_seconds
    );
    let _ = writeln!(out, "Simulated with {}", result.warm_up.describe());
    if let Some(budget) = result.budget_usd {
        let _ = writeln!(
            out,
            "Budget {}; plan {}",
            money(budget),
            money(result.investment_usd)
        );
    }
    if !result.change_summary.is_empty() {
        let _ = writeln!(out, "{}", result.change_summary);
    }
    if !result.unspent_reason.is_empty() {
        let _ = writeln!(
            out,
            "Unspent {}: {}",
            money(result.unspent_usd),
            result.unspent_reason
        );
    }
    if let Some(t) = &result.training {
        let _ = writeln!(
            out,
            "Training: {} trees, {} candidates, {:.3e} failures simulated in {:.1} busy s ({:.3e} per busy s), {:.1} s wall",
            t.trees,
            t.candidates,
            t.failures_simulated as f64,
            t.busy_seconds,
            t.failures_simulated as f64 / t.busy_seconds.max(1e-9),
            t.wall_seconds
        );
    }
    if let Some(seed) = result.evaluation_seed {
        let _ = writeln!(
            out,
            "Out of sample: {EVALUATION_REPLICATIONS} replications, evaluation seed {seed}; downtime cost per replication"
        );
        out.push_str(&comparison_table(&result.comparison));
        for row in result.comparison.iter().filter(|row| !row.note.is_empty()) {
            let _ = writeln!(out, "note: {}", row.note);
        }
        out.push_str(&paired_table(&result.paired));
        if !result.interval_method.is_empty() {
            let _ = writeln!(out, "Intervals: {}", result.interval_method);
        }
        out.push_str(&in_force_lines(result));
    }
    if !result.recommendations.is_empty() && shown > 0 {
        let _ = writeln!(
            out,
            "Top {} of {} levels by money held (units; averages / metric at the same investment):",
            shown.min(result.recommendations.len()),
            result.recommendations.len()
        );
    }
    for r in result.recommendations.iter().take(shown) {
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = writeln!(
            out,
            "  {} @ {}: {} (averages {}, metric {}). {}",
            r.part_id,
            r.location_id,
            r.order_up_to,
            opt(r.averages_order_up_to),
            opt(r.metric_order_up_to),
            r.explanation
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_seed_differs_from_training_seed() {
        for seed in [0, 1, 42, u64::MAX] {
            assert_ne!(evaluation_seed(seed), seed);
        }
    }
}
