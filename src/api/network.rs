//! `NetworkService`: locations, lanes, parts, installed base and demand history.

use super::convert::{self, convert_batch};
use super::inputs;
use super::util::{blocking, paginate};
use crate::domain::DomainError;
use crate::domain::network::Lane;
use crate::pb;
use crate::pb::network_service_server::NetworkService;
use crate::service::Spares;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC face of the network master data.
pub struct NetworkApi {
    spares: Arc<Spares>,
}

impl NetworkApi {
    /// Serves the network of `spares`.
    pub fn new(spares: Arc<Spares>) -> Self {
        Self { spares }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A lane's page-token key. It sorts as the lanes are listed, by (from, to,
/// mode, kind) with the enums by declaration order, so a page boundary between
/// two lanes of one pair never skips one.
fn lane_page_key(lane: &Lane) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        lane.from, lane.to, lane.mode as u8, lane.kind as u8
    )
}

/// A (part, location) page-token key, sorting as the map it lists.
fn pair_page_key(part_id: &str, location_id: &str) -> String {
    format!("{part_id}\u{1f}{location_id}")
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn upsert_locations(
        &self,
        request: Request<pb::UpsertLocationsRequest>,
    ) -> Result<Response<pb::UpsertLocationsResponse>, Status> {
        let batch = convert_batch(
            "locations",
            &request.get_ref().locations,
            convert::location_from_pb,
        )?;
        let upserted = blocking(&self.spares, move |s| s.upsert_locations(batch)).await?;
        Ok(Response::new(pb::UpsertLocationsResponse {
            upserted: count(upserted),
        }))
    }

    async fn list_locations(
        &self,
        request: Request<pb::ListLocationsRequest>,
    ) -> Result<Response<pb::ListLocationsResponse>, Status> {
        let request = request.into_inner();
        let kind = convert::location_kind_filter(request.kind)?;
        let network = self.spares.network();
        let items = network
            .locations
            .values()
            .filter(|l| kind.is_none_or(|k| l.kind == k))
            .map(|l| (l.id.clone(), convert::location_to_pb(l)));
        let (locations, next_page_token) =
            paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListLocationsResponse {
            locations,
            next_page_token,
        }))
    }

    async fn upsert_lanes(
        &self,
        request: Request<pb::UpsertLanesRequest>,
    ) -> Result<Response<pb::UpsertLanesResponse>, Status> {
        let batch = convert_batch("lanes", &request.get_ref().lanes, convert::lane_from_pb)?;
        let upserted = blocking(&self.spares, move |s| s.upsert_lanes(batch)).await?;
        Ok(Response::new(pb::UpsertLanesResponse {
            upserted: count(upserted),
        }))
    }

    async fn list_lanes(
        &self,
        request: Request<pb::ListLanesRequest>,
    ) -> Result<Response<pb::ListLanesResponse>, Status> {
        let request = request.into_inner();
        let network = self.spares.network();
        let items = network
            .lanes
            .values()
            .filter(|l| request.from_location_id.is_empty() || l.from == request.from_location_id)
            .filter(|l| request.to_location_id.is_empty() || l.to == request.to_location_id)
            .map(|l| (lane_page_key(l), convert::lane_to_pb(l)));
        let (lanes, next_page_token) =
            paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListLanesResponse {
            lanes,
            next_page_token,
        }))
    }

    async fn upsert_parts(
        &self,
        request: Request<pb::UpsertPartsRequest>,
    ) -> Result<Response<pb::UpsertPartsResponse>, Status> {
        let batch = convert_batch("parts", &request.get_ref().parts, convert::part_from_pb)?;
        let upserted = blocking(&self.spares, move |s| s.upsert_parts(batch)).await?;
        Ok(Response::new(pb::UpsertPartsResponse {
            upserted: count(upserted),
        }))
    }

    async fn get_part(
        &self,
        request: Request<pb::GetPartRequest>,
    ) -> Result<Response<pb::GetPartResponse>, Status> {
        let part_id = &request.get_ref().part_id;
        if part_id.is_empty() {
            return Err(DomainError::invalid("part_id", "is required").into());
        }
        let network = self.spares.network();
        let part = network
            .parts
            .get(part_id)
            .ok_or_else(|| DomainError::not_found("part", part_id.clone()))?;
        let successor_part_ids = network.successors(part_id).into_iter().skip(1).collect();
        let mut predecessor_part_ids = Vec::new();
        let mut frontier = vec![part_id.clone()];
        while let Some(current) = frontier.pop() {
            for p in network.predecessors(&current) {
                if !predecessor_part_ids.contains(&p.id) && &p.id != part_id {
                    predecessor_part_ids.push(p.id.clone());
                    frontier.push(p.id.clone());
                }
            }
        }
        predecessor_part_ids.reverse();
        Ok(Response::new(pb::GetPartResponse {
            part: Some(convert::part_to_pb(part)),
            predecessor_part_ids,
            successor_part_ids,
        }))
    }

    async fn list_parts(
        &self,
        request: Request<pb::ListPartsRequest>,
    ) -> Result<Response<pb::ListPartsResponse>, Status> {
        let request = request.into_inner();
        let criticality = convert::criticality_filter(request.criticality)?;
        let network = self.spares.network();
        let items = network
            .parts
            .values()
            .filter(|p| criticality.is_none_or(|c| p.criticality == c))
            .map(|p| (p.id.clone(), convert::part_to_pb(p)));
        let (parts, next_page_token) =
            paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListPartsResponse {
            parts,
            next_page_token,
        }))
    }

    async fn upsert_installed_base(
        &self,
        request: Request<pb::UpsertInstalledBaseRequest>,
    ) -> Result<Response<pb::UpsertInstalledBaseResponse>, Status> {
        let request = request.into_inner();
        let models: Vec<_> = request
            .machine_models
            .iter()
            .map(convert::machine_model_from_pb)
            .collect();
        let fleets: Vec<_> = request.fleets.iter().map(convert::fleet_from_pb).collect();
        let (m, f) = (count(models.len()), count(fleets.len()));
        blocking(&self.spares, move |s| {
            s.upsert_installed_base(models, fleets)
        })
        .await?;
        Ok(Response::new(pb::UpsertInstalledBaseResponse {
            machine_models_upserted: m,
            fleets_upserted: f,
        }))
    }

    async fn upsert_demand_history(
        &self,
        request: Request<pb::UpsertDemandHistoryRequest>,
    ) -> Result<Response<pb::UpsertDemandHistoryResponse>, Status> {
        let batch = convert_batch("series", &request.get_ref().series, convert::demand_from_pb)?;
        let upserted = blocking(&self.spares, move |s| s.upsert_demand(batch)).await?;
        Ok(Response::new(pb::UpsertDemandHistoryResponse {
            upserted: count(upserted),
        }))
    }

    async fn upsert_supplier_lead_times(
        &self,
        request: Request<pb::UpsertSupplierLeadTimesRequest>,
    ) -> Result<Response<pb::UpsertSupplierLeadTimesResponse>, Status> {
        let batch = convert_batch(
            "supplier_lead_times",
            &request.get_ref().supplier_lead_times,
            inputs::supplier_lead_time_from_pb,
        )?;
        let upserted = blocking(&self.spares, move |s| s.upsert_supplier_lead_times(batch)).await?;
        Ok(Response::new(pb::UpsertSupplierLeadTimesResponse {
            upserted: count(upserted),
        }))
    }

    async fn list_supplier_lead_times(
        &self,
        request: Request<pb::ListSupplierLeadTimesRequest>,
    ) -> Result<Response<pb::ListSupplierLeadTimesResponse>, Status> {
        let request = request.into_inner();
        let network = self.spares.network();
        let items = network
            .supplier_lead_times
            .values()
            .filter(|s| request.part_id.is_empty() || s.part_id == request.part_id)
            .map(|s| {
                let key = pair_page_key(&s.part_id, &s.location_id);
                (key, inputs::supplier_lead_time_to_pb(s))
            });
        let (supplier_lead_times, next_page_token) =
            paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListSupplierLeadTimesResponse {
            supplier_lead_times,
            next_page_token,
        }))
    }

    async fn upsert_criticality_costs(
        &self,
        request: Request<pb::UpsertCriticalityCostsRequest>,
    ) -> Result<Response<pb::UpsertCriticalityCostsResponse>, Status> {
        let batch = convert_batch(
            "criticality_costs",
            &request.get_ref().criticality_costs,
            inputs::criticality_cost_from_pb,
        )?;
        let upserted = blocking(&self.spares, move |s| s.upsert_criticality_costs(batch)).await?;
        Ok(Response::new(pb::UpsertCriticalityCostsResponse {
            upserted: count(upserted),
        }))
    }

    async fn list_criticality_costs(
        &self,
        _request: Request<pb::ListCriticalityCostsRequest>,
    ) -> Result<Response<pb::ListCriticalityCostsResponse>, Status> {
        let network = self.spares.network();
        let criticality_costs = network
            .criticality_costs
            .values()
            .map(inputs::criticality_cost_to_pb)
            .collect();
        Ok(Response::new(pb::ListCriticalityCostsResponse {
            criticality_costs,
        }))
    }

    async fn upsert_demand_rates(
        &self,
        request: Request<pb::UpsertDemandRatesRequest>,
    ) -> Result<Response<pb::UpsertDemandRatesResponse>, Status> {
        let batch = convert_batch(
            "rates",
            &request.get_ref().rates,
            inputs::demand_rate_from_pb,
        )?;
        let upserted = blocking(&self.spares, move |s| s.upsert_demand_rates(batch)).await?;
        Ok(Response::new(pb::UpsertDemandRatesResponse {
            upserted: count(upserted),
        }))
    }

    async fn list_demand_rates(
        &self,
        request: Request<pb::ListDemandRatesRequest>,
    ) -> Result<Response<pb::ListDemandRatesResponse>, Status> {
        let request = request.into_inner();
        let network = self.spares.network();
        let items = network
            .demand_rates
            .values()
            .filter(|r| request.part_id.is_empty() || r.part_id == request.part_id)
            .filter(|r| request.location_id.is_empty() || r.location_id == request.location_id)
            .map(|r| {
                let key = pair_page_key(&r.part_id, &r.location_id);
                (key, inputs::demand_rate_to_pb(r))
            });
        let (rates, next_page_token) =
            paginate(items, request.page.as_ref(), self.spares.limits())?;
        Ok(Response::new(pb::ListDemandRatesResponse {
            rates,
            next_page_token,
        }))
    }
}
