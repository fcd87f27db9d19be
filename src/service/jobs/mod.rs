//! Long-running work (simulation, optimisation, frontiers) as jobs: stored
//! before they start, progress streamed, cancellable, results stored. A job cut
//! off by a restart is reported as failed with the reason, never lost.
//!
//! Jobs run on a bounded pool: [`JobPoolLimits::workers`] threads (one per
//! core by default) take jobs in submission order from a queue of at most
//! [`JobPoolLimits::queue`] waiting jobs; a submission past that is refused
//! (`DomainError::Overloaded`, RESOURCE_EXHAUSTED) instead of starting another
//! thread. A queued job that is cancelled ends at once without running; a
//! running one sees its cancel flag, which every long loop checks. On
//! shutdown every job is told to stop; the ones stopped by it are recorded as
//! failed (interrupted), like the ones a restart cuts off.
//!
//! # Several servers on one store
//!
//! On a store several servers share ([`JobSharing`], PostgreSQL), the server
//! running a job holds its lease ([`crate::store::leases`]) and renews it
//! while the job runs, storing the job's progress at each renewal. A server
//! that opens the store leaves every other server's jobs alone. Each server
//! looks for leases that have run out (their server died) every poll; the
//! one that claims a lease reads the job's record, builds its work again
//! from the stored request ([`Rebuild`]) and runs it from the start with the
//! same seed, so the result is the one the dead server would have stored.
//! A job that cannot be built again (a record from before leases) is marked
//! failed with the reason. A server that stops hands its jobs on instead of
//! failing them. Reads of a job this server does not run come from the
//! store, so every server answers for every job; a cancel of such a job is
//! a request its server sees at its next renewal. That part is in
//! `sharing.rs`.

use crate::clock::Clock;
use crate::domain::DomainError;
use crate::store::leases::JobLeases;
use crate::store::{Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

mod sharing;

/// How many jobs run at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPoolLimits {
    /// Jobs running at once (worker threads).
    pub workers: usize,
    /// Jobs waiting for a worker; a submission past this is refused.
    pub queue: usize,
}

/// The work of a job, run once by a worker.
pub type JobWork = Box<dyn FnOnce(&JobContext) -> JobOutcome + Send>;
type Work = JobWork;

/// Builds a stored job's work again from its record (its kind,
/// `request_json`, seed and `apply`), for a server that takes the job over;
/// the error says why it cannot be built (a request that no longer reads,
/// a network it no longer fits).
pub type Rebuild = Arc<dyn Fn(&JobRecord) -> Result<JobWork, String> + Send + Sync>;

/// How the servers sharing a store share its jobs.
#[derive(Clone)]
pub struct JobSharing {
    /// The store's job leases.
    pub leases: Arc<dyn JobLeases>,
    /// How long a lease holds without a renewal ([`crate::config::Limits::work_lease`]).
    pub lease: Duration,
    /// How often a server looks for jobs to take over and re-reads the jobs
    /// it watches for others ([`crate::config::Limits::work_poll`]).
    pub poll: Duration,
}

/// [`JobSharing`] as a registry keeps it.
struct Sharing {
    leases: Arc<dyn JobLeases>,
    /// The name this server's leases are held under.
    owner: String,
    lease: Duration,
    poll: Duration,
    /// How to build a job's work again; takeovers start once it is set.
    rebuild: Mutex<Option<Rebuild>>,
    keeper: std::sync::Once,
}

/// The store collection holding job records.
const COLLECTION: &str = "jobs";

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// Monte Carlo simulation.
    Simulate,
    /// Consequence-based optimisation.
    Optimize,
    /// Availability-vs-investment frontier.
    Frontier,
}

/// Life cycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Stored, not yet started.
    Queued,
    /// Working.
    Running,
    /// Done; the result is stored.
    Succeeded,
    /// Stopped by an error (or a restart).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobKind {
    /// Lower-case name, as in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Simulate => "simulate",
            Self::Optimize => "optimize",
            Self::Frontier => "frontier",
        }
    }
}

impl JobState {
    /// Lower-case name, as in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A job as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id: a sequence number (so ids sort in submission order) and 128
    /// random bits (so an id cannot be guessed), e.g.
    /// `job-000042-9f86d081884c7d659a2feaa0c55ad015`. Jobs from before
    /// owners existed keep their `job-000042` ids.
    pub job_id: String,
    /// The principal that started it; empty for older jobs (only
    /// administrators cancel those).
    #[serde(default)]
    pub owner: String,
    /// What it does.
    pub kind: JobKind,
    /// Where it is in its life cycle.
    pub state: JobState,
    /// Share done, 0..1; it never decreases while the job runs.
    pub progress: f64,
    /// What it is doing, or why it failed.
    pub message: String,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// The seed of its random streams.
    pub seed: u64,
    /// The request, as JSON, so a failed job can be resubmitted.
    pub request_json: String,
    /// Readable summary of the result.
    pub summary: String,
    /// The full result as JSON.
    pub result_json: String,
    /// Estimated seconds until the job ends, from the time it has run and
    /// its progress ([`time_left_seconds`]); `None` until it reports progress
    /// above zero, and once it has ended without succeeding.
    #[serde(default)]
    pub seconds_left: Option<f64>,
    /// Whether an optimisation makes its plan the plan in force when it
    /// succeeds (`OptimizeRequest.apply`).
    #[serde(default)]
    pub apply: bool,
    /// Whether the record holds all a server needs to run the job again
    /// (`request_json`, `seed`, `apply`): true for jobs stored since
    /// servers take over each other's jobs, false in older records.
    #[serde(default)]
    pub rerunnable: bool,
}

/// Progress below this share gives no estimate of the time left: the first
/// reports of a job (set-up, before any replication ends) say too little
/// about its pace, and dividing by them would print absurd times.
pub const MIN_PROGRESS_FOR_ESTIMATE: f64 = 1e-3;

/// The time left of a job that has run `elapsed_seconds` and done `fraction`
/// of its work, assuming the rest goes at the same average pace:
/// `elapsed x (1 - fraction) / fraction`. `None` below
/// [`MIN_PROGRESS_FOR_ESTIMATE`] or for a non-finite input.
pub fn time_left_seconds(elapsed_seconds: f64, fraction: f64) -> Option<f64> {
    if !(elapsed_seconds.is_finite() && fraction.is_finite())
        || fraction < MIN_PROGRESS_FOR_ESTIMATE
    {
        return None;
    }
    let fraction = fraction.min(1.0);
    Some(elapsed_seconds.max(0.0) * (1.0 - fraction) / fraction)
}

/// Applies one progress report to a record: the share done never goes back
/// (a job whose phases report on their own scales, or a late report from a
/// worker thread, cannot make it jump backwards), the message is the latest,
/// and the time left is re-estimated from the time since the job started.
pub fn record_progress(record: &mut JobRecord, fraction: f64, message: &str, now: Timestamp) {
    if fraction.is_finite() {
        record.progress = record.progress.max(fraction.clamp(0.0, 1.0));
    }
    record.message = message.to_string();
    let elapsed = record
        .started_at
        .map(|start| (now.as_millisecond() - start.as_millisecond()) as f64 / 1000.0);
    record.seconds_left = elapsed.and_then(|e| time_left_seconds(e, record.progress));
}

/// Receives progress reports: share done (0..1) and what the job is doing.
type ProgressReporter = Box<dyn Fn(f64, &str) + Send + Sync>;

/// What a running job sees: its cancel flag and a progress reporter.
pub struct JobContext {
    job_id: String,
    cancel: Arc<AtomicBool>,
    report: ProgressReporter,
}

impl JobContext {
    /// The job's id (e.g. to name the source of what it writes).
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The cancel flag; long loops check it and stop promptly.
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Reports progress (0..1) and what the job is doing.
    pub fn progress(&self, fraction: f64, message: &str) {
        (self.report)(fraction.clamp(0.0, 1.0), message);
    }
}

/// How a job's work ended.
pub enum JobOutcome {
    /// Done: a readable summary and the full result as JSON.
    Done {
        /// Summary.
        summary: String,
        /// Result.
        result_json: String,
    },
    /// Stopped because the cancel flag was set.
    Cancelled,
    /// Failed with a message.
    Failed(String),
}

struct Entry {
    cancel: Arc<AtomicBool>,
    /// Set when another server took the job over (this server's lease ran
    /// out while it ran): the run's outcome is then not stored.
    lost: Arc<AtomicBool>,
    /// Whether this server runs the job (it accepted or took it over).
    /// Another server's job is read from the store until it has ended.
    here: bool,
    updates: watch::Sender<JobRecord>,
}

impl Entry {
    fn new(record: JobRecord, here: bool) -> Self {
        let (updates, _) = watch::channel(record);
        Self {
            cancel: Arc::new(AtomicBool::new(false)),
            lost: Arc::new(AtomicBool::new(false)),
            here,
            updates,
        }
    }

    /// Whether the record may be stale: another server's job that had not
    /// ended when it was read.
    fn is_foreign_and_open(&self) -> bool {
        !self.here && !self.updates.borrow().state.is_final()
    }
}

/// Jobs waiting for a worker, and whether the pool is stopping.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<(String, Work)>,
    stopping: bool,
}

/// The job registry and its worker pool.
pub struct Jobs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entries: Mutex<BTreeMap<String, Entry>>,
    limits: JobPoolLimits,
    queue: Mutex<Queue>,
    ready: Condvar,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    sharing: Option<Sharing>,
}

impl Jobs {
    /// Loads stored jobs. On a store one process opens, any that were
    /// queued or running when the server stopped are marked failed with the
    /// reason, and stored again. With `sharing` (a store several servers
    /// share), jobs that have not ended are left alone: their server may
    /// be running them, and if it died another server takes them over
    /// ([`Jobs::take_over_jobs`]).
    pub fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: JobPoolLimits,
        sharing: Option<JobSharing>,
    ) -> Result<Self, StoreError> {
        let mut entries = BTreeMap::new();
        for (key, bytes) in store.records(COLLECTION)? {
            let mut record = decode(&key, &bytes)?;
            if !record.state.is_final() && sharing.is_none() {
                interrupt(&mut record, clock.now(), "a server restart");
                persist(store.as_ref(), &record)?;
            }
            count_job(record.kind, record.state, 1);
            entries.insert(key, Entry::new(record, false));
        }
        let sharing = match sharing {
            Some(s) => Some(Sharing {
                leases: s.leases,
                owner: sharing::owner_name()?,
                lease: s.lease,
                poll: s.poll,
                rebuild: Mutex::new(None),
                keeper: std::sync::Once::new(),
            }),
            None => None,
        };
        Ok(Self {
            store,
            clock,
            entries: Mutex::new(entries),
            limits: JobPoolLimits {
                workers: limits.workers.max(1),
                queue: limits.queue,
            },
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            sharing,
        })
    }

    /// The pool's limits.
    pub fn limits(&self) -> JobPoolLimits {
        self.limits
    }

    /// The name this server holds job leases under (`None` on a store one
    /// process opens).
    pub fn lease_owner(&self) -> Option<&str> {
        self.sharing.as_ref().map(|s| s.owner.as_str())
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new job and queues `work` for the pool. Returns the queued
    /// record. Errors: `Overloaded` (as a rejection) when the queue is full or
    /// the server is stopping; `Storage` if the record cannot be stored.
    pub fn start<F>(
        self: &Arc<Self>,
        kind: JobKind,
        owner: &str,
        seed: u64,
        request_json: String,
        work: F,
    ) -> Result<JobRecord, StoreError>
    where
        F: FnOnce(&JobContext) -> JobOutcome + Send + 'static,
    {
        self.submit(kind, owner, seed, request_json, false, work)
    }

    /// [`Jobs::start`] for a job that may apply its result (`apply`, kept in
    /// the record so that a server taking the job over does the same).
    pub fn submit<F>(
        self: &Arc<Self>,
        kind: JobKind,
        owner: &str,
        seed: u64,
        request_json: String,
        apply: bool,
        work: F,
    ) -> Result<JobRecord, StoreError>
    where
        F: FnOnce(&JobContext) -> JobOutcome + Send + 'static,
    {
        let mut queue = self.lock_queue();
        if queue.stopping {
            return Err(DomainError::Overloaded("the server is shutting down".into()).into());
        }
        if queue.waiting.len() >= self.limits.queue {
            return Err(DomainError::Overloaded(format!(
                "{} jobs are already waiting for the {} job workers (at most {} may wait); try again when one ends",
                queue.waiting.len(),
                self.limits.workers,
                self.limits.queue
            ))
            .into());
        }
        // Every server's jobs count, so ids keep (roughly) submission order.
        let stored = match &self.sharing {
            Some(_) => Some(self.store.record_keys(COLLECTION)?.len()),
            None => None,
        };
        let record = {
            let mut entries = self.lock();
            let job_id = new_job_id(stored.unwrap_or(entries.len()).max(entries.len()) + 1)?;
            let record = JobRecord {
                job_id: job_id.clone(),
                owner: owner.to_string(),
                kind,
                state: JobState::Queued,
                progress: 0.0,
                message: "queued".into(),
                created_at: self.clock.now(),
                started_at: None,
                finished_at: None,
                seed,
                request_json,
                summary: String::new(),
                result_json: String::new(),
                seconds_left: None,
                apply,
                rerunnable: true,
            };
            // The lease first: a record that has not ended always has one,
            // so no other server mistakes it for a job left without a server.
            if let Some(sharing) = &self.sharing
                && !sharing
                    .leases
                    .acquire(&job_id, &sharing.owner, sharing.lease)?
            {
                return Err(StoreError::Storage(format!(
                    "job {job_id} already has a lease"
                )));
            }
            persist(self.store.as_ref(), &record)?;
            count_job(kind, JobState::Queued, 1);
            entries.insert(job_id, Entry::new(record.clone(), true));
            record
        };
        queue
            .waiting
            .push_back((record.job_id.clone(), Box::new(work)));
        drop(queue);
        self.ready.notify_one();
        self.ensure_workers()?;
        Ok(record)
    }

    /// Starts the worker threads (and, on a shared store, the lease keeper)
    /// on first use.
    fn ensure_workers(self: &Arc<Self>) -> Result<(), StoreError> {
        self.ensure_keeper()?;
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        while workers.len() < self.limits.workers {
            let jobs = self.clone();
            let handle = std::thread::Builder::new()
                .name(format!("job-worker-{}", workers.len()))
                .spawn(move || jobs.work_loop())
                .map_err(|e| StoreError::Storage(format!("cannot start a job worker: {e}")))?;
            workers.push(handle);
        }
        Ok(())
    }

    /// A worker: takes queued jobs in order until the pool stops.
    fn work_loop(self: &Arc<Self>) {
        loop {
            let next = {
                let mut queue = self.lock_queue();
                loop {
                    if let Some(next) = queue.waiting.pop_front() {
                        break Some(next);
                    }
                    if queue.stopping {
                        break None;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some((job_id, work)) = next else {
                return;
            };
            self.run(&job_id, work);
        }
    }

    /// Stops the pool: every running job is told to stop, every waiting job
    /// ends, and the workers are given `grace` to finish. Jobs stopped this
    /// way are recorded as failed (interrupted by a shutdown, with their seed
    /// so they can be resubmitted); on a shared store they are handed on
    /// instead, for another server to run. Returns whether every worker
    /// ended in time.
    pub fn shutdown(&self, grace: Duration) -> bool {
        let waiting = {
            let mut queue = self.lock_queue();
            queue.stopping = true;
            std::mem::take(&mut queue.waiting)
        };
        self.ready.notify_all();
        let now = self.clock.now();
        for (job_id, _) in waiting {
            if self.sharing.is_some() {
                self.hand_on(&job_id);
            } else {
                self.update(&job_id, true, |r| interrupt(r, now, "a server shutdown"));
            }
        }
        for entry in self.lock().values() {
            entry.cancel.store(true, Ordering::Relaxed);
        }
        let deadline = Instant::now() + grace;
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let mut all_ended = true;
        for worker in workers {
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if worker.is_finished() {
                let _ = worker.join();
            } else {
                all_ended = false;
            }
        }
        all_ended
    }

    fn stopping(&self) -> bool {
        self.lock_queue().stopping
    }

    fn run(self: &Arc<Self>, job_id: &str, work: Work) {
        let Some((cancel, lost)) = self
            .lock()
            .get(job_id)
            .map(|e| (e.cancel.clone(), e.lost.clone()))
        else {
            return;
        };
        let Ok(record) = self.current(job_id) else {
            return;
        };
        if record.state.is_final() {
            self.release(job_id);
            return; // Cancelled while it waited.
        }
        // Every log line of the job's work (on this worker thread) carries
        // the job's id and kind; jobs are few, so the span is INFO.
        let _span = tracing::info_span!(
            "job",
            job_id = %job_id,
            kind = ?record.kind,
            owner = %record.owner,
            seed = record.seed,
        )
        .entered();
        let now = self.clock.now();
        // A cancel between this worker taking the job from the queue and
        // here has already ended it (see `cancel_here`): then it never runs.
        let mut started = false;
        self.update(job_id, true, |r| {
            if r.state.is_final() {
                return;
            }
            r.state = JobState::Running;
            r.started_at = Some(now);
            r.message = "running".into();
            started = true;
        });
        if !started {
            self.release(job_id);
            return;
        }
        let jobs = self.clone();
        let id = job_id.to_string();
        let context = JobContext {
            job_id: job_id.to_string(),
            cancel,
            report: Box::new(move |fraction, message| {
                let now = jobs.clock.now();
                jobs.update(&id, false, |r| record_progress(r, fraction, message, now));
            }),
        };
        let began = Instant::now();
        tracing::debug!("job started");
        let outcome = work(&context);
        let ran = began.elapsed();
        tracing::debug!(seconds = ran.as_secs_f64(), "job work ended");
        if lost.load(Ordering::Relaxed) || !self.still_held(job_id) {
            // Another server took the job over and stores its outcome.
            tracing::warn!("the job's lease was lost; its new server finishes it");
            self.let_go(job_id);
            return;
        }
        let finished = self.clock.now();
        let shut_down = self.stopping();
        if shut_down && self.sharing.is_some() && matches!(outcome, JobOutcome::Cancelled) {
            self.hand_on(job_id);
            return;
        }
        self.update(job_id, true, |r| {
            r.finished_at = Some(finished);
            match outcome {
                JobOutcome::Cancelled if shut_down => interrupt(r, finished, "a server shutdown"),
                JobOutcome::Done {
                    summary,
                    result_json,
                } => {
                    r.state = JobState::Succeeded;
                    r.progress = 1.0;
                    r.seconds_left = Some(0.0);
                    r.message = "done".into();
                    r.summary = summary;
                    r.result_json = result_json;
                }
                JobOutcome::Cancelled => {
                    r.state = JobState::Cancelled;
                    r.seconds_left = None;
                    r.message = "cancelled on request".into();
                }
                JobOutcome::Failed(message) => {
                    r.state = JobState::Failed;
                    r.seconds_left = None;
                    r.message = message;
                }
            }
        });
        self.release(job_id);
        if let Ok(record) = self.current(job_id) {
            crate::metrics::metrics()
                .job_duration
                .with_label_values(&[record.kind.name(), record.state.name()])
                .observe(ran.as_secs_f64());
        }
    }

    /// Applies a change to a job, publishes it, and stores it when `durable`.
    fn update(&self, job_id: &str, durable: bool, change: impl FnOnce(&mut JobRecord)) {
        let entries = self.lock();
        let Some(entry) = entries.get(job_id) else {
            return;
        };
        let mut record = entry.updates.borrow().clone();
        let before = record.state;
        change(&mut record);
        if record.state != before {
            count_job(record.kind, before, -1);
            count_job(record.kind, record.state, 1);
        }
        if durable && let Err(error) = persist(self.store.as_ref(), &record) {
            tracing::error!(%error, job_id, "storing a job failed");
        }
        entry.updates.send_replace(record);
    }

    /// The record this server holds, without reading the store.
    fn current(&self, job_id: &str) -> Result<JobRecord, DomainError> {
        self.lock()
            .get(job_id)
            .map(|e| e.updates.borrow().clone())
            .ok_or_else(|| DomainError::not_found("job", job_id))
    }

    /// The current record of a job (another server's is read from the
    /// store). Errors: unknown job (`NotFound`); `Storage`.
    pub fn get(&self, job_id: &str) -> Result<JobRecord, StoreError> {
        self.refresh(job_id)?;
        Ok(self.current(job_id)?)
    }

    /// Bytes `offset..offset + max_bytes` of a succeeded job's result and the
    /// result's total size, copied under the lock without cloning the whole
    /// result. Errors: unknown job (`NotFound`), a job that has not succeeded
    /// (`FailedPrecondition`), an offset past the end (`OutOfRange`);
    /// `Storage`.
    pub fn result_page(
        &self,
        job_id: &str,
        offset: u64,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, u64), StoreError> {
        self.refresh(job_id)?;
        let entries = self.lock();
        let entry = entries
            .get(job_id)
            .ok_or_else(|| DomainError::not_found("job", job_id))?;
        let record = entry.updates.borrow();
        if record.state != JobState::Succeeded {
            return Err(DomainError::FailedPrecondition(format!(
                "job {job_id} is {}; only a succeeded job has a result",
                record.state.name()
            ))
            .into());
        }
        let bytes = record.result_json.as_bytes();
        let total = bytes.len() as u64;
        if offset > total {
            return Err(DomainError::OutOfRange {
                field: "offset".into(),
                reason: format!("the result has {total} bytes"),
            }
            .into());
        }
        let start = usize::try_from(offset).unwrap_or(bytes.len());
        let end = start.saturating_add(max_bytes).min(bytes.len());
        Ok((bytes[start..end].to_vec(), total))
    }

    /// Jobs after `after` (a job id; empty for the first page) in id order,
    /// of `kind`, in `state` and started by `owner` when given, at most
    /// `limit`, without their
    /// results (`result_json` empty; see [`Jobs::result_page`]) but with
    /// each result's size in bytes. The flag says whether more follow.
    /// Every server's jobs are listed. Errors: `Storage`.
    pub fn list(
        &self,
        kind: Option<JobKind>,
        state: Option<JobState>,
        owner: Option<&str>,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<(JobRecord, u64)>, bool), StoreError> {
        self.refresh_all()?;
        let entries = self.lock();
        let mut out = Vec::new();
        let matching = entries
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .map(|(_, entry)| entry.updates.borrow())
            .filter(|r| {
                kind.is_none_or(|k| r.kind == k)
                    && state.is_none_or(|s| r.state == s)
                    && owner.is_none_or(|o| r.owner == o)
            });
        for record in matching {
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((without_result(&record), record.result_json.len() as u64));
        }
        Ok((out, false))
    }

    /// How many jobs this server knows (stored, in any state): a request
    /// refused at the edge leaves it unchanged.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// A receiver that sees every published change of a job. Another
    /// server's job is re-read from the store every poll while it is
    /// watched. Errors: unknown job (`NotFound`); `Storage`.
    pub fn watch(&self, job_id: &str) -> Result<watch::Receiver<JobRecord>, StoreError> {
        self.refresh(job_id)?;
        Ok(self
            .lock()
            .get(job_id)
            .map(|e| e.updates.subscribe())
            .ok_or_else(|| DomainError::not_found("job", job_id))?)
    }

    /// Asks a job to stop: a waiting job ends at once (cancelled, never run),
    /// a running one at its next look at the flag. Ended jobs are returned
    /// unchanged. Another server's job is asked through its lease; that
    /// server stops it at its next renewal. Errors: unknown job
    /// (`NotFound`); `Storage`.
    pub fn cancel(&self, job_id: &str) -> Result<JobRecord, StoreError> {
        self.refresh(job_id)?;
        let here = {
            let entries = self.lock();
            let entry = entries
                .get(job_id)
                .ok_or_else(|| DomainError::not_found("job", job_id))?;
            entry.cancel.store(true, Ordering::Relaxed);
            entry.here || self.sharing.is_none()
        };
        if !here {
            if let Some(sharing) = &self.sharing {
                sharing.leases.request_cancel(job_id)?;
            }
            return self.get(job_id);
        }
        self.cancel_here(job_id);
        Ok(self.current(job_id)?)
    }

    /// Cancels a job this server runs: a waiting one ends now, a running
    /// one at its next look at the flag.
    fn cancel_here(&self, job_id: &str) {
        if let Some(entry) = self.lock().get(job_id) {
            entry.cancel.store(true, Ordering::Relaxed);
        }
        let was_waiting = {
            let mut queue = self.lock_queue();
            let before = queue.waiting.len();
            queue.waiting.retain(|(id, _)| id != job_id);
            queue.waiting.len() < before
        };
        let now = self.clock.now();
        if was_waiting {
            self.update(job_id, true, |r| {
                r.state = JobState::Cancelled;
                r.finished_at = Some(now);
                r.message = "cancelled on request before it started".into();
            });
            self.release(job_id);
        } else {
            // Taken from the queue by a worker that has not started it yet:
            // it ends now, and the worker, finding it ended, skips it (and
            // releases it). A job already running stops at its next look
            // at the flag.
            self.update(job_id, true, |r| {
                if r.state == JobState::Queued {
                    r.state = JobState::Cancelled;
                    r.finished_at = Some(now);
                    r.message = "cancelled on request before it started".into();
                }
            });
        }
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<JobRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corruption(format!("job {key}: {e}")))
}

/// A new job id: `job-<sequence>-<128 random bits, hex>`. The sequence keeps
/// ids (and so listings) in submission order after older `job-<sequence>`
/// ids; the random part makes an id useless to guess.
fn new_job_id(sequence: usize) -> Result<String, StoreError> {
    use rand::TryRng;
    let mut random = [0u8; 16];
    rand::rngs::SysRng
        .try_fill_bytes(&mut random)
        .map_err(|e| StoreError::Storage(format!("no random bytes for a job id: {e}")))?;
    Ok(format!(
        "job-{sequence:06}-{}",
        crate::auth::keys::hex(&random)
    ))
}

/// Marks a job that did not end on its own as failed, saying why and how to
/// run it again.
fn interrupt(record: &mut JobRecord, now: Timestamp, by: &str) {
    record.state = JobState::Failed;
    record.seconds_left = None;
    record.finished_at = Some(now);
    record.message = format!(
        "interrupted by {by} at {:.0}% done; resubmit to run again (seed {})",
        record.progress * 100.0,
        record.seed
    );
}

/// A copy of a record without its (possibly large) result, but with its size.
fn without_result(record: &JobRecord) -> JobRecord {
    JobRecord {
        job_id: record.job_id.clone(),
        owner: record.owner.clone(),
        kind: record.kind,
        state: record.state,
        progress: record.progress,
        message: record.message.clone(),
        created_at: record.created_at,
        started_at: record.started_at,
        finished_at: record.finished_at,
        seed: record.seed,
        request_json: String::new(),
        summary: record.summary.clone(),
        result_json: String::new(),
        seconds_left: record.seconds_left,
        apply: record.apply,
        rerunnable: record.rerunnable,
    }
}

/// Moves the `spares_jobs{kind, state}` gauge.
fn count_job(kind: JobKind, state: JobState, by: i64) {
    crate::metrics::metrics()
        .jobs
        .with_label_values(&[kind.name(), state.name()])
        .add(by);
}

fn persist(store: &dyn Store, record: &JobRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record)
        .map_err(|e| StoreError::Storage(format!("encoding a job: {e}")))?;
    store.put_record(COLLECTION, &record.job_id, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(started_at: Timestamp) -> JobRecord {
        JobRecord {
            job_id: "job-000001".into(),
            owner: String::new(),
            kind: JobKind::Simulate,
            state: JobState::Running,
            progress: 0.0,
            message: "running".into(),
            created_at: started_at,
            started_at: Some(started_at),
            finished_at: None,
            seed: 1,
            request_json: String::new(),
            summary: String::new(),
            result_json: String::new(),
            seconds_left: None,
            apply: false,
            rerunnable: true,
        }
    }

    #[test]
    fn the_time_left_is_the_elapsed_time_scaled_by_what_remains() {
        assert_eq!(time_left_seconds(10.0, 0.25), Some(30.0));
        assert_eq!(time_left_seconds(10.0, 1.0), Some(0.0));
        assert_eq!(time_left_seconds(10.0, 0.0), None);
        assert_eq!(
            time_left_seconds(10.0, MIN_PROGRESS_FOR_ESTIMATE / 2.0),
            None
        );
        assert_eq!(time_left_seconds(f64::NAN, 0.5), None);
        assert_eq!(time_left_seconds(10.0, f64::NAN), None);
    }

    #[test]
    fn progress_never_goes_back_and_the_estimate_follows_the_clock() {
        let start: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
        let at = |seconds: i64| start + jiff::SignedDuration::from_secs(seconds);
        let mut r = record(start);
        record_progress(&mut r, 0.0, "set-up", at(5));
        assert_eq!((r.progress, r.seconds_left), (0.0, None));
        record_progress(&mut r, 0.5, "training", at(20));
        assert_eq!((r.progress, r.seconds_left), (0.5, Some(20.0)));
        // A later phase reporting on its own scale does not move it back.
        record_progress(&mut r, 0.1, "evaluating", at(30));
        assert_eq!(r.progress, 0.5);
        assert_eq!(r.message, "evaluating");
        assert_eq!(r.seconds_left, Some(30.0));
        record_progress(&mut r, f64::NAN, "odd", at(30));
        assert_eq!(r.progress, 0.5);
        record_progress(&mut r, 7.0, "past the end", at(40));
        assert_eq!((r.progress, r.seconds_left), (1.0, Some(0.0)));
    }
}
