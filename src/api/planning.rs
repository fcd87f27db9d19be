//! `PlanningService`: the plan in force (policies) and, as their issues land,
//! simulation, optimisation, frontier and forecast jobs.

use super::convert::{self, convert_batch};
use super::util::{blocking, paginate};
use crate::pb;
use crate::pb::planning_service_server::PlanningService;
use crate::service::Spares;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
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

/// A boxed stream of job snapshots.
pub type JobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send>>;

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
        _request: Request<pb::SimulateRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented(
            "Simulate arrives with the simulation issue",
        ))
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
        _request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented(
            "jobs arrive with the simulation issue",
        ))
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        _request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        Err(Status::unimplemented(
            "jobs arrive with the simulation issue",
        ))
    }

    async fn cancel_job(
        &self,
        _request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        Err(Status::unimplemented(
            "jobs arrive with the simulation issue",
        ))
    }
}
