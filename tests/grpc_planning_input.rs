//! Bad planning input is refused at the edge, before a job exists: every
//! Optimize, Simulate and Frontier request with an unknown part or location,
//! an empty network, a NaN or infinite number, a negative weight or an alpha
//! outside (0, 1) gets a status whose message names the field, and the job
//! count stays at zero. (Cases already in `grpc_planning.rs` and
//! `grpc_edges.rs`, such as a negative or NaN budget and unknown ids in an
//! outage, fleet growth or stock change, are not repeated here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, small_network};
use pb::scenario_change::Change;
use spares::pb;
use tonic::{Code, Status};

/// Asserts the status code, that the message names `field`, and that no job
/// was created.
fn refused(server: &TestServer, status: &Status, code: Code, field: &str) {
    assert_eq!(status.code(), code, "{field}: {status:?}");
    assert!(status.message().contains(field), "{field}: {status:?}");
    assert_eq!(
        server.spares.jobs().count(),
        0,
        "{field}: a job was created"
    );
}

fn parts(ids: &[&str]) -> Option<pb::SimulationSettings> {
    Some(pb::SimulationSettings {
        part_ids: ids.iter().map(|id| id.to_string()).collect(),
        replications: 10,
        horizon_days: 30,
        ..Default::default()
    })
}

fn optimize(change: impl FnOnce(&mut pb::OptimizeRequest)) -> pb::OptimizeRequest {
    let mut request = pb::OptimizeRequest {
        settings: parts(&["P1"]),
        ..Default::default()
    };
    change(&mut request);
    request
}

fn simulate_with(change: Change) -> pb::SimulateRequest {
    pb::SimulateRequest {
        settings: parts(&["P1"]),
        scenarios: vec![pb::Scenario {
            name: "what if".into(),
            changes: vec![pb::ScenarioChange {
                change: Some(change),
            }],
        }],
    }
}

#[tokio::test]
async fn an_empty_network_is_a_failed_precondition_for_every_planning_job() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    let status = c
        .planning
        .optimize(pb::OptimizeRequest::default())
        .await
        .unwrap_err();
    refused(
        &server,
        &status,
        Code::FailedPrecondition,
        "settings.part_ids",
    );
    let status = c
        .planning
        .simulate(pb::SimulateRequest::default())
        .await
        .unwrap_err();
    refused(
        &server,
        &status,
        Code::FailedPrecondition,
        "settings.part_ids",
    );
    let status = c
        .planning
        .frontier(pb::FrontierRequest::default())
        .await
        .unwrap_err();
    refused(&server, &status, Code::FailedPrecondition, "part_ids");
    assert!(status.message().contains("network is empty"), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_parts_are_not_found_naming_their_index() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let four = parts(&["P1", "P2", "P3", "NO-SUCH-PART"]);
    let status = c
        .planning
        .optimize(pb::OptimizeRequest {
            settings: four.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(&server, &status, Code::NotFound, "settings.part_ids[3]");
    let status = c
        .planning
        .simulate(pb::SimulateRequest {
            settings: four,
            scenarios: vec![],
        })
        .await
        .unwrap_err();
    refused(&server, &status, Code::NotFound, "settings.part_ids[3]");
    let status = c
        .planning
        .frontier(pb::FrontierRequest {
            part_ids: vec!["P2".into(), "NO-SUCH-PART".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(&server, &status, Code::NotFound, "part_ids[1]");
    server.stop().await;
}

#[tokio::test]
async fn unknown_ids_in_shocks_are_not_found_naming_their_path() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let cases = [
        (
            Change::LeadTimeShock(pb::LeadTimeShock {
                location_id: "NOWHERE".into(),
                multiplier: 2.0,
            }),
            "scenarios[0].changes[0].location_id",
        ),
        (
            Change::DemandShock(pb::DemandShock {
                part_id: "NO-SUCH-PART".into(),
                multiplier: 2.0,
                ..Default::default()
            }),
            "scenarios[0].changes[0].part_id",
        ),
        (
            Change::DemandShock(pb::DemandShock {
                location_id: "NOWHERE".into(),
                multiplier: 2.0,
                ..Default::default()
            }),
            "scenarios[0].changes[0].location_id",
        ),
    ];
    for (change, field) in cases {
        let status = c
            .planning
            .simulate(simulate_with(change))
            .await
            .unwrap_err();
        refused(&server, &status, Code::NotFound, field);
    }
    server.stop().await;
}

#[tokio::test]
async fn non_finite_numbers_weights_and_alphas_name_the_field() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let optimizations = [
        (optimize(|r| r.cvar_weight = f64::NAN), "cvar_weight"),
        (optimize(|r| r.cvar_weight = f64::INFINITY), "cvar_weight"),
        (optimize(|r| r.cvar_weight = -0.5), "cvar_weight"),
        (optimize(|r| r.cvar_alpha = f64::NAN), "cvar_alpha"),
        (optimize(|r| r.cvar_alpha = 1.0), "cvar_alpha"),
        (optimize(|r| r.cvar_alpha = -0.05), "cvar_alpha"),
        (optimize(|r| r.cvar_alpha = f64::INFINITY), "cvar_alpha"),
        (optimize(|r| r.budget_usd = f64::INFINITY), "budget_usd"),
        (
            optimize(|r| r.critical_fill_rate_floor = f64::NAN),
            "critical_fill_rate_floor",
        ),
    ];
    for (request, field) in optimizations {
        let status = c.planning.optimize(request).await.unwrap_err();
        refused(&server, &status, Code::InvalidArgument, field);
    }
    let simulations = [
        (
            Change::DemandShock(pb::DemandShock {
                multiplier: f64::NAN,
                ..Default::default()
            }),
            "scenarios[0].changes[0].demand_shock.multiplier",
        ),
        (
            Change::LeadTimeShock(pb::LeadTimeShock {
                location_id: String::new(),
                multiplier: -1.0,
            }),
            "scenarios[0].changes[0].lead_time_shock.multiplier",
        ),
        (
            Change::LocationOutage(pb::LocationOutage {
                location_id: "STR".into(),
                start_day: 1.0,
                duration_days: f64::INFINITY,
            }),
            "scenarios[0].changes[0].location_outage.duration_days",
        ),
    ];
    for (change, field) in simulations {
        let status = c
            .planning
            .simulate(simulate_with(change))
            .await
            .unwrap_err();
        refused(&server, &status, Code::InvalidArgument, field);
    }
    for max in [f64::NAN, f64::INFINITY] {
        let status = c
            .planning
            .frontier(pb::FrontierRequest {
                max_investment_usd: max,
                ..Default::default()
            })
            .await
            .unwrap_err();
        refused(
            &server,
            &status,
            Code::InvalidArgument,
            "max_investment_usd",
        );
    }
    let status = c
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                replications: spares_simulations::MAX_REPLICATIONS + 1,
                ..parts(&["P1"]).unwrap()
            }),
            scenarios: vec![],
        })
        .await
        .unwrap_err();
    refused(&server, &status, Code::OutOfRange, "settings.replications");
    // The count does move: a good request creates a job.
    c.planning
        .simulate(pb::SimulateRequest {
            settings: parts(&["P1"]),
            scenarios: vec![],
        })
        .await
        .unwrap();
    assert_eq!(server.spares.jobs().count(), 1);
    server.stop().await;
}

/// The job work limit counts what a plan simulates: the every-echelon model simulates each
/// part's supply tree, so it is not refused for the network's size times its parts, which
/// the store-only models do simulate (this refused the full demo at its defaults).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_limit_counts_the_supply_trees_an_echelon_plan_simulates() {
    use spares::planning::optimize::{TrainingModel, optimized_parts, simulated_part_locations};
    let (replications, horizon, warmup) = (20u32, 60u32, 30u32);
    let demo = spares::demo::DemoConfig {
        seed: 5,
        parts: 40,
        stores: 12,
        ..Default::default()
    };
    // Work as the server counts it: replications x days x part-locations x 2 runs.
    let network = {
        let probe = TestServer::with_demo(demo.clone(), spares::config::Limits::default()).await;
        probe.spares.network()
    };
    let work = |model: TrainingModel| {
        let parts = optimized_parts(&network, &[], model).unwrap();
        let part_locations = simulated_part_locations(&network, &parts, model).unwrap();
        f64::from(replications) * f64::from(horizon + warmup) * part_locations as f64 * 2.0
    };
    let (echelons, curves) = (work(TrainingModel::Echelons), work(TrainingModel::Curves));
    assert!(echelons < curves, "{echelons} vs {curves}");
    let server = TestServer::with_demo(
        demo,
        spares::config::Limits {
            max_job_work: (echelons * curves).sqrt(),
            ..Default::default()
        },
    )
    .await;
    let mut clients = server.clients().await;
    let request = |model: pb::TrainingModel| pb::OptimizeRequest {
        settings: Some(pb::SimulationSettings {
            replications,
            horizon_days: horizon,
            warmup_days: warmup,
            seed: 3,
            ..Default::default()
        }),
        model: model as i32,
        ..Default::default()
    };
    let job = clients
        .planning
        .optimize(request(pb::TrainingModel::Echelons))
        .await
        .expect("the echelon plan is within the limit")
        .into_inner();
    clients
        .planning
        .cancel_job(pb::CancelJobRequest { job_id: job.job_id })
        .await
        .unwrap();
    let status = clients
        .planning
        .optimize(request(pb::TrainingModel::Curves))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("settings"), "{status:?}");
}
