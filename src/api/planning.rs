//! `PlanningService`: the plan in force (policies) and, as their issues land,
//! simulation, optimisation, frontier and forecast jobs.

use super::convert::{self, convert_batch};
use super::jobs::{
    DEFAULT_RESULT_PAGE_BYTES, JobStream, MAX_RESULT_PAGE_BYTES, job_fields_to_pb,
    job_kind_from_pb, job_state_from_pb, job_to_pb, watch_job,
};
use super::util::{blocking, paginate};
use crate::domain::DomainError;
use crate::domain::network::Network;
use crate::domain::plans::PlanHeader;
use crate::pb;
use crate::pb::planning_service_server::PlanningService;
use crate::planning::forecast::{self as fc, ForecastSettings, SeriesInput};
use crate::planning::frontier::{self as fr, FrontierRequest};
use crate::planning::optimize::{
    self as op, OptimizeError, OptimizeRequest, PlanMode, TrainingModel,
};
use crate::planning::simulate::{
    Settings, SimulationRequest, WhatIf, WhatIfScenario, compact, run_simulation, summarize,
};
use crate::service::Spares;
use crate::service::jobs::{JobContext, JobKind, JobOutcome, JobRecord, JobWork, Rebuild};
use crate::store::StoreError;
use spares_solver::forecast::{DemandClass, ForecastMethod};
use spares_solver::lp::Backend;
use spares_solver::metric::MetricModel;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Bytes per report chunk: small enough for any client's receive limit.
pub const REPORT_CHUNK_BYTES: usize = 256 * 1024;

/// The stream of a report's chunks.
pub type ReportStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ReportChunk, Status>> + Send>>;

/// The gRPC face of planning.
pub struct PlanningApi {
    spares: Arc<Spares>,
}

impl PlanningApi {
    /// Serves planning for `spares`.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }
}

/// The seed to use: the request's, or one drawn from the clock and reported.
fn seed_or_pick(seed: u64, spares: &Spares) -> u64 {
    if seed != 0 {
        return seed;
    }
    let nanos = spares.clock().now().as_nanosecond();
    (nanos as u64) ^ ((nanos >> 64) as u64) | 1
}

/// Converts simulation settings from protobuf.
pub fn settings_from_pb(s: Option<&pb::SimulationSettings>, spares: &Spares) -> Settings {
    let s = s.cloned().unwrap_or_default();
    Settings {
        horizon_days: s.horizon_days,
        warmup_days: s.warmup_days,
        replications: s.replications,
        seed: seed_or_pick(s.seed, spares),
        part_ids: s.part_ids,
    }
}

fn opt(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

fn finite(field: &str, value: f64) -> Result<f64, DomainError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(DomainError::invalid(field, "must be a finite number >= 0"))
    }
}

/// Converts one what-if change from protobuf.
pub fn what_if_from_pb(change: &pb::ScenarioChange) -> Result<WhatIf, DomainError> {
    use pb::scenario_change::Change as C;
    Ok(match &change.change {
        Some(C::LocationOutage(o)) => WhatIf::Outage {
            location_id: o.location_id.clone(),
            start_day: finite("location_outage.start_day", o.start_day)?,
            duration_days: finite("location_outage.duration_days", o.duration_days)?,
        },
        Some(C::LeadTimeShock(l)) => WhatIf::LeadTimeShock {
            location_id: opt(&l.location_id),
            multiplier: finite("lead_time_shock.multiplier", l.multiplier)?,
        },
        Some(C::DemandShock(d)) => WhatIf::DemandShock {
            part_id: opt(&d.part_id),
            location_id: opt(&d.location_id),
            multiplier: finite("demand_shock.multiplier", d.multiplier)?,
            start_day: finite("demand_shock.start_day", d.start_day)?,
            duration_days: finite("demand_shock.duration_days", d.duration_days)?,
        },
        Some(C::FleetGrowth(f)) => WhatIf::FleetGrowth {
            store_location_id: f.store_location_id.clone(),
            machine_model_id: f.machine_model_id.clone(),
            additional_machines: f.additional_machines,
        },
        Some(C::StockChange(s)) => WhatIf::StockLevel {
            part_id: s.part_id.clone(),
            location_id: s.location_id.clone(),
            order_up_to: s.order_up_to,
        },
        None => return Err(DomainError::invalid("change", "a change is required")),
    })
}

fn scenarios_from_pb(scenarios: &[pb::Scenario]) -> Result<Vec<WhatIfScenario>, DomainError> {
    scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let changes = convert_batch("changes", &s.changes, what_if_from_pb)
                .map_err(|e| e.within(&format!("scenarios[{i}]")))?;
            let name = if s.name.is_empty() {
                format!("scenario {}", i + 1)
            } else {
                s.name.clone()
            };
            Ok(WhatIfScenario { name, changes })
        })
        .collect()
}

/// Longest solve a request may ask for: a job holds a thread and a core while it runs.
pub const MAX_TIME_LIMIT_SECONDS: u32 = 3_600;
/// Solve time when the request gives none.
pub const DEFAULT_TIME_LIMIT_SECONDS: u32 = 60;
/// Longest bootstrap lead time, in periods (ten years of months).
pub const MAX_LEAD_TIME_PERIODS: u32 = 120;
/// Recommendation rows in a job's readable summary.
const SUMMARY_ROWS: usize = 10;

fn backend_from_pb(value: i32) -> Result<Backend, DomainError> {
    match pb::SolverBackend::try_from(value) {
        Ok(pb::SolverBackend::Unspecified | pb::SolverBackend::Clarabel) => Ok(Backend::Clarabel),
        Ok(pb::SolverBackend::Microlp) => Ok(Backend::Microlp),
        Ok(pb::SolverBackend::Highs) if Backend::Highs.is_available() => Ok(Backend::Highs),
        Ok(pb::SolverBackend::Highs) => Err(DomainError::FailedPrecondition(
            "backend: HiGHS is not built into this server (build with --features highs)".into(),
        )),
        Err(_) => Err(DomainError::invalid(
            "backend",
            format!("unknown backend {value}"),
        )),
    }
}

/// Checks what every planning request needs of the network before a job is
/// created: it has locations and parts (else `FAILED_PRECONDITION` naming
/// `field`: there is nothing to plan), and every part asked for exists (else
/// `NOT_FOUND` naming its full path, e.g. `settings.part_ids[3]`).
pub fn check_planning_network(
    network: &Network,
    field: &str,
    part_ids: &[String],
) -> Result<(), DomainError> {
    if network.locations.is_empty() || network.parts.is_empty() {
        return Err(DomainError::FailedPrecondition(format!(
            "{field}: the network is empty ({} locations, {} parts); load a network before planning",
            network.locations.len(),
            network.parts.len()
        )));
    }
    for (i, part_id) in part_ids.iter().enumerate() {
        if !network.parts.contains_key(part_id) {
            return Err(DomainError::not_found(
                "part",
                format!("{part_id} ({field}[{i}])"),
            ));
        }
    }
    Ok(())
}

/// Converts and checks a simulation request against the network: settings
/// within their limits, the network not empty, every part and every id in
/// every scenario known, and the work within the job limit. Errors name the
/// field (`settings.part_ids[0]`, `scenarios[1].changes[0].location_id`).
pub fn simulate_from_pb(
    r: &pb::SimulateRequest,
    spares: &Spares,
) -> Result<SimulationRequest, DomainError> {
    let request = SimulationRequest {
        settings: settings_from_pb(r.settings.as_ref(), spares),
        scenarios: scenarios_from_pb(&r.scenarios)?,
    };
    let network = spares.network();
    let config = request.settings.sim_config();
    config
        .validate()
        .map_err(crate::planning::simulate::settings_error)?;
    check_planning_network(&network, "settings.part_ids", &request.settings.part_ids)?;
    let parts = crate::planning::model::select_parts(&network, &request.settings.part_ids)
        .map_err(|e| e.within("settings"))?;
    if parts.is_empty() {
        return Err(DomainError::FailedPrecondition(
            "settings.part_ids: no part has demand to simulate; name parts or load demand".into(),
        ));
    }
    for (i, scenario) in request.scenarios.iter().enumerate() {
        let prefix = format!("scenarios[{i}]");
        crate::planning::simulate::sim_scenario(&network, scenario, config.horizon_days, &prefix)?;
    }
    check_work(
        spares,
        config.replications,
        config.horizon_days,
        parts.len() * network.locations.len(),
        1 + request.scenarios.len(),
    )?;
    Ok(request)
}

/// Converts and checks an optimisation request; parts are checked against the network.
pub fn optimize_from_pb(
    r: &pb::OptimizeRequest,
    spares: &Spares,
) -> Result<OptimizeRequest, DomainError> {
    let settings = settings_from_pb(r.settings.as_ref(), spares);
    if settings.replications > op::MAX_SCENARIOS {
        return Err(DomainError::OutOfRange {
            field: "settings.replications".into(),
            reason: format!(
                "at most {} training scenarios (part-locations x scenarios bounds solver memory)",
                op::MAX_SCENARIOS
            ),
        });
    }
    if r.budget_usd.is_finite() && r.budget_usd < 0.0 {
        return Err(DomainError::FailedPrecondition(format!(
            "budget_usd: {} is below the cheapest plan (no stock, 0 USD)",
            r.budget_usd
        )));
    }
    let budget = finite("budget_usd", r.budget_usd)?;
    let cvar_alpha = match r.cvar_alpha {
        0.0 => 0.95,
        a if a > 0.0 && a < 1.0 => a,
        _ => return Err(DomainError::invalid("cvar_alpha", "must lie in (0, 1)")),
    };
    let cvar_weight = match finite("cvar_weight", r.cvar_weight)? {
        0.0 => 1.0,
        w => w,
    };
    let floor = r.critical_fill_rate_floor;
    if !(floor.is_finite() && (0.0..1.0).contains(&floor)) {
        return Err(DomainError::invalid(
            "critical_fill_rate_floor",
            "must lie in [0, 1)",
        ));
    }
    let time_limit = match r.time_limit_seconds {
        0 => DEFAULT_TIME_LIMIT_SECONDS,
        t if t > MAX_TIME_LIMIT_SECONDS => {
            return Err(DomainError::OutOfRange {
                field: "time_limit_seconds".into(),
                reason: format!("at most {MAX_TIME_LIMIT_SECONDS} (a job holds a core)"),
            });
        }
        t => t,
    };
    settings
        .sim_config()
        .validate()
        .map_err(|e| DomainError::invalid("settings", e.to_string()))?;
    let network = spares.network();
    check_planning_network(&network, "settings.part_ids", &settings.part_ids)?;
    let model = match pb::TrainingModel::try_from(r.model) {
        Ok(pb::TrainingModel::LeadTime) => TrainingModel::LeadTime,
        Ok(pb::TrainingModel::Curves) => TrainingModel::Curves,
        Ok(pb::TrainingModel::Unspecified | pb::TrainingModel::Echelons) => TrainingModel::Echelons,
        Err(_) => return Err(DomainError::invalid("model", "unknown training model")),
    };
    let mode = match pb::PlanMode::try_from(r.mode) {
        Ok(pb::PlanMode::Unspecified) if budget > 0.0 => PlanMode::Budget,
        Ok(pb::PlanMode::Unspecified | pb::PlanMode::Cost) => PlanMode::Cost,
        Ok(pb::PlanMode::Budget) if budget > 0.0 => PlanMode::Budget,
        Ok(pb::PlanMode::Budget) => {
            return Err(DomainError::invalid(
                "budget_usd",
                "budget mode needs a budget above 0 (or mode cost)",
            ));
        }
        Err(_) => return Err(DomainError::invalid("mode", "unknown plan mode")),
    };
    let parts = op::optimized_parts(&network, &settings.part_ids, model)
        .map_err(|e| e.within("settings"))?;
    let config = settings.sim_config();
    let runs = if r.compare { 4 } else { 2 };
    let part_locations =
        op::simulated_part_locations(&network, &parts, model).map_err(|e| e.within("settings"))?;
    check_work(
        spares,
        config.replications,
        config.horizon_days,
        part_locations,
        runs,
    )?;
    Ok(OptimizeRequest {
        model,
        mode,
        settings,
        budget_usd: (budget > 0.0).then_some(budget),
        cvar_alpha,
        cvar_weight,
        backend: backend_from_pb(r.backend)?,
        time_limit_seconds: f64::from(time_limit),
        critical_fill_rate_floor: (floor > 0.0).then_some(floor),
        compare: r.compare,
    })
}

/// Converts and checks a frontier request.
pub fn frontier_from_pb(
    r: &pb::FrontierRequest,
    spares: &Spares,
) -> Result<FrontierRequest, DomainError> {
    let model = match pb::FrontierMethod::try_from(r.method) {
        Ok(pb::FrontierMethod::Metric) => MetricModel::Metric,
        Ok(_) => MetricModel::VariMetric,
        Err(_) => return Err(DomainError::invalid("method", "unknown frontier method")),
    };
    let max = finite("max_investment_usd", r.max_investment_usd)?;
    let points = match r.points {
        0 => fr::DEFAULT_FRONTIER_POINTS,
        p if p > fr::MAX_FRONTIER_POINTS => {
            return Err(DomainError::OutOfRange {
                field: "points".into(),
                reason: format!("at most {} (rows of the result)", fr::MAX_FRONTIER_POINTS),
            });
        }
        p => p,
    };
    let network = spares.network();
    check_planning_network(&network, "part_ids", &r.part_ids)?;
    if crate::planning::model::select_parts(&network, &r.part_ids)?.is_empty() {
        return Err(DomainError::FailedPrecondition(
            "part_ids: no part has demand to trace a frontier for".into(),
        ));
    }
    Ok(FrontierRequest {
        model,
        max_investment_usd: (max > 0.0).then_some(max),
        points,
        part_ids: r.part_ids.clone(),
    })
}

fn forecast_method_from_pb(value: i32) -> Result<Option<ForecastMethod>, DomainError> {
    match pb::ForecastMethod::try_from(value) {
        Ok(pb::ForecastMethod::Unspecified) => Ok(None),
        Ok(pb::ForecastMethod::Croston) => Ok(Some(ForecastMethod::Croston)),
        Ok(pb::ForecastMethod::Sba) => Ok(Some(ForecastMethod::Sba)),
        Ok(pb::ForecastMethod::Tsb) => Ok(Some(ForecastMethod::Tsb)),
        Err(_) => Err(DomainError::invalid(
            "method",
            format!("unknown method {value}"),
        )),
    }
}

fn forecast_method_to_pb(method: Option<ForecastMethod>) -> pb::ForecastMethod {
    match method {
        None => pb::ForecastMethod::Unspecified,
        Some(ForecastMethod::Croston) => pb::ForecastMethod::Croston,
        Some(ForecastMethod::Sba) => pb::ForecastMethod::Sba,
        Some(ForecastMethod::Tsb) => pb::ForecastMethod::Tsb,
    }
}

fn demand_class_to_pb(class: Option<DemandClass>) -> pb::DemandClass {
    match class {
        None => pb::DemandClass::Unspecified,
        Some(DemandClass::Smooth) => pb::DemandClass::Smooth,
        Some(DemandClass::Intermittent) => pb::DemandClass::Intermittent,
        Some(DemandClass::Erratic) => pb::DemandClass::Erratic,
        Some(DemandClass::Lumpy) => pb::DemandClass::Lumpy,
    }
}

/// Converts a forecast request: its series, or the stored history of its parts.
pub fn forecast_from_pb(
    r: &pb::ForecastRequest,
    spares: &Spares,
) -> Result<(Vec<SeriesInput>, ForecastSettings), DomainError> {
    if r.lead_time_periods > MAX_LEAD_TIME_PERIODS {
        return Err(DomainError::OutOfRange {
            field: "lead_time_periods".into(),
            reason: format!("at most {MAX_LEAD_TIME_PERIODS} periods"),
        });
    }
    let settings = ForecastSettings {
        method: forecast_method_from_pb(r.method)?,
        alpha: fc::smoothing("alpha", r.alpha)?,
        beta: fc::smoothing("beta", r.beta)?,
        lead_time_periods: r.lead_time_periods,
        seed: r.seed,
    };
    let to_input = |part_id: &str, location_id: &str, q: &[u64]| SeriesInput {
        part_id: part_id.to_string(),
        location_id: location_id.to_string(),
        quantities: q.iter().map(|v| *v as f64).collect(),
    };
    if !r.series.is_empty() {
        let series = r
            .series
            .iter()
            .map(|s| to_input(&s.part_id, &s.location_id, &s.quantities))
            .collect();
        return Ok((series, settings));
    }
    if r.part_ids.is_empty() {
        return Err(DomainError::invalid(
            "series",
            "give series, or part_ids whose stored history to use",
        ));
    }
    let network = spares.network();
    let mut series = Vec::new();
    for (i, part_id) in r.part_ids.iter().enumerate() {
        if !network.parts.contains_key(part_id) {
            return Err(DomainError::not_found(
                "part",
                format!("{part_id} (part_ids[{i}])"),
            ));
        }
        series.extend(
            network
                .demand
                .values()
                .filter(|s| &s.part_id == part_id)
                .map(|s| to_input(&s.part_id, &s.location_id, &s.quantities)),
        );
    }
    Ok((series, settings))
}

fn series_forecast_to_pb(f: &fc::SeriesForecast) -> pb::SeriesForecast {
    let [p50, p90, p99] = f.lead_time_demand_quantiles.unwrap_or([0, 0, 0]);
    pb::SeriesForecast {
        part_id: f.part_id.clone(),
        location_id: f.location_id.clone(),
        demand_class: demand_class_to_pb(f.demand_class) as i32,
        average_demand_interval: f.average_demand_interval,
        size_cv_squared: f.size_cv_squared,
        method: forecast_method_to_pb(f.method) as i32,
        demand_per_period: f.demand_per_period,
        lead_time_demand_p50: p50 as f64,
        lead_time_demand_p90: p90 as f64,
        lead_time_demand_p99: p99 as f64,
    }
}

/// Makes an optimised plan the plan in force: the policies of every
/// part-location it decided (every echelon in `levels`), recorded in the
/// policy history as one plan that `RollbackPlan` can undo. Returns the line
/// the job's summary gets.
fn apply_plan(
    spares: &Spares,
    result: &op::OptimizeResult,
    job_id: &str,
) -> Result<String, String> {
    let source = format!("optimize:{job_id}");
    // Once per job: a job re-run after a takeover finds its plan applied.
    let (plan, applied_now) = spares
        .apply_plan_once(&result.levels, &source)
        .map_err(|e| format!("applying the plan: {e}"))?;
    if !applied_now {
        return Ok(format!(
            "Already applied as {} by this job before it was taken over (source {source}); undo with `spares policies rollback {}`\n",
            plan.plan_id, plan.plan_id
        ));
    }
    Ok(format!(
        "Applied as {}: {} of {} policies changed (source {source}); undo with `spares policies rollback {}`\n",
        plan.plan_id,
        plan.changes,
        result.levels.len(),
        plan.plan_id
    ))
}

/// Converts a plan header to protobuf.
fn plan_to_pb(plan: &PlanHeader, rolled_back_by: Option<&str>) -> pb::PolicyPlan {
    pb::PolicyPlan {
        plan_id: plan.plan_id.clone(),
        applied_at: Some(convert::timestamp_to_pb(plan.applied_at)),
        source: plan.source.clone(),
        rolls_back_plan_id: plan.rolls_back.clone().unwrap_or_default(),
        changes: plan.changes as u64,
        rolled_back_by_plan_id: rolled_back_by.unwrap_or_default().to_string(),
    }
}

/// The policy history page a request asks for: plans, or one plan's changes.
fn policy_history(
    spares: &Spares,
    r: &pb::GetPolicyHistoryRequest,
) -> Result<pb::GetPolicyHistoryResponse, StoreError> {
    let history = spares.plan_history()?;
    let rolled_back_by = |id: &str| {
        history
            .iter()
            .rev()
            .find(|p| p.rolls_back.as_deref() == Some(id))
            .map(|p| p.plan_id.as_str())
    };
    if r.plan_id.is_empty() {
        let items = history
            .iter()
            .map(|p| (p.plan_id.clone(), plan_to_pb(p, rolled_back_by(&p.plan_id))));
        let (plans, next_page_token) = paginate(items, r.page.as_ref(), spares.limits())?;
        return Ok(pb::GetPolicyHistoryResponse {
            plans,
            changes: Vec::new(),
            next_page_token,
        });
    }
    let plan = spares.plan(&r.plan_id)?;
    let items = plan.changes.iter().enumerate().map(|(i, c)| {
        (
            format!("{i:09}"),
            pb::PolicyChange {
                part_id: c.part_id.clone(),
                location_id: c.location_id.clone(),
                before: c.before.as_ref().map(convert::policy_to_pb),
                after: c.after.as_ref().map(convert::policy_to_pb),
            },
        )
    });
    let (changes, next_page_token) = paginate(items, r.page.as_ref(), spares.limits())?;
    Ok(pb::GetPolicyHistoryResponse {
        plans: vec![plan_to_pb(
            &plan.header,
            rolled_back_by(&plan.header.plan_id),
        )],
        changes,
        next_page_token,
    })
}

/// Refuses a job that asks for more work than the configured limit, before
/// it is queued. Work is counted in part-location-days simulated:
/// replications x simulated days x part-locations x runs (the baseline and
/// each scenario, or training and evaluation).
fn check_work(
    spares: &Spares,
    replications: u32,
    days: f64,
    part_locations: usize,
    runs: usize,
) -> Result<(), DomainError> {
    let work = f64::from(replications) * days * part_locations as f64 * runs as f64;
    let limit = spares.limits().max_job_work;
    if work > limit {
        return Err(DomainError::OutOfRange {
            field: "settings".into(),
            reason: format!(
                "{work:.3e} part-location-days ({replications} replications x {days:.0} days x {part_locations} part-locations x {runs} runs); one job may ask for at most {limit:.3e}: fewer replications, a shorter horizon, fewer parts or fewer scenarios"
            ),
        });
    }
    Ok(())
}

/// The work of a simulation job.
fn simulate_work(
    network: Arc<Network>,
    request: SimulationRequest,
) -> impl FnOnce(&JobContext) -> JobOutcome + Send + 'static {
    move |ctx| {
        let progress = |f: f64| ctx.progress(f, "simulating");
        match run_simulation(&network, &request, &progress, ctx.cancel_flag()) {
            Ok(result) => JobOutcome::Done {
                summary: summarize(&result),
                result_json: serde_json::to_string(&compact(&result)).unwrap_or_default(),
            },
            Err(_) if ctx.is_cancelled() => JobOutcome::Cancelled,
            Err(error) => JobOutcome::Failed(error.to_string()),
        }
    }
}

/// The work of an optimisation job; with `apply`, a plan found becomes the
/// plan in force.
fn optimize_work(
    spares: Arc<Spares>,
    network: Arc<Network>,
    request: OptimizeRequest,
    apply: bool,
) -> impl FnOnce(&JobContext) -> JobOutcome + Send + 'static {
    move |ctx| {
        let progress = |f: f64, message: &str| ctx.progress(f, message);
        // The simulation of candidates goes to every server's
        // workers; the result is the same bytes however many there are.
        let scoring = match spares.shared_scoring(ctx.job_id()) {
            Ok(scoring) => scoring,
            Err(error) => return JobOutcome::Failed(error.to_string()),
        };
        let outcome =
            op::run_optimize_with(&network, &request, &scoring, &progress, ctx.cancel_flag());
        drop(scoring);
        match outcome {
            Ok(result) => {
                let mut summary = op::summarize(&result, SUMMARY_ROWS);
                if apply {
                    match apply_plan(&spares, &result, ctx.job_id()) {
                        Ok(line) => summary.push_str(&line),
                        Err(message) => return JobOutcome::Failed(message),
                    }
                }
                JobOutcome::Done {
                    summary,
                    result_json: serde_json::to_string(&result).unwrap_or_default(),
                }
            }
            Err(OptimizeError::Cancelled) => JobOutcome::Cancelled,
            Err(_) if ctx.is_cancelled() => JobOutcome::Cancelled,
            Err(error) => JobOutcome::Failed(error.to_string()),
        }
    }
}

/// The work of a frontier job.
fn frontier_work(
    network: Arc<Network>,
    request: FrontierRequest,
) -> impl FnOnce(&JobContext) -> JobOutcome + Send + 'static {
    move |ctx| {
        ctx.progress(0.0, "tracing the frontier");
        if ctx.is_cancelled() {
            return JobOutcome::Cancelled;
        }
        match fr::run_frontier(&network, &request) {
            Ok(result) => JobOutcome::Done {
                summary: fr::summarize(&result),
                result_json: serde_json::to_string(&result).unwrap_or_default(),
            },
            Err(error) => JobOutcome::Failed(error.to_string()),
        }
    }
}

/// Builds a stored job's work again, for a server that takes over the job
/// of a server that died: the request from `request_json`, the network as
/// the store holds it now (read there rather than from this server's copy,
/// which follows the store only every poll; it is the one the job's server
/// had, unless it changed since), the same seed and `apply`. Errors: a message saying why the job
/// cannot run again (its request does not read, the network cannot load).
pub fn rebuild_job(spares: &Arc<Spares>, record: &JobRecord) -> Result<JobWork, String> {
    fn read<T: serde::de::DeserializeOwned>(record: &JobRecord) -> Result<T, String> {
        serde_json::from_str(&record.request_json)
            .map_err(|e| format!("its stored request does not read: {e}"))
    }
    let network = Arc::new(
        spares
            .store()
            .load_network()
            .map_err(|e| format!("the network does not load: {e}"))?,
    );
    let work: JobWork = match record.kind {
        JobKind::Simulate => Box::new(simulate_work(network, read(record)?)),
        JobKind::Optimize => Box::new(optimize_work(
            spares.clone(),
            network,
            read(record)?,
            record.apply,
        )),
        JobKind::Frontier => Box::new(frontier_work(network, read(record)?)),
    };
    Ok(work)
}

/// [`rebuild_job`] for `spares`' job registry (it holds the application
/// only weakly: the registry belongs to it).
pub fn job_rebuilder(spares: &Arc<Spares>) -> Rebuild {
    let weak = Arc::downgrade(spares);
    Arc::new(move |record: &JobRecord| match weak.upgrade() {
        Some(spares) => rebuild_job(&spares, record),
        None => Err("the server is stopping".into()),
    })
}

fn job_id(id: &str) -> Result<&str, DomainError> {
    if id.is_empty() {
        return Err(DomainError::invalid("job_id", "is required"));
    }
    Ok(id)
}

#[tonic::async_trait]
impl PlanningService for PlanningApi {
    async fn set_policies(
        &self,
        request: Request<pb::SetPoliciesRequest>,
    ) -> Result<Response<pb::SetPoliciesResponse>, Status> {
        let batch = convert_batch(
            "policies",
            &request.get_ref().policies,
            convert::policy_from_pb,
        )?;
        let updated = blocking(&self.spares, move |s| s.set_policies(batch)).await?;
        Ok(Response::new(pb::SetPoliciesResponse {
            updated: u32::try_from(updated).unwrap_or(u32::MAX),
        }))
    }

    async fn get_policies(
        &self,
        request: Request<pb::GetPoliciesRequest>,
    ) -> Result<Response<pb::GetPoliciesResponse>, Status> {
        let r = request.into_inner();
        let network = self.spares.network();
        let items = network
            .policies
            .values()
            .filter(|p| r.part_id.is_empty() || p.part_id == r.part_id)
            .filter(|p| r.location_id.is_empty() || p.location_id == r.location_id)
            .map(|p| {
                (
                    format!("{}\u{1f}{}", p.part_id, p.location_id),
                    convert::policy_to_pb(p),
                )
            });
        let (policies, next_page_token) = paginate(items, r.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::GetPoliciesResponse {
            policies,
            next_page_token,
        }))
    }

    async fn simulate(
        &self,
        request: Request<pb::SimulateRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let owner = super::gate::caller(&request)?;
        // Checked before queueing, so bad input is an error now, not a failed job later.
        let request = simulate_from_pb(request.get_ref(), &self.spares)?;
        let network = self.spares.network();
        let request_json = serde_json::to_string(&request).unwrap_or_default();
        let seed = request.settings.seed;
        let job = self.spares.jobs().submit(
            JobKind::Simulate,
            &owner.id,
            seed,
            request_json,
            false,
            simulate_work(network, request),
        )?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn optimize(
        &self,
        request: Request<pb::OptimizeRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let owner = super::gate::caller(&request)?;
        let r = request.into_inner();
        // Checked before queueing, so bad input is an error now, not a failed job later.
        let request = optimize_from_pb(&r, &self.spares)?;
        let apply = r.apply;
        let network = self.spares.network();
        let request_json = serde_json::to_string(&request).unwrap_or_default();
        let seed = request.settings.seed;
        let job = self.spares.jobs().submit(
            JobKind::Optimize,
            &owner.id,
            seed,
            request_json,
            apply,
            optimize_work(self.spares.clone(), network, request, apply),
        )?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn frontier(
        &self,
        request: Request<pb::FrontierRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let owner = super::gate::caller(&request)?;
        let request = frontier_from_pb(request.get_ref(), &self.spares)?;
        let network = self.spares.network();
        let request_json = serde_json::to_string(&request).unwrap_or_default();
        let job = self.spares.jobs().submit(
            JobKind::Frontier,
            &owner.id,
            0,
            request_json,
            false,
            frontier_work(network, request),
        )?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn forecast(
        &self,
        request: Request<pb::ForecastRequest>,
    ) -> Result<Response<pb::ForecastResponse>, Status> {
        let (series, settings) = forecast_from_pb(request.get_ref(), &self.spares)?;
        let forecasts = tokio::task::spawn_blocking(move || fc::forecast_all(&series, &settings))
            .await
            .map_err(|e| Status::internal(format!("forecast task: {e}")))??;
        Ok(Response::new(pb::ForecastResponse {
            forecasts: forecasts.iter().map(series_forecast_to_pb).collect(),
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let record = self.spares.jobs().get(job_id(&request.get_ref().job_id)?)?;
        Ok(Response::new(job_to_pb(&record)))
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let updates = self
            .spares
            .jobs()
            .watch(job_id(&request.get_ref().job_id)?)?;
        Ok(Response::new(watch_job(updates, self.spares.closing())))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let principal = super::gate::caller(&request)?;
        let id = job_id(&request.get_ref().job_id)?;
        // Jobs belong to the principal that started them: only it and
        // administrators stop them (planners read and watch every job, so
        // saying that the job exists leaks nothing).
        let job = self.spares.jobs().get(id)?;
        if principal.role != crate::auth::Role::Admin && job.owner != principal.id {
            return Err(super::status::status(
                tonic::Code::PermissionDenied,
                format!(
                    "job {id} belongs to another principal; only its owner or an administrator may cancel it"
                ),
            ));
        }
        let record = self.spares.jobs().cancel(id)?;
        Ok(Response::new(job_to_pb(&record)))
    }

    async fn get_job_result(
        &self,
        request: Request<pb::GetJobResultRequest>,
    ) -> Result<Response<pb::JobResultPage>, Status> {
        let r = request.into_inner();
        let max_bytes = match r.max_bytes as usize {
            0 => DEFAULT_RESULT_PAGE_BYTES,
            n if n > MAX_RESULT_PAGE_BYTES => {
                return Err(DomainError::OutOfRange {
                    field: "max_bytes".into(),
                    reason: format!("at most {MAX_RESULT_PAGE_BYTES}"),
                }
                .into());
            }
            n => n,
        };
        let id = job_id(&r.job_id)?.to_string();
        let (data, total_bytes) = self.spares.jobs().result_page(&id, r.offset, max_bytes)?;
        let next_offset = r.offset + data.len() as u64;
        Ok(Response::new(pb::JobResultPage {
            job_id: id,
            offset: r.offset,
            data,
            total_bytes,
            next_offset,
        }))
    }

    type GetJobReportStream = ReportStream;

    async fn get_job_report(
        &self,
        request: Request<pb::GetJobReportRequest>,
    ) -> Result<Response<Self::GetJobReportStream>, Status> {
        let record = self.spares.jobs().get(job_id(&request.get_ref().job_id)?)?;
        let html = tokio::task::spawn_blocking(move || crate::report::render(&record))
            .await
            .map_err(|e| Status::internal(format!("report task: {e}")))??;
        let total_bytes = html.len() as u64;
        let chunks: Vec<Result<pb::ReportChunk, Status>> = html
            .into_bytes()
            .chunks(REPORT_CHUNK_BYTES)
            .enumerate()
            .map(|(i, data)| {
                Ok(pb::ReportChunk {
                    data: data.to_vec(),
                    media_type: if i == 0 {
                        "text/html; charset=utf-8".into()
                    } else {
                        String::new()
                    },
                    total_bytes: if i == 0 { total_bytes } else { 0 },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = request.into_inner();
        let kind = job_kind_from_pb(r.kind, "kind")?;
        let state = job_state_from_pb(r.state, "state")?;
        let size = super::util::page_size(r.page.as_ref(), self.spares.limits())?;
        let after = r.page.as_ref().map_or("", |p| p.page_token.as_str());
        let owner = (!r.owner.is_empty()).then_some(r.owner.as_str());
        let (records, more) = self.spares.jobs().list(kind, state, owner, after, size)?;
        let next_page_token = match (more, records.last()) {
            (true, Some((last, _))) => last.job_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListJobsResponse {
            jobs: records
                .iter()
                .map(|(record, bytes)| job_fields_to_pb(record, *bytes))
                .collect(),
            next_page_token,
        }))
    }

    async fn get_policy_history(
        &self,
        request: Request<pb::GetPolicyHistoryRequest>,
    ) -> Result<Response<pb::GetPolicyHistoryResponse>, Status> {
        let r = request.into_inner();
        let response = blocking(&self.spares, move |s| policy_history(s, &r)).await?;
        Ok(Response::new(response))
    }

    async fn rollback_plan(
        &self,
        request: Request<pb::RollbackPlanRequest>,
    ) -> Result<Response<pb::PolicyPlan>, Status> {
        let plan_id = request.into_inner().plan_id;
        if plan_id.is_empty() {
            return Err(DomainError::invalid("plan_id", "is required").into());
        }
        let plan = blocking(&self.spares, move |s| s.rollback_plan(&plan_id)).await?;
        Ok(Response::new(plan_to_pb(&plan, None)))
    }
}
