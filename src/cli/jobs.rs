//! Client side of long jobs: submit, follow with a progress bar, print the result.

use super::client::ClientError;
use crate::pb;
use crate::pb::planning_service_client::PlanningServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Follows a job until it ends, drawing a progress bar on stderr (hidden when
/// stderr is not a terminal), and returns the final record.
pub async fn follow(
    planning: &mut PlanningServiceClient<Channel>,
    job: pb::Job,
) -> Result<pb::Job, ClientError> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:40}] {percent:>3}% {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} (seed {})", job.job_id, job.seed));
    let mut stream = planning
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    let mut last = job;
    while let Some(update) = stream.next().await {
        let update = update?;
        bar.set_position((update.progress * 1000.0) as u64);
        bar.set_message(update.message.clone());
        last = update;
    }
    bar.finish_and_clear();
    Ok(last)
}

/// Turns a finished job into output: the summary, or the JSON result, or an error.
pub fn render(job: &pb::Job, json: bool) -> Result<String, ClientError> {
    match pb::JobState::try_from(job.state) {
        Ok(pb::JobState::Succeeded) if json => Ok(format!("{}\n", job.result_json)),
        Ok(pb::JobState::Succeeded) => Ok(format!("{}\n{}", job.job_id, job.summary)),
        Ok(pb::JobState::Cancelled) => {
            Err(ClientError::Usage(format!("{} was cancelled", job.job_id)))
        }
        _ => Err(ClientError::Usage(format!(
            "{} failed: {}",
            job.job_id, job.message
        ))),
    }
}
