//! Jobs at the API: conversions of job records and the watch stream.

use super::convert::timestamp_to_pb;
use crate::pb;
use crate::service::jobs::{JobKind, JobRecord, JobState};
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::Status;

/// A boxed stream of job snapshots.
pub type JobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send>>;

/// Converts a job record to protobuf.
pub fn job_to_pb(r: &JobRecord) -> pb::Job {
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
        result_json: r.result_json.clone(),
        seconds_left: r.seconds_left,
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
