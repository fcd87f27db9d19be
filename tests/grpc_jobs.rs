//! Simulation jobs end to end: progress streamed to the end, results stored and
//! readable, cancellation, bad settings refused up front, and a job cut off by
//! a restart reported as failed, never lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use jiff::Timestamp;
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::demo::DemoConfig;
use spares::pb;
use spares::service::Spares;
use spares::service::jobs::{JobKind, JobRecord, JobState};
use spares::store::Store;
use spares::store::sled_store::SledStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

async fn with_small_demo() -> TestServer {
    TestServer::with_demo(
        DemoConfig {
            seed: 5,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        Limits::default(),
    )
    .await
}

async fn follow(
    planning: &mut pb::planning_service_client::PlanningServiceClient<
        spares::cli::client::AuthChannel,
    >,
    job_id: &str,
) -> Vec<pb::Job> {
    let mut stream = planning
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    // A bound on waiting, so a broken stream fails the test instead of hanging it.
    while let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(120), stream.next()).await
    {
        seen.push(update.unwrap());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulation_job_streams_progress_and_stores_its_result() {
    let server = with_small_demo().await;
    let mut clients = server.clients().await;
    let settings = pb::SimulationSettings {
        horizon_days: 120,
        warmup_days: 20,
        replications: 20,
        seed: 11,
        part_ids: vec![],
    };
    let scenario = pb::Scenario {
        name: "slow lanes".into(),
        changes: vec![pb::ScenarioChange {
            change: Some(pb::scenario_change::Change::LeadTimeShock(
                pb::LeadTimeShock {
                    location_id: String::new(),
                    multiplier: 2.0,
                },
            )),
        }],
    };
    let job = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(settings),
            scenarios: vec![scenario],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.seed, 11);
    let updates = follow(&mut clients.planning, &job.job_id).await;
    let last = updates.last().expect("at least the final state");
    assert_eq!(
        last.state,
        pb::JobState::Succeeded as i32,
        "{}",
        last.message
    );
    assert!(
        updates.windows(2).all(|w| w[0].progress <= w[1].progress),
        "progress never goes back"
    );
    let stored = clients
        .planning
        .get_job(pb::GetJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        stored.summary.contains("first-time fill rate"),
        "{}",
        stored.summary
    );
    assert!(
        stored.summary.contains("What-if \"slow lanes\""),
        "{}",
        stored.summary
    );
    // A result over 1 MiB is not inline; GetJobResult pages it.
    assert!(stored.result_bytes > 0);
    let full = spares::cli::jobs::full_result(&mut clients.planning, &stored)
        .await
        .unwrap();
    assert_eq!(full.len() as u64, stored.result_bytes);
    let result: serde_json::Value = serde_json::from_str(&full).unwrap();
    assert_eq!(result["baseline"]["seed"], 11);
    assert_eq!(result["comparisons"].as_array().map(Vec::len), Some(1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_job_stops_a_long_simulation() {
    let server = with_small_demo().await;
    let mut clients = server.clients().await;
    // Long (ten years x 20,000 replications), yet inside the per-job work limit.
    let settings = pb::SimulationSettings {
        horizon_days: 3650,
        warmup_days: 30,
        replications: 20_000,
        seed: 3,
        part_ids: vec![],
    };
    let job = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(settings),
            scenarios: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    clients
        .planning
        .cancel_job(pb::CancelJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap();
    let updates = follow(&mut clients.planning, &job.job_id).await;
    assert_eq!(
        updates.last().unwrap().state,
        pb::JobState::Cancelled as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_simulation_settings_are_refused_before_a_job_starts() {
    let server = with_small_demo().await;
    let mut clients = server.clients().await;
    let too_many = pb::SimulationSettings {
        replications: 1_000_000,
        ..Default::default()
    };
    let status = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(too_many),
            scenarios: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("replications"),
        "{}",
        status.message()
    );
    let unknown = pb::SimulationSettings {
        part_ids: vec!["NOPE".into()],
        ..Default::default()
    };
    let status = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(unknown),
            scenarios: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let bad_change = pb::Scenario {
        name: "x".into(),
        changes: vec![pb::ScenarioChange {
            change: Some(pb::scenario_change::Change::LeadTimeShock(
                pb::LeadTimeShock {
                    location_id: String::new(),
                    multiplier: f64::NAN,
                },
            )),
        }],
    };
    let status = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: None,
            scenarios: vec![bad_change],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("scenarios[0].changes[0]"),
        "{}",
        status.message()
    );
    let missing = clients
        .planning
        .get_job(pb::GetJobRequest {
            job_id: "job-999999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    server.stop().await;
}

#[test]
fn a_job_cut_off_by_a_restart_is_reported_failed_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let now: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let running = JobRecord {
            job_id: "job-000001".into(),
            owner: String::new(),
            kind: JobKind::Simulate,
            state: JobState::Running,
            progress: 0.4,
            message: "simulating".into(),
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            seed: 99,
            request_json: "{}".into(),
            summary: String::new(),
            result_json: String::new(),
            seconds_left: Some(12.0),
            apply: false,
            rerunnable: true,
        };
        store
            .put_record(
                "jobs",
                &running.job_id,
                &serde_json::to_vec(&running).unwrap(),
            )
            .unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let spares = Spares::new(
        Arc::new(store),
        Arc::new(ManualClock::new(now)),
        Limits::default(),
    )
    .unwrap();
    let job = spares.jobs().get("job-000001").unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.seconds_left, None, "an ended job has no time left");
    assert!(
        job.message.contains("restart") && job.message.contains("seed 99"),
        "{}",
        job.message
    );
}
