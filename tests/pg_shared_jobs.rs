//! Shared planning work on PostgreSQL: the work queue's checks on both
//! queues (in memory for sled, the `work_units` table for PostgreSQL), and
//! an optimisation job split across replicas that share one database.
//!
//! - The same job with the same seed gives byte-identical results (timing
//!   fields aside) on one replica, on three, and on this process's threads
//!   alone (`run_optimize`, no queue at all).
//! - A replica killed while it holds a unit's lease (its workers halted: no
//!   renewal, no result, as a dead process) loses the unit when the lease
//!   runs out; another replica computes it and the job finishes with the
//!   same bytes.
//!
//! Replicas are in-process servers (`serve_with` on 127.0.0.1:0), each with
//! its own `PgStore` and work pool on one fresh schema. Skips (and says so)
//! without a PostgreSQL server; see `ledger_support::backend`. The sled test
//! runs everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use jiff::Timestamp;
use ledger_support::{Backend, Place};
use spares::api::server::{Security, serve_with};
use spares::cli::client::{Clients, Target, connect};
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::pb;
use spares::planning::optimize::{OptimizeRequest, run_optimize};
use spares::planning::testnet::{TestNetworkShape, generate};
use spares::service::Spares;
use spares::service::jobs::{JobRecord, JobState};
use spares::store::work::LocalWorkQueue;
use spares::store::{PgStore, SledStore, Store, network_records};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Longest any one job of these tests may take (a hang guard, not a speed
/// goal).
const JOB_BOUND: Duration = Duration::from_secs(600);

/// The checks every [`WorkQueue`] must pass.
mod conformance {
    use spares::store::work::{UnitOutcome, WorkQueue};
    use std::time::Duration;

    fn inputs(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i, i.wrapping_mul(7)]).collect()
    }

    const LONG: Duration = Duration::from_secs(600);

    /// Every unit is claimed once while its lease holds, results come back
    /// in unit order whoever stored them, and a closed job is gone.
    pub(crate) fn claims_each_unit_once_and_merges_in_unit_order(queue: &dyn WorkQueue, job: &str) {
        queue.open_stage(job, 0, "echo", &inputs(5), LONG).unwrap();
        // Opening it again is a retry; another shape is refused.
        queue.open_stage(job, 0, "echo", &inputs(5), LONG).unwrap();
        assert!(queue.open_stage(job, 0, "echo", &inputs(4), LONG).is_err());
        assert!(queue.open_stage(job, 0, "other", &inputs(5), LONG).is_err());
        let mut claimed = Vec::new();
        let owners = ["a", "b"];
        while let Some(unit) = queue.claim(owners[claimed.len() % 2], LONG).unwrap() {
            assert_eq!(unit.kind, "echo");
            claimed.push(unit);
            assert!(claimed.len() <= 5, "a unit was claimed twice");
        }
        let mut units: Vec<u32> = claimed.iter().map(|c| c.id.unit).collect();
        units.sort_unstable();
        assert_eq!(units, [0, 1, 2, 3, 4]);
        let progress = queue.progress(job, 0).unwrap();
        assert_eq!((progress.done, progress.total), (0, 5));
        assert!(
            queue.results(job, 0).is_err(),
            "results before all are done"
        );
        // Stored in reverse order, by alternating owners.
        for (i, unit) in claimed.iter().enumerate().rev() {
            let owner = owners[i % 2];
            let other = owners[(i + 1) % 2];
            let result = [unit.input.clone(), vec![0xEE]].concat();
            let stored = queue.complete(other, &unit.id, UnitOutcome::Done(&result));
            assert!(!stored.unwrap(), "a worker stored a unit it does not own");
            let stored = queue.complete(owner, &unit.id, UnitOutcome::Done(&result));
            assert!(stored.unwrap());
            assert!(
                !queue
                    .complete(owner, &unit.id, UnitOutcome::Done(&[]))
                    .unwrap()
            );
        }
        let progress = queue.progress(job, 0).unwrap();
        assert_eq!(
            (progress.done, progress.total, progress.failed),
            (5, 5, None)
        );
        let expected: Vec<Vec<u8>> = inputs(5)
            .into_iter()
            .map(|i| [i, vec![0xEE]].concat())
            .collect();
        assert_eq!(queue.results(job, 0).unwrap(), expected);
        queue.close_job(job).unwrap();
        assert!(queue.progress(job, 0).is_err());
        assert!(queue.claim("a", LONG).unwrap().is_none());
    }

    /// A unit whose lease expired is claimed by another worker; the first
    /// worker can no longer renew or store it; a live lease is renewed.
    pub(crate) fn an_expired_lease_passes_the_unit_on(queue: &dyn WorkQueue, job: &str) {
        queue.open_stage(job, 3, "echo", &inputs(2), LONG).unwrap();
        // A zero lease has expired by the next call: the next claim takes
        // the same unit (units go in index order), the one after the other.
        let first = queue.claim("dead", Duration::ZERO).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let again = queue.claim("alive", LONG).unwrap().unwrap();
        assert_eq!(again.id, first.id, "the expired unit was not claimed again");
        assert_eq!(again.input, first.input);
        let second = queue.claim("alive", LONG).unwrap().unwrap();
        assert_ne!(second.id, first.id);
        assert!(queue.claim("alive", LONG).unwrap().is_none());
        let both = [first.id.clone(), second.id.clone()];
        assert_eq!(queue.renew("dead", &both, LONG).unwrap(), Vec::new());
        let mut held = queue.renew("alive", &both, LONG).unwrap();
        held.sort();
        let mut expected = both.to_vec();
        expected.sort();
        assert_eq!(held, expected);
        let late = queue.complete("dead", &first.id, UnitOutcome::Done(b"late"));
        assert!(!late.unwrap());
        assert!(
            queue
                .complete("alive", &first.id, UnitOutcome::Done(b"x"))
                .unwrap()
        );
        queue.close_job(job).unwrap();
        // A worker still holding a unit of a closed job finds it gone.
        assert!(
            !queue
                .complete("alive", &second.id, UnitOutcome::Done(b"y"))
                .unwrap()
        );
        assert_eq!(queue.renew("alive", &both, LONG).unwrap(), Vec::new());
    }

    /// Units of a stage whose coordinator stopped extending it are not
    /// claimed, and the next stage opened forgets it; a stage kept alive is
    /// worked on.
    pub(crate) fn an_abandoned_stage_is_not_worked_on_and_is_forgotten(
        queue: &dyn WorkQueue,
        job: &str,
    ) {
        let dead = format!("{job}-dead");
        queue
            .open_stage(&dead, 0, "echo", &inputs(2), Duration::ZERO)
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            queue.claim("w", LONG).unwrap().is_none(),
            "a unit of an abandoned stage was claimed"
        );
        queue.open_stage(job, 0, "echo", &inputs(1), LONG).unwrap();
        assert!(
            queue.progress(&dead, 0).is_err(),
            "the abandoned stage stayed"
        );
        let claimed = queue.claim("w", LONG).unwrap().unwrap();
        assert_eq!(claimed.id.job_id, job);
        // A coordinator that keeps its job alive keeps its stages worked on.
        queue
            .open_stage(job, 1, "echo", &inputs(1), Duration::ZERO)
            .unwrap();
        queue.keep_job(job, LONG).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let claimed = queue.claim("w", LONG).unwrap().unwrap();
        assert_eq!((claimed.id.job_id.as_str(), claimed.id.stage), (job, 1));
        queue.close_job(job).unwrap();
    }

    /// A failed unit is reported with its reason, the first by index.
    pub(crate) fn a_failed_unit_is_reported(queue: &dyn WorkQueue, job: &str) {
        queue.open_stage(job, 1, "echo", &inputs(3), LONG).unwrap();
        let mut claimed = Vec::new();
        while let Some(unit) = queue.claim("w", LONG).unwrap() {
            claimed.push(unit);
        }
        for unit in &claimed {
            let outcome = match unit.id.unit {
                0 => UnitOutcome::Done(b"ok"),
                n => UnitOutcome::Failed(if n == 1 { "first" } else { "second" }),
            };
            assert!(queue.complete("w", &unit.id, outcome).unwrap());
        }
        let progress = queue.progress(job, 1).unwrap();
        assert_eq!(progress.done, 1);
        assert_eq!(progress.failed, Some((1, "first".to_string())));
        assert!(queue.results(job, 1).is_err());
        // Two jobs' stages are independent.
        queue
            .open_stage(&format!("{job}-b"), 1, "echo", &inputs(1), LONG)
            .unwrap();
        assert_eq!(queue.progress(&format!("{job}-b"), 1).unwrap().total, 1);
        queue.close_job(job).unwrap();
        assert_eq!(queue.progress(&format!("{job}-b"), 1).unwrap().total, 1);
        queue.close_job(&format!("{job}-b")).unwrap();
    }
}

#[test]
fn the_in_memory_queue_passes_the_queue_checks() {
    let queue = LocalWorkQueue::new();
    conformance::claims_each_unit_once_and_merges_in_unit_order(&queue, "job-a");
    conformance::an_expired_lease_passes_the_unit_on(&queue, "job-b");
    conformance::a_failed_unit_is_reported(&queue, "job-c");
    conformance::an_abandoned_stage_is_not_worked_on_and_is_forgotten(&queue, "job-e");
}

#[test]
fn the_postgres_queue_passes_the_queue_checks() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    let store = PgStore::open(&place.locator()).unwrap();
    let queue = store
        .work_queue()
        .expect("PostgreSQL shares its work queue");
    conformance::claims_each_unit_once_and_merges_in_unit_order(queue.as_ref(), "job-a");
    conformance::an_expired_lease_passes_the_unit_on(queue.as_ref(), "job-b");
    conformance::a_failed_unit_is_reported(queue.as_ref(), "job-c");
    conformance::an_abandoned_stage_is_not_worked_on_and_is_forgotten(queue.as_ref(), "job-e");
    // Two queues on one database (two replicas) never claim one unit twice.
    let other = PgStore::open(&place.locator())
        .unwrap()
        .work_queue()
        .unwrap();
    let inputs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i]).collect();
    queue
        .open_stage("job-d", 0, "echo", &inputs, Duration::from_secs(600))
        .unwrap();
    let claimers: Vec<_> = [queue.clone(), other.clone(), queue.clone(), other]
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                while let Some(unit) = q.claim(&format!("w{i}"), Duration::from_secs(600)).unwrap()
                {
                    mine.push(unit.id.unit);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<u32> = claimers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..40).collect::<Vec<u32>>(),
        "a unit was claimed twice or never"
    );
}

/// The job every test runs: the every-echelon planner on a small seeded
/// test network (twelve part trees, 400 training years: each unit takes long
/// enough to be caught holding its lease), no budget.
fn optimize_request() -> pb::OptimizeRequest {
    pb::OptimizeRequest {
        settings: Some(pb::SimulationSettings {
            horizon_days: 365,
            warmup_days: 60,
            replications: 400,
            seed: 20_261_130,
            part_ids: Vec::new(),
        }),
        ..Default::default()
    }
}

fn test_network() -> spares::domain::network::Network {
    generate(
        7,
        TestNetworkShape {
            regionals: 2,
            stores_per_regional: 3,
            parts: 12,
        },
    )
}

/// Limits of a replica: one worker thread, a short lease so a dead
/// replica's unit moves on quickly, a short poll.
fn limits() -> Limits {
    Limits {
        work_threads: 1,
        work_lease: Duration::from_secs(2),
        work_poll: Duration::from_millis(25),
        job_workers: 1,
        ..Limits::default()
    }
}

/// One in-process server.
struct Replica {
    spares: Arc<Spares>,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Replica {
    async fn start(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(
            "2026-11-30T12:00:00Z".parse::<Timestamp>().unwrap(),
        ));
        let spares = tokio::task::spawn_blocking(move || {
            Arc::new(Spares::new(store, clock, limits()).unwrap())
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = spares.clone();
        let handle = tokio::spawn(async move {
            let security = Security {
                insecure_dev: true,
                ..Security::default()
            };
            serve_with(server, listener, async { drop(stopped.await) }, security)
                .await
                .unwrap();
        });
        Self {
            spares,
            url,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn on_postgres(url: &str) -> Self {
        let url = url.to_string();
        let store = tokio::task::spawn_blocking(move || PgStore::open(&url).unwrap())
            .await
            .unwrap();
        Self::start(Arc::new(store)).await
    }

    async fn clients(&self) -> Clients {
        connect(Target {
            url: self.url.clone(),
            ..Target::default()
        })
        .await
        .unwrap()
    }

    /// Stops serving and lets go of the store.
    async fn stop(mut self) {
        self.spares.work().halt();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

/// Submits the job through `replica` and waits until it ends.
async fn run_job(replica: &Replica) -> JobRecord {
    let job_id = start_job(replica).await;
    finished(replica, &job_id).await
}

async fn start_job(replica: &Replica) -> String {
    let mut clients = replica.clients().await;
    clients
        .planning
        .optimize(optimize_request())
        .await
        .unwrap()
        .into_inner()
        .job_id
}

async fn finished(replica: &Replica, job_id: &str) -> JobRecord {
    let began = Instant::now();
    loop {
        let record = replica.spares.jobs().get(job_id).unwrap();
        if record.state.is_final() {
            assert_eq!(record.state, JobState::Succeeded, "{}", record.message);
            return record;
        }
        assert!(began.elapsed() < JOB_BOUND, "the job never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
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

/// The same request on this process's threads alone, with no queue: what
/// every server must answer.
fn local_result(record: &JobRecord) -> String {
    let request: OptimizeRequest = serde_json::from_str(&record.request_json).unwrap();
    let result = run_optimize(
        &test_network(),
        &request,
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    without_timing(&serde_json::to_string(&result).unwrap())
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Over sled the job's units go through the in-memory queue and this
/// server's workers: the result is the bytes of the plain local run.
#[test]
fn a_job_through_the_local_queue_gives_the_bytes_of_a_plain_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store
        .save_network_records(&network_records(test_network()))
        .unwrap();
    let record = multi_thread().block_on(async {
        let replica = Replica::start(Arc::new(store)).await;
        let record = run_job(&replica).await;
        replica.stop().await;
        record
    });
    let result = without_timing(&record.result_json);
    assert!(result.contains("\"levels\""), "{result}");
    assert_eq!(result, local_result(&record));
}

/// Units of the job's stages in the database held by `owner`, claimed.
/// (The blocking client may not run on an async worker, hence
/// `block_in_place` in these helpers.)
fn leases_held(place: &Place, owner: &str) -> Vec<(String, i32, i32)> {
    tokio::task::block_in_place(|| leases_held_here(place, owner))
}

fn leases_held_here(place: &Place, owner: &str) -> Vec<(String, i32, i32)> {
    place
        .sql()
        .query(
            "SELECT job_id, stage, unit FROM work_units WHERE owner = $1 AND state = 'claimed'",
            &[&owner],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

fn owner_of(place: &Place, unit: &(String, i32, i32)) -> Option<String> {
    tokio::task::block_in_place(|| owner_of_here(place, unit))
}

fn owner_of_here(place: &Place, (job, stage, unit): &(String, i32, i32)) -> Option<String> {
    place
        .sql()
        .query_opt(
            "SELECT owner FROM work_units WHERE job_id = $1 AND stage = $2 AND unit = $3",
            &[job, stage, unit],
        )
        .unwrap()
        .and_then(|row| row.get(0))
}

#[test]
fn a_job_split_across_replicas_gives_the_bytes_of_one_and_survives_a_killed_replica() {
    if !Backend::Postgres.available() {
        return;
    }
    let place = Place::new(Backend::Postgres);
    {
        let store = PgStore::open(&place.locator()).unwrap();
        store
            .save_network_records(&network_records(test_network()))
            .unwrap();
    }
    multi_thread().block_on(split_and_kill(&place));
}

async fn split_and_kill(place: &Place) {
    let url = place.locator();
    // One replica.
    let a = Replica::on_postgres(&url).await;
    let alone = run_job(&a).await;
    let expected = local_result(&alone);
    assert_eq!(without_timing(&alone.result_json), expected, "one replica");
    let units_alone = a.spares.work().units_completed();
    assert!(units_alone > 0);

    // Three replicas; the job accepted by the first.
    let b = Replica::on_postgres(&url).await;
    let c = Replica::on_postgres(&url).await;
    let before = [&a, &b, &c].map(|r| r.spares.work().units_completed());
    let shared = run_job(&a).await;
    let done: Vec<u64> = [&a, &b, &c]
        .iter()
        .zip(before)
        .map(|(r, before)| r.spares.work().units_completed() - before)
        .collect();
    println!("units computed by each of three replicas: {done:?} (one alone: {units_alone})");
    assert_eq!(done.iter().sum::<u64>(), units_alone, "every unit once");
    assert_eq!(
        without_timing(&shared.result_json),
        expected,
        "three replicas"
    );

    // The coordinator's own workers stop, so B and C compute everything;
    // C is killed while it holds a lease.
    a.spares.work().halt();
    let b_before = b.spares.work().units_completed();
    let job_id = start_job(&a).await;
    let owner = c.spares.work().owner().to_string();
    let began = Instant::now();
    let in_hand = loop {
        if let Some(unit) = c.spares.work().units_in_hand().into_iter().next() {
            break unit;
        }
        let record = a.spares.jobs().get(&job_id).unwrap();
        assert!(
            !record.state.is_final(),
            "the job ended before the third replica claimed a unit"
        );
        assert!(
            began.elapsed() < JOB_BOUND,
            "the third replica never claimed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // Killed: no renewal and no result from the moment `halt` returns (a
    // result being stored at that instant is stored before it returns; the
    // unit was seen in hand just before, still computing).
    c.spares.work().halt();
    let held = (
        in_hand.job_id.clone(),
        i32::try_from(in_hand.stage).unwrap(),
        i32::try_from(in_hand.unit).unwrap(),
    );
    assert_eq!(
        leases_held(place, &owner),
        std::slice::from_ref(&held),
        "the killed replica holds the lease of the unit it was computing"
    );
    c.stop().await;
    // Its lease runs out and the unit passes to the second replica.
    let began = Instant::now();
    loop {
        match owner_of(place, &held) {
            Some(now) if now != owner => break,
            _ => {}
        }
        let record = a.spares.jobs().get(&job_id).unwrap();
        assert!(
            !record.state.is_final(),
            "the job ended without the unit moving on"
        );
        assert!(
            began.elapsed() < JOB_BOUND,
            "the dead replica's unit never moved on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let survived = finished(&a, &job_id).await;
    assert_eq!(
        without_timing(&survived.result_json),
        expected,
        "after a replica died mid-job"
    );
    assert!(b.spares.work().units_completed() > b_before);
    // The job's stages are gone from the database.
    let left: i64 = tokio::task::block_in_place(|| {
        place
            .sql()
            .query_one("SELECT count(*) FROM work_units", &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(left, 0, "a finished job left units behind");
    b.stop().await;
    a.stop().await;
}
