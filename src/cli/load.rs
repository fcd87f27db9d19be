//! `spares import DIR --server URL`: the bulk-load path over gRPC, in batches
//! that stay within the server's message and batch limits. The files are
//! validated whole and the stock counts checked against the server's stock
//! before anything is sent; the server validates each batch again. Every step
//! is idempotent (upserts replace, counts set a figure and replay their keys),
//! so an import stopped part-way is completed by running it again.

use super::client::{ClientError, Target, connect};
use crate::api::convert;
use crate::domain::ledger::MovementCommand;
use crate::import::ImportBundle;
use crate::pb;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// Records per request: well under the server's batch and message limits.
pub const BATCH: usize = 2_000;

/// Sends a bundle to a running server and returns a summary.
pub async fn import_remote(server: &Target, bundle: &ImportBundle) -> Result<String, ClientError> {
    let mut c = connect(server).await?;
    let mut out = String::new();
    // Checked before anything is written: a count below reserved units fails
    // the whole import here.
    let counts = plan_counts(&mut c, bundle).await?;
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
    let counts = send_counts(&mut c, &counts).await?;
    let _ = writeln!(
        out,
        "imported {} locations, {} lanes, {} parts, {} machine models, {} fleets, {} demand series, {} policies, {} supplier lead times, {} class costs, {} demand rates; {} of {} stock counts changed stock (the rest already matched)",
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
        counts,
        bundle.stock.len(),
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

/// Reads stock now at every location the stock file names, in pages.
async fn stock_now(
    c: &mut super::client::Clients,
    bundle: &ImportBundle,
) -> Result<HashMap<(String, String), (u64, u64)>, ClientError> {
    let locations: BTreeSet<&str> = bundle
        .stock
        .iter()
        .map(|r| r.location_id.as_str())
        .collect();
    let mut now = HashMap::new();
    for location in locations {
        let positions = super::client::fetch_all(1000, async |page| {
            let reply = c
                .inventory
                .get_stock(pb::GetStockRequest {
                    part_id: String::new(),
                    location_id: location.to_string(),
                    page: Some(page),
                })
                .await;
            match reply {
                Ok(page) => {
                    let page = page.into_inner();
                    Ok((page.positions, page.next_page_token))
                }
                // A location this import creates holds no stock yet.
                Err(status) if status.code() == tonic::Code::NotFound => {
                    Ok((Vec::new(), String::new()))
                }
                Err(status) => Err(status),
            }
        })
        .await?;
        for p in positions {
            now.insert((p.part_id, p.location_id), (p.on_hand, p.reserved));
        }
    }
    Ok(now)
}

/// The stock rows as counts against the stock on the server now. Errors:
/// every count below the units reserved there, before anything is written.
async fn plan_counts(
    c: &mut super::client::Clients,
    bundle: &ImportBundle,
) -> Result<Vec<MovementCommand>, ClientError> {
    let now = stock_now(c, bundle).await?;
    bundle
        .stock_counts(|part, location| {
            now.get(&(part.to_string(), location.to_string()))
                .copied()
                .unwrap_or((0, 0))
        })
        .map_err(|e| ClientError::Usage(e.to_string()))
}

/// Sends counts (kind COUNT: the server adjusts by the difference inside the
/// write) and returns how many there were.
async fn send_counts(
    c: &mut super::client::Clients,
    counts: &[MovementCommand],
) -> Result<usize, ClientError> {
    for chunk in counts.chunks(BATCH) {
        let movements = chunk
            .iter()
            .map(|m| pb::MovementRequest {
                idempotency_key: m.idempotency_key.clone(),
                kind: pb::MovementKind::Count as i32,
                part_id: m.part_id.clone(),
                location_id: m.location_id.clone(),
                quantity: m.quantity,
                note: m.note.clone(),
                ..Default::default()
            })
            .collect();
        c.inventory
            .record_movements(pb::RecordMovementsRequest { movements })
            .await?;
    }
    Ok(counts.len())
}
