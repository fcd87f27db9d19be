//! Jobs at the API: conversions of job records and the watch stream.

use super::convert::timestamp_to_pb;
use crate::domain::DomainError;
use crate::pb;
use crate::service::jobs::{JobKind, JobRecord, JobState};
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::Status;

/// A boxed stream of job snapshots.
pub type JobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send>>;

/// Largest result sent inline in `Job.result_json` (GetJob, WatchJob): a
/// larger one is left out and paged with GetJobResult, so a job message stays
/// far under a default gRPC client's 4 MB receive limit.
pub const MAX_INLINE_RESULT_BYTES: usize = 1 << 20;
/// Page size of GetJobResult when the request says 0.
pub const DEFAULT_RESULT_PAGE_BYTES: usize = 1 << 20;
/// Largest page of GetJobResult: half a default client's receive limit.
pub const MAX_RESULT_PAGE_BYTES: usize = 2 << 20;

/// Converts a job record to protobuf, with its result inline when it is at
/// most [`MAX_INLINE_RESULT_BYTES`].
pub fn job_to_pb(r: &JobRecord) -> pb::Job {
    let mut job = job_fields_to_pb(r, r.result_json.len() as u64);
    if r.result_json.len() <= MAX_INLINE_RESULT_BYTES {
        job.result_json = r.result_json.clone();
    }
    job
}

/// Converts a job kind from protobuf (`None` for unspecified).
pub fn job_kind_from_pb(kind: i32, field: &str) -> Result<Option<JobKind>, DomainError> {
    match pb::JobKind::try_from(kind) {
        Ok(pb::JobKind::Unspecified) => Ok(None),
        Ok(pb::JobKind::Simulate) => Ok(Some(JobKind::Simulate)),
        Ok(pb::JobKind::Optimize) => Ok(Some(JobKind::Optimize)),
        Ok(pb::JobKind::Frontier) => Ok(Some(JobKind::Frontier)),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("unknown job kind {kind}"),
        )),
    }
}

/// Converts a job state from protobuf (`None` for unspecified).
pub fn job_state_from_pb(state: i32, field: &str) -> Result<Option<JobState>, DomainError> {
    match pb::JobState::try_from(state) {
        Ok(pb::JobState::Unspecified) => Ok(None),
        Ok(pb::JobState::Queued) => Ok(Some(JobState::Queued)),
        Ok(pb::JobState::Running) => Ok(Some(JobState::Running)),
        Ok(pb::JobState::Succeeded) => Ok(Some(JobState::Succeeded)),
        Ok(pb::JobState::Failed) => Ok(Some(JobState::Failed)),
        Ok(pb::JobState::Cancelled) => Ok(Some(JobState::Cancelled)),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("unknown job state {state}"),
        )),
    }
}

/// A job's fields without its result, with the result's size.
pub fn job_fields_to_pb(r: &JobRecord, result_bytes: u64) -> pb::Job {
    pb::Job {
        job_id: r.job_id.clone(),
        kind: (match r.kind {
            JobKind::Simulate => pb::JobKind::Simulate,
            JobKind::Optimize => pb::JobKind::Optimize,
            JobKind::Frontier => pb::JobKind::Frontier,
        }) as i32,
        state: (match r.state {
            JobState::Queued => pb::JobState::Queued,
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
        }) as i32,
        progress: r.progress,
        message: r.message.clone(),
        created_at: Some(timestamp_to_pb(r.created_at)),
        started_at: r.started_at.map(timestamp_to_pb),
        finished_at: r.finished_at.map(timestamp_to_pb),
        seed: r.seed,
        summary: r.summary.clone(),
        result_json: String::new(),
        result_bytes,
        seconds_left: r.seconds_left,
        owner: r.owner.clone(),
    }
}

/// Streams every change of a job until it ends; the last message is the final
/// record. Progress updates coalesce when the client reads slowly (a watch
/// channel keeps only the newest), so a slow client never stalls the job.
pub fn watch_job(
    mut updates: watch::Receiver<JobRecord>,
    mut closing: watch::Receiver<bool>,
) -> JobStream {
    let stream = async_stream_job(move |tx| async move {
        let _stream = crate::metrics::WatchStreamGuard::open("job");
        loop {
            let record = updates.borrow_and_update().clone();
            let done = record.state.is_final();
            if tx.send(Ok(job_to_pb(&record))).await.is_err() || done {
                break;
            }
            let changed = tokio::select! {
                changed = updates.changed() => changed.is_ok(),
                _ = closing.wait_for(|closed| *closed) => false,
            };
            if !changed {
                break;
            }
        }
    });
    Box::pin(stream)
}

fn async_stream_job<F, Fut>(
    body: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<pb::Job, Status>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::Job, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
