//! Retiring parts, locations and lanes over gRPC: refused while stock,
//! reservations or units in transit remain (naming them) or while a location
//! still replenishes an active one; otherwise the records leave lists,
//! promises and plans, stay retired across a restart, keep their ledger
//! history, and come back when upserted again.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, location, part, receipt};
use spares::config::Limits;
use spares::pb;
use tonic::Code;

fn lane(from: &str, to: &str, mode: pb::TransportMode, kind: pb::LaneKind) -> pb::Lane {
    pb::Lane {
        from_location_id: from.into(),
        to_location_id: to.into(),
        mode: mode as i32,
        kind: kind as i32,
        transit: Some(pb::TransitTime {
            distribution: Some(pb::transit_time::Distribution::Fixed(pb::FixedTransit {
                transit_hours: 8.0,
            })),
        }),
        schedule: None,
        cost_per_unit_usd: 1.0,
    }
}

fn key(from: &str, to: &str, mode: pb::TransportMode, kind: pb::LaneKind) -> pb::LaneKey {
    pb::LaneKey {
        from_location_id: from.into(),
        to_location_id: to.into(),
        mode: mode as i32,
        kind: kind as i32,
    }
}

/// DEP -> RWH -> STR (road), DEP -> STR courier emergency; P1, P2; an
/// installed base at STR.
async fn network(c: &mut spares::cli::client::Clients) {
    use pb::LocationKind as K;
    let zone = "America/Chicago";
    c.network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location("DEP", K::FactoryDepot, zone, ""),
                location("RWH", K::RegionalWarehouse, zone, "DEP"),
                location("STR", K::Store, zone, "RWH"),
            ],
        })
        .await
        .unwrap();
    use pb::{LaneKind as L, TransportMode as M};
    c.network
        .upsert_lanes(pb::UpsertLanesRequest {
            lanes: vec![
                lane("DEP", "RWH", M::Road, L::Replenishment),
                lane("RWH", "STR", M::Road, L::Replenishment),
                lane("DEP", "STR", M::Courier, L::Emergency),
            ],
        })
        .await
        .unwrap();
    c.network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![part("P1"), part("P2")],
        })
        .await
        .unwrap();
    c.network
        .upsert_installed_base(pb::UpsertInstalledBaseRequest {
            machine_models: vec![pb::MachineModel {
                id: "M".into(),
                name: "M".into(),
                downtime_cost_usd_per_hour: 100.0,
                parts: vec![pb::ModelPart {
                    part_id: "P2".into(),
                    units_per_machine: 1,
                    attach_rate: 1.0,
                    failures_per_million_operating_hours: 500.0,
                    weibull_shape: 1.0,
                }],
            }],
            fleets: vec![pb::Fleet {
                store_location_id: "STR".into(),
                machine_model_id: "M".into(),
                machine_count: 10,
                usage_hours_per_day: 10.0,
                average_age_hours: 0.0,
            }],
        })
        .await
        .unwrap();
}

fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, needle: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{status:?} should say {needle:?}"
    );
}

fn retire_parts(ids: &[&str]) -> pb::RetireRequest {
    pb::RetireRequest {
        part_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn part_ids(c: &mut spares::cli::client::Clients) -> Vec<String> {
    let parts = c
        .network
        .list_parts(pb::ListPartsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .parts;
    parts.into_iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn a_part_with_stock_is_refused_then_retired_and_revived() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    network(&mut c).await;
    c.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("r1", "P1", "RWH", 2)],
        })
        .await
        .unwrap();
    let result = c.network.retire(retire_parts(&["P1"])).await;
    refused(result, Code::FailedPrecondition, "2 on hand of P1 at RWH");

    let mut scrap = receipt("s1", "P1", "RWH", 2);
    scrap.kind = pb::MovementKind::Scrap as i32;
    c.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![scrap],
        })
        .await
        .unwrap();
    let done = c
        .network
        .retire(retire_parts(&["P1"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.part_ids, ["P1"]);
    assert_eq!(part_ids(&mut c).await, ["P2"]);
    let promise = c
        .availability
        .promise(pb::PromiseRequest {
            part_id: "P1".into(),
            quantity: 1,
            destination_location_id: "STR".into(),
            ..Default::default()
        })
        .await;
    refused(promise, Code::NotFound, "P1");
    // Again: nothing more to do, not an error.
    let again = c
        .network
        .retire(retire_parts(&["P1"]))
        .await
        .unwrap()
        .into_inner();
    assert!(again.part_ids.is_empty());
    let unknown = c.network.retire(retire_parts(&["P9"])).await;
    refused(unknown, Code::NotFound, "part_ids[0]");

    // The ledger keeps its history: the audit still replays both movements.
    let audit = server.spares.store().audit().unwrap();
    assert!(audit.problems.is_empty(), "{audit:?}");
    assert!(audit.movements >= 2, "{audit:?}");

    // Retirement survives a restart; an upsert of the id revives the part.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, Limits::default()).await;
    let mut c = server.clients().await;
    assert_eq!(part_ids(&mut c).await, ["P2"]);
    assert!(server.spares.network().retired.parts.contains_key("P1"));
    c.network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![part("P1")],
        })
        .await
        .unwrap();
    assert_eq!(part_ids(&mut c).await, ["P1", "P2"]);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, Limits::default()).await;
    let mut c = server.clients().await;
    assert_eq!(part_ids(&mut c).await, ["P1", "P2"], "revival is durable");
    server.stop().await;
}

#[tokio::test]
async fn a_location_retires_with_its_lanes_and_leaves_plans() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    network(&mut c).await;
    let regional = c
        .network
        .retire(pb::RetireRequest {
            location_ids: vec!["RWH".into()],
            ..Default::default()
        })
        .await;
    refused(regional, Code::FailedPrecondition, "it replenishes STR");

    let store = c
        .network
        .retire(pb::RetireRequest {
            location_ids: vec!["STR".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(store.location_ids, ["STR"]);
    assert_eq!(store.lanes.len(), 2, "RWH -> STR and DEP -> STR go with it");
    let lanes = c
        .network
        .list_lanes(pb::ListLanesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lanes;
    assert_eq!(lanes.len(), 1);
    let locations = c
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .locations;
    assert_eq!(locations.len(), 2);
    // The fleet at the retired store no longer makes demand: nothing to plan.
    let network = server.spares.network();
    let demand = spares::planning::model::demand_per_day(&network);
    assert!(demand.is_empty(), "{demand:?}");
    let model = spares::planning::model::build_model(&network, &["P2".to_string()]).unwrap();
    assert!(model.fleets.is_empty() && model.locations.len() == 2);

    // A backup keeps the retired store retired (and its record).
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("backup.jsonl");
    spares::cli::backup::backup(
        &file,
        Some(&spares::cli::client::Target::from(&server.url)),
        None,
    )
    .await
    .unwrap();
    let copy = tempfile::tempdir().unwrap();
    let (from, to) = (file.clone(), copy.path().to_path_buf());
    tokio::task::spawn_blocking(move || spares::cli::backup::restore(&from, &to).unwrap())
        .await
        .unwrap();
    let restored = TestServer::start_in(copy, Limits::default()).await;
    let copy_network = restored.spares.network();
    assert!(!copy_network.locations.contains_key("STR"));
    assert!(copy_network.retired.locations.contains_key("STR"));
    assert_eq!(copy_network.retired.lanes.len(), 2);
    assert_eq!(copy_network.lanes.len(), 1);
    restored.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn the_last_lane_between_two_locations_waits_for_units_in_transit() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    network(&mut c).await;
    let ship = pb::MovementRequest {
        idempotency_key: "ship".into(),
        kind: pb::MovementKind::TransferShip as i32,
        part_id: "P2".into(),
        location_id: "DEP".into(),
        quantity: 3,
        to_location_id: "RWH".into(),
        ..Default::default()
    };
    c.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("r", "P2", "DEP", 3), ship],
        })
        .await
        .unwrap();
    use pb::{LaneKind as L, TransportMode as M};
    let road = pb::RetireRequest {
        lanes: vec![key("DEP", "RWH", M::Road, L::Replenishment)],
        ..Default::default()
    };
    let result = c.network.retire(road.clone()).await;
    refused(
        result,
        Code::FailedPrecondition,
        "3 in transit of P2 from DEP to RWH",
    );
    // With another lane between them the shipment has a way in: the road lane may go.
    c.network
        .upsert_lanes(pb::UpsertLanesRequest {
            lanes: vec![lane("DEP", "RWH", M::Air, L::Replenishment)],
        })
        .await
        .unwrap();
    let done = c.network.retire(road).await.unwrap().into_inner();
    assert_eq!(done.lanes.len(), 1);
    // And the part in transit cannot retire.
    let part = c.network.retire(retire_parts(&["P2"])).await;
    refused(part, Code::FailedPrecondition, "3 in transit of P2");
    let bad = c
        .network
        .retire(pb::RetireRequest {
            lanes: vec![key("", "RWH", M::Road, L::Replenishment)],
            ..Default::default()
        })
        .await;
    refused(bad, Code::InvalidArgument, "lanes[0].from_location_id");
    server.stop().await;
}
