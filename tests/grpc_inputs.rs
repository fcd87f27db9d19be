//! The planning inputs over gRPC: supplier lead times on parts and per depot,
//! downtime cost per part and per class, demand rates, and lanes keyed by
//! kind. Bad values are `INVALID_ARGUMENT` naming the field; unknown ids
//! `NOT_FOUND`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, small_network};
use spares::pb;
use tonic::Code;

fn lognormal(p50: f64, p90: f64) -> pb::LeadTime {
    pb::LeadTime {
        distribution: Some(pb::lead_time::Distribution::Lognormal(
            pb::LognormalLeadTime {
                lead_time_days_p50: p50,
                lead_time_days_p90: p90,
            },
        )),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, field: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(field),
        "{status:?} should name {field}"
    );
}

#[tokio::test]
async fn part_lead_time_and_downtime_cost_round_trip_and_are_checked() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let mut part = common::part("P1");
    part.supplier_lead_time = Some(lognormal(30.0, 75.0));
    part.downtime_cost_usd_per_hour = Some(500.0);
    c.network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![part.clone()],
        })
        .await
        .unwrap();
    let got = c
        .network
        .get_part(pb::GetPartRequest {
            part_id: "P1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .part
        .unwrap();
    assert_eq!(got.supplier_lead_time, part.supplier_lead_time);
    assert_eq!(got.downtime_cost_usd_per_hour, Some(500.0));

    let mut bad = part.clone();
    bad.supplier_lead_time = Some(lognormal(30.0, 20.0));
    let result = c
        .network
        .upsert_parts(pb::UpsertPartsRequest { parts: vec![bad] })
        .await;
    assert_invalid(
        result,
        Code::InvalidArgument,
        "parts[0].supplier_lead_time.lognormal.lead_time_days_p90",
    );
    let mut bad = part;
    bad.downtime_cost_usd_per_hour = Some(f64::NAN);
    let result = c
        .network
        .upsert_parts(pb::UpsertPartsRequest { parts: vec![bad] })
        .await;
    assert_invalid(
        result,
        Code::InvalidArgument,
        "parts[0].downtime_cost_usd_per_hour",
    );
}

#[tokio::test]
async fn supplier_lead_times_apply_only_to_depots_of_known_parts() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let record = |part: &str, location: &str, lead: Option<pb::LeadTime>| pb::SupplierLeadTime {
        part_id: part.into(),
        location_id: location.into(),
        lead_time: lead,
    };
    let upsert = |records: Vec<pb::SupplierLeadTime>| pb::UpsertSupplierLeadTimesRequest {
        supplier_lead_times: records,
    };
    let reply = c
        .network
        .upsert_supplier_lead_times(upsert(vec![record(
            "P1",
            "DEP",
            Some(lognormal(60.0, 90.0)),
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.upserted, 1);
    let listed = c
        .network
        .list_supplier_lead_times(pb::ListSupplierLeadTimesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .supplier_lead_times;
    assert_eq!(
        listed,
        vec![record("P1", "DEP", Some(lognormal(60.0, 90.0)))]
    );

    let at_store = c
        .network
        .upsert_supplier_lead_times(upsert(vec![record("P1", "STR", Some(lognormal(6.0, 9.0)))]))
        .await;
    assert_invalid(
        at_store,
        Code::InvalidArgument,
        "supplier_lead_times[0].location_id",
    );
    let no_distribution = c
        .network
        .upsert_supplier_lead_times(upsert(vec![record("P1", "DEP", None)]))
        .await;
    assert_invalid(
        no_distribution,
        Code::InvalidArgument,
        "supplier_lead_times[0].lead_time",
    );
    let unknown = c
        .network
        .upsert_supplier_lead_times(upsert(vec![record("P9", "DEP", Some(lognormal(6.0, 9.0)))]))
        .await;
    assert_invalid(unknown, Code::NotFound, "supplier_lead_times[0].part_id");
    let negative = c
        .network
        .upsert_supplier_lead_times(upsert(vec![record(
            "P1",
            "DEP",
            Some(lognormal(-6.0, 9.0)),
        )]))
        .await;
    assert_invalid(
        negative,
        Code::InvalidArgument,
        "supplier_lead_times[0].lead_time.lognormal.lead_time_days_p50",
    );
}

#[tokio::test]
async fn class_costs_and_demand_rates_are_stored_listed_and_checked() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let cost = |criticality: pb::Criticality, usd: f64| pb::CriticalityCost {
        criticality: criticality as i32,
        downtime_cost_usd_per_hour: usd,
    };
    c.network
        .upsert_criticality_costs(pb::UpsertCriticalityCostsRequest {
            criticality_costs: vec![
                cost(pb::Criticality::Critical, 500.0),
                cost(pb::Criticality::Routine, 10.0),
            ],
        })
        .await
        .unwrap();
    let listed = c
        .network
        .list_criticality_costs(pb::ListCriticalityCostsRequest {})
        .await
        .unwrap()
        .into_inner()
        .criticality_costs;
    assert_eq!(listed.len(), 2);
    let negative = c
        .network
        .upsert_criticality_costs(pb::UpsertCriticalityCostsRequest {
            criticality_costs: vec![cost(pb::Criticality::Essential, -1.0)],
        })
        .await;
    assert_invalid(
        negative,
        Code::InvalidArgument,
        "criticality_costs[0].downtime_cost_usd_per_hour",
    );
    let unspecified = c
        .network
        .upsert_criticality_costs(pb::UpsertCriticalityCostsRequest {
            criticality_costs: vec![cost(pb::Criticality::Unspecified, 1.0)],
        })
        .await;
    assert_invalid(
        unspecified,
        Code::InvalidArgument,
        "criticality_costs[0].criticality",
    );

    let rate = |part: &str, location: &str, per_day: f64, ratio: f64| pb::DemandRate {
        part_id: part.into(),
        location_id: location.into(),
        failures_per_day: per_day,
        variance_to_mean_ratio: ratio,
    };
    c.network
        .upsert_demand_rates(pb::UpsertDemandRatesRequest {
            rates: vec![rate("P1", "STR", 0.2, 0.0), rate("P2", "STR", 0.1, 2.5)],
        })
        .await
        .unwrap();
    let listed = c
        .network
        .list_demand_rates(pb::ListDemandRatesRequest {
            part_id: "P1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rates;
    assert_eq!(
        listed,
        vec![rate("P1", "STR", 0.2, 1.0)],
        "0 means Poisson, stored as 1"
    );
    let below_one = c
        .network
        .upsert_demand_rates(pb::UpsertDemandRatesRequest {
            rates: vec![rate("P1", "STR", 0.2, 0.5)],
        })
        .await;
    assert_invalid(
        below_one,
        Code::InvalidArgument,
        "rates[0].variance_to_mean_ratio",
    );
    let unknown = c
        .network
        .upsert_demand_rates(pb::UpsertDemandRatesRequest {
            rates: vec![rate("P1", "STR-9", 0.2, 1.0)],
        })
        .await;
    assert_invalid(unknown, Code::NotFound, "rates[0].location_id");
}

#[tokio::test]
async fn lanes_of_one_mode_and_two_kinds_are_both_listed_page_by_page() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let lane = |kind: pb::LaneKind, mode: pb::TransportMode, hours: f64| pb::Lane {
        from_location_id: "DEP".into(),
        to_location_id: "STR".into(),
        mode: mode as i32,
        kind: kind as i32,
        transit: Some(pb::TransitTime {
            distribution: Some(pb::transit_time::Distribution::Fixed(pb::FixedTransit {
                transit_hours: hours,
            })),
        }),
        schedule: None,
        cost_per_unit_usd: 1.0,
    };
    c.network
        .upsert_lanes(pb::UpsertLanesRequest {
            lanes: vec![
                lane(pb::LaneKind::Replenishment, pb::TransportMode::Road, 48.0),
                lane(pb::LaneKind::Emergency, pb::TransportMode::Road, 8.0),
                lane(pb::LaneKind::Replenishment, pb::TransportMode::Air, 12.0),
            ],
        })
        .await
        .unwrap();
    // Re-upserting the emergency lane replaces it and nothing else.
    c.network
        .upsert_lanes(pb::UpsertLanesRequest {
            lanes: vec![lane(pb::LaneKind::Emergency, pb::TransportMode::Road, 6.0)],
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .network
            .list_lanes(pb::ListLanesRequest {
                page: Some(pb::PageRequest {
                    page_size: 1,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.lanes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let keys: Vec<(i32, i32)> = seen.iter().map(|l| (l.mode, l.kind)).collect();
    assert_eq!(
        keys,
        vec![
            (
                pb::TransportMode::Road as i32,
                pb::LaneKind::Replenishment as i32
            ),
            (
                pb::TransportMode::Road as i32,
                pb::LaneKind::Emergency as i32
            ),
            (
                pb::TransportMode::Air as i32,
                pb::LaneKind::Replenishment as i32
            ),
        ],
        "every lane once, in key order, across pages"
    );
    let emergency = &seen[1];
    let Some(pb::transit_time::Distribution::Fixed(fixed)) = emergency
        .transit
        .as_ref()
        .and_then(|t| t.distribution.as_ref())
    else {
        panic!("{emergency:?}")
    };
    assert_eq!(fixed.transit_hours, 6.0);
}
