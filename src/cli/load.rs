//! `spares import DIR --server URL`: the bulk-load path over gRPC, in batches
//! that stay within the server's message and batch limits.

use super::client::{ClientError, connect};
use crate::api::convert;
use crate::import::ImportBundle;
use crate::pb;
use std::fmt::Write as _;

/// Records per request: well under the server's batch and message limits.
pub const BATCH: usize = 2_000;

/// Sends a bundle to a running server and returns a summary.
pub async fn import_remote(url: &str, bundle: &ImportBundle) -> Result<String, ClientError> {
    let mut c = connect(url).await?;
    let mut out = String::new();
    // Locations in one batch so the supply tree validates as a whole.
    let locations = bundle
        .locations
        .iter()
        .map(convert::location_to_pb)
        .collect();
    c.network
        .upsert_locations(pb::UpsertLocationsRequest { locations })
        .await?;
    for chunk in bundle.lanes.chunks(BATCH) {
        let lanes = chunk.iter().map(convert::lane_to_pb).collect();
        c.network
            .upsert_lanes(pb::UpsertLanesRequest { lanes })
            .await?;
    }
    // Parts in one batch so supersession chains validate as a whole.
    let parts = bundle.parts.iter().map(convert::part_to_pb).collect();
    c.network
        .upsert_parts(pb::UpsertPartsRequest { parts })
        .await?;
    let machine_models = bundle
        .machine_models
        .iter()
        .map(convert::machine_model_to_pb)
        .collect();
    c.network
        .upsert_installed_base(pb::UpsertInstalledBaseRequest {
            machine_models,
            fleets: vec![],
        })
        .await?;
    for chunk in bundle.fleets.chunks(BATCH) {
        let fleets = chunk.iter().map(convert::fleet_to_pb).collect();
        c.network
            .upsert_installed_base(pb::UpsertInstalledBaseRequest {
                machine_models: vec![],
                fleets,
            })
            .await?;
    }
    for chunk in bundle.demand.chunks(BATCH) {
        let series = chunk.iter().map(convert::demand_to_pb).collect();
        c.network
            .upsert_demand_history(pb::UpsertDemandHistoryRequest { series })
            .await?;
    }
    for chunk in bundle.policies.chunks(BATCH) {
        let policies = chunk.iter().map(convert::policy_to_pb).collect();
        c.planning
            .set_policies(pb::SetPoliciesRequest { policies })
            .await?;
    }
    send_inputs(&mut c, bundle).await?;
    let receipts = bundle.stock_receipts(&crate::service::load::stock_key_prefix(bundle));
    for chunk in receipts.chunks(BATCH) {
        let movements = chunk
            .iter()
            .map(|m| pb::MovementRequest {
                idempotency_key: m.idempotency_key.clone(),
                kind: pb::MovementKind::Receipt as i32,
                part_id: m.part_id.clone(),
                location_id: m.location_id.clone(),
                quantity: m.quantity,
                note: "import".into(),
                ..Default::default()
            })
            .collect();
        c.inventory
            .record_movements(pb::RecordMovementsRequest { movements })
            .await?;
    }
    let _ = writeln!(
        out,
        "imported {} locations, {} lanes, {} parts, {} machine models, {} fleets, {} demand series, {} policies, {} supplier lead times, {} class costs, {} demand rates, {} stock receipts",
        bundle.locations.len(),
        bundle.lanes.len(),
        bundle.parts.len(),
        bundle.machine_models.len(),
        bundle.fleets.len(),
        bundle.demand.len(),
        bundle.policies.len(),
        bundle.supplier_lead_times.len(),
        bundle.criticality_costs.len(),
        bundle.demand_rates.len(),
        receipts.len()
    );
    Ok(out)
}

/// Sends the planning inputs: supplier lead times, class costs, demand rates.
async fn send_inputs(
    c: &mut super::client::Clients,
    bundle: &ImportBundle,
) -> Result<(), ClientError> {
    use crate::api::inputs;
    for chunk in bundle.supplier_lead_times.chunks(BATCH) {
        let supplier_lead_times = chunk.iter().map(inputs::supplier_lead_time_to_pb).collect();
        c.network
            .upsert_supplier_lead_times(pb::UpsertSupplierLeadTimesRequest {
                supplier_lead_times,
            })
            .await?;
    }
    let criticality_costs = bundle
        .criticality_costs
        .iter()
        .map(inputs::criticality_cost_to_pb)
        .collect();
    c.network
        .upsert_criticality_costs(pb::UpsertCriticalityCostsRequest { criticality_costs })
        .await?;
    for chunk in bundle.demand_rates.chunks(BATCH) {
        let rates = chunk.iter().map(inputs::demand_rate_to_pb).collect();
        c.network
            .upsert_demand_rates(pb::UpsertDemandRatesRequest { rates })
            .await?;
    }
    Ok(())
}
