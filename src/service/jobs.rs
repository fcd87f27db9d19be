//! Long-running work (simulation, optimisation, frontiers) as jobs: stored
//! before they start, progress streamed, cancellable, results stored. A job cut
//! off by a restart is reported as failed with the reason, never lost.

use crate::clock::Clock;
use crate::domain::DomainError;
use crate::store::{Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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

impl JobState {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A job as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id, e.g. `job-000042`.
    pub job_id: String,
    /// What it does.
    pub kind: JobKind,
    /// Where it is in its life cycle.
    pub state: JobState,
    /// Share done, 0..1.
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
    updates: watch::Sender<JobRecord>,
}

/// The job registry.
pub struct Jobs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Jobs {
    /// Loads stored jobs; any that were queued or running when the server
    /// stopped are marked failed with the reason, and stored again.
    pub fn open(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let mut entries = BTreeMap::new();
        for (key, bytes) in store.records(COLLECTION)? {
            let mut record: JobRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corruption(format!("job {key}: {e}")))?;
            if !record.state.is_final() {
                record.state = JobState::Failed;
                record.finished_at = Some(clock.now());
                record.message = format!(
                    "interrupted by a server restart at {:.0}% done; resubmit to run again (seed {})",
                    record.progress * 100.0,
                    record.seed
                );
                persist(store.as_ref(), &record)?;
            }
            let (updates, _) = watch::channel(record);
            entries.insert(
                key,
                Entry {
                    cancel: Arc::new(AtomicBool::new(false)),
                    updates,
                },
            );
        }
        Ok(Self {
            store,
            clock,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new job and runs `work` on its own thread. Returns the queued record.
    pub fn start<F>(
        self: &Arc<Self>,
        kind: JobKind,
        seed: u64,
        request_json: String,
        work: F,
    ) -> Result<JobRecord, StoreError>
    where
        F: FnOnce(&JobContext) -> JobOutcome + Send + 'static,
    {
        let record = {
            let mut entries = self.lock();
            let job_id = format!("job-{:06}", entries.len() + 1);
            let record = JobRecord {
                job_id: job_id.clone(),
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
            };
            persist(self.store.as_ref(), &record)?;
            let (updates, _) = watch::channel(record.clone());
            entries.insert(
                job_id,
                Entry {
                    cancel: Arc::new(AtomicBool::new(false)),
                    updates,
                },
            );
            record
        };
        let jobs = self.clone();
        let job_id = record.job_id.clone();
        std::thread::Builder::new()
            .name(job_id.clone())
            .spawn(move || jobs.run(&job_id, work))
            .map_err(|e| StoreError::Storage(format!("cannot start a job thread: {e}")))?;
        Ok(record)
    }

    fn run<F>(self: &Arc<Self>, job_id: &str, work: F)
    where
        F: FnOnce(&JobContext) -> JobOutcome,
    {
        let Some(cancel) = self.lock().get(job_id).map(|e| e.cancel.clone()) else {
            return;
        };
        let now = self.clock.now();
        self.update(job_id, true, |r| {
            r.state = JobState::Running;
            r.started_at = Some(now);
            r.message = "running".into();
        });
        let jobs = self.clone();
        let id = job_id.to_string();
        let context = JobContext {
            job_id: job_id.to_string(),
            cancel,
            report: Box::new(move |fraction, message| {
                jobs.update(&id, false, |r| {
                    r.progress = fraction;
                    r.message = message.to_string();
                });
            }),
        };
        let outcome = work(&context);
        let finished = self.clock.now();
        self.update(job_id, true, |r| {
            r.finished_at = Some(finished);
            match outcome {
                JobOutcome::Done {
                    summary,
                    result_json,
                } => {
                    r.state = JobState::Succeeded;
                    r.progress = 1.0;
                    r.message = "done".into();
                    r.summary = summary;
                    r.result_json = result_json;
                }
                JobOutcome::Cancelled => {
                    r.state = JobState::Cancelled;
                    r.message = "cancelled on request".into();
                }
                JobOutcome::Failed(message) => {
                    r.state = JobState::Failed;
                    r.message = message;
                }
            }
        });
    }

    /// Applies a change to a job, publishes it, and stores it when `durable`.
    fn update(&self, job_id: &str, durable: bool, change: impl FnOnce(&mut JobRecord)) {
        let entries = self.lock();
        let Some(entry) = entries.get(job_id) else {
            return;
        };
        let mut record = entry.updates.borrow().clone();
        change(&mut record);
        if durable && let Err(error) = persist(self.store.as_ref(), &record) {
            tracing::error!(%error, job_id, "storing a job failed");
        }
        entry.updates.send_replace(record);
    }

    /// The current record of a job.
    pub fn get(&self, job_id: &str) -> Result<JobRecord, DomainError> {
        self.lock()
            .get(job_id)
            .map(|e| e.updates.borrow().clone())
            .ok_or_else(|| DomainError::not_found("job", job_id))
    }

    /// A receiver that sees every published change of a job.
    pub fn watch(&self, job_id: &str) -> Result<watch::Receiver<JobRecord>, DomainError> {
        self.lock()
            .get(job_id)
            .map(|e| e.updates.subscribe())
            .ok_or_else(|| DomainError::not_found("job", job_id))
    }

    /// Asks a job to stop. Ended jobs are returned unchanged.
    pub fn cancel(&self, job_id: &str) -> Result<JobRecord, DomainError> {
        let entries = self.lock();
        let entry = entries
            .get(job_id)
            .ok_or_else(|| DomainError::not_found("job", job_id))?;
        entry.cancel.store(true, Ordering::Relaxed);
        Ok(entry.updates.borrow().clone())
    }
}

fn persist(store: &dyn Store, record: &JobRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record)
        .map_err(|e| StoreError::Storage(format!("encoding a job: {e}")))?;
    store.put_record(COLLECTION, &record.job_id, &bytes)
}
