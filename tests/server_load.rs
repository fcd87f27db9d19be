//! The real server binary under the requests that took the machine before
//! issue 12: a `Simulate` with a huge scenario list and 40 concurrent
//! simulation jobs. Each is refused or queued as the limits say; the server's
//! resident memory (VmRSS from /proc) stays under 1 GiB above what it used
//! idle; health stays SERVING; a cancelled job ends CANCELLED without
//! finishing its work; and SIGTERM stops the server with exit status 0.
//!
//! No wall-clock assertion: the only times are generous hang guards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::{ServerProcess, spawn};
use spares::cli::client::{Target, connect};
use spares::pb;
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const GIB: u64 = 1024 * 1024 * 1024;

/// A hang guard for one job to reach a state, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(600);

async fn health(url: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "spares.v1.PlanningService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

fn simulate(replications: u32, seed: u64) -> pb::SimulateRequest {
    pb::SimulateRequest {
        settings: Some(pb::SimulationSettings {
            horizon_days: 365,
            warmup_days: 30,
            replications,
            seed,
            part_ids: vec![],
        }),
        scenarios: vec![],
    }
}

/// Waits until `job` is in `state` (polling; the RSS is sampled meanwhile).
async fn wait_for(
    server: &ServerProcess,
    url: &Target,
    job: &str,
    done: impl Fn(&pb::Job) -> bool,
    peak: &mut u64,
) -> pb::Job {
    let mut clients = connect(url).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        *peak = (*peak).max(server.rss_bytes());
        let record = clients
            .planning
            .get_job(pb::GetJobRequest { job_id: job.into() })
            .await
            .unwrap()
            .into_inner();
        if done(&record) {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{job} stuck: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first of `jobs` found running (polling; a hang guard, not a timing).
async fn running_job(url: &Target, jobs: &[String]) -> String {
    let mut clients = connect(url).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        for job in jobs {
            let record = clients
                .planning
                .get_job(pb::GetJobRequest {
                    job_id: job.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            if record.state == pb::JobState::Running as i32 {
                return job.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "none of {jobs:?} started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_concurrent_simulations_are_bounded_and_cancellable() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(&[
        "demo",
        "--seed",
        "3",
        "--parts",
        "300",
        "--stores",
        "20",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let url = server.target();
    let mut clients = connect(&url).await.unwrap();
    assert_eq!(health(&url.url).await, ServingStatus::Serving as i32);
    let idle = server.rss_bytes();
    let mut peak = idle;

    // 200,000 empty scenarios (400 KB): refused at the edge, nothing built.
    let huge = pb::SimulateRequest {
        settings: None,
        scenarios: vec![pb::Scenario::default(); 200_000],
    };
    let status = clients.planning.simulate(huge).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    peak = peak.max(server.rss_bytes());

    // 40 jobs of 2,000 replications at once: the pool runs a few, queues a
    // bounded number, refuses the rest with RESOURCE_EXHAUSTED.
    let submissions: Vec<_> = (0..40)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut clients = connect(&url).await.unwrap();
                clients.planning.simulate(simulate(2_000, 100 + i)).await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for submission in submissions {
        match submission.await.unwrap() {
            Ok(job) => accepted.push(job.into_inner().job_id),
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::ResourceExhausted,
                    "{}",
                    status.message()
                );
                refused += 1;
            }
        }
        peak = peak.max(server.rss_bytes());
    }
    println!(
        "server_load: {} of 40 jobs accepted, {refused} refused (RESOURCE_EXHAUSTED)",
        accepted.len()
    );
    assert!(refused > 0, "40 jobs at once should pass the queue bound");
    assert!(!accepted.is_empty());
    assert_eq!(health(&url.url).await, ServingStatus::Serving as i32);

    // Cancel a job once it runs: whichever accepted job the pool took first
    // (waiting for one particular job would wait for every job queued before
    // it, which on a loaded machine can take longer than any guard).
    let first = running_job(&url, &accepted).await;
    clients
        .planning
        .cancel_job(pb::CancelJobRequest {
            job_id: first.clone(),
        })
        .await
        .unwrap();
    let ended = wait_for(
        &server,
        &url,
        &first,
        |j| j.state != pb::JobState::Running as i32,
        &mut peak,
    )
    .await;
    assert_eq!(ended.state, pb::JobState::Cancelled as i32, "{ended:?}");
    assert!(
        ended.progress < 1.0 && ended.result_json.is_empty(),
        "{ended:?}"
    );
    assert_eq!(health(&url.url).await, ServingStatus::Serving as i32);

    // A waiting job cancelled ends at once, never run.
    let last = accepted.last().unwrap().clone();
    let record = clients
        .planning
        .cancel_job(pb::CancelJobRequest {
            job_id: last.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        record.state == pb::JobState::Cancelled as i32
            || record.state == pb::JobState::Running as i32,
        "{record:?}"
    );
    // Cancel every other accepted job so the machine is not left busy: each
    // ends CANCELLED at once if it waited, or stops if it ran.
    for job in accepted
        .iter()
        .filter(|job| **job != first && **job != last)
    {
        let record = clients
            .planning
            .cancel_job(pb::CancelJobRequest {
                job_id: job.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            record.state == pb::JobState::Cancelled as i32
                || record.state == pb::JobState::Running as i32
                || record.state == pb::JobState::Succeeded as i32,
            "{record:?}"
        );
    }
    peak = peak.max(server.rss_bytes());
    println!(
        "server_load: RSS idle {:.0} MiB, peak {:.0} MiB",
        idle as f64 / 1048576.0,
        peak as f64 / 1048576.0
    );
    assert!(peak < idle + GIB, "RSS rose from {idle} to {peak} bytes");

    // SIGTERM: jobs stop, requests drain, exit 0.
    server.signal(15);
    let status = server.wait(PATIENCE);
    assert!(status.success(), "{status:?}");
}
