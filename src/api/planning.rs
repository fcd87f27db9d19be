//! `PlanningService`: the plan in force (policies) and, as their issues land,
//! simulation, optimisation, frontier and forecast jobs.

use super::convert::{self, convert_batch};
use super::jobs::{JobStream, job_to_pb, watch_job};
use super::util::{blocking, paginate};
use crate::domain::DomainError;
use crate::pb;
use crate::pb::planning_service_server::PlanningService;
use crate::planning::simulate::{
    Settings, SimulationRequest, WhatIf, WhatIfScenario, compact, run_simulation, summarize,
};
use crate::service::Spares;
use crate::service::jobs::{JobKind, JobOutcome};
use std::sync::Arc;
use tonic::{Request, Response, Status};

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
        let r = request.into_inner();
        let request = SimulationRequest {
            settings: settings_from_pb(r.settings.as_ref(), &self.spares),
            scenarios: scenarios_from_pb(&r.scenarios)?,
        };
        // Check the request before queueing, so bad input is an error now, not a failed job later.
        let network = self.spares.network();
        request
            .settings
            .sim_config()
            .validate()
            .map_err(crate::planning::simulate::settings_error)?;
        crate::planning::model::select_parts(&network, &request.settings.part_ids)
            .map_err(|e| e.within("settings"))?;
        let request_json = serde_json::to_string(&request).unwrap_or_default();
        let seed = request.settings.seed;
        let job = self
            .spares
            .jobs()
            .start(JobKind::Simulate, seed, request_json, move |ctx| {
                let progress = |f: f64| ctx.progress(f, "simulating");
                match run_simulation(&network, &request, &progress, ctx.cancel_flag()) {
                    Ok(result) => JobOutcome::Done {
                        summary: summarize(&result),
                        result_json: serde_json::to_string(&compact(&result)).unwrap_or_default(),
                    },
                    Err(_) if ctx.is_cancelled() => JobOutcome::Cancelled,
                    Err(error) => JobOutcome::Failed(error.to_string()),
                }
            })?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn optimize(
        &self,
        _request: Request<pb::OptimizeRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented(
            "Optimize arrives with the safety-stock issue",
        ))
    }

    async fn frontier(
        &self,
        _request: Request<pb::FrontierRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented(
            "Frontier arrives with the safety-stock issue",
        ))
    }

    async fn forecast(
        &self,
        _request: Request<pb::ForecastRequest>,
    ) -> Result<Response<pb::ForecastResponse>, Status> {
        Err(Status::unimplemented(
            "Forecast arrives with the safety-stock issue",
        ))
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
        let record = self
            .spares
            .jobs()
            .cancel(job_id(&request.get_ref().job_id)?)?;
        Ok(Response::new(job_to_pb(&record)))
    }
}
