//! Jobs across replicas on PostgreSQL, with real `spares serve` processes on
//! one fresh schema (a short job lease from a config file):
//!
//! - Killing (SIGKILL) the replica running an optimisation job mid-job: the
//!   other replica takes the job over once its lease runs out, runs it again
//!   from the stored request with the same seed, and its result is the
//!   bytes (timing fields aside) of the same request run on one replica.
//!   Stopping it with SIGTERM instead hands the job on the same way (it is
//!   not recorded as interrupted).
//! - A replica that starts while another runs a job leaves the job alone
//!   (it is not marked failed), and answers GetJob, ListJobs, WatchJob and
//!   GetJobResult for it.
//!
//! - The job leases pass one set of checks both in memory and in the
//!   `job_leases` table: one owner per lease, renewals by the owner only, a
//!   cancel request seen at the renewal, an expired lease claimed exactly
//!   once (also by threads racing for twenty of them), release and abandon
//!   by the owner only.
//!
//! Skips (and says so) without a PostgreSQL server; see
//! `ledger_support::backend`. Bounds are hang guards, not speed goals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ledger_support;

use common::process::{ServerProcess, spawn};
use ledger_support::{Backend, Place};
use spares::cli::client::{Clients, connect};
use spares::pb;
use spares::planning::testnet::{TestNetworkShape, generate};
use spares::store::leases::LocalJobLeases;
use spares::store::{PgStore, Store, network_records};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// The checks every [`JobLeases`] must pass.
mod conformance {
    use spares::store::leases::{HeldLease, JobLeases};
    use std::sync::Arc;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(600);

    fn ids(held: &[HeldLease]) -> Vec<&str> {
        held.iter().map(|h| h.job_id.as_str()).collect()
    }

    /// A lease has one owner; only it renews, releases or abandons it; a
    /// live lease is never claimed; an abandoned one is claimed once, with
    /// the cancel request it carries.
    pub(crate) fn one_owner_at_a_time(leases: &dyn JobLeases) {
        let j1 = "job-1".to_string();
        assert!(leases.acquire(&j1, "a", LONG).unwrap());
        assert!(!leases.acquire(&j1, "b", LONG).unwrap(), "taken twice");
        let held = leases
            .renew("a", &[j1.clone(), "job-none".into()], LONG)
            .unwrap();
        assert_eq!(ids(&held), ["job-1"]);
        assert!(!held[0].cancel_requested);
        assert!(
            leases
                .renew("b", std::slice::from_ref(&j1), LONG)
                .unwrap()
                .is_empty()
        );
        assert!(
            leases.claim_expired("b", LONG).unwrap().is_none(),
            "a live lease was claimed"
        );
        assert!(leases.request_cancel(&j1).unwrap());
        assert!(!leases.request_cancel("job-none").unwrap());
        assert!(leases.renew("a", std::slice::from_ref(&j1), LONG).unwrap()[0].cancel_requested);
        // Only the owner lets it run out.
        leases.abandon(&j1, "b").unwrap();
        assert!(leases.claim_expired("c", LONG).unwrap().is_none());
        leases.abandon(&j1, "a").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let claimed = leases.claim_expired("c", LONG).unwrap().unwrap();
        assert_eq!(claimed.job_id, j1);
        assert!(claimed.cancel_requested, "the cancel request was lost");
        assert!(
            leases.claim_expired("d", LONG).unwrap().is_none(),
            "claimed twice"
        );
        assert!(
            leases
                .renew("a", std::slice::from_ref(&j1), LONG)
                .unwrap()
                .is_empty(),
            "the old owner renewed"
        );
        // Only the owner releases it; then it can be taken afresh.
        leases.release(&j1, "a").unwrap();
        assert!(!leases.acquire(&j1, "x", LONG).unwrap());
        leases.release(&j1, "c").unwrap();
        assert!(leases.acquire(&j1, "x", LONG).unwrap());
        leases.release(&j1, "x").unwrap();
    }

    /// Twenty expired leases, four threads claiming at once: each lease is
    /// claimed exactly once.
    pub(crate) fn expired_leases_are_claimed_once_each(leases: Arc<dyn JobLeases>) {
        for i in 0..20 {
            assert!(
                leases
                    .acquire(&format!("job-k{i:02}"), "dead", Duration::ZERO)
                    .unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
        let claimers: Vec<_> = (0..4)
            .map(|t| {
                let leases = leases.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(held) = leases.claim_expired(&format!("t{t}"), LONG).unwrap() {
                        mine.push(held.job_id);
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<String> = claimers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort();
        let expected: Vec<String> = (0..20).map(|i| format!("job-k{i:02}")).collect();
        assert_eq!(all, expected, "a lease was claimed twice or never");
    }
}

#[test]
fn the_in_memory_leases_pass_the_lease_checks() {
    conformance::one_owner_at_a_time(&LocalJobLeases::new());
    conformance::expired_leases_are_claimed_once_each(Arc::new(LocalJobLeases::new()));
}

#[test]
fn the_postgres_leases_pass_the_lease_checks() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let store = PgStore::open(&place.locator()).unwrap();
    let leases = store.job_leases().expect("PostgreSQL has job leases");
    conformance::one_owner_at_a_time(leases.as_ref());
    conformance::expired_leases_are_claimed_once_each(leases);
}

/// Longest any wait of these tests may take (a hang guard).
const BOUND: Duration = Duration::from_secs(300);

/// A fresh schema holding a small seeded test network (two regionals,
/// three stores each, twelve parts), and a config file with a two-second
/// job lease and a fast poll, so a dead replica's job moves on quickly.
struct Setup {
    place: Place,
    _dir: tempfile::TempDir,
    config: String,
}

fn setup() -> Setup {
    let place = Place::new(Backend::Postgres);
    {
        let store = PgStore::open(&place.locator()).unwrap();
        let network = generate(
            7,
            TestNetworkShape {
                regionals: 2,
                stores_per_regional: 3,
                parts: 12,
            },
        );
        store
            .save_network_records(&network_records(network))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spares.toml");
    std::fs::write(
        &config,
        "[limits]\nwork_lease_seconds = 2\nwork_poll_seconds = 0.1\n",
    )
    .unwrap();
    Setup {
        place,
        config: config.display().to_string(),
        _dir: dir,
    }
}

fn serve(setup: &Setup) -> ServerProcess {
    spawn(&[
        "serve",
        "--store",
        &setup.place.locator(),
        "--config",
        &setup.config,
        "--insecure-dev",
        "--listen",
        "127.0.0.1:0",
    ])
}

/// The every-echelon planner on the test network, seeded, with enough
/// training years to run for a few seconds (about 6 s alone on one replica
/// of a test build), so that it is still running when the tests act.
fn optimize_request() -> pb::OptimizeRequest {
    pb::OptimizeRequest {
        settings: Some(pb::SimulationSettings {
            horizon_days: 365,
            warmup_days: 60,
            replications: 800,
            seed: 20_261_130,
            part_ids: Vec::new(),
        }),
        ..Default::default()
    }
}

async fn submit(clients: &mut Clients) -> String {
    clients
        .planning
        .optimize(optimize_request())
        .await
        .unwrap()
        .into_inner()
        .job_id
}

async fn job(clients: &mut Clients, job_id: &str) -> pb::Job {
    clients
        .planning
        .get_job(pb::GetJobRequest {
            job_id: job_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn state(job: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(job.state).unwrap()
}

fn is_final(job: &pb::Job) -> bool {
    matches!(
        state(job),
        pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled
    )
}

async fn until_running(clients: &mut Clients, job_id: &str) -> pb::Job {
    let began = Instant::now();
    loop {
        let seen = job(clients, job_id).await;
        if state(&seen) != pb::JobState::Queued {
            return seen;
        }
        assert!(began.elapsed() < BOUND, "the job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until_final(clients: &mut Clients, job_id: &str) -> pb::Job {
    let began = Instant::now();
    loop {
        let seen = job(clients, job_id).await;
        if is_final(&seen) {
            assert_eq!(state(&seen), pb::JobState::Succeeded, "{}", seen.message);
            return seen;
        }
        assert!(began.elapsed() < BOUND, "the job never ended: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole result, paged with GetJobResult.
async fn result(clients: &mut Clients, job_id: &str) -> String {
    let mut bytes = Vec::new();
    loop {
        let page = clients
            .planning
            .get_job_result(pb::GetJobResultRequest {
                job_id: job_id.into(),
                offset: bytes.len() as u64,
                max_bytes: 0,
            })
            .await
            .unwrap()
            .into_inner();
        bytes.extend_from_slice(&page.data);
        if page.data.is_empty() || page.next_offset >= page.total_bytes {
            return String::from_utf8(bytes).unwrap();
        }
    }
}

/// A result with its timing fields (solve and training seconds) zeroed:
/// everything else must be the same bytes.
fn without_timing(result_json: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(result_json).unwrap();
    value["solve_seconds"] = 0.0.into();
    if let Some(training) = value.get_mut("training").filter(|t| t.is_object()) {
        training["busy_seconds"] = 0.0.into();
        training["wall_seconds"] = 0.0.into();
    }
    serde_json::to_string(&value).unwrap()
}

async fn listed(clients: &mut Clients) -> Vec<String> {
    clients
        .planning
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs
        .into_iter()
        .map(|j| j.job_id)
        .collect()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn killing_the_replica_running_a_job_lets_another_finish_it() {
    if !Backend::Postgres.available() {
        return;
    }
    let setup = setup();
    multi_thread().block_on(stop_mid_job(&setup, Stop::Kill));
}

#[test]
fn a_replica_stopped_mid_job_hands_the_job_on() {
    if !Backend::Postgres.available() {
        return;
    }
    let setup = setup();
    multi_thread().block_on(stop_mid_job(&setup, Stop::Terminate));
}

/// How the replica running the job stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL: it dies; its lease runs out.
    Kill,
    /// SIGTERM: it shuts down, handing its job on.
    Terminate,
}

async fn stop_mid_job(setup: &Setup, stop: Stop) {
    let a = serve(setup);
    let b = serve(setup);
    let mut through_a = connect(a.target()).await.unwrap();
    let mut through_b = connect(b.target()).await.unwrap();
    let job_id = submit(&mut through_a).await;
    let running = until_running(&mut through_a, &job_id).await;
    match stop {
        Stop::Kill => a.kill(),
        Stop::Terminate => {
            a.signal(15);
            assert!(a.wait(BOUND).success(), "a graceful stop failed");
        }
    }
    // The job had not ended when its replica stopped: the test is about
    // the takeover, not a job that finished first (nor one recorded as
    // interrupted by the shutdown).
    let after = job(&mut through_b, &job_id).await;
    assert!(
        !is_final(&after),
        "the job ended before its replica stopped: {} (seen running: {running:?})",
        after.message
    );
    assert!(listed(&mut through_b).await.contains(&job_id));
    let taken_over = until_final(&mut through_b, &job_id).await;
    let recovered = without_timing(&result(&mut through_b, &job_id).await);
    // The same request on one replica (the survivor, now alone).
    assert!(
        b.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("took over a job") && line.contains(&job_id)),
        "the survivor never said it took the job over"
    );
    let alone = submit(&mut through_b).await;
    let began = Instant::now();
    until_final(&mut through_b, &alone).await;
    println!(
        "the job alone on one replica: {:.1?} (for scale; no assertion)",
        began.elapsed()
    );
    let expected = without_timing(&result(&mut through_b, &alone).await);
    assert!(expected.contains("\"levels\""), "{expected}");
    assert_eq!(
        recovered, expected,
        "the job taken over gave other bytes ({})",
        taken_over.message
    );
    b.kill();
}

#[test]
fn a_replica_that_starts_while_a_job_runs_leaves_it_alone() {
    if !Backend::Postgres.available() {
        return;
    }
    let setup = setup();
    multi_thread().block_on(start_beside_a_job(&setup));
}

async fn start_beside_a_job(setup: &Setup) {
    let a = serve(setup);
    let mut through_a = connect(a.target()).await.unwrap();
    let job_id = submit(&mut through_a).await;
    until_running(&mut through_a, &job_id).await;
    // The second replica opens the database while the job runs.
    let b = serve(setup);
    let mut through_b = connect(b.target()).await.unwrap();
    let seen = job(&mut through_b, &job_id).await;
    assert_ne!(
        state(&seen),
        pb::JobState::Failed,
        "a starting replica failed another's job: {}",
        seen.message
    );
    // It had not ended when B opened the database (before it served): the
    // test is about a replica starting beside a running job.
    assert!(
        !is_final(&seen),
        "the job ended before the second replica started"
    );
    assert_ne!(
        state(&job(&mut through_a, &job_id).await),
        pb::JobState::Failed
    );
    assert_eq!(listed(&mut through_b).await, std::slice::from_ref(&job_id));
    // B follows the job it did not accept to its end.
    let mut stream = through_b
        .planning
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Ok(Some(update)) = tokio::time::timeout(BOUND, stream.next()).await {
        last = Some(update.unwrap());
    }
    let last = last.expect("the watch delivered nothing");
    assert_eq!(state(&last), pb::JobState::Succeeded, "{}", last.message);
    let through_own = until_final(&mut through_a, &job_id).await;
    assert_eq!(through_own.message, last.message);
    assert_eq!(
        result(&mut through_b, &job_id).await,
        result(&mut through_a, &job_id).await
    );
    a.kill();
    b.kill();
}
